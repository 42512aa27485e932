package salesforcesource_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	_ "github.com/bulkflow/bulkflow/sinks/salesforcesink"
	_ "github.com/bulkflow/bulkflow/sources/csvsource"
	"github.com/bulkflow/bulkflow/sources/salesforcesource"
	_ "github.com/bulkflow/bulkflow/transforms/filter"
	_ "github.com/bulkflow/bulkflow/transforms/mapping"
)

// keyedPipelineYAML updates or deletes Accounts named by their external id
// in a CSV file: the lookup resolves the Ids with a SOQL query through the
// salesforce sink's connection. %[1]s operation, %[2]s lookup options,
// %[3]s map, %[4]s instance URL, %[5]s token.
const keyedPipelineYAML = `name: sf-keyed-%[1]s
lookups:
  account_ids:
    query: SELECT Id, External_Id__c FROM Account WHERE External_Id__c != null
    key: External_Id__c
    value: Id
%[2]s
stages:
  - name: read
    source: {type: csv, url: changes.csv}
  - name: map
    inputs: [read]
    map:
%[3]s
  - name: write
    inputs: [map]
    sink:
      type: salesforce
      instance_url: %[4]s
      auth: {access_token: %[5]q}
      object: Account
      operation: %[1]s
      poll_initial: 5ms
      poll_max: 20ms
`

// runKeyed writes changes.csv, runs a keyed pipeline and returns its
// report and dead letters, or the error of loading or preparing it.
func runKeyed(t *testing.T, srv *salesforcetest.Server, tmpl, op, lookupExtra, mapping, changes string) (*pipeline.Report, *pipelinetest.Collector, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "changes.csv"), []byte(changes), 0o644); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(tmpl, op, lookupExtra, mapping, srv.URL, srv.AccessToken())
	g, err := config.Load(filepath.Join(dir, "keyed.yaml"), []byte(y), pipeline.DefaultRegistry(), nil)
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	env := &pipeline.Env{RunID: "r1", Pipeline: g.Name, BaseDir: dir, Lookups: g.Lookups}
	plan, err := pipeline.Prepare(ctx, pipeline.DefaultRegistry(), g, env)
	if err != nil {
		return nil, nil, err
	}
	c := pipelinetest.NewCollector()
	rep, err := plan.Run(ctx, &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener()})
	if err != nil {
		t.Fatalf("run: %v (%v)", err, rep.Errors)
	}
	return rep, c, nil
}

// keyedAccounts stores 40 Accounts with external ids EXT-000..EXT-039 and
// two without, and returns the Ids by external id.
func keyedAccounts(t *testing.T, srv *salesforcetest.Server) map[string]string {
	ids := map[string]string{}
	for i := range 40 {
		ext := fmt.Sprintf("EXT-%03d", i)
		ids[ext] = mustAdd(t, srv, "Account", map[string]string{"Name": "Keyed " + ext, "External_Id__c": ext, "Rating": "Cold"})
	}
	mustAdd(t, srv, "Account", map[string]string{"Name": "No key 1"})
	mustAdd(t, srv, "Account", map[string]string{"Name": "No key 2"})
	return ids
}

// queryJobs counts the emulator's query jobs.
func queryJobs(srv *salesforcetest.Server) int {
	n := 0
	for _, j := range srv.Jobs() {
		if j.Query {
			n++
		}
	}
	return n
}

