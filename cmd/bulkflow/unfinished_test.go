package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestPlainRunResumesUnfinishedInsert: the next run of a scheduled sync is
// a plain `bulkflow run FILE` (cron, a Kubernetes CronJob), not `run
// --resume`. When the run before it did not finish, its state (the sync
// manifest, the incremental watermark) does not hold the rows it loaded,
// and a new run sent them again: with insert, 400 second records of 3,000
// rows after a SIGKILL or a Ctrl-C, reported succeeded with exit 0. Now a
// plain run of a pipeline that keeps state and inserts with its ledger on
// resumes the unfinished run (same run id; the ledger skips what it
// loaded): after a SIGKILL, a Ctrl-C, and a run left partial with rows of
// unknown outcome (jobs that outlived poll_timeout: job_incomplete; every
// job's results listing a row twice: result_mismatch, whose rows the next
// run inserted again, 1,000 of 1,000), for a sync and for an incremental
// source. Every row sent is then stored once, and the run after that is a
// new run that inserts nothing.
func TestPlainRunResumesUnfinishedInsert(t *testing.T) {
	bin := buildBulkflow(t)
	const n = 3000
	syncLine := "    sync: {mode: changed, key: AccountNumber, log: out/sync-log/}\n"
	for _, tc := range []struct {
		name        string
		incremental bool      // an incremental source (seq), no sync
		sig         os.Signal // the kill; nil: run 2 ends partial with rows of unknown outcome
	}{
		{"sync/killed", false, os.Kill},
		{"sync/interrupt", false, os.Interrupt},
		{"sync/job_incomplete", false, nil},
		{"sync/result_mismatch", false, nil},
		{"incremental/killed", true, os.Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := insertSyncPipeline(srv, "{type: csv, url: data/accounts.csv}")
			row := func(i int, phone string) string { return fmt.Sprintf("K%06d,Name %d,%s,%d", i, i, phone, i) }
			csvOf := func(rows []string) string { return "id,name,phone,seq\n" + strings.Join(rows, "\n") + "\n" }
			want := map[string]int{}
			var first, second []string
			for i := range n {
				first = append(first, row(i, "111"))
				want[fmt.Sprintf("K%06d 111", i)] = 1
				if !tc.incremental && i%7 == 0 {
					second = append(second, row(i, "222")) // changed
					want[fmt.Sprintf("K%06d 222", i)] = 1
				} else {
					second = append(second, row(i, "111"))
				}
			}
			for i := n; i < n+600; i++ { // new
				second = append(second, row(i, "333"))
				want[fmt.Sprintf("K%06d 333", i)] = 1
			}
			if tc.incremental {
				y = incrementalInsertPipeline(srv, "")
			}
			mismatch := strings.HasSuffix(tc.name, "result_mismatch")
			if tc.sig == nil && !mismatch {
				y = strings.Replace(y, "      ledger: ledger/\n", "      ledger: ledger/\n      poll_timeout: 100ms\n", 1)
			}
			if strings.Contains(y, syncLine) == tc.incremental {
				t.Fatalf("pipeline:\n%s", y)
			}
			writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": csvOf(first)})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != n {
				t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
			}
			writeFiles(t, map[string]string{"data/accounts.csv": csvOf(second)})
			var unfinished string
			if tc.sig != nil {
				unfinished = killRun(t, bin, srv, tc.sig)
			} else {
				// Jobs outlive poll_timeout, or (result_mismatch) every
				// job's results list a row twice: rows of unknown outcome.
				faults, code := salesforcetest.Faults{ProcessingDelay: 400 * time.Millisecond}, "job_incomplete"
				if mismatch {
					faults, code = salesforcetest.Faults{DuplicateResultRow: true}, "result_mismatch"
				}
				if err := srv.SetFaults(faults); err != nil {
					t.Fatal(err)
				}
				exit, rep := runReport(t, "p.yaml")
				if exit != exitPartial || !hasErrorGroup(rep, code) {
					t.Fatalf("run 2: exit %d, status %s, errors %+v: want partial with %s rows", exit, rep.Status, rep.ErrorGroups, code)
				}
				unfinished = rep.RunID
				if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
					t.Fatal(err)
				}
				// The next run comes once the jobs ended (a scheduler's
				// next tick): else its 100ms poll_timeout gives up again.
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					busy := 0
					for _, j := range srv.Jobs() {
						if j.State == salesforcetest.StateUploadComplete || j.State == salesforcetest.StateInProgress {
							busy++
						}
					}
					if busy == 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%d jobs still running after 30 s", busy)
					}
				}
			}

			// The scheduler's next run: plain.
			var stdout, stderr bytes.Buffer
			code := runRun(context.Background(), []string{"p.yaml", "--progress", "none", "--report", "out/next.json"}, &stdout, &stderr)
			rep := readReport(t, "out/next.json")
			if code != exitOK || rep.Status != pipeline.StatusSucceeded || rep.RunID != unfinished || !rep.Counts.Balanced() ||
				!strings.Contains(stderr.String(), "resuming run "+unfinished) {
				t.Errorf("plain run after run %s: exit %d, run %s, status %s, counts %+v; want the unfinished run resumed and succeeded\n%s",
					unfinished, code, rep.RunID, rep.Status, rep.Counts, stderr.String())
			}
			checkRecordCounts(t, srv, want)

			// Finished: the run after is a new one and inserts nothing.
			total := len(srv.Records("Account"))
			code, rep2 := runReport(t, "p.yaml")
			if code != exitOK || rep2.RunID == unfinished || rep2.Counts.Loaded != 0 || len(srv.Records("Account")) != total {
				t.Errorf("the run after: exit %d, run %s (resumed %s), counts %+v, records %d -> %d", code, rep2.RunID, unfinished,
					rep2.Counts, total, len(srv.Records("Account")))
			}
		})
	}
}

