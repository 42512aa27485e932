package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// syncPipeline is a pipeline that syncs data/accounts.csv into Account on
// srv by External_Id__c, mirroring deletes.
func syncPipeline(srv *salesforcetest.Server, maxDeletes string) string {
	return syncPipelineOf("accounts-sync", "{type: csv, url: data/accounts.csv}", `
      External_Id__c: id
      Name: name
      Phone: phone`, srv, fmt.Sprintf("delete_missing: true, max_deletes: %q, log: out/sync-log/", maxDeletes))
}

// syncPipelineOf is a pipeline name that reads source, maps it with
// mapping (YAML block lines) and upserts into Account on srv by
// External_Id__c under sync: {mode: changed} with the extra sync options.
func syncPipelineOf(name, source, mapping string, srv *salesforcetest.Server, syncOpts string) string {
	return fmt.Sprintf(`name: %s
dead_letter: out/dead-letter/
state: state/
stages:
  - name: read
    source: %s
  - name: map
    inputs: [read]
    map:%s
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
    sync: {mode: changed, key: External_Id__c, %s}
`, name, source, mapping, srv.URL, srv.AccessToken(), syncOpts)
}

// syncSent returns what the jobs created after the first `after` jobs
// uploaded: the upserted external ids and the number of deleted ids.
func syncSent(t *testing.T, srv *salesforcetest.Server, after int) (upserted []string, deleted int, jobs int) {
	t.Helper()
	all := srv.Jobs()
	slices.SortFunc(all, func(a, b salesforcetest.JobInfo) int { return a.CreatedDate.Compare(b.CreatedDate) })
	for _, j := range all[after:] {
		recs, err := csv.NewReader(bytes.NewReader(srv.UploadedCSV(j.ID))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		switch j.Operation {
		case "upsert":
			col := slices.Index(recs[0], "External_Id__c")
			for _, r := range recs[1:] {
				upserted = append(upserted, r[col])
			}
		case "delete":
			deleted += len(recs) - 1
		}
	}
	slices.Sort(upserted)
	return upserted, deleted, len(all)
}

func syncSummary(t *testing.T, rep pipeline.Report) syncer.Summary {
	t.Helper()
	var s syncer.Summary
	b, _ := json.Marshal(rep.Sync["load"])
	if err := json.Unmarshal(b, &s); err != nil || s.Key == "" {
		t.Fatalf("report has no sync summary for load: %s", b)
	}
	return s
}

func syncCSV(rows ...string) string {
	return "id,name,phone\n" + strings.Join(rows, "\n") + "\n"
}

// TestSyncChangedRuns runs a change-detecting sync four times over a
// changing source and checks, against the emulator's records and the
// uploaded job data, that each run sends exactly the new and changed rows,
// deletes the keys that left, and resends failed rows until they load.
func TestSyncChangedRuns(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"p.yaml": syncPipeline(srv, "50%"),
		"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333", "A4,Di,444", "A5,Ed,555", "A6,Flo,666")})

	// Run 1: everything is new.
	code, rep := runReport(t, "p.yaml")
	up, del, jobs := syncSent(t, srv, 0)
	if code != exitOK || strings.Join(up, ",") != "A1,A2,A3,A4,A5,A6" || del != 0 {
		t.Fatalf("run 1: exit %d, upserted %v, deleted %d, report %+v", code, up, del, rep)
	}
	if s := syncSummary(t, rep); s.New != 6 || s.Loaded != 6 || !s.Committed || s.ManifestAfter != 6 {
		t.Errorf("run 1 summary %+v", s)
	}

	// Run 2: A2 and A5 change, A6 leaves, A7 arrives; a duplicate A1 row is
	// dead-lettered.
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,999", "A3,Cy,333", "A4,Di,444", "A5,Eddie,555", "A7,Gil,777", "A1,Ada again,000")})
	code, rep = runReport(t, "p.yaml")
	up, del, jobs2 := syncSent(t, srv, jobs)
	if code != exitPartial || strings.Join(up, ",") != "A2,A5,A7" || del != 1 {
		t.Fatalf("run 2: exit %d, upserted %v, deleted %d, counts %+v", code, up, del, rep.Counts)
	}
	s := syncSummary(t, rep)
	run2Log := s.Log
	if s.New != 1 || s.Changed != 2 || s.Unchanged != 3 || s.Missing != 1 || s.Deleted != 1 || s.Duplicates != 1 || rep.Counts.Filtered != 3 || rep.Counts.DeadLettered != 1 {
		t.Errorf("run 2 summary %+v counts %+v", s, rep.Counts)
	}
	recs := srv.Records("Account")
	names := map[string]string{}
	for _, r := range recs {
		names[r["External_Id__c"]] = r["Name"] + "/" + r["Phone"]
	}
	if len(recs) != 6 || names["A2"] != "Bob/999" || names["A5"] != "Eddie/555" || names["A7"] != "Gil/777" || names["A6"] != "" {
		t.Errorf("records after run 2: %v", names)
	}
	if d := srv.DeletedRecords("Account"); len(d) != 1 || d[0]["External_Id__c"] != "A6" {
		t.Errorf("deleted records %v", d)
	}

	// Run 3: A3 changes to a name Salesforce refuses: dead-lettered, and
	// unsynced in the manifest.
	long := strings.Repeat("x", 300)
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,999", "A3,"+long+",333", "A4,Di,444", "A5,Eddie,555", "A7,Gil,777")})
	code, rep = runReport(t, "p.yaml")
	up, del, jobs3 := syncSent(t, srv, jobs2)
	if code != exitPartial || strings.Join(up, ",") != "A3" || del != 0 || rep.Counts.DeadLettered != 1 {
		t.Fatalf("run 3: exit %d, upserted %v, deleted %d, counts %+v", code, up, del, rep.Counts)
	}
	// Run 4: same input: the failed row is sent again (and nothing else).
	code, _ = runReport(t, "p.yaml")
	up, _, jobs4 := syncSent(t, srv, jobs3)
	if code != exitPartial || strings.Join(up, ",") != "A3" {
		t.Fatalf("run 4: exit %d, upserted %v", code, up)
	}
	// Run 5: fixed: A3 loads; run 6 sends nothing at all.
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,999", "A3,Cyril,333", "A4,Di,444", "A5,Eddie,555", "A7,Gil,777")})
	code, _ = runReport(t, "p.yaml")
	up, _, jobs5 := syncSent(t, srv, jobs4)
	if code != exitOK || strings.Join(up, ",") != "A3" {
		t.Fatalf("run 5: exit %d, upserted %v", code, up)
	}
	code, rep = runReport(t, "p.yaml")
	if up, del, _ := syncSent(t, srv, jobs5); code != exitOK || len(up) != 0 || del != 0 || rep.Counts.Filtered != 6 {
		t.Fatalf("run 6: exit %d, upserted %v, deleted %d, counts %+v", code, up, del, rep.Counts)
	}

	// Every run wrote a sync log; run 2's holds 3 upserts and 1 delete.
	logs, _ := filepath.Glob("out/sync-log/accounts-sync/date=*/*.parquet")
	if len(logs) != 6 {
		t.Fatalf("sync logs %v; want 6", logs)
	}
	if !strings.HasSuffix(run2Log, ".parquet") {
		t.Fatalf("run 2 sync log location %q", run2Log)
	}
	f, err := file.OpenParquetFile(strings.TrimPrefix(run2Log, "file://"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.NumRows() != 4 {
		t.Errorf("run 2 sync log has %d rows, want 4", f.NumRows())
	}
}

// TestSyncDeleteGuard: past max_deletes the run stops before sending or
// deleting anything, leaving the manifest as it was; raising the guard lets
// the next run catch up.
func TestSyncDeleteGuard(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"p.yaml": syncPipeline(srv, "1"),
		"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333", "A4,Di,444")})
	if code, rep := runReport(t, "p.yaml"); code != exitOK {
		t.Fatalf("run 1: exit %d %+v", code, rep)
	}
	manifest := "state/accounts-sync/sync/load.manifest"
	before, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	_, _, jobs := syncSent(t, srv, 0)
	// Two keys leave (guard: 1) and one changes.
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,000", "A2,Bob,222")})
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{"p.yaml", "--progress", "none"}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), "more than max_deletes 1 allows") {
		t.Fatalf("guarded run: exit %d\n%s", code, stderr.String())
	}
	if up, del, _ := syncSent(t, srv, jobs); len(up) != 0 || del != 0 {
		t.Fatalf("guarded run sent %v and deleted %d", up, del)
	}
	if after, _ := os.ReadFile(manifest); !bytes.Equal(before, after) {
		t.Fatal("the guarded run changed the manifest")
	}
	if n := len(srv.Records("Account")); n != 4 {
		t.Fatalf("%d records after the guarded run, want 4", n)
	}
	writeFiles(t, map[string]string{"p.yaml": syncPipeline(srv, "50%")})
	code, rep := runReport(t, "p.yaml")
	up, del, _ := syncSent(t, srv, jobs)
	if code != exitOK || strings.Join(up, ",") != "A1" || del != 2 || len(srv.Records("Account")) != 2 {
		t.Fatalf("catch-up run: exit %d, upserted %v, deleted %d, counts %+v", code, up, del, rep.Counts)
	}
}

