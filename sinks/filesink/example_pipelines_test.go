package filesink_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/sinks/filesink"
	_ "github.com/bulkflow/bulkflow/sources/all"
	_ "github.com/bulkflow/bulkflow/transforms/all"
)

// TestIncrementalExampleKeepsEveryRun runs pipelines/accounts-incremental.yaml
// twice: the second run (nothing newer than the watermark) writes its own
// object and leaves the first run's rows where they were (issue 14.7: the
// example overwrote its output each run).
func TestIncrementalExampleKeepsEveryRun(t *testing.T) {
	ctx := context.Background()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(repo, "pipelines/data/accounts.csv"))
	must(err)
	must(os.MkdirAll(filepath.Join(base, "pipelines/data"), 0o755))
	must(os.WriteFile(filepath.Join(base, "pipelines/data/accounts.csv"), data, 0o644))
	yaml, err := os.ReadFile(filepath.Join(repo, "pipelines/accounts-incremental.yaml"))
	must(err)
	reg := pipeline.DefaultRegistry()
	st, err := state.Open(ctx, "mem://incremental-example/", "accounts-incremental")
	must(err)

	rowsOf := func(runID string) int {
		t.Helper()
		f, err := os.Open(filepath.Join(base, "out/accounts-incremental/accounts-"+runID+".csv"))
		if err != nil {
			t.Fatalf("run %s: %v", runID, err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return len(recs) - 1
	}
	var loaded []int64
	runs := []string{"20261205T080000Z-00000001", "20261206T080000Z-00000002"}
	for _, id := range runs {
		g, err := config.Load("pipelines/accounts-incremental.yaml", yaml, reg, func(string) (string, bool) { return "", false })
		must(err)
		plan, err := pipeline.Prepare(ctx, reg, g, &pipeline.Env{RunID: id, BaseDir: base})
		must(err)
		rep, err := plan.Run(ctx, &pipeline.RunOptions{DeadLetters: filesink.DeadLetters, State: st})
		must(err)
		loaded = append(loaded, rep.Counts.Loaded)
	}
	if loaded[0] == 0 || loaded[1] != 0 {
		t.Fatalf("loaded per run = %v, want all rows then none (the watermark)", loaded)
	}
	if got := rowsOf(runs[0]); int64(got) != loaded[0] {
		t.Errorf("first run's output holds %d rows after the second run, want %d", got, loaded[0])
	}
	if got := rowsOf(runs[1]); got != 0 {
		t.Errorf("second run's output holds %d rows, want 0", got)
	}
}