// readCSVFile returns the records of a local CSV file (a dead letter: a
// path or a file:// URL), header first.
func readCSVFile(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(strings.TrimPrefix(path, "file://"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("%s: %d records, %v", path, len(recs), err)
	}
	return recs
}

// hasErrorGroup reports whether the report dead-lettered rows with code.
func hasErrorGroup(rep pipeline.Report, code string) bool {
	for _, g := range rep.ErrorGroups {
		if g.Code == code && g.Rows > 0 {
			return true
		}
	}
	return false
}

// TestUnfinishedRule: which ends of which pipelines leave the in-flight
// document for the next run (`run` and serve ask the same question).
func TestUnfinishedRule(t *testing.T) {
	t.Chdir(t.TempDir())
	// pipelineOf is a CSV -> Salesforce pipeline; kind "sync" or
	// "incremental" makes it keep state.
	pipelineOf := func(op, ledger, kind string) *pipeline.Graph {
		t.Helper()
		ext, incr, sync := "", "", ""
		if op == "upsert" {
			ext = ", external_id_field: External_Id__c"
		}
		switch kind {
		case "sync":
			sync = "    sync: {mode: changed, key: id}\n"
		case "incremental":
			incr = "    incremental: {cursor: id}\n"
		}
		writeFiles(t, map[string]string{"data/a.csv": "id,name\nA1,Ada\n", "p.yaml": fmt.Sprintf(`name: p
stages:
  - name: read
    source: {type: csv, url: data/a.csv}
%s  - name: load
    inputs: [read]
    sink: {type: salesforce, object: Account, operation: %s%s, instance_url: "emulator:", ledger: %q}
%s`, incr, op, ext, ledger, sync)})
		g, err := config.LoadFileWith("p.yaml", pipeline.DefaultRegistry(), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	insertSync := pipelineOf("insert", "ledger/", "sync")
	groups := func(codes ...string) []pipeline.ErrorGroup {
		var out []pipeline.ErrorGroup
		for _, c := range codes {
			out = append(out, pipeline.ErrorGroup{Code: c, Recovery: pipeline.RecoveryOf(c).String(), Rows: 1})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		g     *pipeline.Graph
		rep   pipeline.Report
		unfin bool
	}{
		{"insert sync succeeded", insertSync, pipeline.Report{Status: pipeline.StatusSucceeded}, false},
		{"insert sync partial, rows to fix or retry", insertSync, pipeline.Report{Status: pipeline.StatusPartial, ErrorGroups: groups("INVALID_EMAIL_ADDRESS", "UNABLE_TO_LOCK_ROW")}, false},
		{"insert sync partial, job_incomplete", insertSync, pipeline.Report{Status: pipeline.StatusPartial, ErrorGroups: groups("UNABLE_TO_LOCK_ROW", "job_incomplete")}, true},
		{"insert sync partial, result_mismatch", insertSync, pipeline.Report{Status: pipeline.StatusPartial, ErrorGroups: groups("result_mismatch")}, true},
		{"insert sync failed", insertSync, pipeline.Report{Status: pipeline.StatusFailed}, true},
		{"insert sync cancelled", insertSync, pipeline.Report{Status: pipeline.StatusCancelled}, true},
		{"insert incremental failed", pipelineOf("insert", "ledger/", "incremental"), pipeline.Report{Status: pipeline.StatusFailed}, true},
		{"upsert sync failed", pipelineOf("upsert", "ledger/", "sync"), pipeline.Report{Status: pipeline.StatusFailed}, false},
		{"insert sync without a ledger, failed", pipelineOf("insert", "off", "sync"), pipeline.Report{Status: pipeline.StatusFailed}, false},
		{"insert without state, failed", pipelineOf("insert", "ledger/", ""), pipeline.Report{Status: pipeline.StatusFailed}, false},
	} {
		if got := (serveRunner{}).Unfinished(tc.g, &tc.rep); got != tc.unfin {
			t.Errorf("%s: Unfinished = %v, want %v", tc.name, got, tc.unfin)
		}
	}
}

// TestIncrementalInsertMovesPastRetryable: an incremental run that
// dead-letters retryable rows (lock errors) keeps its watermark, so that
// the next run reads those rows again. Behind an insert without a sync
// the next run then inserted every row the first one loaded a second
// time (991 of 1,000, exit 0). Now such a run moves the watermark and
// says why (the report's incremental note); the retryable rows wait in the
// dead letter, and replaying it sends exactly them. With upsert the
// watermark is still held and the next run sends the rows again.
func TestIncrementalInsertMovesPastRetryable(t *testing.T) {
	const n = 1000
	for _, op := range []string{"insert", "upsert"} {
		t.Run(op, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := incrementalInsertPipeline(srv, "      lock_retries: 0\n")
			if op == "upsert" {
				y = strings.ReplaceAll(y, "AccountNumber", "External_Id__c")
				y = strings.Replace(y, "      operation: insert\n", "      operation: upsert\n      external_id_field: External_Id__c\n", 1)
			}
			var rows []string
			want := map[string]int{}
			for i := range n {
				rows = append(rows, fmt.Sprintf("K%06d,Name %d,111,%d", i, i, i))
				want[fmt.Sprintf("K%06d 111", i)] = 1
			}
			writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": "id,name,phone,seq\n" + strings.Join(rows, "\n") + "\n"})
			if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 0.05}); err != nil {
				t.Fatal(err)
			}
			code, rep := runReport(t, "p.yaml")
			failed := rep.Counts.DeadLettered
			inc := rep.Incremental["read"]
			if code != exitPartial || failed == 0 || !hasErrorGroup(rep, "UNABLE_TO_LOCK_ROW") || inc == nil {
				t.Fatalf("run 1: exit %d, counts %+v, errors %+v: want partial with lock errors", code, rep.Counts, rep.ErrorGroups)
			}
			if moved := op == "insert"; inc.Committed != moved || (inc.Note != "") != moved || (inc.Held != "") == moved {
				t.Fatalf("run 1 (%s): incremental %+v; want the watermark moved with a note: %v", op, inc, moved)
			}
			if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			code, rep = runReport(t, "p.yaml")
			if op == "upsert" {
				// Held: every row is read and sent again, onto the same records.
				if code != exitOK || rep.Counts.Loaded != n || len(accountKeys(srv)) != n {
					t.Fatalf("upsert run 2: exit %d, counts %+v, records %d", code, rep.Counts, len(accountKeys(srv)))
				}
				return
			}
			if code != exitOK || rep.Counts.Loaded != 0 || len(srv.Records("Account")) != n-int(failed) {
				t.Fatalf("insert run 2: exit %d, counts %+v, records %d: want nothing sent, %d records", code, rep.Counts, len(srv.Records("Account")), n-failed)
			}
			dls, _ := filepath.Glob("out/dead-letter/*/load.csv")
			if len(dls) != 1 {
				t.Fatalf("dead letters %v", dls)
			}
			code, rr, out := replay(t, dls[0], "--pipeline", "p.yaml")
			if code != exitOK || rr.Counts.Loaded != failed {
				t.Fatalf("replay: exit %d, counts %+v, want %d loaded\n%s", code, rr.Counts, failed, out)
			}
			checkRecordCounts(t, srv, want)
		})
	}
}

// TestReplayOfUnfinishedInsertRun: after a Ctrl-C, the README offered two
// recoveries for the cancelled rows, replay or resume. For a sync that
// inserts, a replay first loaded them and committed them to the manifest,
// but not the rows the run itself loaded; the run could then no longer be
// resumed (its dead letters were replayed), so every later plain run was
// refused (exit 2) — or, before plain runs resumed, inserted those rows
// again. Now the replay is refused while the run is unfinished, sends
// nothing, and says to resume; the next plain run resumes it and every row
// is stored once.
func TestReplayOfUnfinishedInsertRun(t *testing.T) {
	bin := buildBulkflow(t)
	const n = 3000
	srv, want := startInsertSync(t, n)
	id := killRun(t, bin, srv, os.Interrupt)
	dl := filepath.Join("out/dead-letter", id, "load.csv")
	before := len(srv.Records("Account"))
	code, _, out := replay(t, dl, "--pipeline", "p.yaml", "--all")
	if code != exitUsage || len(srv.Records("Account")) != before || !strings.Contains(out, "--resume "+id) {
		t.Fatalf("replay of the cancelled run's dead letter: exit %d, records %d -> %d; want 2, nothing sent, and the resume named\n%s",
			code, before, len(srv.Records("Account")), out)
	}
	var stdout, stderr bytes.Buffer
	code = runRun(context.Background(), []string{"p.yaml", "--progress", "none", "--report", "out/next.json"}, &stdout, &stderr)
	if rep := readReport(t, "out/next.json"); code != exitOK || rep.RunID != id {
		t.Fatalf("plain run: exit %d, run %s; want run %s resumed and succeeded\n%s", code, rep.RunID, id, stderr.String())
	}
	checkRecordCounts(t, srv, want)
	// The resumed attempt superseded the file: still refused, nothing sent.
	if code, _, out := replay(t, dl, "--pipeline", "p.yaml", "--all"); code != exitUsage || len(srv.Records("Account")) != n {
		t.Errorf("replay after the resume: exit %d, records %d\n%s", code, len(srv.Records("Account")), out)
	}
}

// TestReplaySupersededBySync: a sync that reads the whole source sends
// every row its manifest does not hold, so a run after the one that
// dead-lettered a row sends it again (or dead-letters it again, or finds
// it gone). Replaying the older dead letter afterwards sent its older
// values over the newer ones (upsert: 16 of 200 records rolled back to
// the first export's phone, reported succeeded) or, for an insert, stored
// them as extra records. Now such a replay is refused, sends nothing, and
// names the run that superseded it; --force still sends.
func TestReplaySupersededBySync(t *testing.T) {
	for _, tc := range []struct {
		op        string
		cancelled bool // run 2 is cancelled (Ctrl-C) mid-load: it began the sync but commits nothing
	}{{"upsert", false}, {"insert", false}, {"upsert", true}, {"insert", true}} {
		op := tc.op
		t.Run(fmt.Sprintf("%s/cancelled=%v", op, tc.cancelled), func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := syncPipelineOf("accounts-sync", "{type: csv, url: data/accounts.csv}", " {External_Id__c: id, Name: name, Phone: phone}", srv, "")
			y = strings.Replace(y, "      ledger: \"off\"\n", "      ledger: \"off\"\n      lock_retries: 0\n", 1)
			if op == "insert" {
				y = strings.Replace(y, "      operation: upsert\n      external_id_field: External_Id__c\n", "      operation: insert\n", 1)
				y = strings.ReplaceAll(y, "External_Id__c", "AccountNumber")
			}
			export := func(phone string) string {
				var r []string
				for i := range 200 {
					r = append(r, fmt.Sprintf("A%04d,Name %d,%s", i, i, phone))
				}
				return syncCSV(r...)
			}
			writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": export("111")})
			if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 0.1}); err != nil {
				t.Fatal(err)
			}
			code, rep := runReport(t, "p.yaml")
			first := rep.RunID
			if code != exitPartial || rep.Counts.DeadLettered == 0 {
				t.Fatalf("run 1: exit %d %+v: want lock errors", code, rep.Counts)
			}
			if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, map[string]string{"data/accounts.csv": export("222")})
			if tc.cancelled {
				// Before, only a commit superseded the file: a replay after a
				// cancelled run 2 sent the older values over the ones it
				// loaded, and the next run's values after that.
				if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 300 * time.Millisecond}); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan int)
				go func() {
					var stdout, stderr bytes.Buffer
					done <- runRun(ctx, []string{"p.yaml", "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
				}()
				for jobs := len(srv.Jobs()); len(srv.Jobs()) == jobs; time.Sleep(time.Millisecond) {
				}
				cancel()
				code = <-done
				rep = *readReport(t, "out/run.json")
				if code != exitFailed || rep.Status != pipeline.StatusCancelled {
					t.Fatalf("run 2: exit %d, status %s: want cancelled", code, rep.Status)
				}
				if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
					t.Fatal(err)
				}
			} else {
				code, rep = runReport(t, "p.yaml")
				if code != exitOK || rep.Counts.Loaded != 200 {
					t.Fatalf("run 2: exit %d %+v", code, rep.Counts)
				}
			}
			snapshot := func() string {
				var got []string
				for _, r := range srv.Records("Account") {
					got = append(got, r["External_Id__c"]+r["AccountNumber"]+" "+r["Phone"])
				}
				slices.Sort(got)
				return strings.Join(got, ",")
			}
			before := snapshot()
			dl := filepath.Join("out/dead-letter", first, "load.csv")
			code, _, out := replay(t, dl, "--pipeline", "p.yaml")
			if code != exitUsage || snapshot() != before || !strings.Contains(out, "superseded") || !strings.Contains(out, rep.RunID) {
				t.Fatalf("replay of run 1's dead letter after run 2: exit %d, records changed %v; want 2, nothing sent, run 2 named\n%s",
					code, snapshot() != before, out)
			}
			// --force sends it anyway (the older values).
			if code, rr, out := replay(t, dl, "--pipeline", "p.yaml", "--force"); code != exitOK || rr.Counts.Loaded == 0 || snapshot() == before {
				t.Errorf("replay --force: exit %d %+v\n%s", code, rr.Counts, out)
			}
		})
	}
}

