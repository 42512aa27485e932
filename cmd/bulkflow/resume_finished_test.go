package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestResumeFinishedRunReplayed: a run ends partial (every row
// UNABLE_TO_LOCK_ROW), and its dead letter is replayed by the real binary
// into the emulator. While the replay runs, a `run --resume` of the
// finished run is refused (the replay holds the run's lock); the replay is
// SIGKILLed, and a `run --resume` is refused again (exit 2, naming the
// unfinished replay and the command that resumes it) without a job; the
// replay is resumed and succeeds; `run --resume` of the run is refused
// (exit 2: its dead letter was replayed, and a resume would account for
// those rows afresh), and leaves the manifest as it was; `replay --resume`
// of the succeeded replay sends nothing new and says so truthfully, and
// `run --resume` of the replay's run id is refused. Every row is stored
// once, and no job processed a row twice.
func TestResumeFinishedRunReplayed(t *testing.T) {
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
	runID := runs[0].Name()
	dl := filepath.Join(dir, "dl", runID, "write.csv")
	manPath := filepath.Join(dir, "dl", runID, "manifest.json")
	readManifest := func() pipeline.Manifest {
		t.Helper()
		var m pipeline.Manifest
		data, err := os.ReadFile(manPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	jobs0 := len(srv.Jobs())
	waitJobs := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); len(srv.Jobs()) < jobs0+n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d replay jobs, waited for %d", len(srv.Jobs())-jobs0, n)
			}
		}
	}
	resumeRun := []string{"run", file, "--progress", "none", "--resume", runID}
	replayArgs := []string{"replay", dl, "--pipeline", file}

	cmd, wait := start(replayArgs...)
	waitJobs(1)
	// The race: the run's dead letter is being replayed; a resume of the
	// run would read its source again (its jobs cannot be told from the
	// replay's: the kill and the count of rows processed below check them).
	if r := run(resumeRun...); r.code != exitFailed || !strings.Contains(r.out, "in progress in another process") {
		t.Errorf("run --resume during a replay of its dead letter: exit %d, want 1 (locked)\n%s", r.code, r.out)
	}
	waitJobs(3)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	if r := wait(); r.code != -1 {
		t.Fatalf("replay finished before the kill: exit %d\n%s", r.code, r.out)
	}
	jobs := len(srv.Jobs())
	if r := run(resumeRun...); r.code != exitUsage || !strings.Contains(r.out, "replay") ||
		!strings.Contains(r.out, pipeline.ShellCommand("bulkflow", "replay", dl, "--pipeline", file)) {
		t.Errorf("run --resume after a killed replay: exit %d, want 2 naming the replay to resume\n%s", r.code, r.out)
	}
	if n := len(srv.Jobs()); n != jobs {
		t.Errorf("the refused resume created %d jobs", n-jobs)
	}

	// The killed replay is resumed and finishes.
	if r := run(replayArgs...); r.code != exitOK || !strings.Contains(r.out, "resuming replay run") {
		t.Fatalf("replay after the kill: exit %d\n%s", r.code, r.out)
	}
	checkEachRowOnce(t, srv)
	before, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatal(err)
	}
	m := readManifest()
	if len(m.Files) != 1 || len(m.Files[0].ReplayedBy) != 1 {
		t.Fatalf("manifest after the replay: %+v", m)
	}
	replayID := m.Files[0].ReplayedBy[0]

	// The run finished and its dead letter was replayed: a resume is
	// refused before any row moves, naming the state.
	jobs = len(srv.Jobs())
	r := run(append(resumeRun, "--report", filepath.Join(dir, "resume.json"))...)
	if r.code != exitUsage || !strings.Contains(r.out, "already finished") || !strings.Contains(r.out, replayID) ||
		!strings.Contains(r.out, "partial") {
		t.Errorf("run --resume of the finished, replayed run: exit %d, want 2 naming the replay\n%s", r.code, r.out)
	}
	if n := len(srv.Jobs()); n != jobs {
		t.Errorf("the refused resume created %d jobs", n-jobs)
	}
	if after, err := os.ReadFile(manPath); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the refused resume changed the manifest:\n%s\nwas\n%s", after, before)
	}
	if _, err := os.Stat(filepath.Join(dir, "dl", runID, "attempt-2")); err == nil {
		t.Error("the refused resume wrote an attempt-2 folder")
	}

	// The succeeded replay, resumed: nothing is sent again, and the
	// report says every row is loaded (by the jobs the ledger records).
	jobs = len(srv.Jobs())
	rep := filepath.Join(dir, "replay-resume.json")
	if r := run(append(replayArgs, "--resume", replayID, "--report", rep)...); r.code != exitOK {
		t.Errorf("replay --resume of the succeeded replay: exit %d\n%s", r.code, r.out)
	}
	if n := len(srv.Jobs()); n != jobs {
		t.Errorf("replay --resume of a succeeded replay created %d jobs", n-jobs)
	}
	var rr resumeReport
	if data, err := os.ReadFile(rep); err != nil || json.Unmarshal(data, &rr) != nil {
		t.Fatalf("replay --resume report: %v", err)
	}
	if rr.RunID != replayID || rr.Status != pipeline.StatusSucceeded || rr.Counts.Loaded != resumeRows || rr.Counts.DeadLettered != 0 {
		t.Errorf("replay --resume report: run %s status %s counts %+v", rr.RunID, rr.Status, rr.Counts)
	}
	if m := readManifest(); len(m.Files) != 1 || !slices.Equal(m.Files[0].ReplayedBy, []string{replayID}) || m.Attempt != 1 {
		t.Errorf("manifest after replay --resume: %+v", m)
	}
	// The replay's run id is resumed by replay, never by run (which would
	// read the pipeline's source).
	jobs = len(srv.Jobs())
	if r := run("run", file, "--progress", "none", "--resume", replayID); r.code != exitUsage || !strings.Contains(r.out, "is a replay of") ||
		!strings.Contains(r.out, "--resume "+replayID) {
		t.Errorf("run --resume of the replay's run id: exit %d, want 2\n%s", r.code, r.out)
	}
	if n := len(srv.Jobs()); n != jobs {
		t.Errorf("run --resume of the replay's run id created %d jobs", n-jobs)
	}
	checkEachRowOnce(t, srv)
	var processed, failed int64
	for _, j := range srv.Jobs()[jobs0:] {
		processed += j.NumberRecordsProcessed
		failed += j.NumberRecordsFailed
	}
	if processed != resumeRows || failed != 0 {
		t.Errorf("replay jobs processed %d rows (%d failed), want %d", processed, failed, resumeRows)
	}

	// serve resumes a run a crash or shutdown left in flight through its
	// Runner: that resume is refused the same way, before any row moves.
	t.Chdir(dir)
	plan, g, env, ok := serveRunner{}.Prepare(context.Background(), file, io.Discard)
	if !ok {
		t.Fatal("serve: prepare failed")
	}
	defer plan.Close()
	env.RunID = runID
	opts, unlock, err := serveRunner{}.Begin(context.Background(), g, env, nil, true, func(error) {})
	if err == nil {
		unlock()
		t.Errorf("serve's resume of the finished, replayed run began (options %+v), want it refused", opts)
	} else if !strings.Contains(err.Error(), "already finished") || !strings.Contains(err.Error(), replayID) {
		t.Errorf("serve's resume of the finished, replayed run: %v, want it refused naming replay %s", err, replayID)
	}
}