// TestRunShards splits a five-file source across three `bulkflow run
// --shard I/3` runs: together they load every row exactly once, each shard
// keeps its own watermark, and delete_missing is refused with --shard.
func TestRunShards(t *testing.T) {
	t.Chdir(t.TempDir())
	files := map[string]string{}
	var want []string
	for f := range 5 {
		var b strings.Builder
		b.WriteString("id,day\n")
		for i := range 4 {
			id := fmt.Sprintf("f%d-%d", f, i)
			fmt.Fprintf(&b, "%s,2024-01-%02d\n", id, 10+i)
			want = append(want, id)
		}
		files[fmt.Sprintf("data/part-%d.csv", f)] = b.String()
	}
	files["p.yaml"] = `name: sharded
dead_letter: out/dead-letter/
state: state/
stages:
  - name: read
    source: {type: csv, url: "data/part-*.csv", columns: {day: date}}
    incremental: {cursor: day}
  - name: write
    inputs: [read]
    sink: {type: csv, url: "out/shard-${SHARD}.csv"}
`
	writeFiles(t, files)
	var got []string
	for i := range 3 {
		t.Setenv("SHARD", fmt.Sprint(i))
		var stdout, stderr bytes.Buffer
		if code := runRun(context.Background(), []string{"p.yaml", "--shard", fmt.Sprintf("%d/3", i), "--progress", "none"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("shard %d: exit %d\n%s", i, code, stderr.String())
		}
		recs, err := csv.NewReader(bytes.NewReader(must(os.ReadFile(fmt.Sprintf("out/shard-%d.csv", i))))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[1:] {
			got = append(got, r[0])
		}
		if _, err := os.Stat(fmt.Sprintf("state/sharded.shard-%d-of-3/docs/watermark.read.json", i)); err != nil {
			t.Errorf("shard %d kept no watermark of its own: %v", i, err)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("shards loaded %v\nwant %v", got, want)
	}
	var stdout, stderr bytes.Buffer
	for _, bad := range []string{"3/3", "1/0", "a/b", "-1/2", "01/2"} {
		if code := runRun(context.Background(), []string{"p.yaml", "--shard", bad}, &stdout, &stderr); code != exitUsage {
			t.Errorf("--shard %s: exit %d, want %d", bad, code, exitUsage)
		}
	}
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	writeFiles(t, map[string]string{"s.yaml": syncPipeline(srv, "10%"), "data/accounts.csv": syncCSV("A1,Ada,111")})
	stderr.Reset()
	if code := runRun(context.Background(), []string{"s.yaml", "--shard", "0/2"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "delete_missing cannot be used with --shard") {
		t.Errorf("delete_missing with --shard: exit %d\n%s", code, stderr.String())
	}
}

// startMirror starts an emulator (closed with the test) and, in a new
// working directory, runs syncPipeline (a mirror: delete_missing, any
// number of deletes) once over A1-A3.
func startMirror(t *testing.T) *salesforcetest.Server {
	t.Helper()
	srv := salesforcetest.NewServer(nil)
	t.Cleanup(srv.Close)
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"p.yaml": syncPipeline(srv, "100%"), "data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333")})
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 3 {
		t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
	}
	return srv
}

// TestSyncDeleteMissingRefusesIncremental: a mirror (delete_missing) that
// gains an incremental cursor on its source is refused before any row
// moves: its runs would read only rows past the watermark and delete every
// other record. Before the refusal the second run below deleted A1-A3 and
// reported succeeded.
func TestSyncDeleteMissingRefusesIncremental(t *testing.T) {
	srv := startMirror(t)
	p := strings.Replace(syncPipeline(srv, "100%"), "source: {type: csv, url: data/accounts.csv}",
		"source: {type: csv, url: data/accounts.csv}\n    incremental: {cursor: phone}", 1)
	writeFiles(t, map[string]string{"p.yaml": p, "data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333", "A4,Di,444")})
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{"p.yaml", "--progress", "none"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), `sync delete_missing cannot be used with the incremental source "read"`) {
		t.Fatalf("exit %d, want %d refusing delete_missing with incremental:\n%s", code, exitUsage, stderr.String())
	}
	if n := len(srv.Records("Account")); n != 3 {
		t.Errorf("%d records in the org after the refused run, want the 3 of run 1", n)
	}
}

