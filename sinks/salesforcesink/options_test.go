package salesforcesink

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

func TestValidate(t *testing.T) {
	ok := func() *Options {
		o := NewOptions()
		o.Object, o.InstanceURL = "Account", EmulatorURL
		return o
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.Object = "" }, "object is required"},
		{func(o *Options) { o.Operation = "merge" }, "operation"},
		{func(o *Options) { o.Operation = "upsert" }, "external_id_field is required"},
		{func(o *Options) { o.ExternalIDField = "X__c" }, "only used with operation upsert"},
		{func(o *Options) { o.APIVersion = "40.0" }, "api_version"},
		{func(o *Options) { o.InstanceURL = "ftp://x" }, "instance_url"},
		{func(o *Options) { o.InstanceURL = "https://acme.my.salesforce.com" }, "auth: configure one flow"},
		{func(o *Options) {
			o.InstanceURL, o.Auth.ClientID, o.Auth.PrivateKeyFile = "https://a.my.salesforce.com", "id", "k.pem"
		}, "auth.username is required"},
		{func(o *Options) { o.LineEnding = "CR" }, "line_ending"},
		{func(o *Options) { o.ColumnDelimiter = "COLON" }, "column_delimiter"},
		{func(o *Options) { o.MaxJobBytes = 150_000_001 }, "above the Bulk API upload limit"},
		{func(o *Options) { o.MaxJobRows = 0 }, "max_job_rows"},
		{func(o *Options) { o.PollMax = time.Millisecond }, "poll_max"},
		{func(o *Options) { n := -1; o.LockRetries = &n }, "lock_retries"},
		{func(o *Options) { o.ResponseCompression = "br" }, "response_compression"},
	} {
		o := ok()
		tc.mod(o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
	o := ok()
	o.InstanceURL, o.Auth.AccessToken = "https://a.my.salesforce.com", "00Dsecret!token"
	o.Object = ""
	if err := o.Validate(); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("secret leaked or no error: %v", err)
	}
}

func TestArchiveAndDeleteJobs(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	dir := t.TempDir()
	rows := genAccounts(300, 50, "R")
	r := runPipeline(t, context.Background(), accountSchema, rows,
		"object: Account\nmax_job_rows: 100\ndelete_jobs: true\narchive_results: "+dir+"/\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatal(r.err)
	}
	jobs := r.sink.Jobs()
	if len(jobs) != 3 {
		t.Fatalf("%d jobs", len(jobs))
	}
	for _, j := range jobs {
		for _, kind := range []string{"successful", "failed"} {
			b, err := os.ReadFile(filepath.Join(dir, "run-1", j.ID+"-"+kind+".csv"))
			if err != nil || !strings.HasPrefix(string(b), `"sf__Id"`) {
				t.Errorf("archive %s %s: %v %.40q", j.ID, kind, err, b)
			}
		}
		if _, ok := srv.Job(j.ID); ok {
			t.Errorf("job %s not deleted", j.ID)
		}
	}
}

func TestRegisteredExample(t *testing.T) {
	spec, err := pipeline.DefaultRegistry().Spec(pipeline.KindSink, "salesforce")
	if err != nil {
		t.Fatal(err)
	}
	y := "name: x\nstages:\n  - {name: r, source: {type: csv, url: pipelines/data/accounts.csv}}\n  - name: w\n    inputs: [r]\n    sink:\n      type: salesforce\n"
	for _, l := range strings.Split(strings.TrimSpace(spec.Example), "\n") {
		y += "      " + l + "\n"
	}
	if _, err := config.Load("x.yaml", []byte(y), pipeline.DefaultRegistry(), func(string) (string, bool) { return "", false }); err != nil {
		t.Fatalf("example does not load: %v\n%s", err, y)
	}
}

// TestOptionsConnection: Connection carries every connection key of the
// sink's options (a field added to Connection must be filled from the
// option of the same name), decoded from a pipeline file's YAML.
func TestOptionsConnection(t *testing.T) {
	o := NewOptions()
	if err := yaml.Unmarshal([]byte(`instance_url: https://acme.my.salesforce.com
api_version: "61.0"
response_compression: gzip
auth: {client_id: cid, client_secret: s3cret, login_url: https://acme.my.salesforce.com}
`), o); err != nil {
		t.Fatal(err)
	}
	c := o.Connection()
	cv, ov := reflect.ValueOf(c), reflect.ValueOf(*o)
	for i := range cv.NumField() {
		name := cv.Type().Field(i).Name
		of := ov.FieldByName(name)
		if !of.IsValid() {
			t.Errorf("Options has no field %s of Connection", name)
			continue
		}
		if cv.Field(i).IsZero() || !reflect.DeepEqual(cv.Field(i).Interface(), of.Interface()) {
			t.Errorf("Connection.%s = %v, want the option's %v", name, cv.Field(i).Interface(), of.Interface())
		}
	}
}