// TestIncrementalHeldForUnknownOutcome: an incremental run whose jobs
// outlived poll_timeout dead-letters their rows job_incomplete, for a
// resume to settle through the ledger. The run moved the watermark past
// them, so the resume read none of them: the rows the jobs loaded were
// counted filtered, and the rows the jobs refused (an empty Name here)
// were in no dead letter at all, the resume reporting succeeded. Now the
// watermark is held while rows of unknown outcome wait; the next run
// (which resumes: the sink inserts) settles every row: loaded, or
// dead-lettered with Salesforce's error.
func TestIncrementalHeldForUnknownOutcome(t *testing.T) {
	for _, ledger := range []bool{true, false} {
		t.Run(fmt.Sprintf("ledger=%v", ledger), func(t *testing.T) { incrementalUnknownOutcome(t, ledger) })
	}
}

// incrementalUnknownOutcome is TestIncrementalHeldForUnknownOutcome. With
// the ledger off no resume can settle the rows, and a run that read them
// again would insert the loaded ones a second time: there the watermark
// moves, and the rows stay dead-lettered job_incomplete for a person.
func incrementalUnknownOutcome(t *testing.T, ledger bool) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	y := incrementalInsertPipeline(srv, "      poll_timeout: 100ms\n")
	if !ledger {
		y = strings.Replace(y, "      ledger: ledger/\n", "      ledger: \"off\"\n", 1)
	}
	const n = 1000
	var rows []string
	want := map[string]int{}
	for i := range n {
		name := fmt.Sprintf("Name %d", i)
		if i%100 == 0 {
			name = "" // REQUIRED_FIELD_MISSING
		} else {
			want[fmt.Sprintf("K%06d 111", i)] = 1
		}
		rows = append(rows, fmt.Sprintf("K%06d,%s,111,%d", i, name, i))
	}
	writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": "id,name,phone,seq\n" + strings.Join(rows, "\n") + "\n"})
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 400 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	code, rep := runReport(t, "p.yaml")
	if inc := rep.Incremental["read"]; code != exitPartial || !hasErrorGroup(rep, "job_incomplete") || inc == nil || inc.Committed == ledger || (inc.Held == "") == ledger {
		t.Fatalf("run 1: exit %d, errors %+v, incremental %+v: want partial, job_incomplete rows, the watermark held: %v", code, rep.ErrorGroups, rep.Incremental["read"], ledger)
	}
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the jobs end: the next run finds them done
	code, rep = runReport(t, "p.yaml")
	if !ledger {
		if code != exitOK || rep.Counts.Loaded != 0 {
			t.Fatalf("run 2 without a ledger: exit %d, counts %+v: want nothing read again", code, rep.Counts)
		}
		checkRecordCounts(t, srv, want)
		return
	}
	if code != exitPartial || rep.Counts.Loaded != n-10 || rep.Counts.DeadLettered != 10 || !hasErrorGroup(rep, "REQUIRED_FIELD_MISSING") ||
		rep.Incremental["read"] == nil || !rep.Incremental["read"].Committed {
		t.Fatalf("run 2: exit %d, counts %+v, errors %+v, incremental %+v: want 990 loaded, the 10 refused rows dead-lettered, the watermark moved",
			code, rep.Counts, rep.ErrorGroups, rep.Incremental["read"])
	}
	checkRecordCounts(t, srv, want)
}

// TestReplayUsesTheRunsState: the CronJob example runs `bulkflow run FILE
// --state s3://...`, a state other than the file's, and a `--shard I/N`
// run keeps its own state. replay had neither: it diffed and committed the
// replayed rows in the file's unsharded state, so the next run, whose
// manifest never learned them, inserted them again (16 of 200, exit 0).
// The dead-letter manifest now names the state the run used (state,
// state_name), and replay uses it (or --state).
func TestReplayUsesTheRunsState(t *testing.T) {
	for _, tc := range []struct {
		name            string
		flags           []string
		state, stateKey string // the manifest's state and state_name
	}{
		{"state", []string{"--state", "other-state/"}, "other-state/", "accounts-sync"},
		{"shard", []string{"--shard", "0/2"}, "state/", "accounts-sync.shard-0-of-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := insertSyncPipeline(srv, `{type: csv, url: "data/part-*.csv"}`)
			y = strings.Replace(y, "      ledger: ledger/\n", "      ledger: ledger/\n      lock_retries: 0\n", 1)
			files := map[string]string{"p.yaml": y}
			want := map[string]int{}
			for f := range 2 {
				var rows []string
				for i := range 200 {
					rows = append(rows, fmt.Sprintf("K%d%05d,Name %d,111", f, i, i))
					if f == 0 || tc.name != "shard" { // shard 0 of 2 reads part-0 only
						want[fmt.Sprintf("K%d%05d 111", f, i)] = 1
					}
				}
				files[fmt.Sprintf("data/part-%d.csv", f)] = syncCSV(rows...)
			}
			writeFiles(t, files)
			run := func(name string) (int, *pipeline.Report) {
				var stdout, stderr bytes.Buffer
				args := append([]string{"p.yaml", "--progress", "none", "--report", "out/" + name + ".json"}, tc.flags...)
				code := runRun(context.Background(), args, &stdout, &stderr)
				return code, readReport(t, "out/"+name+".json")
			}
			if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 0.1}); err != nil {
				t.Fatal(err)
			}
			code, rep := run("run1")
			if code != exitPartial || rep.Counts.DeadLettered == 0 {
				t.Fatalf("run 1: exit %d %+v: want lock errors", code, rep.Counts)
			}
			loc, err := blobio.Parse("", rep.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if m, _, err := pipeline.ReadManifest(context.Background(), loc); err != nil || m.State != tc.state || m.StateName != tc.stateKey {
				t.Fatalf("dead-letter manifest %s: %+v (%v), want state %s %s", rep.Manifest, m, err, tc.state, tc.stateKey)
			}
			if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			code, rr, out := replay(t, filepath.Join("out/dead-letter", rep.RunID, "load.csv"), "--pipeline", "p.yaml")
			if code != exitOK || rr.Counts.Loaded != rep.Counts.DeadLettered {
				t.Fatalf("replay: exit %d %+v\n%s", code, rr.Counts, out)
			}
			if code, rep := run("run2"); code != exitOK || rep.Counts.Loaded != 0 {
				t.Errorf("run 2: exit %d, counts %+v: want nothing sent", code, rep.Counts)
			}
			checkRecordCounts(t, srv, want)
		})
	}
}

// TestReconcileFixRefusedWhileUnfinished: --reconcile=fix runs the
// pipeline afresh; with an insert run unfinished it would insert again the
// rows that run loaded, so it is refused (exit 2) before any row moves,
// naming the resume.
func TestReconcileFixRefusedWhileUnfinished(t *testing.T) {
	bin := buildBulkflow(t)
	srv, _ := startInsertSync(t, 3000)
	id := killRun(t, bin, srv, os.Kill)
	before := len(srv.Records("Account"))
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{"p.yaml", "--reconcile=fix", "--progress", "none"}, &stdout, &stderr)
	if code != exitUsage || len(srv.Records("Account")) != before || !strings.Contains(stderr.String(), "--resume "+id) {
		t.Fatalf("--reconcile=fix after a killed insert run: exit %d, records %d -> %d; want 2, nothing sent, the resume named\n%s",
			code, before, len(srv.Records("Account")), stderr.String())
	}
}