// TestSyncHoldsDeletesAfterDeadLetters: a mirror run in which a row was
// dead-lettered before the sync (its value failed the map) deletes
// nothing: the dead-lettered row's key looks missing, and deleting its
// record would lose it (a replay would create a new record, without the
// old one's id, history and children). Before the hold the second run below
// deleted A2 and exited 3. The run says so, keeps every missing key in the
// manifest, and the next clean run deletes the key that is really gone.
func TestSyncHoldsDeletesAfterDeadLetters(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	p := syncPipelineOf("held", "{type: csv, url: data/accounts.csv}", `
      External_Id__c: id
      Name: name
      Phone: string(int(phone))`, srv, `delete_missing: true, max_deletes: "100%"`)
	writeFiles(t, map[string]string{"p.yaml": p, "data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333", "A4,Di,444")})
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 4 {
		t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
	}
	ids := map[string]string{}
	for _, r := range srv.Records("Account") {
		ids[r["External_Id__c"]] = r["Id"]
	}
	// Run 2: A2's phone fails the map (dead-lettered), A4 left the source.
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,2x2", "A3,Cy,333")})
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{"p.yaml", "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
	rep := readReport(t, "out/run.json")
	if code != exitPartial || rep.Counts.DeadLettered != 1 {
		t.Fatalf("run 2: exit %d %+v, want %d with A2 dead-lettered\n%s", code, rep.Counts, exitPartial, stderr.String())
	}
	why := rep.SyncDeletesHeld["load"]
	if !strings.Contains(why, "2 missing keys were not deleted: 1 rows were dead-lettered") || !strings.Contains(stderr.String(), "load: deletes held: 2 missing keys") {
		t.Errorf("report sync_deletes_held %q; summary:\n%s", why, stderr.String())
	}
	got := map[string]string{}
	for _, r := range srv.Records("Account") {
		got[r["External_Id__c"]] = r["Id"]
	}
	if !maps.Equal(got, ids) {
		t.Fatalf("records after run 2 %v, want run 1's %v untouched", got, ids)
	}
	// Run 3: A2 fixed; A4 is still gone: now it is deleted, A2 is kept with its id.
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,223", "A3,Cy,333")})
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.SyncDeletesHeld != nil {
		t.Fatalf("run 3: exit %d %+v held %v", code, rep.Counts, rep.SyncDeletesHeld)
	}
	got = map[string]string{}
	for _, r := range srv.Records("Account") {
		got[r["External_Id__c"]] = r["Id"] + " " + r["Phone"]
	}
	want := map[string]string{"A1": ids["A1"] + " 111", "A2": ids["A2"] + " 223", "A3": ids["A3"] + " 333"}
	if !maps.Equal(got, want) {
		t.Fatalf("records after run 3 %v, want %v", got, want)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSyncCancelledHalfWay cancels a sync while its job is in Salesforce:
// the run ends cancelled, the manifest is untouched, and the next run sends
// the changes again and catches up.
func TestSyncCancelledHalfWay(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"p.yaml": syncPipeline(srv, "50%"),
		"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333")})
	if code, rep := runReport(t, "p.yaml"); code != exitOK {
		t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
	}
	manifest := "state/accounts-sync/sync/load.manifest"
	before, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	_, _, jobs := syncSent(t, srv, 0)
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,999", "A2,Bob,222", "A3,Cy,333", "A4,Di,444")})
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() { exit <- runRun(ctx, []string{"p.yaml", "--progress", "none"}, &stdout, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.Jobs()) == jobs && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-exit; code != exitFailed {
		t.Fatalf("cancelled run: exit %d\n%s", code, stderr.String())
	}
	if after, _ := os.ReadFile(manifest); !bytes.Equal(before, after) {
		t.Fatalf("the cancelled run changed the manifest\n%s", stderr.String())
	}
	srv.SetFaults(salesforcetest.Faults{})
	code, rep := runReport(t, "p.yaml")
	names := map[string]string{}
	for _, r := range srv.Records("Account") {
		names[r["External_Id__c"]] = r["Phone"]
	}
	// A4, new in the cancelled run, is in doubt (its job may have
	// loaded it): sent again as changed.
	if s := syncSummary(t, rep); code != exitOK || s.New != 0 || s.InDoubt != 1 || s.Changed != 2 || s.Unchanged != 2 || names["A1"] != "999" || names["A4"] != "444" {
		t.Fatalf("catch-up run: exit %d, summary %+v, records %v", code, s, names)
	}
}

