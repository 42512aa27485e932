package pipeline_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

// memState is an in-memory pipeline.StateStore.
type memState struct {
	mu   sync.Mutex
	docs map[string][]byte
}

func (m *memState) Get(_ context.Context, key string, v any) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[key]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(d, v)
}

func (m *memState) Put(_ context.Context, key string, v any) error {
	d, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.docs == nil {
		m.docs = map[string][]byte{}
	}
	m.docs[key] = d
	return nil
}

// runIncremental runs an incremental pipeline over `rows` test rows (ids
// 0..rows-1) with st as its state.
func runIncremental(t *testing.T, st pipeline.StateStore, rows int, extra string) (*pipeline.Report, *pipelinetest.Collector, error) {
	t.Helper()
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	y := `
name: t
dead_letter: mem://inc-dl/
stages:
  - name: read
    source: {type: rows, rows: ` + itoa(rows) + `, batch_size: 7}
    incremental: {cursor: id}
  - {name: out, inputs: [read], sink: {type: collect, name: out` + extra + `}}
`
	g, err := config.Load("inc.yaml", []byte(y), &reg, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{RunID: "run-" + itoa(rows)})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), State: st})
	if !rep.Counts.Balanced() {
		t.Errorf("counts do not balance: %+v", rep.Counts)
	}
	return rep, c, err
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestIncrementalCursor(t *testing.T) {
	st := &memState{}
	// Run 1: everything is new; the watermark becomes 99.
	rep, c, err := runIncremental(t, st, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Rows["out"]); got != 100 || rep.Counts.Filtered != 0 {
		t.Fatalf("run 1 loaded %d, filtered %d; want 100, 0", got, rep.Counts.Filtered)
	}
	var wm pipeline.Watermark
	if ok, _ := st.Get(context.Background(), pipeline.WatermarkKey("read"), &wm); !ok || wm.Value != "99" || wm.Field != "id" || wm.Type != "int" {
		t.Fatalf("watermark after run 1 = %+v (found %v); want id int 99", wm, ok)
	}
	if ir := rep.Incremental["read"]; ir == nil || !ir.Committed || ir.Max != "99" || ir.After != "" {
		t.Errorf("report incremental = %+v", ir)
	}
	// Run 2: 150 rows; only ids 100..149 pass, the first 100 are filtered.
	rep, c, err = runIncremental(t, st, 150, "")
	if err != nil {
		t.Fatal(err)
	}
	got := ids(c.Rows["out"])
	if len(got) != 50 || got[0] != 100 || got[49] != 149 || rep.Counts.Filtered != 100 {
		t.Fatalf("run 2 loaded %v (filtered %d); want 100..149, 100 filtered", got, rep.Counts.Filtered)
	}
	// Run 3: nothing new; the watermark stays.
	rep, c, err = runIncremental(t, st, 150, "")
	if err != nil || len(c.Rows["out"]) != 0 || rep.Counts.Filtered != 150 || rep.Incremental["read"].Committed {
		t.Fatalf("run 3: err %v, loaded %d, filtered %d, report %+v", err, len(c.Rows["out"]), rep.Counts.Filtered, rep.Incremental["read"])
	}
	st.Get(context.Background(), pipeline.WatermarkKey("read"), &wm)
	if wm.Value != "149" {
		t.Errorf("watermark = %q, want 149", wm.Value)
	}
}

func TestIncrementalHeldOnRetryableFailures(t *testing.T) {
	st := &memState{}
	if _, _, err := runIncremental(t, st, 10, ""); err != nil {
		t.Fatal(err)
	}
	// Rejected rows in the collect sink are retryable: the watermark must
	// not move past them.
	rep, _, err := runIncremental(t, st, 40, ", reject_every: 5, reject_retryable: true")
	if err != nil {
		t.Fatal(err)
	}
	var wm pipeline.Watermark
	st.Get(context.Background(), pipeline.WatermarkKey("read"), &wm)
	if wm.Value != "9" || rep.Incremental["read"].Held == "" || rep.Incremental["read"].Committed {
		t.Fatalf("watermark %q, report %+v; want 9 held", wm.Value, rep.Incremental["read"])
	}
	// A failed run leaves it too.
	rep, _, err = runIncremental(t, st, 40, ", fail_writes: true")
	if err == nil || rep.Status != pipeline.StatusFailed {
		t.Fatalf("want a failed run, got %v %s", err, rep.Status)
	}
	st.Get(context.Background(), pipeline.WatermarkKey("read"), &wm)
	if wm.Value != "9" {
		t.Fatalf("watermark after a failed run = %q, want 9", wm.Value)
	}
}

func TestIncrementalBadInput(t *testing.T) {
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	tests := []struct {
		name, cursor string
		doc          *pipeline.Watermark
		want         string
	}{
		{"missing column", "idd", nil, `incremental cursor "idd" is not a column of the source`},
		{"other cursor committed", "id", &pipeline.Watermark{Version: 1, Field: "name", Type: "string", Value: "x"}, `committed watermark is for cursor "name"`},
		{"newer version", "id", &pipeline.Watermark{Version: 99, Field: "id", Type: "int", Value: "1"}, "newer bulkflow"},
		{"corrupt value", "id", &pipeline.Watermark{Version: 1, Field: "id", Type: "int", Value: "x1"}, "does not parse as int"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := "name: t\nstages:\n  - name: read\n    source: {type: rows, rows: 5}\n    incremental: {cursor: " + tc.cursor + "}\n  - {name: out, inputs: [read], sink: {type: collect}}\n"
			g, err := config.Load("inc.yaml", []byte(y), &reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			st := &memState{}
			if tc.doc != nil {
				st.Put(context.Background(), pipeline.WatermarkKey("read"), tc.doc)
			}
			before, _ := json.Marshal(st.docs)
			plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{})
			if err == nil {
				var rep *pipeline.Report
				rep, err = plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), State: st})
				if rep.Counts.Read != 0 {
					t.Errorf("%d rows moved before the error", rep.Counts.Read)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to contain %q", err, tc.want)
			}
			if after, _ := json.Marshal(st.docs); string(after) != string(before) {
				t.Errorf("state changed: %s -> %s", before, after)
			}
		})
	}
}