// startInsertSync starts an emulator (closed when the test ends), enters a
// temporary folder and writes insertSyncPipeline's p.yaml over n rows
// "K%06d,Name %d,111". want is what checkRecordCounts expects once every
// row is stored.
func startInsertSync(t *testing.T, n int) (*salesforcetest.Server, map[string]int) {
	t.Helper()
	srv := salesforcetest.NewServer(nil)
	t.Cleanup(srv.Close)
	t.Chdir(t.TempDir())
	var rows []string
	want := map[string]int{}
	for i := range n {
		rows = append(rows, fmt.Sprintf("K%06d,Name %d,111", i, i))
		want[fmt.Sprintf("K%06d 111", i)] = 1
	}
	writeFiles(t, map[string]string{"p.yaml": insertSyncPipeline(srv, "{type: csv, url: data/accounts.csv}"), "data/accounts.csv": syncCSV(rows...)})
	return srv, want
}

// incrementalInsertPipeline is insertSyncPipeline without its sync: an
// insert keyed by AccountNumber reading data/accounts.csv (id, name,
// phone, seq) incrementally by the int cursor seq, with sinkOpts (lines
// of the sink block) added.
func incrementalInsertPipeline(srv *salesforcetest.Server, sinkOpts string) string {
	y := insertSyncPipeline(srv, "{type: csv, url: data/accounts.csv, columns: {seq: int}}\n    "+incrementalOn("seq", ""))
	y = strings.Replace(y, "    sync: {mode: changed, key: AccountNumber, log: out/sync-log/}\n", "", 1)
	return strings.Replace(y, "      ledger: ledger/\n", "      ledger: ledger/\n"+sinkOpts, 1)
}

// TestSettleUnknown: rows of an insert sync whose outcome stays unknown —
// a job whose results keep listing a row twice (result_mismatch), REST
// creates that got no answer (outcome_unknown) — kept every run partial:
// the plain run resumes the unfinished run, which reads the same answer,
// and nothing could tell the sync what a person found in Salesforce. With
// `--settle-unknown=loaded` the resume records those rows as stored (the
// manifest holds them; dead-lettered as assumed_loaded, which replay
// refuses even with --all) and the run finishes; with `=absent` they are
// dead-lettered as assumed_absent and the next run sends them. Either way
// every row ends stored exactly once, and the run after sends nothing.
func TestSettleUnknown(t *testing.T) {
	const n = 600
	for _, tc := range []struct {
		name   string
		api    string
		fault  func(*salesforcetest.Server) error
		code   string
		stored bool // the fault's rows are in the org
	}{
		{"bulk/results list a row twice", "bulk", func(s *salesforcetest.Server) error {
			return s.SetFaults(salesforcetest.Faults{DuplicateResultRow: true})
		}, "result_mismatch", true},
		{"rest/committed without an answer", "rest", func(s *salesforcetest.Server) error {
			s.SetCollectionFaults(salesforcetest.CollectionFaults{CommitThen5xxNext: 1 << 20})
			return nil
		}, "outcome_unknown", true},
		{"rest/refused before the commit", "rest", func(s *salesforcetest.Server) error {
			s.SetCollectionFaults(salesforcetest.CollectionFaults{Fail5xxNext: 1 << 20})
			return nil
		}, "outcome_unknown", false},
		// No sync: replay alone keeps a settled row from being sent again.
		{"incremental/results list a row twice", "bulk", func(s *salesforcetest.Server) error {
			return s.SetFaults(salesforcetest.Faults{DuplicateResultRow: true})
		}, "result_mismatch", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, want := startInsertSync(t, n)
			incremental := strings.HasPrefix(tc.name, "incremental/")
			if incremental {
				var rows []string
				for i := range n {
					rows = append(rows, fmt.Sprintf("K%06d,Name %d,111,%d", i, i, i))
				}
				writeFiles(t, map[string]string{"p.yaml": incrementalInsertPipeline(srv, ""),
					"data/accounts.csv": "id,name,phone,seq\n" + strings.Join(rows, "\n") + "\n"})
			}
			if tc.api == "rest" {
				y, _ := os.ReadFile("p.yaml")
				writeFiles(t, map[string]string{"p.yaml": strings.Replace(string(y), "      api: bulk\n", "      api: rest\n", 1)})
			}
			if err := tc.fault(srv); err != nil {
				t.Fatal(err)
			}
			code, rep := runReport(t, "p.yaml")
			if code != exitPartial || !hasErrorGroup(rep, tc.code) {
				t.Fatalf("run 1: exit %d, status %s, errors %+v: want partial with %s rows", code, rep.Status, rep.ErrorGroups, tc.code)
			}
			unfinished := rep.RunID
			if want := "bulkflow run p.yaml --resume " + unfinished; rep.ResumeCommand != want {
				t.Errorf("resume command %q, want %q", rep.ResumeCommand, want)
			}
			// Stuck: the plain run resumes it and reads the same answer.
			code, rep = runReport(t, "p.yaml")
			if code != exitPartial || rep.RunID != unfinished || !hasErrorGroup(rep, tc.code) {
				t.Fatalf("plain run: exit %d, run %s (unfinished %s), errors %+v: want the run resumed, still partial",
					code, rep.RunID, unfinished, rep.ErrorGroups)
			}
			records := len(srv.Records("Account"))
			if tc.stored != (records > 0) {
				t.Fatalf("the fault left %d records; want stored=%v", records, tc.stored)
			}

			// Refused without a run to resume, or with another value.
			var stdout, stderr bytes.Buffer
			if code := runRun(context.Background(), []string{"p.yaml", "--settle-unknown", "maybe", "--progress", "none"}, &stdout, &stderr); code != exitUsage {
				t.Errorf("--settle-unknown maybe: exit %d, want %d\n%s", code, exitUsage, stderr.String())
			}

			// A person looked: settle as found.
			as, settled := "absent", pipeline.CodeAssumedAbsent
			if tc.stored {
				as, settled = "loaded", pipeline.CodeAssumedLoaded
			}
			stderr.Reset()
			code = runRun(context.Background(), []string{"p.yaml", "--settle-unknown=" + as, "--progress", "none", "--report", "out/settle.json"}, &stdout, &stderr)
			rep = *readReport(t, "out/settle.json")
			if code != exitPartial || rep.RunID != unfinished || hasErrorGroup(rep, tc.code) || !hasErrorGroup(rep, settled) ||
				rep.Counts.DeadLettered != n || !rep.Counts.Balanced() {
				t.Fatalf("settle %s: exit %d, run %s, counts %+v, errors %+v: want run %s partial with every row %s\n%s",
					as, code, rep.RunID, rep.Counts, rep.ErrorGroups, unfinished, settled, stderr.String())
			}
			if len(srv.Records("Account")) != records {
				t.Fatalf("the settling run stored %d records, want none", len(srv.Records("Account"))-records)
			}
			srv.SetCollectionFaults(salesforcetest.CollectionFaults{})
			if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			if tc.stored {
				// Replay never sends a row settled as loaded, even with --all.
				if len(rep.DeadLetters) == 0 {
					t.Fatal("no dead letters")
				}
				stdout.Reset()
				stderr.Reset()
				rc := runReplay(context.Background(), []string{rep.DeadLetters[0], "--pipeline", "p.yaml", "--all"}, &stdout, &stderr)
				if got := len(srv.Records("Account")); rc != exitOK || got != records {
					t.Fatalf("replay --all of the settled rows: exit %d, %d records stored, want none\n%s", rc, got-records, stderr.String())
				}
			}

			// Finished: the next run is a new one; it sends the rows found
			// absent and nothing else (an incremental one reads nothing:
			// the watermark moved).
			code, rep = runReport(t, "p.yaml")
			wantLoaded := int64(n)
			if tc.stored || incremental {
				wantLoaded = 0
			}
			if code != exitOK || rep.RunID == unfinished || rep.Counts.Loaded != wantLoaded {
				t.Fatalf("the run after: exit %d, run %s (settled %s), counts %+v, errors %+v; want a new run loading %d",
					code, rep.RunID, unfinished, rep.Counts, rep.ErrorGroups, wantLoaded)
			}
			checkRecordCounts(t, srv, want)
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 0 {
				t.Fatalf("the last run: exit %d, counts %+v; want nothing sent", code, rep.Counts)
			}
			checkRecordCounts(t, srv, want)
		})
	}
}

// TestSettleUnknownNeedsAResume: --settle-unknown settles the rows of a
// run being resumed; on a fresh run it is refused before anything moves.
func TestSettleUnknownNeedsAResume(t *testing.T) {
	srv, _ := startInsertSync(t, 10)
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{"p.yaml", "--settle-unknown=loaded", "--progress", "none"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "--resume RUN_ID") || len(srv.Jobs()) != 0 || len(srv.Records("Account")) != 0 {
		t.Fatalf("exit %d, %d jobs, %d records; want refused (%d) before any job\n%s", code, len(srv.Jobs()), len(srv.Records("Account")), exitUsage, stderr.String())
	}
}

