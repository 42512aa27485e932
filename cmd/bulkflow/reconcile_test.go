package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// seedPipeline syncs data/accounts.csv into Account on srv by
// External_Id__c, seeded from Salesforce. The source spells values
// differently from how Salesforce stores them: decimals with trailing
// zeros, datetimes with an offset and microseconds, picklists in lower
// case, booleans in upper case.
func seedPipeline(srv *salesforcetest.Server) string {
	return fmt.Sprintf(`name: accounts-seeded
dead_letter: out/dead-letter/
state: state/
stages:
  - name: read
    source:
      type: csv
      url: data/accounts.csv
      columns: {revenue: decimal, active: bool, stamp: timestamp}
  - name: map
    inputs: [read]
    map:
      External_Id__c: id
      Name: name
      AnnualRevenue: revenue
      Active__c: active
      Last_Sync__c: stamp
      Rating: rating
  - name: load
    inputs: [map]
    sink:
      type: salesforce
      object: Account
      operation: upsert
      external_id_field: External_Id__c
      api: bulk
      instance_url: %q
      auth: {access_token: %q}
      poll_initial: 5ms
      poll_max: 50ms
      ledger: "off"
    sync: {mode: changed, key: External_Id__c, seed: salesforce, log: out/sync-log/}
`, srv.URL, srv.AccessToken())
}

const seedRecords = 10000

// seedKey is the key of record i.
func seedKey(i int) string { return fmt.Sprintf("K%05d", i) }

// seedSourceCSV returns the source: record i as the warehouse spells it;
// the records for which differs is true carry another name than
// Salesforce holds.
func seedSourceCSV(differs func(i int) bool) string {
	var b strings.Builder
	b.WriteString("id,name,revenue,active,stamp,rating\n")
	for i := range seedRecords {
		name := fmt.Sprintf("Account %d", i)
		if differs(i) {
			name = fmt.Sprintf("Renamed %d", i)
		}
		active := "TRUE"
		if i%2 == 1 {
			active = "False"
		}
		fmt.Fprintf(&b, "%s,%s,%d.50,%s,2024-03-01T10:%02d:00.123456+01:00,hot\n", seedKey(i), name, 1000+i, active, i%60)
	}
	return b.String()
}

// seedSalesforceRecord returns record i as Salesforce stores the source's
// values.
func seedSalesforceRecord(i int) map[string]string {
	return map[string]string{
		"External_Id__c": seedKey(i),
		"Name":           fmt.Sprintf("Account %d", i),
		"AnnualRevenue":  fmt.Sprintf("%d.5", 1000+i),
		"Active__c":      fmt.Sprint(i%2 == 0),
		"Last_Sync__c":   fmt.Sprintf("2024-03-01T09:%02d:00.123Z", i%60),
		"Rating":         "Hot",
	}
}

// upsertedKeys returns the external ids uploaded by the jobs after the
// first after, and the number of jobs.
func upsertedKeys(t *testing.T, srv *salesforcetest.Server, after int) ([]string, int) {
	t.Helper()
	up, del, jobs := syncSent(t, srv, after)
	if del != 0 {
		t.Fatalf("%d records deleted", del)
	}
	return up, jobs
}

// runArgs runs `bulkflow run` with args and returns the exit code, the
// report and stderr.
func runArgs(t *testing.T, args ...string) (int, pipeline.Report, string) {
	t.Helper()
	os.Remove("out/run.json")
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), append(args, "--progress", "none", "--report", "out/run.json"), &stdout, &stderr)
	var rep pipeline.Report
	b, err := os.ReadFile("out/run.json")
	if err != nil {
		t.Fatalf("run %v: exit %d, no report: %v\n%s", args, code, err, stderr.String())
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return code, rep, stderr.String()
}

