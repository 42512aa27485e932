package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

// TestSinkCommitFailure: when a sink's Close (its commit) fails, the rows its
// Writes took are not loaded: they are dead-lettered sink_failed (retryable:
// nothing was committed) with their values, the run fails and the counts
// balance. A sink whose writes are final keeps them loaded. (Issue 15.6: a
// CSV sink whose target was a directory reported "loaded 2".)
func TestSinkCommitFailure(t *testing.T) {
	tests := []struct {
		name       string
		sink       string
		wantLoaded int64
		wantFailed int // sink_failed dead letters
	}{
		{"commit fails", "{type: collect, fail_close: true, reject_every: 11}", 0, 500 - 46},
		{"commit fails, concurrent writes", "{type: collect, fail_close: true, reject_every: 11, max_rows: 7, max_in_flight: 3}", 0, 500 - 46},
		{"writes final", "{type: collect, fail_close: true, reject_every: 11, final: true}", 500 - 46, 0},
		{"commit succeeds", "{type: collect, reject_every: 11}", 500 - 46, 0},
	}
	for n, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, c, err := runYAML(t, context.Background(), fmt.Sprintf(`
name: t
dead_letter: mem://commit-failure-%d/
stages:
  - {name: read, source: {type: rows, rows: 500, batch_size: 16}}
  - {name: out, inputs: [read], sink: %s}
`, n, tc.sink))
			failing := strings.Contains(tc.sink, "fail_close")
			if failing != (err != nil) || failing && !strings.Contains(err.Error(), "test sink commit failure") {
				t.Fatalf("err = %v (commit failing: %v)", err, failing)
			}
			if failing && rep.Status != pipeline.StatusFailed || !failing && rep.Status != pipeline.StatusPartial {
				t.Errorf("status = %q", rep.Status)
			}
			want := pipeline.Counts{Read: 500, Loaded: tc.wantLoaded, DeadLettered: 500 - tc.wantLoaded}
			if rep.Counts != want {
				t.Errorf("counts = %+v, want %+v", rep.Counts, want)
			}
			if rep.Stages[1].Loaded != tc.wantLoaded {
				t.Errorf("stage loaded = %d, want %d", rep.Stages[1].Loaded, tc.wantLoaded)
			}
			dl := c.DeadLetters["run-1/out.csv"]
			if dl == nil {
				t.Fatalf("no dead letters (have %v)", keysOf(c.DeadLetters))
			}
			s := dl.Schema()
			var failedIDs []int64
			byCode := map[string]int{}
			for i := range dl.Len() {
				r := dl.Row(i)
				code := r[s.Index("_error_code")].(string)
				byCode[code]++
				if code != pipeline.CodeSinkFailed {
					continue
				}
				if r[s.Index("_retryable")] != "true" || !strings.Contains(r[s.Index("_error")].(string), "test sink commit failure") {
					t.Errorf("sink_failed row %v: want retryable and the commit error", r)
				}
				id := r[0].(int64)
				if r[1] != fmt.Sprintf("name-%d", id) {
					t.Errorf("row %d read back as %v", id, r[:2])
				}
				if o := r[s.Index("_origin")].(string); !strings.HasPrefix(o, "mem://test/rows:") {
					t.Errorf("_origin = %q", o)
				}
				failedIDs = append(failedIDs, id)
			}
			if byCode[pipeline.CodeSinkFailed] != tc.wantFailed || byCode["rejected"] != 46 {
				t.Errorf("dead letters by code = %v, want %d sink_failed and 46 rejected", byCode, tc.wantFailed)
			}
			if tc.wantFailed > 0 {
				// Exactly the rows the sink took, each once.
				took := ids(c.Rows["out"])
				slices.Sort(took)
				slices.Sort(failedIDs)
				if !slices.Equal(took, failedIDs) {
					t.Errorf("sink_failed ids differ from the rows the sink took: %d vs %d rows", len(failedIDs), len(took))
				}
			}
		})
	}
}
