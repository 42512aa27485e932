package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/state"
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