// TestSettleUnknownByJob: a person settles rows of unknown outcome by the
// operation they failed in (_ref), or row by row in a copy of the dead
// letter, as found in Salesforce. Three REST
// creates, one at a time: the first loads, the second is refused before
// the commit, the third commits without an answer. The plain run resumes
// the run and reads the same answers; before the sync held its manifest
// for such a run, the partial run committed the first request's keys, the
// resume's diff left them out and its first chunk differed from the run's:
// a re-cut, refused (exit 2) on every later run. Then settling one ref
// leaves the other's rows unknown and the run unfinished; settling both
// (and a ref that matches no row, which a warning names) finishes it, and
// the next run sends the rows found absent, and nothing else.
func TestSettleUnknownByJob(t *testing.T) {
	const n = 600
	srv, want := startInsertSync(t, n)
	y, _ := os.ReadFile("p.yaml")
	p := strings.Replace(string(y), "      api: bulk\n", "      api: rest\n", 1)
	p = strings.Replace(p, "      concurrency: 2\n", "      concurrency: 1\n", 1)
	writeFiles(t, map[string]string{"p.yaml": p})
	latency := salesforcetest.CollectionFaults{Latency: 100 * time.Millisecond}
	srv.SetCollectionFaults(latency)
	done := make(chan int)
	go func() {
		var stdout, stderr bytes.Buffer
		done <- runRun(context.Background(), []string{"p.yaml", "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
	}()
	// Once the first request has committed, the next two fail.
	for len(srv.Records("Account")) < 200 {
		time.Sleep(time.Millisecond)
	}
	faults := latency
	faults.Fail5xxNext, faults.CommitThen5xxNext = 1, 1
	srv.SetCollectionFaults(faults)
	code := <-done
	rep := *readReport(t, "out/run.json")
	if code != exitPartial || rep.Counts.Loaded != 200 || !hasErrorGroup(rep, "outcome_unknown") || len(srv.Records("Account")) != 400 {
		t.Fatalf("run 1: exit %d, counts %+v, errors %+v, %d records: want 200 loaded, 400 outcome_unknown, 400 stored",
			code, rep.Counts, rep.ErrorGroups, len(srv.Records("Account")))
	}
	srv.SetCollectionFaults(salesforcetest.CollectionFaults{})
	unfinished := rep.RunID
	if code, r2 := runReport(t, "p.yaml"); code != exitPartial || r2.RunID != unfinished || r2.Counts.Loaded != 200 || !hasErrorGroup(r2, "outcome_unknown") {
		t.Fatalf("plain run: exit %d, run %s, counts %+v, errors %+v: want run %s resumed, 200 loaded, still partial",
			code, r2.RunID, r2.Counts, r2.ErrorGroups, unfinished)
	}
	// The person: which ref's rows are in the org?
	stored := map[string]bool{}
	for _, r := range srv.Records("Account") {
		stored[r["AccountNumber"]] = true
	}
	found := map[string]string{} // ref → loaded or absent
	for _, dl := range rep.DeadLetters {
		recs := readCSVFile(t, dl)
		ref, key := slices.Index(recs[0], "_ref"), slices.Index(recs[0], "AccountNumber")
		for _, rec := range recs[1:] {
			as := "absent"
			if stored[rec[key]] {
				as = "loaded"
			}
			if prev, ok := found[rec[ref]]; ok && prev != as {
				t.Fatalf("ref %s holds stored and missing rows", rec[ref])
			}
			found[rec[ref]] = as
		}
	}
	var loadedRef, absentRef string
	for ref, as := range found {
		if as == "loaded" {
			loadedRef = ref
		} else {
			absentRef = ref
		}
	}
	if len(found) != 2 || loadedRef == "" || absentRef == "" {
		t.Fatalf("refs of unknown outcome %v: want one committed and one refused", found)
	}
	settle := func(args ...string) (int, *pipeline.Report, string) {
		var stdout, stderr bytes.Buffer
		args = append([]string{"p.yaml", "--progress", "none", "--report", "out/settle.json"}, args...)
		code := runRun(context.Background(), args, &stdout, &stderr)
		return code, readReport(t, "out/settle.json"), stderr.String()
	}

	// One ref settled: the other's rows stay unknown, nothing is committed.
	code, r2, _ := settle("--settle-unknown", loadedRef+"=loaded")
	if code != exitPartial || r2.RunID != unfinished || !hasErrorGroup(*r2, "outcome_unknown") || !hasErrorGroup(*r2, pipeline.CodeAssumedLoaded) ||
		r2.SyncHeld["load"] == "" {
		t.Fatalf("settling %s only: exit %d, run %s, errors %+v, sync held %v: want %s still unfinished",
			loadedRef, code, r2.RunID, r2.ErrorGroups, r2.SyncHeld, unfinished)
	}
	// That setting holds for the run's later attempts: the scheduler's
	// plain run resumes it and settles loadedRef's rows again, without
	// the flag (before, it read them as unknown again).
	if code, r3 := runReport(t, "p.yaml"); code != exitPartial || r3.RunID != unfinished || !hasErrorGroup(r3, "outcome_unknown") ||
		!hasErrorGroup(r3, pipeline.CodeAssumedLoaded) {
		t.Fatalf("plain run after settling %s: exit %d, run %s, errors %+v: want %s resumed, its rows still assumed_loaded",
			loadedRef, code, r3.RunID, r3.ErrorGroups, unfinished)
	}

	// Then the other ref's rows, one by one in a copy of the dead letter
	// with a _settle column (and a row and a ref that match nothing): with
	// the earlier setting, the run finishes.
	var rows [][]string
	for _, dl := range rep.DeadLetters {
		recs := readCSVFile(t, dl)
		ref := slices.Index(recs[0], "_ref")
		if rows == nil {
			rows = [][]string{append(recs[0], "_settle")}
		}
		for _, rec := range recs[1:] {
			as := ""
			if rec[ref] == absentRef {
				as = "absent"
			}
			rows = append(rows, append(rec, as))
		}
	}
	rows = append(rows, append(slices.Repeat([]string{""}, len(rows[0])-1), "absent"))
	rows[len(rows)-1][slices.Index(rows[0], "_origin")] = "nosuch.csv:1"
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.WriteAll(rows)
	writeFiles(t, map[string]string{"settle.csv": b.String()})
	code, r2, stderr := settle("--settle-unknown", "@settle.csv", "--settle-unknown", "nosuchjob=absent")
	if code != exitPartial || r2.RunID != unfinished || hasErrorGroup(*r2, "outcome_unknown") ||
		!hasErrorGroup(*r2, pipeline.CodeAssumedLoaded) || !hasErrorGroup(*r2, pipeline.CodeAssumedAbsent) || len(r2.SyncHeld) > 0 ||
		!strings.Contains(stderr, "failed in nosuchjob:") || !strings.Contains(stderr, "1 rows of the settlement file matched no row") {
		t.Fatalf("settling the rest: exit %d, run %s, errors %+v: want %s finished, and a warning naming nosuchjob\n%s",
			code, r2.RunID, r2.ErrorGroups, unfinished, stderr)
	}
	// The next run sends the rows found absent, and nothing else.
	code, rep = runReport(t, "p.yaml")
	if code != exitOK || rep.RunID == unfinished || rep.Counts.Loaded != 200 {
		t.Fatalf("the run after: exit %d, run %s, counts %+v, errors %+v; want a new run loading the 200 absent rows", code, rep.RunID, rep.Counts, rep.ErrorGroups)
	}
	checkRecordCounts(t, srv, want)
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 0 {
		t.Fatalf("the last run: exit %d, counts %+v; want nothing sent", code, rep.Counts)
	}
}

// TestReplayLeftUnknownHoldsRuns: a replay of an insert sync's dead
// letters whose jobs' results contradict the upload left rows of unknown
// outcome, and the sync's next run sent them again: stored twice, and the
// run said succeeded. Now such a replay is in flight like a run: the next
// run is refused (exit 2, naming the replay's resume) and sends nothing;
// the replay's resume reads the same answer; its resume with
// --settle-unknown finishes it, and the next run sends nothing.
func TestReplayLeftUnknownHoldsRuns(t *testing.T) {
	srv, want := startInsertSync(t, 600)
	y, _ := os.ReadFile("p.yaml")
	writeFiles(t, map[string]string{"p.yaml": strings.Replace(string(y), "      ledger: ledger/\n", "      ledger: ledger/\n      lock_retries: 0\n", 1)})
	if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 0.1}); err != nil {
		t.Fatal(err)
	}
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || len(rep.DeadLetters) != 1 || rep.Counts.DeadLettered == 0 {
		t.Fatalf("run 1: exit %d, counts %+v, dead letters %v: want partial with lock errors", code, rep.Counts, rep.DeadLetters)
	}
	dl := rep.DeadLetters[0]
	if err := srv.SetFaults(salesforcetest.Faults{DuplicateResultRow: true}); err != nil {
		t.Fatal(err)
	}
	replay := func(args ...string) (int, *pipeline.Report, string) {
		var stdout, stderr bytes.Buffer
		code := runReplay(context.Background(), append([]string{dl, "--pipeline", "p.yaml", "--report", "out/replay.json"}, args...), &stdout, &stderr)
		return code, readReport(t, "out/replay.json"), stderr.String()
	}
	code, r2, out := replay()
	if code != exitPartial || !hasErrorGroup(*r2, "result_mismatch") {
		t.Fatalf("replay: exit %d, errors %+v: want partial with result_mismatch rows", code, r2.ErrorGroups)
	}
	replayID := r2.RunID
	// Its summary says how to settle them: its own resume.
	resume := "bulkflow replay " + dl + " --pipeline p.yaml --resume " + replayID
	if r2.ResumeCommand != resume || !strings.Contains(out, "then settle them: "+resume+" --settle-unknown=loaded") {
		t.Errorf("replay's resume command %q, want %q in the report and the summary\n%s", r2.ResumeCommand, resume, out)
	}
	records := len(srv.Records("Account"))

	// The sync's next run: refused, nothing sent.
	var stdout, stderr bytes.Buffer
	code = runRun(context.Background(), []string{"p.yaml", "--progress", "none"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "replay "+replayID+" of") || !strings.Contains(stderr.String(), "--resume "+replayID) ||
		len(srv.Records("Account")) != records {
		t.Fatalf("run after the replay: exit %d, %d records added; want refused (%d), naming the replay's resume\n%s",
			code, len(srv.Records("Account"))-records, exitUsage, stderr.String())
	}
	// A new replay of the file, forced, is refused too: the one in flight
	// comes first.
	if code, _, out := replay("--settle-unknown=loaded", "--force"); code != exitUsage || !strings.Contains(out, "--resume "+replayID) {
		t.Fatalf("a forced new replay: exit %d, want %d, naming the resume of %s\n%s", code, exitUsage, replayID, out)
	}
	// The resume reads the same answer; settled, it finishes.
	if code, r2, _ = replay("--resume", replayID); code != exitPartial || r2.RunID != replayID || !hasErrorGroup(*r2, "result_mismatch") {
		t.Fatalf("replay --resume: exit %d, run %s, errors %+v: want replay %s still partial", code, r2.RunID, r2.ErrorGroups, replayID)
	}
	if code, r2, _ = replay("--resume", replayID, "--settle-unknown=loaded"); code != exitPartial || hasErrorGroup(*r2, "result_mismatch") ||
		!hasErrorGroup(*r2, pipeline.CodeAssumedLoaded) {
		t.Fatalf("replay --resume --settle-unknown=loaded: exit %d, errors %+v: want every row assumed_loaded", code, r2.ErrorGroups)
	}
	if len(srv.Records("Account")) != records {
		t.Fatalf("the replay's resumes stored %d more records, want none", len(srv.Records("Account"))-records)
	}
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 0 {
		t.Fatalf("the run after: exit %d, counts %+v, errors %+v: want nothing sent", code, rep.Counts, rep.ErrorGroups)
	}
	checkRecordCounts(t, srv, want)
	// --settle-unknown settles a replay being resumed, not a new one.
	if code, _, out := replay("--settle-unknown=loaded", "--force"); code != exitUsage || !strings.Contains(out, "--resume RUN_ID") ||
		len(srv.Records("Account")) != records {
		t.Fatalf("a new replay with --settle-unknown: exit %d, want %d before anything is sent\n%s", code, exitUsage, out)
	}
}

// TestPlainRunResumesMixedJobIncomplete: the common way a sync ends with
// rows of unknown outcome is some jobs outliving poll_timeout while the
// others complete. The partial run committed the manifest with the
// completed jobs' keys; the plain run after it resumed the run, but its
// diff left those rows out, its first chunk differed from the run's, and
// the resume was refused as a re-cut (exit 2), on every later run. Now the
// manifest waits for the resume, which finds the same chunks, reads the
// slow jobs' outcome and succeeds; every row is stored once.
func TestPlainRunResumesMixedJobIncomplete(t *testing.T) {
	const n = 600
	srv, want := startInsertSync(t, n)
	y, _ := os.ReadFile("p.yaml")
	p := strings.Replace(string(y), "      concurrency: 2\n", "      concurrency: 1\n      poll_timeout: 100ms\n", 1)
	writeFiles(t, map[string]string{"p.yaml": p})
	done := make(chan int)
	go func() {
		var stdout, stderr bytes.Buffer
		done <- runRun(context.Background(), []string{"p.yaml", "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
	}()
	// Once the first job has completed, the next ones outlive poll_timeout.
	for deadline := time.Now().Add(30 * time.Second); len(srv.Records("Account")) < 200; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first job did not complete in 30 s")
		}
	}
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 400 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	code := <-done
	rep := *readReport(t, "out/run.json")
	if code != exitPartial || rep.Counts.Loaded != 200 || !hasErrorGroup(rep, "job_incomplete") || rep.SyncHeld["load"] == "" {
		t.Fatalf("run 1: exit %d, counts %+v, errors %+v, sync held %v: want 200 loaded, 400 job_incomplete, the manifest held",
			code, rep.Counts, rep.ErrorGroups, rep.SyncHeld)
	}
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(srv.Records("Account")) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow jobs stored %d of %d rows in 30 s", len(srv.Records("Account")), n)
		}
	}
	code, r2 := runReport(t, "p.yaml")
	if code != exitOK || r2.RunID != rep.RunID || r2.Status != pipeline.StatusSucceeded {
		t.Fatalf("plain run: exit %d, run %s (unfinished %s), status %s, errors %+v: want the run resumed and succeeded",
			code, r2.RunID, rep.RunID, r2.Status, r2.ErrorGroups)
	}
	checkRecordCounts(t, srv, want)
	if code, r3 := runReport(t, "p.yaml"); code != exitOK || r3.Counts.Loaded != 0 {
		t.Fatalf("the run after: exit %d, counts %+v: want nothing sent", code, r3.Counts)
	}
	checkRecordCounts(t, srv, want)
}