// TestSyncPlanAndReplay: past max_deletes a sync run dead-letters its new
// and changed rows (aborted, retryable) and filters its unchanged ones. `plan` diffs read-only (the guard applies; with a
// looser guard it shows new, changed, unchanged and deletes, commits no
// manifest, writes no sync log and sends nothing), and `replay` of the
// dead letter sends the new and changed rows through the sync stage
// without deleting anything or dropping the keys it did not see: the next
// run deletes exactly the keys that left, and sends nothing else.
func TestSyncPlanAndReplay(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"p.yaml": syncPipeline(srv, "1"), "loose.yaml": syncPipeline(srv, "50%"),
		"data/accounts.csv": syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333", "A4,Di,444")})
	if code, rep := runReport(t, "p.yaml"); code != exitOK {
		t.Fatalf("run 1: exit %d %+v", code, rep)
	}
	manifest := "state/accounts-sync/sync/load.manifest"
	before, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	// A1 changes, A3 and A4 leave (guard: 1), A5 arrives.
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,000", "A2,Bob,222", "A5,Ed,555")})
	code, rep := runReport(t, "p.yaml")
	// A2 is unchanged: it is filtered, as a finished run would; the new
	// and changed rows are dead-lettered.
	if code != exitFailed || rep.Counts.DeadLettered != 2 || rep.Counts.Filtered != 1 {
		t.Fatalf("guarded run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "load.csv")
	_, _, jobs := syncSent(t, srv, 0)
	logs, _ := filepath.Glob("out/sync-log/accounts-sync/date=*/*.parquet")

	plan := func(file string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := runPlan(context.Background(), []string{file, "--out", "planned"}, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := plan("p.yaml"); code != exitFailed || !strings.Contains(out, "more than max_deletes 1 allows") {
		t.Errorf("plan under the guard: exit %d\n%s", code, out)
	}
	code, out := plan("loose.yaml")
	if code != exitOK || !strings.Contains(out, "sync load: 1 new, 1 changed, 1 unchanged, 2 would be deleted (manifest of 4 keys not changed)") ||
		!strings.Contains(out, "read 3, planned 2, filtered 1") || strings.Contains(out, "loaded 2") {
		t.Errorf("plan: exit %d\n%s", code, out)
	}
	if job, err := os.ReadFile("planned/load/job-0001.csv"); err != nil || !strings.Contains(string(job), "A1") || !strings.Contains(string(job), "A5") || strings.Contains(string(job), "A2") {
		t.Errorf("planned job %q (%v)", job, err)
	}
	if after, _ := os.ReadFile(manifest); !bytes.Equal(before, after) {
		t.Error("plan changed the sync manifest")
	}
	if l, _ := filepath.Glob("out/sync-log/accounts-sync/date=*/*.parquet"); len(l) != len(logs) {
		t.Errorf("plan wrote a sync log: %v", l)
	}
	if _, _, n := syncSent(t, srv, 0); n != jobs {
		t.Fatalf("plan created %d jobs", n-jobs)
	}

	code, rr, out := replay(t, dl, "--pipeline", "p.yaml")
	if code != exitOK || rr.Counts.Loaded != 2 || rr.Counts.Filtered != 0 {
		t.Fatalf("replay: exit %d counts %+v\n%s", code, rr.Counts, out)
	}
	up, del, jobs2 := syncSent(t, srv, jobs)
	if strings.Join(up, ",") != "A1,A5" || del != 0 || len(srv.Records("Account")) != 5 {
		t.Fatalf("replay upserted %v, deleted %d; %d records", up, del, len(srv.Records("Account")))
	}
	// The manifest learned A1 and A5 and kept A3 and A4: the next run with
	// a guard that allows it deletes those two and sends nothing else.
	code, rep = runReport(t, "loose.yaml")
	up, del, _ = syncSent(t, srv, jobs2)
	if code != exitOK || len(up) != 0 || del != 2 || rep.Counts.Filtered != 3 || len(srv.Records("Account")) != 3 {
		t.Errorf("run after the replay: exit %d, upserted %v, deleted %d, counts %+v", code, up, del, rep.Counts)
	}
}

// TestPlanWritesNoFiles: plan counts the rows of a pipeline's file sinks
// without writing them, unless --write-files.
func TestPlanWritesNoFiles(t *testing.T) {
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"data/accounts.csv": planAccountsCSV, "p.yaml": `name: files
stages:
  - name: read
    source: {type: csv, url: data/accounts.csv}
  - name: map
    inputs: [read]
    map: {Name: name}
  - name: load
    inputs: [map]
    sink: {type: salesforce, object: Account, instance_url: "emulator:"}
  - name: copy
    inputs: [read]
    sink: {type: csv, url: out/copy.csv}
`})
	for _, write := range []bool{false, true} {
		args := []string{"p.yaml", "--out", "planned"}
		if write {
			args = append(args, "--write-files")
		}
		var stdout, stderr bytes.Buffer
		code := runPlan(context.Background(), args, &stdout, &stderr)
		_, err := os.Stat("out/copy.csv")
		out := stdout.String() + stderr.String()
		switch {
		case code != exitOK:
			t.Errorf("--write-files=%v: exit %d\n%s", write, code, out)
		case !write && (err == nil || !strings.Contains(out, "copy: 11 rows would be written (not written")):
			t.Errorf("plan wrote out/copy.csv (%v)\n%s", err, out)
		case write && err != nil:
			t.Errorf("plan --write-files did not write out/copy.csv: %v", err)
		}
	}
}

// TestAccountsSyncPlanAndReplay: the example sync pipeline plans without
// writing state, and its source dead letter replays through the sync
// stage with a --map fix.
func TestAccountsSyncPlanAndReplay(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := os.ReadFile(filepath.Join(root, "pipelines/accounts-sync.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "pipelines/data/accounts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"pipelines/accounts-sync.yaml": string(pipe), "pipelines/data/accounts.csv": string(data)})
	var stdout, stderr bytes.Buffer
	code := runPlan(context.Background(), []string{"pipelines/accounts-sync.yaml", "--out", "planned"}, &stdout, &stderr)
	if out := stdout.String() + stderr.String(); code != exitPartial || !strings.Contains(out, "sync load: 266 new, 0 changed, 0 unchanged, 0 would be deleted") {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	filepath.WalkDir(".bulkflow", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("plan wrote state: %s", p)
		}
		return nil
	})
	code, rep := runReport(t, "pipelines/accounts-sync.yaml")
	if code != exitPartial || rep.Counts.Loaded != 266 || rep.Counts.DeadLettered != 3 {
		t.Fatalf("run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/accounts-sync/dead-letter", rep.RunID, "read.csv")
	code, rr, out := replay(t, dl, "--pipeline", "pipelines/accounts-sync.yaml", "--all",
		"--map", `annual_revenue=annual_revenue == "12,5 million" ? "12500000" : annual_revenue`)
	if code != exitPartial || rr.Counts.Loaded != 1 || rr.Counts.DeadLettered != 2 {
		t.Fatalf("replay: exit %d counts %+v\n%s", code, rr.Counts, out)
	}
	if s := syncSummary(t, rr); s.New != 1 || s.Loaded != 1 || !s.Committed || s.ManifestAfter != 267 {
		t.Errorf("replay sync summary %+v", s)
	}
}

// TestSyncKilledThenRunAgain SIGKILLs the second run of a change-detecting
// sync while its jobs load, then runs the sync again, as a scheduler
// would: the manifest the killed run never committed makes the next run
// send the new and changed rows again (upserts by the sync key), so every
// key ends stored once with this export's values, the keys that left are
// deleted, and a further run sends nothing. The export comes in key order
// (diffed as it is read) and shuffled (spooled and merged); both must end
// the same.
func TestSyncKilledThenRunAgain(t *testing.T) {
	bin := buildBulkflow(t)
	const n = 3000
	for _, sorted := range []bool{true, false} {
		t.Run(fmt.Sprintf("in-key-order=%v", sorted), func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := strings.Replace(syncPipeline(srv, "50%"), "      ledger: \"off\"\n",
				"      ledger: \"off\"\n      max_job_rows: 200\n      concurrency: 2\n", 1)
			first, second, want := syncExports(n, sorted)
			writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": syncCSV(first...)})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != n {
				t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
			}
			writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(second...)})
			_, _, jobs := syncSent(t, srv, 0)
			if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 100 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			killMidLoad(t, bin, srv, jobs, os.Kill)
			srv.SetFaults(salesforcetest.Faults{})

			code, rep := runReport(t, "p.yaml")
			s := syncSummary(t, rep)
			if code != exitOK || rep.Status != pipeline.StatusSucceeded || !rep.Counts.Balanced() || !s.Committed || s.InKeyOrder != sorted ||
				(s.NotInKeyOrder == "") != sorted ||
				// The killed run listed its 300 new keys as in doubt
				// before it sent any: they are sent again as changed.
				s.New != 0 || s.InDoubt != 300 || s.ManifestKeys != n || s.Missing != n/50 || s.Deleted != n/50 || s.Loaded != s.New+s.Changed ||
				rep.Counts.DeadLettered != 0 {
				t.Fatalf("run after the kill: exit %d, status %s, counts %+v, sync %+v", code, rep.Status, rep.Counts, s)
			}
			stored := map[string]int{}
			for _, r := range srv.Records("Account") {
				k := r["External_Id__c"]
				if stored[k]++; r["Phone"] != want[k] {
					t.Errorf("%s stored with phone %q, want %q", k, r["Phone"], want[k])
				}
			}
			for k := range want {
				if stored[k] != 1 {
					t.Errorf("%s stored %d times", k, stored[k])
				}
			}
			if len(stored) != len(want) {
				t.Errorf("%d keys stored, want %d (the %d that left deleted)", len(stored), len(want), n/50)
			}
			_, _, jobs = syncSent(t, srv, 0)
			code, rep = runReport(t, "p.yaml")
			up, del, _ := syncSent(t, srv, jobs)
			if s := syncSummary(t, rep); code != exitOK || len(up) != 0 || del != 0 || s.Unchanged != int64(len(want)) || s.InKeyOrder != sorted {
				t.Errorf("the run after: exit %d, upserted %d, deleted %d, sync %+v", code, len(up), del, s)
			}
		})
	}
}

