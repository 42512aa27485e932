package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// runReport runs `bulkflow run FILE --report out/run.json` and returns the
// exit code and the report.
func runReport(t *testing.T, file string) (int, pipeline.Report) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{file, "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
	var rep pipeline.Report
	b, err := os.ReadFile("out/run.json")
	if err != nil {
		t.Fatalf("run exit %d, no report: %v\n%s", code, err, stderr.String())
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return code, rep
}

// replay runs `bulkflow replay` with args and returns the exit code, the
// report (when written) and the output.
func replay(t *testing.T, args ...string) (int, pipeline.Report, string) {
	t.Helper()
	os.Remove("out/replay.json")
	var stdout, stderr bytes.Buffer
	code := runReplay(context.Background(), append(args, "--report", "out/replay.json"), &stdout, &stderr)
	var rep pipeline.Report
	if b, err := os.ReadFile("out/replay.json"); err == nil {
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
	}
	return code, rep, stdout.String() + stderr.String()
}

// accountNames returns the Name of every stored Account, sorted.
func accountNames(srv *salesforcetest.Server) []string { return accountField(srv, "Name") }

// accountField returns field of every stored Account, sorted.
func accountField(srv *salesforcetest.Server, field string) []string {
	var out []string
	for _, r := range srv.Records("Account") {
		out = append(out, r[field])
	}
	slices.Sort(out)
	return out
}

// TestReplayLockErrors loads accounts while every row hits
// UNABLE_TO_LOCK_ROW, removes the fault, replays the dead letter (every
// row stored exactly once, alongside a row whose failure is not retryable
// and stays filtered), refuses a second replay, and with --all + --map
// fixes the validation error.
func TestReplayLockErrors(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{LockErrorRate: 1}})
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"data/accounts.csv": planAccountsCSV,
		"p.yaml":            sfPipeline(srv, "replay", "      lock_retries: 0\n      api: bulk\n"),
	})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.DeadLettered != 11 || rep.Counts.Loaded != 0 {
		t.Fatalf("first run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "load.csv")
	if len(srv.Records("Account")) != 0 {
		t.Fatal("rows stored despite the lock fault")
	}
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	code, rr, out := replay(t, dl, "--pipeline", "p.yaml")
	if code != exitOK {
		t.Fatalf("replay exit %d\n%s", code, out)
	}
	if rr.Counts.Read != 11 || rr.Counts.Loaded != 11 || rr.Counts.Filtered != 0 || rr.RunID == rep.RunID {
		t.Errorf("replay counts %+v run %s", rr.Counts, rr.RunID)
	}
	if !strings.Contains(out, "11 rows in the dead letter, 11 replayed, 0 filtered") {
		t.Errorf("output:\n%s", out)
	}
	names := accountNames(srv)
	if len(names) != 11 {
		t.Fatalf("stored %d accounts, want 11: %v", len(names), names)
	}
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			t.Errorf("%q stored twice", names[i])
		}
	}
	// The replay sent exactly the records the first run sent (nulls,
	// quotes, dates and floats survive the dead-letter round trip).
	jobs := srv.Jobs()
	if len(jobs) != 2 {
		t.Fatalf("%d jobs, want the first run's and the replay's", len(jobs))
	}
	sortedLines := func(b []byte) string {
		l := strings.SplitAfter(string(b), "\n")
		sort.Strings(l)
		return strings.Join(l, "")
	}
	if first, again := srv.UploadedCSV(jobs[0].ID), srv.UploadedCSV(jobs[1].ID); sortedLines(first) != sortedLines(again) {
		t.Errorf("the replay uploaded other records:\n--- first run\n%s\n--- replay\n%s", first, again)
	}

	// A second replay of the same file is refused.
	code, _, out = replay(t, dl, "--pipeline", "p.yaml")
	if code != exitUsage || !strings.Contains(out, "already replayed by run "+rr.RunID) || !strings.Contains(out, "--force") {
		t.Errorf("second replay: exit %d\n%s", code, out)
	}
	if len(srv.Records("Account")) != 11 {
		t.Error("the refused replay stored rows")
	}
	var led replayLedger
	if b, err := os.ReadFile("out/dead-letter/replayed.json"); err != nil || json.Unmarshal(b, &led) != nil ||
		len(led.Replays) != 1 || led.Replays[0].RunID != rr.RunID || led.Replays[0].Status != pipeline.StatusSucceeded {
		t.Errorf("ledger %+v (%v)", led, err)
	}

	// --force sends the rows again: here the unique External_Id__c makes
	// Salesforce refuse the copies, so they are dead-lettered again.
	code, rf, out := replay(t, dl, "--pipeline", "p.yaml", "--force")
	if code != exitPartial || rf.Counts.DeadLettered != 11 || len(srv.Records("Account")) != 11 {
		t.Errorf("--force: exit %d, counts %+v, %d records\n%s", code, rf.Counts, len(srv.Records("Account")), out)
	}
}