// TestFanOutResumeHoldsEverySync: one source feeds an insert sync of
// Accounts (REST, ledger on) and an upsert sync of Contacts (Bulk, ledger
// on). One Accounts create commits without an answer (outcome_unknown), so
// the run is resumed; lock errors leave some Contacts unloaded. Before,
// only the insert's manifest waited for the resume: the Contacts manifest
// committed the loaded keys, the resume's Contacts diff sent only the
// failed rows, its first chunk differed from the run's, and that sink
// refused the resume as a re-cut (exit 2) on every later run. Now every
// sync of a resumed run waits; the resume reads the same chunks, the
// settled run commits both, and the next run sends the lock-failed rows.
func TestFanOutResumeHoldsEverySync(t *testing.T) {
	const n = 600
	srv, want := startInsertSync(t, n) // its p.yaml is replaced below
	sink := func(object, op, api, ledger string) string {
		return fmt.Sprintf("      type: salesforce\n      object: %s\n      operation: %s\n      api: %s\n      instance_url: %q\n"+
			"      auth: {access_token: %q}\n      poll_initial: 5ms\n      poll_max: 50ms\n      ledger: %s\n      max_job_rows: 200\n"+
			"      concurrency: 1\n      lock_retries: 0\n", object, op, api, srv.URL, srv.AccessToken(), ledger)
	}
	pipelineWith := func(ledgerA, ledgerB string) string {
		return "name: fan\ndead_letter: out/dead-letter/\nstate: state/\nstages:\n" +
			"  - name: read\n    source: {type: csv, url: data/accounts.csv}\n" +
			"  - name: accounts\n    inputs: [read]\n    map: {AccountNumber: id, Name: name, Phone: phone}\n" +
			"  - name: load\n    inputs: [accounts]\n    sink:\n" + sink("Account", "insert", "rest", ledgerA) +
			"    sync: {mode: changed, key: AccountNumber}\n" +
			"  - name: contacts\n    inputs: [read]\n    map: {External_Id__c: id, LastName: name}\n" +
			"  - name: load_contacts\n    inputs: [contacts]\n    sink:\n" + sink("Contact", "upsert", "bulk", ledgerB) +
			"      external_id_field: External_Id__c\n    sync: {mode: changed, key: External_Id__c}\n"
	}
	// Two sinks cannot share a ledger: one run would write one ledger for
	// both. Refused before anything moves, naming the fix.
	writeFiles(t, map[string]string{"p.yaml": pipelineWith("ledger/", "./ledger")})
	var stdout, stderr bytes.Buffer
	if code := runRun(context.Background(), []string{"p.yaml", "--progress", "none"}, &stdout, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), `stage "load_contacts": keeps its run ledger where sink stage "load" does`) || len(srv.Jobs()) != 0 {
		t.Fatalf("two sinks, one ledger: exit %d, %d jobs; want refused (%d) before any job\n%s", code, len(srv.Jobs()), exitUsage, stderr.String())
	}
	writeFiles(t, map[string]string{"p.yaml": pipelineWith("ledger/accounts/", "ledger/contacts/")})
	srv.SetCollectionFaults(salesforcetest.CollectionFaults{CommitThen5xxNext: 1})
	if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 0.2}); err != nil {
		t.Fatal(err)
	}
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || !hasErrorGroup(rep, "outcome_unknown") || !hasErrorGroup(rep, "UNABLE_TO_LOCK_ROW") || len(rep.SyncHeld) != 2 {
		t.Fatalf("run 1: exit %d, errors %+v %v, sync held %v: want partial with outcome_unknown and lock errors, both manifests held",
			code, rep.ErrorGroups, rep.Errors, rep.SyncHeld)
	}
	srv.SetCollectionFaults(salesforcetest.CollectionFaults{})
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	unfinished := rep.RunID
	// The plain run resumes it: the same chunks, the same answers.
	code, r2 := runReport(t, "p.yaml")
	if code != exitPartial || r2.RunID != unfinished || !hasErrorGroup(r2, "outcome_unknown") {
		t.Fatalf("plain run: exit %d, run %s (unfinished %s), errors %+v: want the run resumed, still partial",
			code, r2.RunID, unfinished, r2.ErrorGroups)
	}
	// The person looks each row up: the request committed, but the lock
	// errors refused some of its rows.
	stored := map[string]bool{}
	for _, r := range srv.Records("Account") {
		stored[r["AccountNumber"]] = true
	}
	settled := [][]string{}
	for _, dl := range r2.DeadLetters {
		recs := readCSVFile(t, dl)
		key, code := slices.Index(recs[0], "AccountNumber"), slices.Index(recs[0], "_error_code")
		if key < 0 {
			continue
		}
		settled = append(settled, append(recs[0], "_settle"))
		for _, rec := range recs[1:] {
			as := ""
			if rec[code] == "outcome_unknown" {
				as = map[bool]string{true: "loaded", false: "absent"}[stored[rec[key]]]
			}
			settled = append(settled, append(rec, as))
		}
	}
	var b strings.Builder
	csv.NewWriter(&b).WriteAll(settled)
	writeFiles(t, map[string]string{"settle.csv": b.String()})
	stderr.Reset()
	if code := runRun(context.Background(), []string{"p.yaml", "--settle-unknown=@settle.csv", "--progress", "none", "--report", "out/settle.json"}, &stdout, &stderr); code != exitPartial {
		t.Fatalf("settle: exit %d, want %d\n%s", code, exitPartial, stderr.String())
	}
	if r3 := readReport(t, "out/settle.json"); r3.RunID != unfinished || hasErrorGroup(*r3, "outcome_unknown") || len(r3.SyncHeld) > 0 {
		t.Fatalf("settle: run %s, errors %+v, sync held %v: want run %s finished", r3.RunID, r3.ErrorGroups, r3.SyncHeld, unfinished)
	}
	// The next run sends what the lock errors left, once.
	if code, r4 := runReport(t, "p.yaml"); code != exitOK || r4.RunID == unfinished || r4.Counts.Loaded == 0 {
		t.Fatalf("the run after: exit %d, run %s, counts %+v, errors %+v: want a new run loading the lock-failed rows",
			code, r4.RunID, r4.Counts, r4.ErrorGroups)
	}
	checkRecordCounts(t, srv, want)
	if got := len(srv.Records("Contact")); got != n {
		t.Fatalf("%d Contacts, want %d", got, n)
	}
	if code, r5 := runReport(t, "p.yaml"); code != exitOK || r5.Counts.Loaded != 0 {
		t.Fatalf("the last run: exit %d, counts %+v: want nothing sent", code, r5.Counts)
	}
}