// syncExports returns the two exports of a sync test as CSV rows (id,
// name, phone) of n keys: the first with every key at phone 111; the
// second (in key order, or shuffled) without every 50th key, with every
// 7th changed to 222 and 300 new keys at 333; and want, each key of the
// second with its phone.
func syncExports(n int, sorted bool) (first, second []string, want map[string]string) {
	row := func(i int, phone string) string { return fmt.Sprintf("K%06d,Name %d,%s", i, i, phone) }
	want = map[string]string{}
	for i := range n {
		first = append(first, row(i, "111"))
		switch {
		case i%50 == 0: // left the export
		case i%7 == 0:
			second = append(second, row(i, "222"))
			want[fmt.Sprintf("K%06d", i)] = "222"
		default:
			second = append(second, row(i, "111"))
			want[fmt.Sprintf("K%06d", i)] = "111"
		}
	}
	for i := n; i < n+300; i++ { // new keys
		second = append(second, row(i, "333"))
		want[fmt.Sprintf("K%06d", i)] = "333"
	}
	if !sorted {
		rand.New(rand.NewPCG(3, 4)).Shuffle(len(second), func(i, j int) { second[i], second[j] = second[j], second[i] })
	}
	return first, second, want
}

// killMidLoad runs `bin run p.yaml` with the emulator processing slowly
// and sends it sig (os.Kill: SIGKILL; os.Interrupt: Ctrl-C, after which it
// must exit by itself) once two of the jobs it created (after the first
// jobs) are complete; the emulator's speed is restored after.
func killMidLoad(t *testing.T, bin string, srv *salesforcetest.Server, jobs int, sig os.Signal) {
	t.Helper()
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	defer srv.SetFaults(salesforcetest.Faults{})
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "p.yaml", "--progress", "none")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	complete := func() int {
		c := 0
		for _, j := range srv.Jobs()[jobs:] {
			if j.State == salesforcetest.StateJobComplete {
				c++
			}
		}
		return c
	}
	for deadline := time.Now().Add(30 * time.Second); complete() < 2; time.Sleep(time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("the run ended before the kill: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run's jobs did not complete\n%s", stderr.String())
		}
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("the run exited 0 after %v\n%s", sig, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the run did not exit within 30 s of %v\n%s", sig, stderr.String())
	}
	t.Logf("%v with %d of its jobs complete, %d created", sig, complete(), len(srv.Jobs())-jobs)
}

