package salesforce_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/google/go-cmp/cmp"
)

// These tests run the client against the emulator in
// sinks/salesforce/salesforcetest. The handler tests in the other files
// pin the client to the contract's bytes; these check that both halves
// work together end to end.

var fastPoll = &salesforce.PollOptions{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Timeout: 20 * time.Second}

func emulatorClient(t *testing.T, opts *salesforcetest.Options, copts *salesforce.Options) (*salesforcetest.Server, *salesforce.Client) {
	t.Helper()
	srv := salesforcetest.NewServer(opts)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	auth, err := salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{
		TokenURL: srv.TokenURL(), ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret()})
	if err != nil {
		t.Fatal(err)
	}
	if copts == nil {
		copts = &salesforce.Options{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	}
	c, err := salesforce.NewClient(ctx, auth, copts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

const accountsCSV = "Name,External_Id__c,NumberOfEmployees\nAcme,A-1,10\nGlobex,A-2,20\n,A-3,30\nInitech,A-4,not-a-number\n"

// runInsert creates, uploads, closes and waits for an Account insert.
func runInsert(t *testing.T, c *salesforce.Client, data string) *salesforce.JobInfo {
	t.Helper()
	ctx := context.Background()
	job, err := c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert, LineEnding: salesforce.LineEndingLF})
	if err != nil {
		t.Fatal(err)
	}
	if job.State != salesforce.StateOpen || len(job.ID) != 18 || !strings.HasPrefix(job.ID, "750") {
		t.Fatalf("created job = %+v", job)
	}
	if err := c.UploadJobData(ctx, job.ID, salesforce.BytesBody([]byte(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	info, err := c.WaitJob(ctx, job.ID, fastPoll)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func readResultsT(t *testing.T, rc io.ReadCloser, err error) (cols []string, rows []salesforce.ResultRow) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cols, rows, err = readAllResults(rc, "")
	if err != nil {
		t.Fatal(err)
	}
	return cols, rows
}

func TestEmulatorInsertJob(t *testing.T) {
	srv, c := emulatorClient(t, nil, nil)
	ctx := context.Background()
	info := runInsert(t, c, accountsCSV)
	if info.State != salesforce.StateJobComplete || info.NumberRecordsProcessed != 4 || info.NumberRecordsFailed != 2 {
		t.Fatalf("final job = %+v", info)
	}
	if info.APIVersion != "62.0" {
		t.Errorf("apiVersion = %q", info.APIVersion)
	}

	cols, ok := readResults(t)(c.SuccessfulResults(ctx, info.ID))
	if diff := cmp.Diff([]string{"Name", "External_Id__c", "NumberOfEmployees"}, cols); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	var names []string
	for _, r := range ok {
		if !r.Created || len(r.ID) != 18 {
			t.Errorf("success row %+v", r)
		}
		names = append(names, r.Values[0])
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"Acme", "Globex"}, names); diff != "" {
		t.Errorf("inserted (-want +got):\n%s", diff)
	}

	_, failed := readResults(t)(c.FailedResults(ctx, info.ID))
	codes := map[string]salesforce.RowError{}
	for _, r := range failed {
		codes[r.Values[1]] = r.RowError()
	}
	if re := codes["A-3"]; re.Code != "REQUIRED_FIELD_MISSING" || !slices.Equal(re.Fields, []string{"Name"}) {
		t.Errorf("A-3 error = %+v", re)
	}
	if re := codes["A-4"]; re.Code != "INVALID_FIELD" || !slices.Equal(re.Fields, []string{"NumberOfEmployees"}) {
		t.Errorf("A-4 error = %+v", re)
	}
	_, unprocessed := readResults(t)(c.UnprocessedRecords(ctx, info.ID))
	if len(unprocessed) != 0 {
		t.Errorf("unprocessed = %v", unprocessed)
	}

	if got := len(srv.Records("Account")); got != 2 {
		t.Errorf("emulator holds %d accounts, want 2", got)
	}
	if n := srv.Requests()["PUT /services/data/vXX.X/jobs/ingest/{id}/batches"]; n != 1 {
		t.Errorf("PUTs = %d, want 1 (%v)", n, srv.Requests())
	}
	if u, ok := c.APIUsage(); !ok || u.Max == 0 || u.Used == 0 {
		t.Errorf("APIUsage = %+v, %v", u, ok)
	}

	// The job shows up in the list; then delete it.
	found := false
	for j, err := range c.ListJobs(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		found = found || j.ID == info.ID
	}
	if !found {
		t.Errorf("ListJobs did not return %s", info.ID)
	}
	if err := c.DeleteJob(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Job(ctx, info.ID); !errors.Is(err, salesforce.ErrNotFound) {
		t.Errorf("Job after delete = %v, want ErrNotFound", err)
	}
}

// readResults adapts a (reader, error) pair for readResultsT.
func readResults(t *testing.T) func(io.ReadCloser, error) ([]string, []salesforce.ResultRow) {
	return func(rc io.ReadCloser, err error) ([]string, []salesforce.ResultRow) { return readResultsT(t, rc, err) }
}

func TestEmulatorJobFailedAndDuplicateUpload(t *testing.T) {
	_, c := emulatorClient(t, nil, nil)
	ctx := context.Background()
	info := runInsert(t, c, "Name,Bogus__c\nAcme,x\n")
	var je *salesforce.JobError
	if info.State != salesforce.StateFailed || !errors.As(info.Err(), &je) || je.Code != "InvalidBatch" {
		t.Fatalf("job = %+v, Err = %v", info, info.Err())
	}
	mustContain(t, je.Message, "Bogus__c")

	job, err := c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
	if err != nil {
		t.Fatal(err)
	}
	body := salesforce.BytesBody([]byte("Name\nAcme\n"))
	if err := c.UploadJobData(ctx, job.ID, body); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadJobData(ctx, job.ID, body); !errors.Is(err, salesforce.ErrDuplicateUpload) {
		t.Errorf("second upload = %v, want ErrDuplicateUpload", err)
	}
	aborted, err := c.AbortJob(ctx, job.ID)
	if err != nil || aborted.State != salesforce.StateAborted {
		t.Fatalf("AbortJob = %+v, %v", aborted, err)
	}
	if _, err := c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Acount", Operation: salesforce.OpInsert}); !errors.Is(err, salesforce.ErrInvalidJob) {
		t.Errorf("create on unknown object = %v, want ErrInvalidJob", err)
	}
}

func TestEmulatorReauthAndFaults(t *testing.T) {
	srv, c := emulatorClient(t, nil, nil)
	ctx := context.Background()
	job, err := c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
	if err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	if err := c.UploadJobData(ctx, job.ID, salesforce.BytesBody([]byte("Name\nAcme\n"))); err != nil {
		t.Fatalf("upload after token expiry: %v", err)
	}
	if err := srv.SetFaults(salesforcetest.Faults{RequestLimitNext: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatalf("close under request limit: %v", err)
	}
	info, err := c.WaitJob(ctx, job.ID, fastPoll)
	if err != nil || info.State != salesforce.StateJobComplete {
		t.Fatalf("WaitJob = %+v, %v", info, err)
	}
	if got := len(srv.Records("Account")); got != 1 {
		t.Errorf("records = %d, want 1", got)
	}
	reqs := srv.Requests()
	for route, want := range map[string]int{
		"POST /services/oauth2/token":                       2, // initial + one re-authentication
		"PUT /services/data/vXX.X/jobs/ingest/{id}/batches": 2, // 401, then the replay
		"PATCH /services/data/vXX.X/jobs/ingest/{id}":       3, // two REQUEST_LIMIT_EXCEEDED, then success
	} {
		if reqs[route] != want {
			t.Errorf("%s: %d requests, want %d (all: %v)", route, reqs[route], want, reqs)
		}
	}
}

func TestEmulatorCompressionForced(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("transport compression disabled=%v", disable), func(t *testing.T) {
			copts := &salesforce.Options{InitialBackoff: time.Millisecond,
				HTTPClient: &http.Client{Transport: &http.Transport{DisableCompression: disable}}}
			_, c := emulatorClient(t, &salesforcetest.Options{Compression: salesforcetest.CompressionAlways}, copts)
			info := runInsert(t, c, accountsCSV)
			_, ok := readResults(t)(c.SuccessfulResults(context.Background(), info.ID))
			if len(ok) != 2 {
				t.Errorf("successful rows = %d, want 2", len(ok))
			}
		})
	}
}

func TestEmulatorQueryPaging(t *testing.T) {
	srv, c := emulatorClient(t, nil, nil)
	ctx := context.Background()
	for i := range 5 {
		if _, err := srv.AddRecord("Account", map[string]string{"Name": fmt.Sprintf("Acct %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	job, err := c.CreateQueryJob(ctx, salesforce.CreateQueryJobRequest{Query: "SELECT Id, Name FROM Account"})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.WaitQueryJob(ctx, job.ID, fastPoll); err != nil || info.State != salesforce.StateJobComplete {
		t.Fatalf("WaitQueryJob = %+v, %v", info, err)
	}
	var names []string
	pages := 0
	for locator := ""; ; {
		page, err := c.QueryResults(ctx, job.ID, locator, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		cols, rows := readResultsT(t, page.Body, nil)
		i := slices.IndexFunc(cols, func(s string) bool { return strings.EqualFold(s, "Name") })
		for _, r := range rows {
			names = append(names, r.Values[i])
		}
		if page.NextLocator == "" {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		locator = page.NextLocator
	}
	slices.Sort(names)
	if len(names) != 5 || names[0] != "Acct 0" || pages != 3 {
		t.Errorf("names = %v over %d pages", names, pages)
	}
}

func TestEmulatorJWTAndDescribe(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := salesforcetest.NewServer(&salesforcetest.Options{JWTPublicKey: &key.PublicKey})
	t.Cleanup(srv.Close)
	ctx := context.Background()
	auth, err := salesforce.JWTBearer(ctx, salesforce.JWTConfig{
		LoginURL: srv.LoginURL(), ClientID: srv.ClientID(), Username: srv.Username(),
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(ctx, auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Describe(ctx, "Contact")
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := d.Field("Legacy_Id__c"); !ok || !f.ExternalID {
		t.Errorf("Legacy_Id__c = %+v", f)
	}
	if f, ok := d.Field("LastName"); !ok || !f.RequiredOnInsert() {
		t.Errorf("LastName = %+v", f)
	}
	if _, err := c.Describe(ctx, "Nope__c"); !errors.Is(err, salesforce.ErrNotFound) {
		t.Errorf("Describe(Nope__c) = %v", err)
	}
	l, err := c.Limits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := l["DailyApiRequests"]; !ok || v.Max == 0 {
		t.Errorf("limits = %v", l)
	}
}