// TestServeAppliesSettlement: serve's recovery of an unfinished run
// (serveRunner.Begin with resumed) settles its rows of unknown outcome as
// an earlier `run --resume --settle-unknown` of the run recorded, as a
// plain run does (TestSettleUnknownByJob); a fresh run gets nothing.
func TestServeAppliesSettlement(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"data/accounts.csv": planAccountsCSV, "p.yaml": sfPipeline(srv, "settled", "      ledger: ledger/\n")})
	g, code := loadPipeline("p.yaml", config.Options{}, io.Discard)
	if code != exitOK {
		t.Fatal("load p.yaml")
	}
	ctx := context.Background()
	const runID = "20260101T000000Z-0000abcd"
	log := slog.New(slog.DiscardHandler)
	given := &pipeline.Settlement{}
	if err := given.Add("rest:" + runID + "/b0.a0.r0=loaded"); err != nil {
		t.Fatal(err)
	}
	if _, err := resumeSettlement(ctx, g, stateLocation("", g), stateName(g, pipeline.Shard{}), runID, given, log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("ledger", "settled", runID, settlementFile)); err != nil {
		t.Fatalf("the settlement is not beside the run's lock: %v", err)
	}
	for _, tc := range []struct {
		run     string
		resumed bool
		want    string
	}{{runID, true, "rest:" + runID + "/b0.a0.r0=loaded"}, {"20260102T000000Z-0000abcd", false, ""}} {
		env := &pipeline.Env{RunID: tc.run, Pipeline: g.Name, Logger: log}
		opts, unlock, err := serveRunner{}.Begin(ctx, g, env, nil, tc.resumed, nil)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
		if got := opts.SettleUnknown.String(); got != tc.want {
			t.Errorf("run %s (resumed %v): settlement %q, want %q", tc.run, tc.resumed, got, tc.want)
		}
	}
}

// TestPlainRunAfterKillPastCommit: an insert sync killed after it
// committed its manifest but before it cleared its in-flight record (the
// soak's sync class, seed 32066) left every later plain run refused: the
// plain run resumed the run, whose diff against the manifest the run had
// just written left only its dead-lettered rows, so its first chunk
// differed from the run's and the ledger refused the resume as a re-cut
// (exit 2, forever). A run whose every state commit names it finished its
// state: the plain run now starts afresh, and sends what the manifest
// lacks (here the rows the run dead-lettered), once.
func TestPlainRunAfterKillPastCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		// beforeRecord: the kill landed between the manifest's write and
		// its commit record (the seed's other outcome, about 1 in 20).
		beforeRecord bool
		// incremental: the source is read incrementally too, and the run's
		// lock errors held its watermark back.
		incremental bool
	}{{"after the commit record", false, false}, {"before the commit record", true, false}, {"incremental, watermark held", false, true}} {
		t.Run(tc.name, func(t *testing.T) { testPlainRunAfterKillPastCommit(t, tc.beforeRecord, tc.incremental) })
	}
}

func testPlainRunAfterKillPastCommit(t *testing.T, beforeRecord, incremental bool) {
	srv, want := startInsertSync(t, 600)
	y, _ := os.ReadFile("p.yaml")
	p := strings.Replace(string(y), "      ledger: ledger/\n", "      ledger: ledger/\n      lock_retries: 0\n", 1)
	if incremental {
		src := "{type: csv, url: data/accounts.csv}"
		p = strings.Replace(p, src, "{type: csv, url: data/accounts.csv, columns: {seq: int}}\n    "+incrementalOn("seq", ""), 1)
		var rows []string
		for i := range 600 {
			rows = append(rows, fmt.Sprintf("K%06d,Name %d,111,%d", i, i, i))
		}
		writeFiles(t, map[string]string{"data/accounts.csv": "id,name,phone,seq\n" + strings.Join(rows, "\n") + "\n"})
		if p == string(y) || !strings.Contains(p, "incremental:") {
			t.Fatalf("pipeline:\n%s", p)
		}
	}
	writeFiles(t, map[string]string{"p.yaml": p})
	if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 0.05}); err != nil {
		t.Fatal(err)
	}
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.DeadLettered == 0 || rep.Counts.Loaded+rep.Counts.DeadLettered != 600 ||
		incremental && (rep.Incremental == nil || rep.Incremental["read"].Held == "") {
		t.Fatalf("run 1: exit %d, counts %+v, incremental %+v: want partial with lock errors (and the watermark held)", code, rep.Counts, rep.Incremental)
	}
	// The kill's moment: the state is committed, the in-flight record
	// still names the run.
	g, code := loadPipeline("p.yaml", config.Options{}, io.Discard)
	if code != exitOK {
		t.Fatal("load p.yaml")
	}
	ctx := context.Background()
	st := inflightAgain(t, g, rep.RunID)
	if beforeRecord {
		records, _ := filepath.Glob(filepath.Join(stateLocation("", g), g.Name, "docs", "sync-commit-*.json"))
		if len(records) != 1 {
			t.Fatalf("commit records %v, want one", records)
		}
		if err := os.Remove(records[0]); err != nil {
			t.Fatal(err)
		}
	}
	// serve asks the same before it resumes a run.
	if !(serveRunner{}).Committed(ctx, "p.yaml", st, rep.RunID) || (serveRunner{}).Committed(ctx, "p.yaml", st, "20260101T000000Z-0000abcd") {
		t.Error("serve's Committed does not say that run 1, and only run 1, committed its state")
	}
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	code, r2 := runReport(t, "p.yaml")
	if code != exitOK || r2.RunID == rep.RunID || r2.Counts.Loaded != rep.Counts.DeadLettered {
		t.Fatalf("plain run: exit %d, run %s, counts %+v, errors %+v: want a new run (not %s) loading the %d rows run 1 dead-lettered",
			code, r2.RunID, r2.Counts, r2.ErrorGroups, rep.RunID, rep.Counts.DeadLettered)
	}
	checkRecordCounts(t, srv, want)
	if code, r3 := runReport(t, "p.yaml"); code != exitOK || r3.Counts.Loaded != 0 {
		t.Fatalf("the run after: exit %d, counts %+v; want nothing sent", code, r3.Counts)
	}
}