// insertSyncPipeline is the sync pipeline "accounts-sync" over source
// (mapping id, name and phone) made an insert keyed by AccountNumber, which
// is not unique, so that a row inserted twice shows as two records, with
// the job ledger on and small jobs (a kill finds some done, some not).
func insertSyncPipeline(srv *salesforcetest.Server, source string) string {
	y := syncPipelineOf("accounts-sync", source, " {External_Id__c: id, Name: name, Phone: phone}", srv, "log: out/sync-log/")
	y = strings.Replace(y, "      operation: upsert\n      external_id_field: External_Id__c\n", "      operation: insert\n", 1)
	y = strings.ReplaceAll(y, "External_Id__c", "AccountNumber")
	return strings.Replace(y, "      ledger: \"off\"\n", "      ledger: ledger/\n      max_job_rows: 200\n      concurrency: 2\n", 1)
}

// killThenResume kills a run of insertSyncPipeline's p.yaml mid-load with
// sig (killRun), then runs `run --resume RUN_ID` of the run the ledger
// gained, and returns its exit code, report and stderr.
func killThenResume(t *testing.T, bin string, srv *salesforcetest.Server, sig os.Signal) (int, pipeline.Report, string) {
	t.Helper()
	runID := killRun(t, bin, srv, sig)
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{"p.yaml", "--resume", runID, "--progress", "none", "--report", "out/resume.json"}, &stdout, &stderr)
	var rep pipeline.Report
	if b, err := os.ReadFile("out/resume.json"); err != nil {
		t.Fatalf("resume: exit %d, no report: %v\n%s", code, err, stderr.String())
	} else if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return code, rep, stderr.String()
}