// TestReplayResumeFirst: a finished run's dead letter holds rows whose job
// may have run (job_incomplete: the job outlived poll_timeout) beside a
// retryable row. Replaying it first would load the retryable row and then
// make the resume that settles the others refuse to run, so the replay is
// refused (exit 2, nothing sent, nothing recorded), naming the resume; the
// resume then settles every row: each stored once.
func TestReplayResumeFirst(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 400 * time.Millisecond}})
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"data/accounts.csv": planAccountsCSV,
		"p.yaml":            sfPipeline(srv, "resumefirst", "      poll_timeout: 50ms\n      api: bulk\n"),
	})
	code, rep := runReport(t, "p.yaml")
	if code != exitPartial || rep.Counts.DeadLettered != 11 {
		t.Fatalf("run: exit %d counts %+v", code, rep.Counts)
	}
	dl := filepath.Join("out/dead-letter", rep.RunID, "load.csv")
	// One row of the file says UNABLE_TO_LOCK_ROW (retryable), as a job
	// that finished with that error would have.
	recs := readCSVFile(t, dl)
	if len(recs) != 12 {
		t.Fatalf("dead letter: %d records, want 12", len(recs))
	}
	codeCol, retryCol := slices.Index(recs[0], "_error_code"), slices.Index(recs[0], "_retryable")
	if recs[1][codeCol] != pipeline.CodeJobIncomplete {
		t.Fatalf("dead-letter code %q, want job_incomplete", recs[1][codeCol])
	}
	recs[1][codeCol], recs[1][retryCol] = "UNABLE_TO_LOCK_ROW", "true"
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.WriteAll(recs)
	if err := os.WriteFile(dl, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the org finishes the job
	if n := len(srv.Records("Account")); n != 11 {
		t.Fatalf("the org stored %d records, want 11", n)
	}
	jobs := len(srv.Jobs())
	code, _, out := replay(t, dl, "--pipeline", "p.yaml")
	if code != exitUsage || !strings.Contains(out, "10 rows whose Salesforce job may have run (job_incomplete) beside 1 others") ||
		!strings.Contains(out, "resume the run first (bulkflow run p.yaml --resume "+rep.RunID+")") {
		t.Errorf("replay of a file with job_incomplete rows: exit %d, want 2 naming the resume\n%s", code, out)
	}
	if n := len(srv.Jobs()); n != jobs {
		t.Errorf("the refused replay created %d jobs", n-jobs)
	}
	if _, err := os.Stat(filepath.Join("out/dead-letter", replayLedgerName)); !os.IsNotExist(err) {
		t.Errorf("the refused replay recorded itself: %v", err)
	}
	var stdout, stderr bytes.Buffer
	if code := runRun(context.Background(), []string{"p.yaml", "--resume", rep.RunID, "--progress", "none"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, stderr.String())
	}
	if names := accountNames(srv); len(names) != 11 || len(slices.Compact(names)) != 11 {
		t.Errorf("after the resume: %d records, %d distinct names", len(names), len(slices.Compact(slices.Clone(names))))
	}
}