// TestReplayValidationFix loads a row Salesforce refuses (STRING_TOO_LONG,
// not retryable): the default replay filters it and sends nothing, so the
// file may be replayed again; --all with a --map fix then loads it.
func TestReplayValidationFix(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	data := strings.Replace(planAccountsCSV, "A-09,Nine,", "A-09,"+strings.Repeat("L", 300)+",", 1)
	writeFiles(t, map[string]string{"data/accounts.csv": data, "p.yaml": sfPipeline(srv, "fix", "")})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.DeadLettered != 1 || rep.Counts.Loaded != 10 {
		t.Fatalf("run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "load.csv")
	code, rr, out := replay(t, dl, "--pipeline", "p.yaml")
	if code != exitOK || rr.Counts.Filtered != 1 || rr.Counts.Loaded != 0 || !strings.Contains(out, "1 filtered (not retryable") {
		t.Fatalf("default replay: exit %d counts %+v\n%s", code, rr.Counts, out)
	}
	code, rr, out = replay(t, dl, "--pipeline", "p.yaml", "--all", "--map", `Name=len(Name) > 255 ? "Nine (fixed)" : Name`)
	if code != exitOK || rr.Counts.Loaded != 1 {
		t.Fatalf("--all --map replay: exit %d counts %+v\n%s", code, rr.Counts, out)
	}
	names := accountNames(srv)
	if len(names) != 11 || !strings.Contains(strings.Join(names, "|"), "Nine (fixed)") {
		t.Errorf("stored %v", names)
	}
	// Now the file was replayed with rows loaded: refused.
	if code, _, out := replay(t, dl, "--pipeline", "p.yaml", "--all"); code != exitUsage {
		t.Errorf("third replay: exit %d\n%s", code, out)
	}
}

// TestReplayThroughTransform replays the dead letter of a map stage (an
// expression failed) with a fix: the rows go through the map stage again
// and on to the sink, typed as the source declared them.
func TestReplayThroughTransform(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	p := fmt.Sprintf(`name: through
dead_letter: out/dead-letter/
stages:
  - name: read
    source:
      type: csv
      url: data/accounts.csv
      columns: {revenue: float, since: date}
  - name: map
    inputs: [read]
    map:
      External_Id__c: id
      Name: name
      AnnualRevenue: 'revenue == nil ? null : revenue * 2'
      SLAExpirationDate__c: since
      Description: 'sfDate(notes, "2006-01-02")'
  - name: load
    inputs: [map]
    sink:
      type: salesforce
      object: Account
      instance_url: %q
      auth: {access_token: %q}
      poll_initial: 5ms
      poll_max: 50ms
`, srv.URL, srv.AccessToken())
	writeFiles(t, map[string]string{"data/accounts.csv": "id,name,notes,revenue,since\nB-1,Good,2024-05-06,1.5,2024-01-01\nB-2,Bad,not a date,2.25,2024-01-02\n", "p.yaml": p})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.Loaded != 1 || rep.Counts.DeadLettered != 1 {
		t.Fatalf("run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "map.csv")
	// expr_error is not retryable: the default replay filters it.
	code, rr, out := replay(t, dl, "--pipeline", "p.yaml")
	if code != exitOK || rr.Counts.Filtered != 1 || rr.Counts.Loaded != 0 {
		t.Fatalf("default replay: exit %d counts %+v\n%s", code, rr.Counts, out)
	}
	// Nothing was sent, so the file may be replayed again, with a fix.
	code, rr, out = replay(t, dl, "--pipeline", "p.yaml", "--all", "--map", `notes="2024-12-31"`)
	if code != exitOK || rr.Counts.Loaded != 1 {
		t.Fatalf("fixed replay: exit %d counts %+v\n%s", code, rr.Counts, out)
	}
	var stages []string
	for _, s := range rr.Stages {
		stages = append(stages, s.Name)
	}
	if strings.Join(stages, ",") != "replay,replay-select,replay-fix,map,load" {
		t.Errorf("replay stages %v", stages)
	}
	recs := srv.Records("Account")
	if len(recs) != 2 {
		t.Fatalf("records %v", recs)
	}
	for _, r := range recs {
		if r["Name"] == "Bad" && (r["Description"] != "2024-12-31" || r["SLAExpirationDate__c"] != "2024-01-02" || r["AnnualRevenue"] != "4.5") {
			t.Errorf("replayed record %v", r)
		}
	}
}

// TestReplayUsage covers refusals before any row moves.
func TestReplayUsage(t *testing.T) {
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"data/accounts.csv": planAccountsCSV,
		"p.yaml":            "name: u\nstages:\n  - name: read\n    source: {type: csv, url: data/accounts.csv}\n  - name: write\n    inputs: [read]\n    sink: {type: csv, url: out/x.csv}\n",
		"dl/nosuch.csv":     "a,_stage,_error_code,_error,_origin,_run_id,_raw\n",
		"dl/write.csv":      "id,name\n1,2\n",
	})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dl/write.csv"}, "Usage"},
		{[]string{"dl/nosuch.csv", "--pipeline", "p.yaml"}, `no stage "nosuch"`},
		{[]string{"dl/write.csv", "--pipeline", "p.yaml"}, "not a dead-letter file"},
		{[]string{"dl/write.csv", "--pipeline", "p.yaml", "--map", "oops"}, "FIELD=EXPR"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runReplay(context.Background(), c.args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, want 2 and %q in\n%s", c.args, code, c.want, stderr.String())
		}
	}
}

// TestReplayRefusesJobIncomplete: a job outlives poll_timeout, so its rows
// are dead-lettered job_incomplete while the org goes on to load them.
// Replay refuses them (even with --all), pointing at --resume with the
// real pipeline file and run id; the resume settles them: every row once.
func TestReplayRefusesJobIncomplete(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 400 * time.Millisecond}})
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"data/accounts.csv": planAccountsCSV,
		"p.yaml":            sfPipeline(srv, "incomplete", "      poll_timeout: 50ms\n      api: bulk\n"),
	})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.DeadLettered != 11 {
		t.Fatalf("run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "load.csv")
	time.Sleep(600 * time.Millisecond) // the org finishes the job
	if n := len(srv.Records("Account")); n != 11 {
		t.Fatalf("the org stored %d records, want 11", n)
	}
	for _, args := range [][]string{{dl, "--pipeline", "p.yaml"}, {dl, "--pipeline", "p.yaml", "--all"}} {
		code, rr, out := replay(t, args...)
		want := "11 rows were not sent: their Salesforce job may have run (job_incomplete)"
		if code != exitPartial || rr.Status != pipeline.StatusPartial || rr.Counts.Loaded != 0 || !strings.Contains(out, want) || !strings.Contains(out, "0 filtered") ||
			!strings.Contains(out, "11 refused (their job may have run)") ||
			!strings.Contains(out, "bulkflow run p.yaml --resume "+rep.RunID) {
			t.Errorf("replay %v: exit %d counts %+v\n%s", args[2:], code, rr.Counts, out)
		}
	}
	if n := len(srv.Records("Account")); n != 11 {
		t.Fatalf("after the refused replays the org holds %d records, want 11", n)
	}
	var stdout, stderr bytes.Buffer
	if code := runRun(context.Background(), []string{"p.yaml", "--resume", rep.RunID, "--progress", "none"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, stderr.String())
	}
	if names := accountNames(srv); len(names) != 11 || len(slices.Compact(names)) != 11 {
		t.Errorf("after the resume: %d records, %d distinct names", len(names), len(slices.Compact(slices.Clone(names))))
	}
}

// TestReplayRebuildsSourceRows: rows the CSV source refused are rebuilt
// from _raw with the source's reader and options (here a semicolon
// delimiter), and --map fixes apply before the typed columns are parsed,
// so a bad_value is fixable. A record that still does not parse stays
// dead-lettered with the reader's code; no blank record is ever sent.
func TestReplayRebuildsSourceRows(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	p := fmt.Sprintf(`name: rebuild
dead_letter: out/dead-letter/
stages:
  - name: read
    source:
      type: csv
      url: data/accounts.csv
      delimiter: ";"
      columns: {revenue: float, since: date}
  - name: map
    inputs: [read]
    map:
      External_Id__c: id
      Name: name
      AnnualRevenue: revenue
      SLAExpirationDate__c: since
  - name: load
    inputs: [map]
    sink:
      type: salesforce
      object: Account
      operation: insert
      instance_url: %q
      auth: {access_token: %q}
      poll_initial: 5ms
      poll_max: 50ms
`, srv.URL, srv.AccessToken())
	writeFiles(t, map[string]string{"p.yaml": p, "data/accounts.csv": "id;name;notes;revenue;since\n" +
		"C-1;Good;plain;1000.5;2024-01-02\n" +
		"C-2;Bad revenue;x;12.5M;2024-01-03\n" + // bad_value: fixed with --map
		"C-3;Bro\"ken;y;5;2024-01-04\n" + // bad_quote: stays
		"C-4;Extra;z;7;2024-01-05;EXTRA\n" + // field_count: fixed by editing _raw
		"C-5;\"Semi;colon\";q;8;2024-01-06\n"})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.Loaded != 2 || rep.Counts.DeadLettered != 3 {
		t.Fatalf("run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "read.csv")
	// The user mends C-4's record in the dead letter (its _raw).
	recs := readCSVFile(t, dl)
	raw := slices.Index(recs[0], "_raw")
	codes := map[string]bool{}
	for _, r := range recs[1:] {
		codes[r[slices.Index(recs[0], "_error_code")]] = true
		if strings.HasPrefix(r[raw], "C-4;") {
			r[raw] = strings.TrimSuffix(r[raw], ";EXTRA")
		}
	}
	if !codes["bad_value"] || !codes["bad_quote"] || !codes["field_count"] {
		t.Fatalf("dead-letter codes %v", codes)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.WriteAll(recs)
	if err := os.WriteFile(dl, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	code, rr, out := replay(t, dl, "--pipeline", "p.yaml", "--all", "--map", `revenue=revenue == "12.5M" ? "12500000" : revenue`)
	if code != exitPartial || rr.Counts.Loaded != 2 || rr.Counts.DeadLettered != 1 {
		t.Fatalf("replay: exit %d counts %+v\n%s", code, rr.Counts, out)
	}
	got := map[string]map[string]string{}
	for _, r := range srv.Records("Account") {
		if r["External_Id__c"] == "" || r["Name"] == "" {
			t.Errorf("a blank record was stored: %v", r)
		}
		if got[r["External_Id__c"]] != nil {
			t.Errorf("%s stored twice", r["External_Id__c"])
		}
		got[r["External_Id__c"]] = r
	}
	want := map[string][2]string{"C-1": {"Good", "1000.5"}, "C-2": {"Bad revenue", "12500000"}, "C-4": {"Extra", "7"}, "C-5": {"Semi;colon", "8"}}
	if len(got) != len(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	for id, w := range want {
		if r := got[id]; r == nil || r["Name"] != w[0] || r["AnnualRevenue"] != w[1] {
			t.Errorf("%s stored as %v, want Name %q AnnualRevenue %s", id, r, w[0], w[1])
		}
	}
	// C-3's record still has a bad quote: it is in the replay's dead
	// letter with the reader's code and its _raw, not sent.
	data, err := os.ReadFile(filepath.Join("out/dead-letter", rr.RunID, "replay-rebuild.csv"))
	if err != nil {
		t.Fatalf("the replay's dead letter: %v\n%s", err, out)
	}
	if !strings.Contains(string(data), "bad_quote") || !strings.Contains(string(data), `C-3;Bro""ken`) {
		t.Errorf("replay dead letter:\n%s", data)
	}
}

// TestLiveDeadLetter covers which dead-letter files replay accepts, from
// the run's manifest: only files listed live, of a run whose last attempt
// ended; a file without a manifest only with --force.
func TestLiveDeadLetter(t *testing.T) {
	t.Chdir(t.TempDir())
	m := pipeline.Manifest{RunID: "R", Status: pipeline.StatusPartial, Attempt: 2,
		Files:      []pipeline.DeadLetterFile{{Stage: "load", URL: "dl/R/attempt-2/load.csv"}, {Stage: "map", URL: "dl/R/attempt-2/map.csv", ReplayedBy: []string{"X"}}},
		Superseded: []pipeline.SupersededFile{{DeadLetterFile: pipeline.DeadLetterFile{Stage: "load", URL: "dl/R/load.csv"}, Attempt: 1, SupersededBy: 2}}}
	running := m
	running.Status, running.Files = pipeline.ManifestRunning, nil
	write := func(dir string, m pipeline.Manifest) {
		b, _ := json.Marshal(m)
		writeFiles(t, map[string]string{dir + "/manifest.json": string(b)})
	}
	failed := m
	failed.Status = pipeline.StatusFailed
	write("dl/R", m)
	write("dl/S", running)
	write("dl/F", failed)
	first := m
	first.Status, first.Attempt, first.Superseded = pipeline.StatusCancelled, 1, nil
	first.Files = []pipeline.DeadLetterFile{{Stage: "load", URL: "dl/C/load.csv"}}
	write("dl/C", first)
	for _, tc := range []struct {
		file  string
		force bool
		want  string // "" = accepted
	}{
		{"dl/R/attempt-2/load.csv", false, ""},
		{"dl/R/load.csv", true, "superseded: run R was resumed (attempt 2) after attempt 1 wrote this file"},
		{"dl/R/attempt-2/other.csv", false, "not a live dead-letter file of run R"},
		{"dl/R/attempt-2/map.csv", false, "already replayed by run X"},
		{"dl/R/attempt-2/map.csv", true, ""},
		{"dl/S/attempt-2/load.csv", true, "attempt 2 of run R has not finished"},
		{"dl/F/attempt-2/load.csv", true, "attempt 2 of run R (a resume) ended failed"},
		{"dl/C/load.csv", false, ""}, // a first attempt's drained rows were never sent
		{"dl/T/load.csv", false, "no "},
		{"dl/T/load.csv", true, ""},
	} {
		loc, err := blobio.Parse("", tc.file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = liveDeadLetter(context.Background(), loc, "p.yaml", tc.force, "")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s (force %v): %v", tc.file, tc.force, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s (force %v): %v, want %q", tc.file, tc.force, err, tc.want)
		}
	}
}

// TestReplayKillResume: a replay is killed with SIGKILL while it loads
// into the emulator; meanwhile a second replay of the same file is refused
// (exit 1, another process is replaying it). The killed replay stays
// "running" in replayed.json; a replay with other flags is refused naming
// the exact command; then two replays of the file race: one resumes the
// killed replay under its run id (the sink's ledger re-attaches its jobs)
// and the other is refused. Every row is stored exactly once, no chunk was
// processed twice, and the ledger ends "succeeded" (attempt 2).
func TestReplayKillResume(t *testing.T) {
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{LockErrorRate: 1}})
	defer srv.Close()
	dir := t.TempDir()
	file := writeResumePipeline(t, dir, srv)
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("      lock_retries: 0\n")
	f.Close()

	type result struct {
		code int
		out  string
	}
	// start starts bulkflow with args; wait returns its exit code (-1 when
	// killed) and output.
	start := func(args ...string) (*exec.Cmd, func() result) {
		var out bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, func() result {
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); ok {
				return result{ee.ExitCode(), out.String()}
			} else if err != nil {
				t.Fatal(err)
			}
			return result{0, out.String()}
		}
	}
	run := func(args ...string) result { _, wait := start(args...); return wait() }

	if r := run("run", file, "--progress", "none"); r.code != exitPartial {
		t.Fatalf("first run: exit %d, want 3 (every row UNABLE_TO_LOCK_ROW)\n%s", r.code, r.out)
	}
	runs, err := os.ReadDir(filepath.Join(dir, "dl"))
	if err != nil || len(runs) != 1 {
		t.Fatalf("dead-letter runs %v: %v", runs, err)
	}
	dl := filepath.Join(dir, "dl", runs[0].Name(), "write.csv")
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	jobs0 := len(srv.Jobs())
	waitJobs := func(n int, what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); len(srv.Jobs()) < jobs0+n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d replay jobs, waited for %d", what, len(srv.Jobs())-jobs0, n)
			}
		}
	}
	readLedger := func() replayLedger {
		t.Helper()
		var led replayLedger
		data, err := os.ReadFile(filepath.Join(dir, "dl", replayLedgerName))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &led); err != nil {
			t.Fatal(err)
		}
		return led
	}

	replayArgs := []string{"replay", dl, "--pipeline", file}
	cmd, waitA := start(replayArgs...)
	waitJobs(1, "replay to kill")
	// The race: the file is being replayed, so another replay refuses.
	if r := run(replayArgs...); r.code != exitFailed || !strings.Contains(r.out, "is being replayed by another process") ||
		!strings.Contains(r.out, "replay-locks") {
		t.Errorf("replay during a replay: exit %d, want 1 (being replayed)\n%s", r.code, r.out)
	}
	waitJobs(3, "replay to kill")
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	if r := waitA(); r.code != -1 {
		t.Fatalf("replay finished before the kill: exit %d\n%s", r.code, r.out)
	}
	led := readLedger()
	if len(led.Replays) != 1 || led.Replays[0].Status != "running" {
		t.Fatalf("ledger after the kill: %+v", led)
	}
	killed := led.Replays[0].RunID
	t.Logf("killed replay %s with %d jobs; %d records stored", killed, len(srv.Jobs())-jobs0, len(srv.Records("Account")))

	// A resume must send what the killed replay sent: other flags are
	// refused, naming the command.
	if r := run(append(replayArgs, "--all")...); r.code != exitUsage ||
		!strings.Contains(r.out, "run: "+pipeline.ShellCommand("bulkflow", "replay", dl, "--pipeline", file)) {
		t.Errorf("resume with --all: exit %d, want 2 naming the command\n%s", r.code, r.out)
	}

	// Two replays race to resume it: one does, the other is refused
	// (locked, or already replayed if it came second).
	results := make(chan result, 2)
	for i := range 2 {
		go func() {
			results <- run(append(replayArgs, "--report", filepath.Join(dir, fmt.Sprintf("resume%d.json", i)))...)
		}()
	}
	var ok int
	for range 2 {
		switch r := <-results; {
		case r.code == exitOK && strings.Contains(r.out, "resuming replay run "+killed):
			ok++
		case r.code == exitFailed && strings.Contains(r.out, "is being replayed by another process"),
			r.code == exitUsage && strings.Contains(r.out, "already replayed by run "+killed):
			t.Logf("refused: %s", r.out)
		default:
			t.Errorf("racing replay: exit %d\n%s", r.code, r.out)
		}
	}
	if ok != 1 {
		t.Fatalf("%d replays resumed the killed one, want 1", ok)
	}
	var rep resumeReport
	for i := range 2 {
		if data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("resume%d.json", i))); err == nil {
			if err := json.Unmarshal(data, &rep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep.RunID != killed || rep.Status != pipeline.StatusSucceeded || rep.Counts.Loaded != resumeRows || rep.Sinks["write"].ResumedChunks == 0 {
		t.Errorf("resumed replay report: run %s status %s counts %+v sink %+v", rep.RunID, rep.Status, rep.Counts, rep.Sinks["write"])
	}
	led = readLedger()
	if e := led.Replays[0]; len(led.Replays) != 1 || e.RunID != killed || e.Status != pipeline.StatusSucceeded || e.Attempt != 2 ||
		e.Counts.Loaded != resumeRows {
		t.Errorf("ledger after the resume: %+v", led)
	}
	var m pipeline.Manifest
	if data, err := os.ReadFile(filepath.Join(filepath.Dir(dl), "manifest.json")); err != nil || json.Unmarshal(data, &m) != nil ||
		len(m.Files) != 1 || !slices.Equal(m.Files[0].ReplayedBy, []string{killed}) {
		t.Errorf("dead letter's manifest after the resume: %+v (%v)", m, err)
	}
	checkEachRowOnce(t, srv)
	// No chunk was processed twice: the replay's jobs processed each row
	// once.
	var processed, failed int64
	for _, j := range srv.Jobs()[jobs0:] {
		processed += j.NumberRecordsProcessed
		failed += j.NumberRecordsFailed
	}
	if processed != resumeRows || failed != 0 {
		t.Errorf("replay jobs processed %d rows (%d failed), want %d", processed, failed, resumeRows)
	}
	// Done: the file is not replayed again.
	if r := run(replayArgs...); r.code != exitUsage || !strings.Contains(r.out, "already replayed by run "+killed) {
		t.Errorf("replay after the resume: exit %d\n%s", r.code, r.out)
	}
}

// TestResumeEntry: which earlier replay of a file a replay resumes (a
// "running" one whose process died, or the one --resume names), and which
// refuse it, naming the command.
func TestResumeEntry(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	other := strings.Repeat("cd", 32)
	loaded := pipeline.Counts{Read: 5, Loaded: 5}
	led := &replayLedger{Replays: []replayEntry{
		{SHA256: other, RunID: "R-other", Status: "running"},
		{SHA256: sum, RunID: "R-filtered", Status: pipeline.StatusSucceeded, Counts: pipeline.Counts{Read: 5, Filtered: 5}},
		{SHA256: sum, RunID: "R-died", Status: "running", All: true, Map: []string{"Name=trim(Name)"}},
	}}
	done := &replayLedger{Replays: []replayEntry{{SHA256: sum, RunID: "R-done", Status: pipeline.StatusPartial, Counts: loaded}}}
	fixes := mapFlags{{Name: "Name", Expr: "trim(Name)"}}
	for _, tc := range []struct {
		name  string
		led   *replayLedger
		rf    replayFlags
		want  int
		code  int
		error string
	}{
		{"fresh file", &replayLedger{}, replayFlags{}, -1, exitOK, ""},
		{"died: resumed", led, replayFlags{all: true, fixes: fixes}, 2, exitOK, ""},
		{"died: other flags", led, replayFlags{}, -1, exitUsage,
			"run: bulkflow replay dl.csv --pipeline p.yaml --all --map 'Name=trim(Name)'"},
		{"died: --force starts afresh", led, replayFlags{force: true}, -1, exitOK, ""},
		{"--resume names it", led, replayFlags{resume: "R-died", all: true, fixes: fixes}, 2, exitOK, ""},
		{"--resume of another file's replay", led, replayFlags{resume: "R-other"}, -1, exitUsage, "its replays: R-filtered, R-died"},
		{"done: refused", done, replayFlags{}, -1, exitUsage, "already replayed by run R-done"},
		{"done: --resume", done, replayFlags{resume: "R-done"}, 0, exitOK, ""},
		{"done: --resume other flags", done, replayFlags{resume: "R-done", all: true},
			-1, exitUsage, "run: bulkflow replay dl.csv --pipeline p.yaml --resume R-done"},
	} {
		tc.rf.pipelineFile = "p.yaml"
		got, code, err := resumeEntry(tc.led, blobio.Location{Key: "dl/replayed.json"}, "dl.csv", sum, &tc.rf)
		if got != tc.want || code != tc.code || (err == nil) != (tc.error == "") || (err != nil && !strings.Contains(err.Error(), tc.error)) {
			t.Errorf("%s: entry %d exit %d err %v; want entry %d exit %d err %q", tc.name, got, code, err, tc.want, tc.code, tc.error)
		}
	}
}

// TestReplayDiedWithoutLedger: a replay through a Salesforce sink with
// ledger: off is killed with SIGKILL mid-load; the next replay of the file
// cannot know what it loaded, so it refuses (exit 2, naming --force)
// instead of resuming, and sends nothing.
func TestReplayDiedWithoutLedger(t *testing.T) {
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{LockErrorRate: 1}})
	defer srv.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	writeFiles(t, map[string]string{
		"data/accounts.csv": planAccountsCSV,
		"p.yaml":            sfPipeline(srv, "noledger", "      lock_retries: 0\n      api: bulk\n      ledger: off\n"),
	})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.DeadLettered != 11 {
		t.Fatalf("first run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "load.csv")
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	jobs := len(srv.Jobs())
	cmd := exec.Command(bin, "replay", dl, "--pipeline", "p.yaml")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(srv.Jobs()) == jobs && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	if len(srv.Jobs()) == jobs {
		t.Fatal("the replay created no job before the kill")
	}
	jobs = len(srv.Jobs())
	code, _, out := replay(t, dl, "--pipeline", "p.yaml")
	if code != exitUsage || !strings.Contains(out, "keeps no ledger") || !strings.Contains(out, "--force") {
		t.Errorf("replay after a killed one without a ledger: exit %d, want 2\n%s", code, out)
	}
	if len(srv.Jobs()) != jobs {
		t.Error("the refused replay created jobs")
	}
}

// TestReplayKeepsMaybeStored: an upsert through REST whose every request
// committed and then got a 500 dead-letters its rows
// outcome_unknown_retry (they are stored, the client could not tell).
// Replaying them while every row hits UNABLE_TO_LOCK_ROW must keep saying
// they may be in Salesforce: the soak's REST class found such rows
// dead-lettered as lock errors, which say the row is not loaded, while
// stored (seed 32047).
func TestReplayKeepsMaybeStored(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"data/accounts.csv": planAccountsCSV,
		"p.yaml": sfPipeline(srv, "replay", "      operation: upsert\n      external_id_field: External_Id__c\n"+
			"      api: rest\n      lock_retries: 0\n"),
	})
	srv.SetCollectionFaults(salesforcetest.CollectionFaults{CommitThen5xxNext: 1 << 20})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.Loaded != 0 || !hasErrorGroup(rep, pipeline.CodeOutcomeUnknownRetry) || len(srv.Records("Account")) != 11 {
		t.Fatalf("first run: exit %d, counts %+v, errors %+v, %d records: want 11 stored, all outcome_unknown_retry",
			code, rep.Counts, rep.ErrorGroups, len(srv.Records("Account")))
	}
	srv.SetCollectionFaults(salesforcetest.CollectionFaults{})
	if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	code, rr, out := replay(t, rep.DeadLetters[0], "--pipeline", "p.yaml")
	if code != exitPartial || len(rr.DeadLetters) != 1 {
		t.Fatalf("replay: exit %d, report %+v\n%s", code, rr.Counts, out)
	}
	recs := readCSVFile(t, rr.DeadLetters[0])
	col := slices.Index(recs[0], "_error_code")
	for _, rec := range recs[1:] {
		if rec[col] != pipeline.CodeOutcomeUnknownRetry {
			t.Errorf("replayed row dead-lettered %s, but it is stored: want %s\n%v", rec[col], pipeline.CodeOutcomeUnknownRetry, rec)
		}
	}
	if len(recs) != 12 || len(srv.Records("Account")) != 11 {
		t.Errorf("%d rows dead-lettered by the replay, %d records: want 11 and 11", len(recs)-1, len(srv.Records("Account")))
	}
}
