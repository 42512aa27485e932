package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestInstanceURLOverride points the shipped sf-upsert.yaml and
// sf-contacts.yaml (instance_url "emulator:", which starts empty on every
// run) at one separately started emulator with --instance-url and an
// access token with --set: the accounts loaded by the first run are the
// parents the second run's contacts link to, so the contacts load.
func TestInstanceURLOverride(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	root := repoRoot(t)
	work := t.TempDir()
	copyTree(t, filepath.Join(root, "pipelines"), filepath.Join(work, "pipelines"))
	t.Chdir(work)
	run := func(file string, want int) map[string]any {
		t.Helper()
		var stdout, stderr bytes.Buffer
		report := filepath.Join(work, "out", filepath.Base(file)+".json")
		code := realMain([]string{"run", file, "--instance-url", srv.URL, "--set", "load.auth.access_token=" + srv.AccessToken(),
			"--progress", "none", "--report", report}, &stdout, &stderr)
		if code != want {
			t.Fatalf("run %s: exit %d, want %d\n%s", file, code, want, stderr.String())
		}
		if strings.Contains(stderr.String(), srv.AccessToken()) {
			t.Errorf("the access token given with --set is in the output:\n%s", stderr.String())
		}
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		var rep map[string]any
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// Accounts: some rows are broken on purpose (exit 3).
	run("pipelines/sf-upsert.yaml", exitPartial)
	accounts := srv.Records("Account")
	if len(accounts) < 200 {
		t.Fatalf("%d accounts in the emulator after sf-upsert, want the export's ~260", len(accounts))
	}
	rep := run("pipelines/sf-contacts.yaml", exitPartial)
	contacts := srv.Records("Contact")
	loaded := rep["counts"].(map[string]any)["loaded"].(float64)
	if len(contacts) < 30 || float64(len(contacts)) != loaded {
		t.Fatalf("%d contacts in the emulator, report says %v loaded; want the same, 30 or more (40 minus those rejected on purpose)", len(contacts), loaded)
	}
	ids := map[string]string{} // account Id -> External_Id__c
	for _, a := range accounts {
		ids[a["Id"]] = a["External_Id__c"]
	}
	for _, c := range contacts {
		if ids[c["AccountId"]] == "" {
			t.Errorf("contact %s is linked to %q, not a loaded account", c["External_Id__c"], c["AccountId"])
		}
	}
}

// TestOverrideFlags: --instance-url refuses what is not an http(s) URL,
// --set refuses what is not STAGE.KEY=VALUE, and validate applies both
// (a misspelled key gets a did-you-mean, the file is not named for it).
func TestOverrideFlags(t *testing.T) {
	t.Chdir(repoRoot(t))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"validate", "pipelines/quickstart.yaml", "--instance-url", "acme.my.salesforce.com"}, exitUsage, `is not an http(s) URL`},
		{[]string{"validate", "pipelines/quickstart.yaml", "--set", "load"}, exitUsage, `--set "load": want STAGE.KEY=VALUE`},
		{[]string{"validate", "--offline", "pipelines/quickstart.yaml", "--set", "load.concurency=2"}, exitUsage, `--set load.concurency: unknown option "concurency" for sink "salesforce" (did you mean "concurrency"?)`},
		{[]string{"validate", "--offline", "pipelines/quickstart.yaml", "--set", "load.concurrency=two"}, exitUsage, `--set load.concurrency: sink "salesforce": concurrency: want a whole number, got "two"`},
		{[]string{"validate", "--offline", "pipelines/accounts-to-csv.yaml", "--instance-url", "https://acme.my.salesforce.com"}, exitUsage, `--instance-url: the pipeline has no salesforce sink`},
		{[]string{"validate", "--offline", "pipelines/quickstart.yaml", "--set", "load.concurrency=3", "--set", "map.Name=upper(company)"}, exitOK, `pipeline "quickstart" is valid`},
		{[]string{"validate", "--offline", "pipelines/quickstart.yaml", "--set", "map.Name=upper(compnay)"}, exitUsage, `--set map.Name: map field "Name": unknown name "compnay" (did you mean "company"?)`},
		{[]string{"plan", "pipelines/quickstart.yaml", "--set", "laod.concurrency=2"}, exitUsage, `--set laod.concurrency: the pipeline has no stage "laod" (did you mean "load"?)`},
	} {
		var stdout, stderr bytes.Buffer
		code := realMain(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.want, stdout.String(), stderr.String())
		}
	}
}