// sfCall sends one authenticated REST request to srv (what a user editing
// records in Salesforce does) and fails the test unless it succeeds.
func sfCall(t *testing.T, srv *salesforcetest.Server, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+"/services/data/v62.0"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.AccessToken())
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"success":true`) || strings.Contains(string(out), `"success":false`) {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, out)
	}
}

// accountsByKey returns the emulator's Account records by External_Id__c.
func accountsByKey(srv *salesforcetest.Server) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, r := range srv.Records("Account") {
		m[r["External_Id__c"]] = r
	}
	return m
}

// TestSyncSeedAndReconcile is issue 18's test of seeded and reconciling
// syncs over real HTTP: an emulator preloaded with 10,000 records, 100 of
// which differ from the source.
func TestSyncSeedAndReconcile(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	for i := range seedRecords {
		if _, err := srv.AddRecord("Account", seedSalesforceRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	differs := func(i int) bool { return i%100 == 37 }
	var wantSent []string
	for i := range seedRecords {
		if differs(i) {
			wantSent = append(wantSent, seedKey(i))
		}
	}
	writeFiles(t, map[string]string{"p.yaml": seedPipeline(srv), "data/accounts.csv": seedSourceCSV(differs)})

	// Run 1, seeded: exactly the 100 differing rows are sent; every other
	// value matches once normalised (12.50 = 12.5, +01:00 microseconds =
	// UTC milliseconds, hot = Hot, TRUE = true).
	code, rep, out := runArgs(t, "p.yaml")
	up, jobs := upsertedKeys(t, srv, 0)
	if code != exitOK || !slices.Equal(up, wantSent) {
		t.Fatalf("seeded run: exit %d, sent %d rows (%v…), want the %d differing\n%s", code, len(up), up[:min(len(up), 5)], len(wantSent), out)
	}
	s := syncSummary(t, rep)
	if s.Seed == nil || s.Seed.Records != seedRecords || s.Seed.Keys != seedRecords || s.Changed != 100 || s.Unchanged != seedRecords-100 || s.New != 0 || !s.Committed || s.ManifestAfter != seedRecords {
		t.Fatalf("seeded run summary %+v seed %+v", s, s.Seed)
	}
	recs := accountsByKey(srv)
	if r := recs[seedKey(37)]; r["Name"] != "Renamed 37" || r["AnnualRevenue"] != "1037.5" || r["Last_Sync__c"] != "2024-03-01T09:37:00.123Z" {
		t.Fatalf("record 37 after the seeded run: %v", r)
	}

	// Run 2 sends nothing; and a re-seed from scratch (manifest deleted)
	// sends nothing either: the 100 rows Salesforce stored in its own
	// spelling (1037.5, UTC milliseconds) match their source rows.
	manifest := "state/accounts-seeded/sync/load.manifest"
	for _, reseed := range []bool{false, true} {
		if reseed {
			if err := os.Remove(manifest); err != nil {
				t.Fatal(err)
			}
		}
		code, rep, out = runArgs(t, "p.yaml")
		up, jobs = upsertedKeys(t, srv, jobs)
		if s := syncSummary(t, rep); code != exitOK || len(up) != 0 || s.Unchanged != seedRecords || (s.Seed != nil) != reseed {
			t.Fatalf("run after the seeded run (reseed %v): exit %d, sent %v, summary %+v\n%s", reseed, code, up, s, out)
		}
	}

	// Someone edits 5 records in Salesforce and deletes one.
	ids := map[string]string{}
	for k, r := range accountsByKey(srv) {
		ids[k] = r["Id"]
	}
	edited := []string{seedKey(5), seedKey(1234), seedKey(4321), seedKey(8000), seedKey(9999)}
	var patch []string
	for i, k := range edited {
		field := []string{`"Name":"Edited in Salesforce"`, `"AnnualRevenue":1.25`, `"Rating":"Cold"`, `"Active__c":false`, `"Last_Sync__c":"2025-01-01T00:00:00.000Z"`}[i]
		patch = append(patch, fmt.Sprintf(`{"attributes":{"type":"Account"},"id":%q,%s}`, ids[k], field))
	}
	sfCall(t, srv, http.MethodPatch, "/composite/sobjects", `{"allOrNone":true,"records":[`+strings.Join(patch, ",")+`]}`)
	deleted := seedKey(4242)
	sfCall(t, srv, http.MethodDelete, "/composite/sobjects?ids="+ids[deleted], "")
	before, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}

	// --reconcile reports exactly those records and sends nothing (exit 3).
	code, rep, out = runArgs(t, "p.yaml", "--reconcile")
	up, jobs = upsertedKeys(t, srv, jobs)
	s = syncSummary(t, rep)
	r := s.Reconcile
	wantDrift := slices.Sorted(slices.Values(append(slices.Clone(edited), deleted)))
	if code != exitPartial || len(up) != 0 || r == nil || r.Changed != 5 || r.Missing != 1 || r.InSync != seedRecords-6 || r.Read != seedRecords-1 || !slices.Equal(r.Examples, wantDrift) {
		t.Fatalf("--reconcile: exit %d, sent %v, reconcile %+v\n%s", code, up, r, out)
	}
	if !strings.Contains(out, "5 changed in Salesforce, 1 missing in Salesforce") || !strings.Contains(out, "--reconcile=fix") {
		t.Errorf("--reconcile output:\n%s", out)
	}
	if after, _ := os.ReadFile(manifest); !bytes.Equal(before, after) {
		t.Error("--reconcile changed the manifest")
	}
	logged := reconcileLog(t, s.Log)
	if len(logged) != 6 || logged[deleted] != "missing_in_salesforce" || logged[edited[0]] != "changed_in_salesforce" {
		t.Errorf("sync log of --reconcile: %v", logged)
	}

	// --reconcile=fix sends exactly the drifted rows and restores them.
	code, rep, out = runArgs(t, "p.yaml", "--reconcile=fix")
	up, jobs = upsertedKeys(t, srv, jobs)
	if s := syncSummary(t, rep); code != exitOK || !slices.Equal(up, wantDrift) || s.Reconcile == nil || !s.Reconcile.Fixed || s.Changed != 5 || s.New != 1 {
		t.Fatalf("--reconcile=fix: exit %d, sent %v, summary %+v\n%s", code, up, s, out)
	}
	recs = accountsByKey(srv)
	for _, k := range wantDrift {
		var i int
		fmt.Sscanf(k, "K%d", &i)
		want := seedSalesforceRecord(i)
		for f, v := range want {
			// An unrestricted picklist keeps the case it was sent in
			// ("hot"); the sync compares picklists without case.
			if got := recs[k][f]; got != v && !(f == "Rating" && strings.EqualFold(got, v)) {
				t.Errorf("after the fix, %s.%s = %q, want %q", k, f, recs[k][f], v)
			}
		}
	}
	// A further run sends nothing, and --reconcile finds no drift.
	code, _, out = runArgs(t, "p.yaml")
	if up, _ = upsertedKeys(t, srv, jobs); code != exitOK || len(up) != 0 {
		t.Fatalf("run after the fix: exit %d, sent %v\n%s", code, up, out)
	}
	code, rep, out = runArgs(t, "p.yaml", "--reconcile")
	if r := syncSummary(t, rep).Reconcile; code != exitOK || r == nil || r.Drifted() != 0 || r.InSync != seedRecords || !strings.Contains(out, "no drift") {
		t.Fatalf("--reconcile after the fix: exit %d, %+v\n%s", code, r, out)
	}

	// A change Salesforce refuses leaves its key unsynced: reconcile
	// counts it as pending, not as drift.
	src := strings.Replace(seedSourceCSV(differs), seedKey(10)+",Account 10,", seedKey(10)+","+strings.Repeat("x", 300)+",", 1)
	writeFiles(t, map[string]string{"data/accounts.csv": src})
	if code, rep, out = runArgs(t, "p.yaml"); code != exitPartial || rep.Counts.DeadLettered != 1 {
		t.Fatalf("run with a refused row: exit %d, counts %+v\n%s", code, rep.Counts, out)
	}
	code, rep, out = runArgs(t, "p.yaml", "--reconcile")
	if r := syncSummary(t, rep).Reconcile; code != exitOK || r == nil || r.Drifted() != 0 || r.Pending != 1 || r.InSync != seedRecords-1 {
		t.Fatalf("--reconcile with a pending key: exit %d, %+v\n%s", code, r, out)
	}
}

// TestPlanSeededSync: `bulkflow plan` of a seeded sync's first run plans
// only the rows whose values differ from the records, and commits nothing.
func TestPlanSeededSync(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	const n = 50
	var b strings.Builder
	b.WriteString("id,name,revenue,active,stamp,rating\n")
	for i := range n {
		if _, err := srv.AddRecord("Account", seedSalesforceRecord(i)); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("Account %d", i)
		if i%10 == 3 {
			name = "Renamed"
		}
		fmt.Fprintf(&b, "%s,%s,%d.50,%v,2024-03-01T10:%02d:00.123456+01:00,hot\n", seedKey(i), name, 1000+i, i%2 == 0, i%60)
	}
	writeFiles(t, map[string]string{"p.yaml": seedPipeline(srv), "data/accounts.csv": b.String()})
	var stdout, stderr bytes.Buffer
	if code := runPlan(context.Background(), []string{"p.yaml", "--out", "planned", "--report", "plan.json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("plan exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	pr := readPlanReport(t, "plan.json")
	rows := 0
	for _, j := range pr.Stages[0].Jobs {
		rows += j.Rows
	}
	if rows != n/10 {
		t.Fatalf("plan of the seeded first run: %d rows planned, want %d\n%s", rows, n/10, stdout.String())
	}
	if _, err := os.Stat("state/accounts-seeded/sync/load.manifest"); !os.IsNotExist(err) {
		t.Fatalf("plan wrote a manifest: %v", err)
	}
	// Nor does it record a sync run's start, which would make replay
	// refuse older dead letters as superseded.
	if _, err := os.Stat("state/accounts-seeded/docs/sync-start-load.json"); !os.IsNotExist(err) {
		t.Fatalf("plan recorded a sync start: %v", err)
	}
	if code := runRun(context.Background(), []string{"p.yaml", "--progress", "none"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("run exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat("state/accounts-seeded/docs/sync-start-load.json"); err != nil {
		t.Fatalf("a run recorded no sync start (the check above cannot fail): %v", err)
	}
}

// TestSeedMirrorDeletesNothing: a seeded mirror (delete_missing) never
// deletes records whose keys its first run did not see — bulkflow did not
// load them — and later runs delete only keys it synced. Records without
// a key are left out of the seed.
func TestSeedMirrorDeletesNothing(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	for i := range 20 {
		if _, err := srv.AddRecord("Account", seedSalesforceRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 { // made by someone else, without a key
		if _, err := srv.AddRecord("Account", map[string]string{"Name": fmt.Sprintf("Keyless %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	source := func(keys ...int) string {
		var b strings.Builder
		b.WriteString("id,name,revenue,active,stamp,rating\n")
		for _, i := range keys {
			fmt.Fprintf(&b, "%s,Account %d,%d.50,%v,2024-03-01T10:%02d:00.123456+01:00,hot\n", seedKey(i), i, 1000+i, i%2 == 0, i%60)
		}
		return b.String()
	}
	var keys []int
	for i := range 15 {
		keys = append(keys, i)
	}
	keys = append(keys, 100, 101) // new
	p := strings.Replace(seedPipeline(srv), "seed: salesforce,", `seed: salesforce, delete_missing: true, max_deletes: "1",`, 1)
	writeFiles(t, map[string]string{"p.yaml": p, "data/accounts.csv": source(keys...)})
	code, rep, out := runArgs(t, "p.yaml")
	up, del, jobs := syncSent(t, srv, 0)
	s := syncSummary(t, rep)
	if code != exitOK || strings.Join(up, ",") != seedKey(100)+","+seedKey(101) || del != 0 || s.Deleted != 0 || s.ManifestAfter != 17 ||
		s.Seed == nil || s.Seed.Records != 23 || s.Seed.NoKey != 3 || s.Seed.Keys != 20 {
		t.Fatalf("seeded mirror run: exit %d, sent %v, deleted %d, summary %+v seed %+v\n%s", code, up, del, s, s.Seed, out)
	}
	if n := len(srv.Records("Account")); n != 25 {
		t.Fatalf("%d records after the seeded run, want 25", n)
	}
	// The next run deletes nothing either; dropping one synced key deletes
	// exactly that record.
	if code, _, out = runArgs(t, "p.yaml"); code != exitOK {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if up, del, jobs = syncSent(t, srv, jobs); len(up) != 0 || del != 0 {
		t.Fatalf("second run sent %v and deleted %d", up, del)
	}
	writeFiles(t, map[string]string{"data/accounts.csv": source(keys[1:]...)})
	if code, _, out = runArgs(t, "p.yaml"); code != exitOK {
		t.Fatalf("third run: exit %d\n%s", code, out)
	}
	if up, del, _ = syncSent(t, srv, jobs); len(up) != 0 || del != 1 || len(srv.DeletedRecords("Account")) != 1 || srv.DeletedRecords("Account")[0]["External_Id__c"] != seedKey(0) {
		t.Fatalf("third run sent %v and deleted %d: %v", up, del, srv.DeletedRecords("Account"))
	}
}

// reconcileLog reads a sync log and returns the outcome of each
// reconcile record by key.
func reconcileLog(t *testing.T, loc string) map[string]string {
	t.Helper()
	f, err := os.Open(strings.TrimPrefix(loc, "file://"))
	if err != nil {
		t.Fatalf("sync log %q: %v", loc, err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(nil), pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatalf("sync log %q: %v", loc, err)
	}
	defer tbl.Release()
	col := func(name string) []string {
		idx := tbl.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("sync log has no column %s", name)
		}
		var vals []string
		for _, chunk := range tbl.Column(idx[0]).Data().Chunks() {
			for i := range chunk.Len() {
				vals = append(vals, chunk.ValueStr(i))
			}
		}
		return vals
	}
	keys, ops, outs := col("key"), col("operation"), col("outcome")
	m := map[string]string{}
	for i, k := range keys {
		if ops[i] == "reconcile" {
			m[k] = outs[i]
		}
	}
	return m
}

// TestReconcileNeedsSeed: --reconcile on a sync without seed: salesforce
// is refused (exit 2) before anything is read or sent, and a bad
// --reconcile value is a usage error.
func TestReconcileNeedsSeed(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"p.yaml": syncPipeline(srv, "50%"), "data/accounts.csv": syncCSV("A1,Ada,111")})
	if code, _ := runReport(t, "p.yaml"); code != exitOK {
		t.Fatalf("first run: exit %d", code)
	}
	_, _, jobs := syncSent(t, srv, 0)
	for _, mode := range []string{"--reconcile", "--reconcile=fix"} {
		var stdout, stderr bytes.Buffer
		code := runRun(context.Background(), []string{"p.yaml", mode, "--progress", "none"}, &stdout, &stderr)
		if _, _, n := syncSent(t, srv, jobs); code != exitUsage || n != jobs || !strings.Contains(stderr.String(), "needs seed: salesforce") {
			t.Fatalf("%s: exit %d, %d jobs after %d\n%s", mode, code, n, jobs, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runRun(context.Background(), []string{"p.yaml", "--reconcile=maybe"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--reconcile=fix") {
		t.Fatalf("--reconcile=maybe: exit %d\n%s", code, stderr.String())
	}
}
