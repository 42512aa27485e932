package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/sinks/filesink"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

const resumeRows = 3000

// buildBulkflow builds the command into a temporary directory.
func buildBulkflow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bulkflow")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// resumeReport is the part of the run report the test checks.
type resumeReport struct {
	RunID  string          `json:"run_id"`
	Status string          `json:"status"`
	Counts pipeline.Counts `json:"counts"`
	Errors []string        `json:"errors"`
	Sinks  map[string]struct {
		APICalls      int64            `json:"api_calls"`
		ErrorsByCode  map[string]int64 `json:"errors_by_code"`
		ResumedChunks int              `json:"resumed_chunks"`
		RunID         string           `json:"run_id"`
	} `json:"sinks"`
}

// writeResumePipeline writes the input CSV and the pipeline file into dir.
func writeResumePipeline(t *testing.T, dir string, srv *salesforcetest.Server) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("External_Id__c,Name\n")
	for i := range resumeRows {
		fmt.Fprintf(&b, "K%06d,Account %d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`name: resume-test
dead_letter: %s/dl/
stages:
  - name: read
    source:
      type: csv
      url: %s/accounts.csv
  - name: write
    inputs: [read]
    sink:
      type: salesforce
      object: Account
      operation: insert
      api: bulk
      max_job_rows: 300
      concurrency: 2
      poll_initial: 20ms
      poll_max: 100ms
      instance_url: %s
      auth: {access_token: %q}
      ledger: %s/ledger
`, dir, dir, srv.URL, srv.AccessToken(), dir)
	file := filepath.Join(dir, "load.yaml")
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// resumeInProcess runs the pipeline with Env.RunID = runID, as
// `bulkflow run FILE --resume RUN_ID` does.
func resumeInProcess(t *testing.T, file, runID string, stderr io.Writer) resumeReport {
	t.Helper()
	ctx := context.Background()
	reg := pipeline.DefaultRegistry()
	g, err := config.LoadFile(file, reg)
	if err != nil {
		t.Fatal(err)
	}
	env := &pipeline.Env{RunID: runID, Pipeline: g.Name, Lookups: g.Lookups,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	plan, err := pipeline.Prepare(ctx, reg, g, env)
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := plan.Run(ctx, &pipeline.RunOptions{
		DeadLetters: filesink.DeadLetters,
	})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var out resumeReport
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestResumeAfterKill SIGKILLs `bulkflow run` at several points of a load
// into the emulator, resumes the run by id and checks that every input row
// is stored exactly once and that no row was processed twice.
func TestResumeAfterKill(t *testing.T) {
	bin := buildBulkflow(t)
	help, _ := exec.Command(bin, "run", "--help").CombinedOutput()
	hasResumeFlag := bytes.Contains(help, []byte("-resume"))
	t.Logf("bulkflow run --resume available: %v", hasResumeFlag)

	jobsIn := func(jobs []salesforcetest.JobInfo, state string) int {
		n := 0
		for _, j := range jobs {
			if string(j.State) == state {
				n++
			}
		}
		return n
	}
	points := []struct {
		name string
		kill func(jobs []salesforcetest.JobInfo) bool
	}{
		{"first-job-created", func(j []salesforcetest.JobInfo) bool { return len(j) >= 1 }},
		{"first-job-closed", func(j []salesforcetest.JobInfo) bool {
			return jobsIn(j, salesforcetest.StateUploadComplete) >= 1
		}},
		{"three-jobs", func(j []salesforcetest.JobInfo) bool { return len(j) >= 3 }},
		{"two-complete", func(j []salesforcetest.JobInfo) bool { return jobsIn(j, salesforcetest.StateJobComplete) >= 2 }},
		{"eight-jobs", func(j []salesforcetest.JobInfo) bool { return len(j) >= 8 }},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 150 * time.Millisecond}})
			defer srv.Close()
			dir := t.TempDir()
			file := writeResumePipeline(t, dir, srv)

			var stderr1 bytes.Buffer
			cmd := exec.Command(bin, "run", file, "--report", filepath.Join(dir, "report1.json"), "--progress", "none")
			cmd.Dir, cmd.Stderr = dir, &stderr1
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			deadline := time.Now().Add(30 * time.Second)
			killed := false
		wait:
			for time.Now().Before(deadline) {
				select {
				case err := <-exited:
					t.Fatalf("bulkflow finished before the kill point: %v\n%s", err, stderr1.String())
				default:
				}
				if p.kill(srv.Jobs()) {
					if err := cmd.Process.Kill(); err != nil { // SIGKILL
						t.Fatal(err)
					}
					killed = true
					break wait
				}
				time.Sleep(time.Millisecond)
			}
			if !killed {
				cmd.Process.Kill()
				t.Fatalf("kill point not reached\n%s", stderr1.String())
			}
			<-exited
			jobsAtKill := srv.Jobs()
			var states []string
			for _, j := range jobsAtKill {
				states = append(states, string(j.State))
			}
			t.Logf("killed with %d jobs: %v; stored %d", len(jobsAtKill), states, len(srv.Records("Account")))

			runs, err := os.ReadDir(filepath.Join(dir, "ledger", "resume-test"))
			if err != nil || len(runs) != 1 {
				t.Fatalf("ledger runs %v: %v", runs, err)
			}
			runID := runs[0].Name()

			var stderr2 bytes.Buffer
			var rep resumeReport
			if hasResumeFlag {
				reportFile := filepath.Join(dir, "report2.json")
				cmd := exec.Command(bin, "run", file, "--resume", runID, "--report", reportFile, "--progress", "none")
				cmd.Dir, cmd.Stderr = dir, &stderr2
				if err := cmd.Run(); err != nil {
					t.Errorf("resume: %v\n%s", err, stderr2.String())
				}
				data, err := os.ReadFile(reportFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(data, &rep); err != nil {
					t.Fatal(err)
				}
			} else {
				rep = resumeInProcess(t, file, runID, &stderr2)
			}
			if rep.RunID != runID || rep.Status != pipeline.StatusSucceeded || !rep.Counts.Balanced() ||
				rep.Counts.Read != resumeRows || rep.Counts.Loaded != resumeRows || rep.Counts.DeadLettered != 0 {
				t.Errorf("resumed report: run %s status %s counts %+v errors %v\n%s", rep.RunID, rep.Status, rep.Counts, rep.Errors, stderr2.String())
			}
			sink := rep.Sinks["write"]
			if len(sink.ErrorsByCode) != 0 || sink.RunID != runID || sink.APICalls == 0 {
				t.Errorf("sink stats %+v", sink)
			}
			// Every input row stored exactly once.
			stored := map[string]int{}
			for _, r := range srv.Records("Account") {
				stored[r["External_Id__c"]]++
			}
			for i := range resumeRows {
				k := fmt.Sprintf("K%06d", i)
				if stored[k] != 1 {
					t.Errorf("%s stored %d times", k, stored[k])
				}
				delete(stored, k)
			}
			if len(stored) != 0 {
				t.Errorf("%d unexpected records", len(stored))
			}
			// No row was processed twice: jobs processed exactly the input.
			var processed, failed int64
			for _, j := range srv.Jobs() {
				processed += j.NumberRecordsProcessed
				failed += j.NumberRecordsFailed
			}
			if processed != resumeRows || failed != 0 {
				t.Errorf("jobs processed %d rows (%d failed), want %d", processed, failed, resumeRows)
			}
			t.Logf("resumed chunks %d, api calls %d, jobs in all %d", sink.ResumedChunks, sink.APICalls, len(srv.Jobs()))
		})
	}
}

// TestResumeUnknownRunID refuses --resume of an id the pipeline has no
// record of (exit 2, nothing sent), suggests the closest known id and says
// where it looked; the real id resumes.
func TestResumeUnknownRunID(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	file := writeResumePipeline(t, dir, srv)
	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := runRun(context.Background(), append([]string{file, "--progress", "none"}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	// No run at all yet.
	code, out := run("--resume", "20260101T120000Z-1a2b3c4d")
	if code != exitUsage || !strings.Contains(out, "no record of that run") || !strings.Contains(out, "no recorded runs at all") ||
		!strings.Contains(out, "looked in: ledger "+filepath.Join(dir, "ledger")) {
		t.Fatalf("resume before any run: exit %d\n%s", code, out)
	}
	if n := len(srv.Jobs()); n != 0 {
		t.Fatalf("a refused resume created %d jobs", n)
	}
	if code, out := run("--report", "r1.json"); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, out)
	}
	var rep resumeReport
	data, err := os.ReadFile("r1.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	jobs := len(srv.Jobs())
	typo := rep.RunID[:len(rep.RunID)-2] + rep.RunID[len(rep.RunID)-1:] + rep.RunID[len(rep.RunID)-2:len(rep.RunID)-1] // last two swapped
	if typo == rep.RunID {
		typo = rep.RunID[:len(rep.RunID)-1] + "z"
	}
	for _, tc := range []struct{ id, want string }{
		{typo, "Did you mean " + rep.RunID + "?"},
		{"nothing-like-it", "Known runs, newest first: " + rep.RunID + "."},
	} {
		code, out := run("--resume", tc.id)
		if code != exitUsage || !strings.Contains(out, tc.want) || !strings.Contains(out, "dead letters ") {
			t.Errorf("--resume %s: exit %d, want 2 and %q\n%s", tc.id, code, tc.want, out)
		}
	}
	if n := len(srv.Jobs()); n != jobs {
		t.Fatalf("refused resumes created %d jobs", n-jobs)
	}
	// The real id is known (by its ledger): resuming a finished run sends
	// nothing again.
	if code, out := run("--resume", rep.RunID); code != exitOK {
		t.Fatalf("resume of the real id: exit %d\n%s", code, out)
	}
	if n := len(srv.Records("Account")); n != resumeRows {
		t.Errorf("%d records after resuming a finished run, want %d", n, resumeRows)
	}
}

// TestConcurrentResumes kills a load into the emulator, then starts two
// `bulkflow run --resume` of the run at once: exactly one proceeds, the
// other fails fast (exit 1) naming the holder of the run's lock, and the
// emulator ends with every row once.
func TestConcurrentResumes(t *testing.T) {
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 150 * time.Millisecond}})
	defer srv.Close()
	dir := t.TempDir()
	file := writeResumePipeline(t, dir, srv)
	var stderr1 bytes.Buffer
	cmd := exec.Command(bin, "run", file, "--progress", "none")
	cmd.Dir, cmd.Stderr = dir, &stderr1
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.Jobs()) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(srv.Jobs()) < 3 {
		t.Fatalf("kill point not reached\n%s", stderr1.String())
	}
	runs, err := os.ReadDir(filepath.Join(dir, "ledger", "resume-test"))
	if err != nil || len(runs) != 1 {
		t.Fatalf("ledger runs %v: %v", runs, err)
	}
	runID := runs[0].Name()

	type result struct {
		code int
		out  string
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			var out bytes.Buffer
			c := exec.Command(bin, "run", file, "--resume", runID, "--progress", "none")
			c.Dir, c.Stdout, c.Stderr = dir, &out, &out
			err := c.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				code = -1
			}
			results <- result{code, out.String()}
		}()
	}
	var ok, locked int
	for range 2 {
		r := <-results
		switch {
		case r.code == exitOK:
			ok++
		case r.code == exitFailed && strings.Contains(r.out, "is in progress in another process") && strings.Contains(r.out, ".lock"):
			locked++
			t.Logf("refused resume: %s", r.out)
		default:
			t.Errorf("resume: exit %d\n%s", r.code, r.out)
		}
	}
	if ok != 1 || locked != 1 {
		t.Errorf("%d resumes succeeded and %d were refused, want 1 and 1", ok, locked)
	}
	// The killed first attempt left no manifest; the resume still counts
	// as attempt 2 (its dead letters would not be replayed had it stopped
	// part-way: the first attempt's jobs may have loaded their rows).
	var m pipeline.Manifest
	if data, err := os.ReadFile(filepath.Join(dir, "dl", runID, "manifest.json")); err != nil || json.Unmarshal(data, &m) != nil ||
		m.Attempt != 2 || m.Status != pipeline.StatusSucceeded {
		t.Errorf("manifest after the resume: %+v (%v)", m, err)
	}
	checkEachRowOnce(t, srv)
}

// TestResumeSupersedesDeadLetters: an insert load is cancelled (Ctrl-C:
// its in-flight rows are dead-lettered "cancelled", retryable), a resume
// is killed with SIGKILL, a second resume finishes. The manifest then lists
// the first attempt's file as superseded; replaying every dead-letter file
// of the run (--all, with a --map fix) is refused for it and loads the
// last attempt's live rows (Salesforce refused their Name): the emulator
// holds each row once.
func TestResumeSupersedesDeadLetters(t *testing.T) {
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 300 * time.Millisecond}})
	defer srv.Close()
	dir := t.TempDir()
	file := writeResumePipeline(t, dir, srv)
	// Every 600th row has a Name Salesforce refuses (STRING_TOO_LONG): the
	// finished run keeps them in a live dead letter, fixed by replay --map.
	var b strings.Builder
	b.WriteString("External_Id__c,Name\n")
	bad := 0
	for i := range resumeRows {
		name := fmt.Sprintf("Account %d", i)
		if i%600 == 7 {
			name, bad = strings.Repeat("L", 300), bad+1
		}
		fmt.Fprintf(&b, "K%06d,%s\n", i, name)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// start runs bulkflow with args and stops it with sig once jobs
	// exist in the emulator; it returns the exit code and output.
	start := func(sig os.Signal, jobs int, args ...string) (int, string) {
		var out bytes.Buffer
		cmd := exec.Command(bin, append([]string{"run", file, "--progress", "none"}, args...)...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(30 * time.Second)
		for sig != nil && len(srv.Jobs()) < jobs && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if sig != nil {
			cmd.Process.Signal(sig)
		}
		err := <-exited
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
			return ee.ExitCode(), out.String()
		} else if err != nil {
			return -1, out.String() // killed
		}
		return 0, out.String()
	}
	code, out := start(os.Interrupt, 3)
	if code != exitFailed {
		t.Fatalf("cancelled run: exit %d\n%s", code, out)
	}
	runs, err := os.ReadDir(filepath.Join(dir, "dl"))
	if err != nil || len(runs) != 1 {
		t.Fatalf("dead-letter runs %v: %v\n%s", runs, err, out)
	}
	runID := runs[0].Name()
	// The resume hint names the real pipeline file.
	if hint := "bulkflow run " + file + " --resume " + runID; !strings.Contains(out, hint) || strings.Contains(out, "run FILE") {
		t.Errorf("the cancelled run does not say %q:\n%s", hint, out)
	}
	readManifest := func() pipeline.Manifest {
		var m pipeline.Manifest
		data, err := os.ReadFile(filepath.Join(dir, "dl", runID, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := readManifest()
	if m.Status != pipeline.StatusCancelled || len(m.Files) != 1 || m.Files[0].Rows == 0 {
		t.Fatalf("manifest after Ctrl-C: %+v", m)
	}
	firstFile := filepath.Join(dir, "dl", runID, "write.csv")
	t.Logf("cancelled attempt dead-lettered %d rows; %d stored", m.Files[0].Rows, len(srv.Records("Account")))

	code, out = start(os.Kill, len(srv.Jobs())+1, "--resume", runID)
	if code != -1 {
		t.Fatalf("resume to kill: exit %d (finished before the kill)\n%s", code, out)
	}
	if m := readManifest(); m.Status != pipeline.ManifestRunning || m.Attempt != 2 || len(m.Files) != 0 || len(m.Superseded) != 1 {
		t.Fatalf("manifest after a killed resume: %+v", m)
	}
	// A file of an earlier attempt cannot be replayed while the run is
	// unfinished, nor after.
	var stdout, stderr bytes.Buffer
	t.Chdir(dir)
	if code := runReplay(context.Background(), []string{firstFile, "--pipeline", file}, &stdout, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "superseded") {
		t.Fatalf("replay during an unfinished resume: exit %d\n%s", code, stderr.String())
	}
	code, out = start(nil, 0, "--resume", runID)
	if code != exitPartial {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	m = readManifest()
	if m.Status != pipeline.StatusPartial || m.Attempt != 3 || len(m.Files) != 1 || m.Files[0].Rows != int64(bad) ||
		!strings.HasSuffix(m.Files[0].URL, runID+"/attempt-3/write.csv") || len(m.Superseded) != 1 ||
		m.Superseded[0].Attempt != 1 || m.Superseded[0].SupersededBy != 2 || !m.Counts.Balanced() || m.Counts.Loaded != int64(resumeRows-bad) {
		t.Fatalf("manifest after the resume: %+v", m)
	}
	// Replay everything there is: every dead-letter file of the run.
	var files []string
	filepath.WalkDir(filepath.Join(dir, "dl"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".csv") {
			files = append(files, p)
		}
		return nil
	})
	replayed := 0
	for _, f := range files {
		stdout.Reset()
		stderr.Reset()
		code := runReplay(context.Background(), []string{f, "--pipeline", file, "--all", "--map", `Name=len(Name) > 255 ? "fixed" : Name`}, &stdout, &stderr)
		switch {
		case strings.Contains(f, "attempt-3"):
			replayed++
			if code != exitOK {
				t.Errorf("replay of the live file %s: exit %d\n%s", f, code, stderr.String())
			}
		case code != exitUsage || !strings.Contains(stderr.String(), "superseded"):
			t.Errorf("replay %s: exit %d, want 2 (superseded)\n%s", f, code, stderr.String())
		}
	}
	if replayed != 1 || len(files) < 2 {
		t.Errorf("dead-letter files %v: want the superseded one and one live", files)
	}
	checkEachRowOnce(t, srv)
}

// TestRunPreflight: run makes validate's pre-flight before any row moves:
// a mapped field the object does not have stops it (exit 2, no job
// created, the field named with the pipeline file's line); --offline skips
// the check and the rows reach Salesforce, which refuses them.
func TestRunPreflight(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	file := writeResumePipeline(t, dir, srv)
	// The source feeds the sink directly: its header names the fields, and
	// Account has no field Nmae.
	if err := os.WriteFile(filepath.Join(dir, "accounts.csv"), []byte("External_Id__c,Nmae\nK1,One\nK2,Two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := runRun(context.Background(), []string{file, "--progress", "none"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "Nmae") || !strings.Contains(stderr.String(), "load.yaml:") ||
		!strings.Contains(stderr.String(), "nothing was sent") {
		t.Fatalf("run with a bad field: exit %d\n%s", code, stderr.String())
	}
	if n := len(srv.Jobs()); n != 0 {
		t.Fatalf("the refused run created %d jobs", n)
	}
	stderr.Reset()
	code = runRun(context.Background(), []string{file, "--progress", "none", "--offline"}, &stdout, &stderr)
	if code == exitOK || code == exitUsage || len(srv.Jobs()) == 0 {
		t.Fatalf("--offline: exit %d, %d jobs\n%s", code, len(srv.Jobs()), stderr.String())
	}
}

// checkEachRowOnce checks that the emulator holds every row of
// writeResumePipeline's input exactly once, and nothing else.
func checkEachRowOnce(t *testing.T, srv *salesforcetest.Server) {
	t.Helper()
	stored := map[string]int{}
	for _, r := range srv.Records("Account") {
		stored[r["External_Id__c"]]++
	}
	for i := range resumeRows {
		if k := fmt.Sprintf("K%06d", i); stored[k] != 1 {
			t.Errorf("%s stored %d times", k, stored[k])
		}
	}
	if len(stored) != resumeRows {
		t.Errorf("%d distinct records, want %d", len(stored), resumeRows)
	}
}

// TestResumeSourceChanged: the source is re-exported in another order
// between a killed run and its resume; the resume cuts other chunks than
// the ones the first attempt uploaded, so it stops before uploading (exit
// 2), naming the source object that changed.
func TestResumeSourceChanged(t *testing.T) {
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 150 * time.Millisecond}})
	defer srv.Close()
	dir := t.TempDir()
	file := writeResumePipeline(t, dir, srv)
	var out bytes.Buffer
	cmd := exec.Command(bin, "run", file, "--progress", "none")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	complete := func() int {
		n := 0
		for _, j := range srv.Jobs() {
			if j.State == salesforcetest.StateJobComplete {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(30 * time.Second); complete() < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if complete() < 2 || len(srv.Records("Account")) == resumeRows {
		t.Fatalf("kill point not reached: %d jobs complete, %d records\n%s", complete(), len(srv.Records("Account")), out.String())
	}
	runs, err := os.ReadDir(filepath.Join(dir, "ledger", "resume-test"))
	if err != nil || len(runs) != 1 {
		t.Fatalf("ledger runs %v: %v", runs, err)
	}
	// Re-exported: the same rows, newest first.
	data, err := os.ReadFile(filepath.Join(dir, "accounts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	slices.Reverse(lines[1:])
	time.Sleep(10 * time.Millisecond) // a later modification time
	if err := os.WriteFile(filepath.Join(dir, "accounts.csv"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jobs := len(srv.Jobs())
	var stdout, stderr bytes.Buffer
	t.Chdir(dir)
	code := runRun(context.Background(), []string{file, "--resume", runs[0].Name(), "--progress", "none"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "source object "+filepath.Join(dir, "accounts.csv")+" changed") {
		t.Fatalf("resume after a re-export: exit %d\n%s", code, stderr.String())
	}
	if n := len(srv.Jobs()); n != jobs {
		t.Errorf("the refused resume created %d jobs", n-jobs)
	}
}