// TestResumeKilledBetweenSyncCommits: a pipeline whose rows fan out to
// two sync stages (an insert into Salesforce, then a CSV archive) commits
// their manifests one after the other. A run killed between the two (or
// whose second commit failed) left the first stage's manifest holding the
// rows it loaded and the second's not: the plain run resumed it, the
// first stage's diff against its new manifest cut other chunks than the
// run had: with rows dead-lettered the ledger refused the resume as a
// re-cut (exit 2, on every later run); with none, it had no chunk left to
// send and reported succeeded with none of the run's rows loaded (the
// soak's sync class with fan-out, killed at the commit). The syncer now
// keeps the manifest a run replaces, and the run's resume diffs against
// it: the same chunks, which the ledger skips and counts as loaded; the
// second stage sends what it had not committed, and every row is stored
// once. The kill lands after load's commit record, or between its
// manifest's write and that record. The state is in a local folder, and
// on S3, GCS and Azure (where the kept manifest is a server-side copy).
func TestResumeKilledBetweenSyncCommits(t *testing.T) {
	for _, tc := range []struct {
		name         string
		beforeRecord bool
		lockErrors   bool   // some of run 2's rows are dead-lettered
		store        string // the state's blob store ("": a local folder)
	}{
		{"after load's commit record", false, true, ""},
		{"before load's commit record", true, true, ""},
		{"every row loaded", false, false, ""},
		{"state on S3", false, true, "S3"},
		{"state on GCS", false, true, "GCS"},
		{"state on Azure", false, true, "Azure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateURL := func(key string) string { return filepath.Join("state", key) }
			if tc.store != "" {
				stateURL = storeNamed(tc.store).NewBucket(t).URL
			}
			testResumeKilledBetweenSyncCommits(t, tc.beforeRecord, tc.lockErrors, stateURL)
		})
	}
}

// testResumeKilledBetweenSyncCommits plays TestResumeKilledBetweenSyncCommits
// with the state store at stateURL("") (stateURL(KEY): its object KEY).
func testResumeKilledBetweenSyncCommits(t *testing.T, beforeRecord, lockErrors bool, stateURL func(key string) string) {
	srv, want := startInsertSync(t, 600)
	y, _ := os.ReadFile("p.yaml")
	p := strings.Replace(string(y), "      ledger: ledger/\n", "      ledger: ledger/\n      lock_retries: 0\n", 1) + "  - name: archive\n    inputs: [map]\n    sink: {type: csv, url: \"out/archive-{run_id}.csv\"}\n" +
		"    sync: {mode: changed, key: AccountNumber}\n"
	p = strings.Replace(p, "state: state/\n", fmt.Sprintf("state: %q\n", stateURL("")), 1)
	writeFiles(t, map[string]string{"p.yaml": p})
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 1200 {
		t.Fatalf("run 1: exit %d, counts %+v; want 600 rows loaded by each sink", code, rep.Counts)
	}
	// Run 2 changes 50 rows and adds 30.
	var rows []string
	for i := range 630 {
		phone := "111"
		if i < 50 || i >= 600 {
			phone = "222"
			want[fmt.Sprintf("K%06d 222", i)] = 1
		}
		rows = append(rows, fmt.Sprintf("K%06d,Name %d,%s", i, i, phone))
	}
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(rows...)})
	g, code := loadPipeline("p.yaml", config.Options{}, io.Discard)
	if code != exitOK {
		t.Fatal("load p.yaml")
	}
	if g.Stages[2].Name != "load" || g.Stages[3].Name != "archive" {
		t.Fatalf("stages %v: want load, then archive", g.Stages)
	}
	archiveState := []string{"sync/archive.manifest", "docs/sync-commit-archive.json", "docs/sync-writing-archive.json", "docs/sync-start-archive.json"}
	if beforeRecord {
		archiveState = append(archiveState, "docs/sync-commit-load.json")
	}
	saved := map[string]string{}
	for _, f := range archiveState {
		saved[f] = readBlob(t, stateURL(g.Name+"/"+f))
	}
	saved0 := readBlob(t, stateURL(g.Name+"/sync/load.manifest")) // run 1's
	// Lock errors dead-letter a few of run 2's rows: the resume's diff
	// against load's new manifest would hold them alone.
	wantCode := exitOK
	if lockErrors {
		wantCode = exitPartial
		if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 0.1}); err != nil {
			t.Fatal(err)
		}
	}
	code, rep := runReport(t, "p.yaml")
	if code != wantCode || (rep.Counts.DeadLettered > 0) != lockErrors || rep.Counts.Loaded+rep.Counts.DeadLettered != 160 {
		t.Fatalf("run 2: exit %d, counts %+v; want 80 rows by each sink, dead-lettered (lock errors) %v", code, rep.Counts, lockErrors)
	}
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	if kept := readBlob(t, stateURL(g.Name+"/sync/load.manifest.before")); kept != saved0 {
		t.Fatalf("load's kept manifest (%d bytes) is not the one run 2 replaced (%d bytes)", len(kept), len(saved0))
	}
	// The kill's moment: load committed run 2, archive did not (its
	// state as run 1 left it), and the in-flight record names run 2.
	for f, b := range saved {
		writeBlob(t, stateURL(g.Name+"/"+f), []byte(b))
	}
	os.Remove(filepath.Join("out", "archive-"+rep.RunID+".csv"))
	ctx := context.Background()
	st := inflightAgain(t, g, rep.RunID)
	if done, err := committedRun(ctx, st, g, rep.RunID); err != nil || done {
		t.Fatalf("committedRun = %v, %v: want false (archive did not commit)", done, err)
	}
	var stdout, stderr bytes.Buffer
	code = runRun(ctx, []string{"p.yaml", "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
	var r2 pipeline.Report
	b, err := os.ReadFile("out/run.json")
	if err == nil {
		err = json.Unmarshal(b, &r2)
	}
	if err != nil {
		t.Fatalf("plain run: exit %d, no report (%v)\n%s", code, err, stderr.String())
	}
	if code != wantCode || r2.RunID != rep.RunID || r2.Counts.DeadLettered != rep.Counts.DeadLettered ||
		stageLoaded(r2, "load") != 80-rep.Counts.DeadLettered || stageLoaded(r2, "archive") != 80 {
		t.Fatalf("plain run: exit %d, run %s (want %s resumed), stages %+v (want load %d loaded, %d dead-lettered again; archive 80)\n%s",
			code, r2.RunID, rep.RunID, r2.Stages, 80-rep.Counts.DeadLettered, rep.Counts.DeadLettered, stderr.String())
	}
	archived, err := os.ReadFile(filepath.Join("out", "archive-"+rep.RunID+".csv"))
	if err != nil || bytes.Count(archived, []byte("\n")) != 81 {
		t.Fatalf("the resume's archive (%v): %d lines, want a header and 80 rows", err, bytes.Count(archived, []byte("\n")))
	}
	// The next run sends the rows run 2 dead-lettered, once; the one
	// after, nothing.
	if code, r3 := runReport(t, "p.yaml"); code != exitOK || r3.RunID == rep.RunID || r3.Counts.Loaded != rep.Counts.DeadLettered {
		t.Fatalf("the run after: exit %d, run %s, counts %+v; want a new run loading the %d rows run 2 dead-lettered",
			code, r3.RunID, r3.Counts, rep.Counts.DeadLettered)
	}
	checkRecordCounts(t, srv, want)
	if code, r4 := runReport(t, "p.yaml"); code != exitOK || r4.Counts.Loaded != 0 {
		t.Fatalf("the last run: exit %d, counts %+v; want nothing sent", code, r4.Counts)
	}
}

// inflightAgain writes back the in-flight record of run runID of g, as a
// kill after the run committed its state but before it cleared the record
// leaves it, and returns the state store.
func inflightAgain(t *testing.T, g *pipeline.Graph, runID string) *state.Store {
	t.Helper()
	ctx := context.Background()
	st, _, err := openInflight(ctx, stateLocation("", g), stateName(g, pipeline.Shard{}))
	if err == nil {
		_, err = markInflight(ctx, st, g, runID, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// stageLoaded returns the rows stage name of rep loaded (-1 when rep has
// no such stage).
func stageLoaded(rep pipeline.Report, name string) int64 {
	for _, s := range rep.Stages {
		if s.Name == name {
			return s.Loaded
		}
	}
	return -1
}
