package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/scratch"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestRunSweepsKilledRunsFolders: a run SIGKILLed mid-load leaves its
// scratch folders (the sync's spilled rows, the Salesforce sink's job
// spool) in the temporary directory; the next `bulkflow run` removes them
// once they are old enough, says so, and leaves nothing of its own.
func TestRunSweepsKilledRunsFolders(t *testing.T) {
	bin := buildBulkflow(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the child processes' temporary directory
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	y := strings.Replace(syncPipeline(srv, "100%"), "      ledger: \"off\"\n", "      ledger: \"off\"\n      max_job_rows: 100\n      concurrency: 2\n", 1)
	var rows []string
	for i := range 1000 {
		rows = append(rows, fmt.Sprintf("K%04d,Name %d,111", i, i))
	}
	writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": syncCSV(rows...)})
	killMidLoad(t, bin, srv, 0, os.Kill)
	left, _ := filepath.Glob(filepath.Join(tmp, scratch.Prefix+"*"))
	if len(left) < 2 {
		t.Fatalf("the killed run left %v in its temporary directory; want its spill and spool folders", left)
	}
	// Old enough to be swept (a fresh one is spared for an hour).
	old := time.Now().Add(-2 * time.Hour)
	for _, dir := range left {
		if err := os.Chtimes(filepath.Join(dir, scratch.LockFile), old, old); err != nil {
			t.Fatal(err)
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "p.yaml", "--progress", "none")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the run after the kill: %v\n%s", err, stderr.String())
	}
	if want := fmt.Sprintf("removed %d temporary folders that killed runs left", len(left)); !strings.Contains(stderr.String(), want) {
		t.Errorf("the run's output does not say %q:\n%s", want, stderr.String())
	}
	if after, _ := filepath.Glob(filepath.Join(tmp, scratch.Prefix+"*")); len(after) != 0 {
		t.Errorf("left in the temporary directory after the run: %v", after)
	}
}