// killRun kills a run of insertSyncPipeline's p.yaml mid-load with sig
// (killMidLoad) and returns the id of the run the ledger gained.
func killRun(t *testing.T, bin string, srv *salesforcetest.Server, sig os.Signal) string {
	t.Helper()
	runs, _ := os.ReadDir("ledger/accounts-sync")
	killMidLoad(t, bin, srv, len(srv.Jobs()), sig)
	after, _ := os.ReadDir("ledger/accounts-sync")
	if len(after) != len(runs)+1 {
		t.Fatalf("ledger runs before the kill %v, after %v", runs, after)
	}
	runID := after[len(after)-1].Name()
	if slices.ContainsFunc(runs, func(e os.DirEntry) bool { return e.Name() == runID }) {
		runID = after[0].Name()
	}
	return runID
}

// checkRecordCounts checks that srv's Accounts are want ("AccountNumber
// Phone" → records), each exactly as many times.
func checkRecordCounts(t *testing.T, srv *salesforcetest.Server, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, r := range srv.Records("Account") {
		got[r["AccountNumber"]+" "+r["Phone"]]++
	}
	for k, c := range got {
		if c != want[k] {
			t.Errorf("record %s stored %d times, want %d", k, c, want[k])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct records, want %d", len(got), len(want))
	}
}

// TestSyncInsertKilledThenResumed is TestSyncKilledThenRunAgain with
// operation: insert (keyed by AccountNumber, which is not unique) and the
// job ledger on, recovered as the README says for a killed insert: `run
// --resume RUN_ID`. Inserting a row twice would create a second record, so
// the emulator must end with exactly one record per row sent: each key at 111 from the first run, plus one at
// 222 for each changed key and one at 333 for each new key; the resumed
// run succeeds and commits, and a further run inserts nothing. In key
// order (walked) and shuffled (merged), after a SIGKILL and after a
// Ctrl-C.
func TestSyncInsertKilledThenResumed(t *testing.T) {
	bin := buildBulkflow(t)
	const n = 3000
	for _, tc := range []struct {
		sorted bool
		sig    os.Signal
	}{{true, os.Kill}, {false, os.Kill}, {true, os.Interrupt}, {false, os.Interrupt}} {
		sorted := tc.sorted
		t.Run(fmt.Sprintf("in-key-order=%v/%v", sorted, tc.sig), func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := insertSyncPipeline(srv, "{type: csv, url: data/accounts.csv}")
			first, second, want := syncExports(n, sorted)
			writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": syncCSV(first...)})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != n {
				t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
			}
			writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(second...)})
			code, rep, stderr := killThenResume(t, bin, srv, tc.sig)
			s := syncSummary(t, rep)
			if code != exitOK || rep.Status != pipeline.StatusSucceeded || !rep.Counts.Balanced() || !s.Committed || s.InKeyOrder != sorted ||
				s.New != 300 || s.Loaded != s.New+s.Changed || rep.Counts.DeadLettered != 0 {
				t.Fatalf("resume: exit %d, status %s, counts %+v, sync %+v\n%s", code, rep.Status, rep.Counts, s, stderr)
			}
			wantRecs := map[string]int{} // "key phone" → records
			for i := range n {
				wantRecs[fmt.Sprintf("K%06d 111", i)] = 1
			}
			for k, phone := range want {
				if phone != "111" {
					wantRecs[k+" "+phone] = 1
				}
			}
			checkRecordCounts(t, srv, wantRecs)
			total := len(srv.Records("Account"))
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 0 || len(srv.Records("Account")) != total {
				t.Errorf("the run after: exit %d, counts %+v, records %d -> %d", code, rep.Counts, total, len(srv.Records("Account")))
			}
		})
	}
}

