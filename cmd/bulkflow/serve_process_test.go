package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve/servetest"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestServeProcessesShareALease starts three `bulkflow serve` processes on
// one pipeline directory and one state directory, with a schedule that
// fires every second in each of them, and checks from the shared run
// history that no two runs of the pipeline ever overlapped, while the
// processes did contend for it.
func TestServeProcessesShareALease(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBulkflow(t)
	root := t.TempDir()
	dir, stateDir, data := filepath.Join(root, "pipelines"), filepath.Join(root, "state")+"/", filepath.Join(root, "data")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(data, 0o755)
	var csv strings.Builder
	csv.WriteString("id,name,city\n")
	for i := range 60000 {
		fmt.Fprintf(&csv, "%d,name %d,city %d\n", i, i, i%97)
	}
	os.WriteFile(filepath.Join(data, "in.csv"), []byte(csv.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "copy.yaml"), []byte(`name: copy
schedule: "@every 1s"
dead_letter: `+data+`/dead-letter/
stages:
  - name: read
    source: {type: csv, url: `+data+`/in.csv}
  - name: map
    inputs: [read]
    map: {Id: id, Name: upper(name), City: city}
  - name: write
    inputs: [map]
    sink: {type: csv, url: `+data+`/out.csv}
`), 0o644)

	type proc struct {
		cmd    *exec.Cmd
		stderr *bytes.Buffer
	}
	var procs []proc
	for range 3 {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "serve", "--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0", "--grace", "30s")
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, proc{cmd, &stderr})
	}
	time.Sleep(6 * time.Second)
	var wg sync.WaitGroup
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
		wg.Go(func() {
			done := make(chan error, 1)
			go func() { done <- p.cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve exited with %v\n%s", err, p.stderr.String())
				}
			case <-time.After(60 * time.Second):
				p.cmd.Process.Kill()
				t.Errorf("serve did not stop after SIGTERM\n%s", p.stderr.String())
			}
		})
	}
	wg.Wait()

	st, err := state.Open(context.Background(), stateDir, "copy")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.Runs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < 2 {
		t.Fatalf("%d runs recorded in 6 s; want several", len(runs))
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.Before(runs[j].StartedAt) })
	holders := map[string]int{}
	for i, r := range runs {
		holders[r.Holder]++
		if r.Status != "succeeded" {
			t.Errorf("run %s: %s %v", r.RunID, r.Status, r.Errors)
		}
		if i > 0 && r.StartedAt.Before(runs[i-1].FinishedAt) {
			t.Errorf("runs overlap: %s (%s..%s by %s) and %s (%s..%s by %s)", runs[i-1].RunID, runs[i-1].StartedAt.Format(time.StampMilli),
				runs[i-1].FinishedAt.Format(time.StampMilli), runs[i-1].Holder, r.RunID, r.StartedAt.Format(time.StampMilli), r.FinishedAt.Format(time.StampMilli), r.Holder)
		}
	}
	skipped := 0
	for _, p := range procs {
		skipped += strings.Count(p.stderr.String(), "scheduled run skipped")
	}
	t.Logf("%d runs by %d processes %v; %d scheduled runs skipped because another process held the lease", len(runs), len(holders), holders, skipped)
	if skipped == 0 {
		t.Error("no process ever found the lease taken: the test did not exercise contention")
	}
}