// TestLookupUpdateByKey updates Accounts named by external id: the
// lookup's query job (one, through the sink's connection) resolves the
// Ids; a key Salesforce does not hold leaves Id null and the row is
// dead-lettered, the others are updated and nothing else changes.
func TestLookupUpdateByKey(t *testing.T) {
	srv := startEmulatorOpts(t, &salesforcetest.Options{})
	ids := keyedAccounts(t, srv)
	rep, c, err := runKeyed(t, srv, keyedPipelineYAML, "update", "", `      Id: lookup("account_ids", ext_id)
      Rating: rating
      Description: '"rated " + ext_id'`,
		"ext_id,rating\nEXT-003,Hot\nEXT-017,Warm\nEXT-039,Hot\nEXT-404,Hot\n")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Loaded != 3 || rep.Counts.DeadLettered != 1 || len(c.DeadLetters) != 1 {
		t.Fatalf("counts %+v, dead letters %v", rep.Counts, c.DeadLetters)
	}
	if n := queryJobs(srv); n != 1 {
		t.Errorf("%d query jobs, want 1 (the lookup's)", n)
	}
	want := map[string]string{ids["EXT-003"]: "Hot", ids["EXT-017"]: "Warm", ids["EXT-039"]: "Hot"}
	changed := 0
	for _, r := range srv.Records("Account") {
		if w, ok := want[r["Id"]]; ok {
			changed++
			if r["Rating"] != w || r["Description"] != "rated "+r["External_Id__c"] {
				t.Errorf("%s (%s): Rating %q Description %q, want %q and \"rated %s\"", r["Id"], r["External_Id__c"], r["Rating"], r["Description"], w, r["External_Id__c"])
			}
		} else if r["Description"] != "" || r["External_Id__c"] != "" && r["Rating"] != "Cold" {
			t.Errorf("%s (%s) changed: %v", r["Id"], r["External_Id__c"], r)
		}
	}
	if changed != 3 {
		t.Errorf("%d of the 3 updated records found", changed)
	}
}

// TestLookupDeleteByKey deletes Accounts named by external id, the Ids
// coming from a lookup with its own salesforce: connection block.
func TestLookupDeleteByKey(t *testing.T) {
	srv := startEmulatorOpts(t, &salesforcetest.Options{})
	ids := keyedAccounts(t, srv)
	conn := fmt.Sprintf("    salesforce: {instance_url: %s, auth: {access_token: %q}}", srv.URL, srv.AccessToken())
	rep, c, err := runKeyed(t, srv, keyedPipelineYAML, "delete", conn, `      Id: lookup("account_ids", ext_id)`,
		"ext_id\nEXT-000\nEXT-020\n")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Loaded != 2 || rep.Counts.DeadLettered != 0 {
		t.Fatalf("counts %+v, dead letters %v", rep.Counts, c.DeadLetters)
	}
	deleted := map[string]bool{}
	for _, r := range srv.DeletedRecords("Account") {
		deleted[r["Id"]] = true
	}
	if len(deleted) != 2 || !deleted[ids["EXT-000"]] || !deleted[ids["EXT-020"]] {
		t.Errorf("deleted %v, want %s and %s", deleted, ids["EXT-000"], ids["EXT-020"])
	}
	if n := len(srv.Records("Account")); n != 40 {
		t.Errorf("%d live Accounts, want 40", n)
	}
}

// TestLookupOncePerRun: a filter and a map stage both use the table; its
// query runs once, and the filter drops the key Salesforce does not hold.
func TestLookupOncePerRun(t *testing.T) {
	srv := startEmulatorOpts(t, &salesforcetest.Options{})
	ids := keyedAccounts(t, srv)
	tmpl := strings.Replace(keyedPipelineYAML, "  - name: map\n    inputs: [read]\n",
		"  - name: known\n    inputs: [read]\n    filter: 'lookup(\"account_ids\", ext_id) != null'\n  - name: map\n    inputs: [known]\n", 1)
	if tmpl == keyedPipelineYAML {
		t.Fatal("no map stage to put the filter before")
	}
	rep, c, err := runKeyed(t, srv, tmpl, "update", "", `      Id: lookup("account_ids", ext_id)
      Rating: rating`, "ext_id,rating\nEXT-005,Hot\nEXT-404,Hot\n")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts.Loaded != 1 || rep.Counts.Filtered != 1 || rep.Counts.DeadLettered != 0 {
		t.Fatalf("counts %+v, dead letters %v", rep.Counts, c.DeadLetters)
	}
	if n := queryJobs(srv); n != 1 {
		t.Errorf("%d query jobs for a table two stages use, want 1", n)
	}
	for _, r := range srv.Records("Account") {
		if (r["Id"] == ids["EXT-005"]) != (r["Rating"] == "Hot") {
			t.Errorf("%s (%s): Rating %q", r["Id"], r["External_Id__c"], r["Rating"])
		}
	}
}