// TestSyncMirrorDeletes: a mirror's deletes end in one of three ways. A
// record deleted by hand first (Salesforce answers ENTITY_IS_DELETED) is
// what the delete wanted: counted deleted, its key dropped; before, it
// failed every run and its key was never dropped. A delete that fails
// (every row locked here) leaves the record in the org: the run is partial
// (exit 3), not succeeded, and says so; the next run deletes it.
func TestSyncMirrorDeletes(t *testing.T) {
	srv := startMirror(t)
	ids := map[string]string{}
	for _, r := range srv.Records("Account") {
		ids[r["External_Id__c"]] = r["Id"]
	}
	// A2 is deleted by hand, then leaves the export.
	writeFiles(t, map[string]string{"d.yaml": fmt.Sprintf(`name: by-hand
dead_letter: out/by-hand/
stages:
  - {name: read, source: {type: csv, url: data/ids.csv}}
  - name: load
    inputs: [read]
    sink: {type: salesforce, object: Account, operation: delete, api: bulk, instance_url: %q, auth: {access_token: %q}, poll_initial: 5ms}
`, srv.URL, srv.AccessToken()), "data/ids.csv": "Id\n" + ids["A2"] + "\n"})
	if code, rep := runReport(t, "d.yaml"); code != exitOK || rep.Counts.Loaded != 1 {
		t.Fatalf("delete by hand: exit %d %+v", code, rep.Counts)
	}
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111", "A3,Cy,333")})
	code, rep := runReport(t, "p.yaml")
	if s := syncSummary(t, rep); code != exitOK || s.Deleted != 1 || s.DeleteFailed != 0 || s.ManifestAfter != 2 {
		t.Fatalf("run 2 (A2 already deleted): exit %d, sync %+v; want it counted deleted and dropped", code, s)
	}
	// A3 leaves the export while every row Salesforce touches hits a lock.
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111")})
	if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code = runRun(context.Background(), []string{"p.yaml", "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
	rep = *readReport(t, "out/run.json")
	if s := syncSummary(t, rep); code != exitPartial || rep.Status != pipeline.StatusPartial || s.DeleteFailed != 1 || rep.SyncDeletesFailed["load"] != 1 ||
		!strings.Contains(stderr.String(), "load: 1 deletes failed: those records are still in the destination") {
		t.Fatalf("run 3 (delete locked): exit %d status %s, sync %+v, failed %v; want partial\n%s", code, rep.Status, s, rep.SyncDeletesFailed, stderr.String())
	}
	if n := len(srv.Records("Account")); n != 2 {
		t.Fatalf("%d records after the failed delete, want A1 and A3", n)
	}
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	if code, rep := runReport(t, "p.yaml"); code != exitOK || syncSummary(t, rep).Deleted != 1 || len(srv.Records("Account")) != 1 {
		t.Fatalf("run 4: exit %d, sync %+v, %d records; want A3 deleted now", code, syncSummary(t, rep), len(srv.Records("Account")))
	}
}