// TestServeResumesAfterKill SIGKILLs a `bulkflow serve` process in the
// middle of a load into the emulator and starts another one on the same
// state: the new process sees that the lease holder is a dead process of
// this host, takes the lease over at once (not after the 2-minute ttl)
// and resumes the crashed run under its run id at start-up; every row
// reaches Salesforce exactly once.
func TestServeResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 1500 * time.Millisecond}})
	defer srv.Close()
	root := t.TempDir()
	dir, stateDir, data := filepath.Join(root, "pipelines"), filepath.Join(root, "state")+"/", filepath.Join(root, "data")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(data, 0o755)
	// The resume tests' load (resumeRows rows, jobs of 300), scheduled.
	y, err := os.ReadFile(writeResumePipeline(t, data, srv))
	if err != nil {
		t.Fatal(err)
	}
	const name, rows = "resume-test", resumeRows
	scheduled := strings.Replace(string(y), "name: "+name+"\n", "name: "+name+"\nschedule: \""+servetest.Never+"\"\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "load.yaml"), []byte(scheduled), 0o644); err != nil || scheduled == string(y) {
		t.Fatalf("write the scheduled pipeline (%v); schedule added: %v", err, scheduled != string(y))
	}

	start := func() (*exec.Cmd, *servetest.SafeBuffer, string) {
		t.Helper()
		stderr := &servetest.SafeBuffer{}
		cmd := exec.Command(bin, "serve", "--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0", "--grace", "30s")
		cmd.Stderr = stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		m := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
		if err != nil || m == nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("serve printed %q (%v)\n%s", line, err, stderr.String())
		}
		return cmd, stderr, m[1]
	}

	a, aErr, addr := start()
	code, body := servetest.Do(t, "POST", "http://"+addr+"/run/"+name)
	var started struct {
		RunID string `json:"run_id"`
	}
	if code != 202 || json.Unmarshal([]byte(body), &started) != nil || started.RunID == "" {
		a.Process.Kill()
		a.Wait()
		t.Fatalf("POST /run/%s = %d %s\n%s", name, code, body, aErr.String())
	}
	// Kill it when some jobs are done and another is closed and processing
	// (the emulator holds each closed job 1.5 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		complete, closed := false, false
		for _, j := range srv.Jobs() {
			complete = complete || j.State == "JobComplete"
			closed = closed || j.State == "UploadComplete"
		}
		if complete && closed {
			break
		}
		if time.Now().After(deadline) {
			a.Process.Kill()
			a.Wait()
			t.Fatalf("no job complete while another processes\n%s", aErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Process.Kill()
	a.Wait() // reaped: its pid no longer exists
	st, err := state.Open(context.Background(), stateDir, name)
	if err != nil {
		t.Fatal(err)
	}
	le, err := st.ReadLease(context.Background())
	host, _ := os.Hostname()
	if err != nil || le.Holder != fmt.Sprintf("%s:%d", host, a.Process.Pid) || !le.Expires.After(time.Now().Add(time.Minute)) {
		t.Fatalf("lease after the kill = %+v, %v; want the killed process's, valid for over a minute", le, err)
	}
	loadedBefore := len(srv.Records("Account"))

	restarted := time.Now()
	b, bErr, bAddr := start()
	defer func() {
		b.Process.Signal(syscall.SIGTERM)
		if err := b.Wait(); err != nil {
			t.Errorf("restarted serve exited with %v\n%s", err, bErr.String())
		}
	}()
	var rec state.RunRecord
	for deadline := time.Now().Add(60 * time.Second); ; {
		runs, err := st.Runs(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) > 0 {
			rec = runs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the crashed run was not resumed within 60 s\n%s", bErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(restarted)
	if rec.RunID != started.RunID || rec.Trigger != "startup+resume" || rec.Status != "succeeded" ||
		rec.Holder != fmt.Sprintf("%s:%d", host, b.Process.Pid) {
		t.Fatalf("run = %+v; want %s resumed at start-up by the new process and succeeded\n%s", rec, started.RunID, bErr.String())
	}
	if rec.LeaseGeneration != le.Generation+1 {
		t.Errorf("resumed under lease generation %d, want %d", rec.LeaseGeneration, le.Generation+1)
	}
	if !strings.Contains(bErr.String(), "took over the lease of a dead process of this host") {
		t.Errorf("restarted serve did not log the takeover:\n%s", bErr.String())
	}
	recs := srv.Records("Account")
	seen := map[string]int{}
	for _, r := range recs {
		seen[r["External_Id__c"]]++
	}
	if len(recs) != rows || len(seen) != rows {
		t.Errorf("emulator holds %d records of %d distinct keys; want each of %d rows once", len(recs), len(seen), rows)
	}
	// Nothing is left in flight, and the server takes new runs.
	if code, body := servetest.Do(t, "POST", "http://"+bAddr+"/run/"+name); code != 202 {
		t.Errorf("POST after the resume = %d %s", code, body)
	}
	t.Logf("killed with %d of %d rows loaded; the restarted serve resumed run %s and finished it %.1f s after it started (lease ttl 120 s)",
		loadedBefore, rows, rec.RunID, took.Seconds())
}
