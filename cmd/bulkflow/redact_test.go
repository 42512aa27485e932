package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestRedactionCanaries puts a canary value, through ${BF_CANARY}, in every
// position of a pipeline file where ${...} may appear, in a configuration
// that makes that position fail or log, runs `bulkflow validate` and
// `bulkflow run --report` (logging at debug level, as JSON) through
// realMain, and requires that the canary
// appears nowhere bulkflow wrote: stdout, stderr, the report, the
// dead-letter files and manifests (every file the run left in its working
// directory except the inputs and the .bulkflow state folder, whose ledger
// and locks are machine-read state, not output). Each case must also show
// "[redacted]" somewhere, so a position that stopped reaching any output
// fails the test instead of passing vacuously.
//
// Each canary holds "cnry" and a "!", which URL escaping turns into %21:
// searching for "cnry" finds the raw, query-escaped, path-escaped and
// quoted forms alike.
func TestRedactionCanaries(t *testing.T) {
	sf := salesforcetest.NewServer(nil)
	t.Cleanup(sf.Close)
	// Half of the API calls answer 503: the client logs its retries.
	flaky := salesforcetest.NewServer(&salesforcetest.Options{Seed: 3, Faults: salesforcetest.Faults{FailRate5xx: 0.5}})
	t.Cleanup(flaky.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test-key-id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_MAX_ATTEMPTS", "1") // connection refused at once, not after retries

	const (
		read    = "  - {name: r, source: {type: csv, url: in.csv}}\n"
		toCSV   = "  - {name: w, inputs: [r], sink: {type: csv, url: out.csv}}\n"
		s3      = "s3://bkt/%s?region=us-east-1&use_path_style=true"
		badRow  = "  - name: m\n    inputs: [r]\n    map: {id: id, v: 'name == \"bob\" ? int(n) : 1'}\n  - {name: w, inputs: [m], sink: {type: csv, url: out.csv}}\n"
		sfSink  = "  - {name: w, inputs: [r], sink: {type: salesforce, object: Account, api: bulk, %s}}\n"
		ccCreds = `instance_url: "` + "%s" + `", auth: {client_id: %s, client_secret: %s, login_url: "%s"}`
	)
	tok := sf.AccessToken()
	tests := []struct {
		name    string
		top     string // lines before stages:
		stages  string // the stages list
		skipRun string // why `bulkflow run` is left out, if it is
		file    string // an empty file named this plus the canary is made
	}{
		{name: "source url query", stages: "  - {name: r, source: {type: csv, url: \"in.csv?sig=${BF_CANARY}\"}}\n" + toCSV},
		{name: "source s3 unknown parameter", stages: "  - {name: r, source: {type: csv, url: \"" + fmt.Sprintf(s3, "in.csv") + "&bogus=${BF_CANARY}\"}}\n" + toCSV},
		{name: "source s3 endpoint", stages: "  - {name: r, source: {type: csv, url: \"" + fmt.Sprintf(s3, "in.csv") + "&endpoint=http://127.0.0.1:1/${BF_CANARY}\"}}\n" + toCSV},
		{name: "sink s3 unknown parameter", stages: read + "  - {name: w, inputs: [r], sink: {type: csv, url: \"" + fmt.Sprintf(s3, "out.csv") + "&bogus=${BF_CANARY}\"}}\n"},
		{name: "sink s3 endpoint", stages: read + "  - {name: w, inputs: [r], sink: {type: csv, url: \"" + fmt.Sprintf(s3, "out.csv") + "&endpoint=http://127.0.0.1:1/${BF_CANARY}\"}}\n"},
		{name: "sink local path", stages: read + "  - {name: w, inputs: [r], sink: {type: csv, url: \"in.csv/${BF_CANARY}/out.csv\"}}\n"},
		{name: "instance_url path", stages: read + fmt.Sprintf(sfSink, `instance_url: "`+sf.URL+`/${BF_CANARY}", auth: {access_token: "`+tok+`"}`)},
		{name: "login_url path", stages: read + fmt.Sprintf(sfSink, fmt.Sprintf(ccCreds, sf.URL, sf.ClientID(), sf.ClientSecret(), "http://127.0.0.1:1/${BF_CANARY}"))},
		{name: "login_url plain http", stages: read + fmt.Sprintf(sfSink, fmt.Sprintf(ccCreds, sf.URL, sf.ClientID(), sf.ClientSecret(), "http://login.example.com/${BF_CANARY}"))},
		{name: "object, pre-flight and job", stages: read + "  - {name: w, inputs: [r], sink: {type: salesforce, object: \"${BF_CANARY}\", instance_url: \"emulator:\"}}\n"},
		{name: "object, retry logs", stages: read + "  - {name: w, inputs: [r], sink: {type: salesforce, object: \"${BF_CANARY}\", instance_url: \"" + flaky.URL + "\", auth: {access_token: \"" + flaky.AccessToken() + "\"}}}\n"},
		{name: "external_id_field, pre-flight", stages: read + "  - {name: w, inputs: [r], sink: {type: salesforce, object: Account, operation: upsert, external_id_field: \"${BF_CANARY}\", instance_url: \"emulator:\"}}\n"},
		{name: "map field name, pre-flight", stages: read + "  - {name: m, inputs: [r], map: {\"${BF_CANARY}\": name}}\n  - {name: w, inputs: [m], sink: {type: salesforce, object: Account, instance_url: \"emulator:\"}}\n",
			skipRun: "the run would dead-letter the rows under their header, which holds the field name: the user's data columns are not masked"},
		{name: "map expression, compile error", stages: read + "  - {name: m, inputs: [r], map: {v: 'name + \"${BF_CANARY}\" +'}}\n  - {name: w, inputs: [m], sink: {type: csv, url: out.csv}}\n"},
		{name: "map expression, dead letter", stages: read + "  - {name: m, inputs: [r], map: {id: id, v: 'name == \"bob\" ? int(\"${BF_CANARY}\") : 1'}}\n  - {name: w, inputs: [m], sink: {type: csv, url: out.csv}}\n"},
		{name: "filter expression, compile error", stages: read + "  - {name: f, inputs: [r], filter: 'name == \"${BF_CANARY}\" &&'}\n  - {name: w, inputs: [f], sink: {type: csv, url: out.csv}}\n"},
		{name: "filter expression, dead letter", stages: read + "  - {name: f, inputs: [r], filter: 'name == \"bob\" ? int(\"${BF_CANARY}\") > 0 : true'}\n  - {name: w, inputs: [f], sink: {type: csv, url: out.csv}}\n"},
		{name: "lookup url", top: "lookups: {t: {url: \"lk-${BF_CANARY}.csv\", key: id, value: name}}\n",
			stages: read + "  - {name: m, inputs: [r], map: {x: 'lookup(\"t\", id)'}}\n  - {name: w, inputs: [m], sink: {type: csv, url: out.csv}}\n"},
		{name: "lookup key column", top: "lookups: {t: {url: lk.csv, key: \"${BF_CANARY}\", value: name}}\n",
			stages: read + "  - {name: m, inputs: [r], map: {x: 'lookup(\"t\", id)'}}\n  - {name: w, inputs: [m], sink: {type: csv, url: out.csv}}\n"},
		{name: "dead_letter local", top: "dead_letter: \"dl-${BF_CANARY}/\"\n", stages: read + badRow},
		{name: "dead_letter s3 parameter", top: "dead_letter: \"" + fmt.Sprintf(s3, "dl/") + "&bogus=${BF_CANARY}\"\n", stages: read + badRow},
		{name: "state s3 parameter", top: "state: \"" + fmt.Sprintf(s3, "st/") + "&bogus=${BF_CANARY}\"\n",
			stages: read + "  - {name: w, inputs: [r], sink: {type: csv, url: out.csv}, sync: {key: id, mode: changed}}\n"},
		{name: "state local", top: "state: \"st-${BF_CANARY}/x\"\n", file: "st-", // a file where the state folder should be
			stages: read + "  - {name: w, inputs: [r], sink: {type: csv, url: out.csv}, sync: {key: id, mode: changed}}\n"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			canary := fmt.Sprintf("Zq%02dcnry!x7", i)
			t.Setenv("BF_CANARY", canary)
			t.Chdir(t.TempDir())
			inputs := map[string]string{
				"in.csv": "id,name,n\n1,alice,5\n2,bob,x\n",
				"lk.csv": "id,name\n1,one\n",
				"p.yaml": "name: canary\n" + tc.top + "stages:\n" + tc.stages,
			}
			if tc.file != "" {
				inputs[tc.file+canary] = ""
			}
			for name, data := range inputs {
				if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			outputs := map[string]string{}
			{
				var stdout, stderr bytes.Buffer
				code := realMain([]string{"validate", "p.yaml"}, &stdout, &stderr)
				outputs["validate stdout"], outputs["validate stderr"] = stdout.String(), stderr.String()
				t.Logf("validate: exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			if tc.skipRun == "" {
				var stdout, stderr bytes.Buffer
				// --offline: validate above covers the pre-flight's output;
				// run's own (jobs, retries, reports) is what this adds.
				// Debug-level JSON logs: the most bulkflow ever logs, in
				// the encoding that escapes differently from text.
				code := realMain([]string{"run", "p.yaml", "--report", "report.json", "--progress", "none", "--offline",
					"--log-level", "debug", "--log-format", "json"}, &stdout, &stderr)
				outputs["run stdout"], outputs["run stderr"] = stdout.String(), stderr.String()
				t.Logf("run: exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					if d.Name() == ".bulkflow" {
						return filepath.SkipDir
					}
					return nil
				}
				if _, ok := inputs[p]; ok {
					return nil
				}
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				outputs["file "+filepath.ToSlash(p)] = string(b)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			masked := false
			for where, text := range outputs {
				if i := strings.Index(strings.ToLower(text), "cnry"); i >= 0 {
					t.Errorf("%s holds the canary %q: ...%s...", where, canary, text[max(i-80, 0):min(i+40, len(text))])
				}
				masked = masked || strings.Contains(text, redact.Mask)
			}
			if !masked {
				t.Errorf("no output shows %s: this position no longer reaches any output, so the case tests nothing; outputs: %v", redact.Mask, keys(outputs))
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