// TestLookupRefusals: a query table over its budget, a key the query does
// not select, a duplicated key and a bad connection are refused when the
// pipeline is prepared, naming the table and what to do.
func TestLookupRefusals(t *testing.T) {
	srv := startEmulatorOpts(t, &salesforcetest.Options{})
	keyedAccounts(t, srv)
	mustAdd(t, srv, "Account", map[string]string{"Name": "Keyed EXT-001", "AccountNumber": "dup"})
	mustAdd(t, srv, "Account", map[string]string{"Name": "Other", "AccountNumber": "dup"})
	const mapping = `      Id: lookup("account_ids", ext_id)`
	const query = "SELECT Id, External_Id__c FROM Account WHERE External_Id__c != null"
	tests := []struct{ name, find, replace, want string }{
		{"budget", "    value: Id\n", "    value: Id\n    max_entries: 39\n",
			`lookup table "account_ids": the query returned 40 records, more than the table's budget of 39 (max_entries)`},
		{"key not selected", "key: External_Id__c", "key: External_Id_c",
			`the query does not select the key field "External_Id_c" (it selects Id, External_Id__c); did you mean "External_Id__c"?`},
		{"duplicate key", query + "\n    key: External_Id__c", "SELECT Id, AccountNumber FROM Account WHERE AccountNumber != null\n    key: AccountNumber",
			`key AccountNumber "dup" appears twice with different values Id`},
		{"connection key", "    value: Id\n", "    value: Id\n    salesforce: {instance_url: x, auth: {password: hunter2}}\n",
			`salesforce: unknown auth key "password" (known: access_token, audience, client_id`},
		{"emulator", "    value: Id\n", "    value: Id\n    salesforce: {instance_url: \"emulator:\"}\n", `starts an emulator of its own`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(keyedPipelineYAML, tc.find, tc.replace, 1)
			if y == keyedPipelineYAML {
				t.Fatalf("%q is not in the pipeline", tc.find)
			}
			g, err := config.Load("keyed.yaml", []byte(fmt.Sprintf(y, "update", "", mapping, srv.URL, srv.AccessToken())), pipeline.DefaultRegistry(), nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "changes.csv"), []byte("ext_id\nEXT-001\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = pipeline.Prepare(context.Background(), pipeline.DefaultRegistry(), g, &pipeline.Env{BaseDir: dir, Lookups: g.Lookups})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), srv.AccessToken()) {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

// TestLookupMemory measures the heap a query table of 100,000 entries
// (18-character Ids keyed by 21-character external ids) takes, the figure
// behind DefaultLookupMaxEntries' stated budget.
func TestLookupMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 100,000 records")
	}
	srv := startEmulatorOpts(t, &salesforcetest.Options{})
	const n = 100_000
	for i := range n {
		if _, err := srv.AddRecord("Account", map[string]string{"Name": "a", "External_Id__c": fmt.Sprintf("EXTERNAL-KEY-%08d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	spec := pipeline.LookupSpec{Query: "SELECT Id, External_Id__c FROM Account", Key: "External_Id__c", Value: "Id",
		Salesforce: map[string]any{"instance_url": srv.URL, "auth": map[string]any{"access_token": srv.AccessToken()}}}
	// Two GCs empty sync.Pools too (the emulator pools its page buffers).
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	table, err := salesforcesource.LoadLookup(context.Background(), nil, "ids", spec)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(table) != n {
		t.Fatalf("%d entries, want %d", len(table), n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d entries: %.0f bytes each", n, per)
	if per > 200 {
		t.Errorf("%.0f bytes an entry: more than the 170 (plus slack) the docs state", per)
	}
	runtime.KeepAlive(table)
}
