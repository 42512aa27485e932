package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

// prepareYAML loads a pipeline from YAML with the test plugins and
// prepares it under run id runID, with its dead letters in memory unless
// the YAML says where.
func prepareYAML(t *testing.T, ctx context.Context, y, runID string) (*pipeline.Plan, *pipelinetest.Collector) {
	t.Helper()
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	g, err := config.Load("test.yaml", []byte(y), &reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if g.DeadLetter == "" {
		g.DeadLetter = "mem://engine-test/"
	}
	plan, err := pipeline.Prepare(ctx, &reg, g, &pipeline.Env{RunID: runID})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return plan, c
}

// runYAML loads a pipeline from YAML with the test plugins and runs it.
func runYAML(t *testing.T, ctx context.Context, y string) (*pipeline.Report, *pipelinetest.Collector, error) {
	t.Helper()
	plan, c := prepareYAML(t, ctx, y, "run-1")
	rep, err := plan.Run(ctx, &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), ChannelSize: 2})
	if rep == nil {
		t.Fatal("Run returned a nil report")
	}
	if !rep.Counts.Balanced() {
		t.Errorf("counts do not balance: %+v", rep.Counts)
	}
	return rep, c, err
}

func ids(rows []pipeline.Row) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r[0].(int64)
	}
	return out
}

func TestRunAccounting(t *testing.T) {
	rep, c, err := runYAML(t, context.Background(), `
name: t
dead_letter: mem://dl/
stages:
  - {name: read, source: {type: rows, rows: 1000, batch_size: 64, bad_every: 100}}
  - {name: work, inputs: [read], transform: {type: copy, fail_every: 7, filter_every: 5}}
  - {name: out, inputs: [work], sink: {type: collect, reject_every: 11}}
`)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// ids 0..999; bad: ids 99,199,..,999 (10); fail: multiples of 7; filter: multiples of 5 (not of 7); reject: of 11.
	var wantLoaded, wantFiltered, wantDL int64
	for i := int64(0); i < 1000; i++ {
		switch {
		case (i+1)%100 == 0:
			wantDL++
		case i%7 == 0:
			wantDL++
		case i%5 == 0:
			wantFiltered++
		case i%11 == 0:
			wantDL++
		default:
			wantLoaded++
		}
	}
	want := pipeline.Counts{Read: 1000, Loaded: wantLoaded, Filtered: wantFiltered, DeadLettered: wantDL}
	if rep.Counts != want {
		t.Errorf("counts = %+v, want %+v", rep.Counts, want)
	}
	if rep.Status != pipeline.StatusPartial {
		t.Errorf("status = %q, want partial", rep.Status)
	}
	got := ids(c.Rows["out"])
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("rows out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	// One dead-letter file per stage, with reasons and origins.
	for stage, wantCode := range map[string]string{"read": "bad_quote", "work": "test_fail", "out": "rejected"} {
		b := c.DeadLetters["run-1/"+stage+".csv"]
		if b == nil || b.Len() == 0 {
			t.Errorf("no dead letters for stage %s (have %v)", stage, keysOf(c.DeadLetters))
			continue
		}
		s := b.Schema()
		r := b.Row(0)
		if got := r[s.Index("_error_code")]; got != wantCode {
			t.Errorf("stage %s: _error_code = %v, want %s", stage, got, wantCode)
		}
		if got := r[s.Index("_stage")]; got != stage {
			t.Errorf("_stage = %v, want %s", got, stage)
		}
		if o := r[s.Index("_origin")].(string); !strings.HasPrefix(o, "mem://test/rows:") {
			t.Errorf("_origin = %q, want mem://test/rows:LINE", o)
		}
	}
	if rep.Stages[1].Filtered != wantFiltered || rep.Stages[2].Loaded != wantLoaded {
		t.Errorf("stage counts = %+v", rep.Stages)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRunWorkersKeepOrder(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			rep, c, err := runYAML(t, context.Background(), fmt.Sprintf(`
name: t
stages:
  - {name: read, source: {type: rows, rows: 2000, batch_size: 10}}
  - {name: work, inputs: [read], workers: 4, ordered: %v, transform: {type: copy, delay: 200us}}
  - {name: out, inputs: [work], sink: {type: collect}}
`, ordered))
			if err != nil {
				t.Fatal(err)
			}
			got := ids(c.Rows["out"])
			if len(got) != 2000 || rep.Counts.Loaded != 2000 {
				t.Fatalf("got %d rows, loaded %d, want 2000", len(got), rep.Counts.Loaded)
			}
			inOrder := true
			for i := range got {
				if got[i] != int64(i) {
					inOrder = false
				}
			}
			if ordered && !inOrder {
				t.Error("ordered stage emitted rows out of order")
			}
		})
	}
}

func TestRunFanOutFanIn(t *testing.T) {
	rep, c, err := runYAML(t, context.Background(), `
name: t
stages:
  - {name: a, source: {type: rows, rows: 300}}
  - {name: b, source: {type: rows, rows: 200, object: "mem://test/b"}}
  - {name: both, inputs: [a, b], transform: {type: copy}}
  - {name: even, inputs: [both], transform: {type: copy, filter_every: 2}}
  - {name: all, inputs: [both], sink: {type: collect, name: all}}
  - {name: evens, inputs: [even], sink: {type: collect, name: evens}}
`)
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.Counts{Read: 500, FannedOut: 500, Loaded: 500 + 250, Filtered: 250}
	if rep.Counts != want {
		t.Errorf("counts = %+v, want %+v", rep.Counts, want)
	}
	if len(c.Rows["all"]) != 500 || len(c.Rows["evens"]) != 250 {
		t.Errorf("all=%d evens=%d, want 500 and 250", len(c.Rows["all"]), len(c.Rows["evens"]))
	}
}

func TestRunSinkBatchPolicy(t *testing.T) {
	rep, c, err := runYAML(t, context.Background(), `
name: t
stages:
  - {name: read, source: {type: rows, rows: 1000, batch_size: 7}}
  - {name: out, inputs: [read], sink: {type: collect, max_rows: 100, max_in_flight: 3, delay: 2ms}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBatch["out"] != 100 || c.Writes["out"] != 10 {
		t.Errorf("max batch %d in %d writes, want 100 in 10", c.MaxBatch["out"], c.Writes["out"])
	}
	if c.MaxInFlight["out"] > 3 || c.MaxInFlight["out"] < 2 {
		t.Errorf("max in flight = %d, want 2..3", c.MaxInFlight["out"])
	}
	if rep.Counts.Loaded != 1000 {
		t.Errorf("loaded %d", rep.Counts.Loaded)
	}
}

func TestRunFailures(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantErr  string
		wantCode string // dead-letter code expected somewhere
	}{
		{"transform error", `
name: t
stages:
  - {name: read, source: {type: rows, rows: 500, batch_size: 10}}
  - {name: work, inputs: [read], transform: {type: copy, err: boom}}
  - {name: out, inputs: [work], sink: {type: collect}}
`, `stage "work": boom`, "aborted"},
		{"lying transform", `
name: t
stages:
  - {name: read, source: {type: rows, rows: 50, batch_size: 10}}
  - {name: work, inputs: [read], transform: {type: copy, lie: true}}
  - {name: out, inputs: [work], sink: {type: collect}}
`, "returned 9 rows and drops for 10 input rows", "aborted"},
		{"sink failure", `
name: t
stages:
  - {name: read, source: {type: rows, rows: 500, batch_size: 10}}
  - {name: out, inputs: [read], sink: {type: collect, fail_writes: true}}
`, "test sink failure", "sink_failed"},
		{"source failure", `
name: t
stages:
  - {name: read, source: {type: rows, rows: 500, batch_size: 10, fail_after: 3}}
  - {name: out, inputs: [read], sink: {type: collect}}
`, "test source failure", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, c, err := runYAML(t, context.Background(), tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if rep.Status != pipeline.StatusFailed {
				t.Errorf("status = %q, want failed", rep.Status)
			}
			if tc.wantCode != "" {
				found := false
				for _, b := range c.DeadLetters {
					for i := range b.Len() {
						if b.Row(i)[b.Schema().Index("_error_code")] == tc.wantCode {
							found = true
						}
					}
				}
				if !found {
					t.Errorf("no dead letter with code %q", tc.wantCode)
				}
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	plan, c := prepareYAML(t, ctx, `
name: t
stages:
  - {name: read, source: {type: rows, rows: 100000, batch_size: 10, delay: 1ms}}
  - {name: work, inputs: [read], transform: {type: copy}}
  - {name: out, inputs: [work], sink: {type: collect, delay: 3ms}}
`, "r")
	var err error
	var progressed atomic.Int64
	done := make(chan struct{})
	var rep *pipeline.Report
	go func() {
		defer close(done)
		rep, err = plan.Run(ctx, &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), ChannelSize: 2,
			ProgressInterval: time.Millisecond, Progress: func(p pipeline.Progress) {
				c := p.Counts
				if progressed.Store(c.Loaded); c.Loaded >= 100 {
					cancel()
				}
			}})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if rep.Status != pipeline.StatusCancelled {
		t.Errorf("status = %q, want cancelled", rep.Status)
	}
	if !rep.Counts.Balanced() || rep.Counts.Read >= 100000 || rep.Counts.Loaded < 100 {
		t.Errorf("counts = %+v", rep.Counts)
	}
	if !c.Closed["out"] {
		t.Error("sink was not closed after cancel")
	}
	if rep.Counts.DeadLettered > 0 {
		b := c.DeadLetters["r/work.csv"]
		if b == nil {
			b = c.DeadLetters["r/out.csv"]
		}
		if b == nil || b.Row(0)[b.Schema().Index("_error_code")] != "cancelled" {
			t.Errorf("in-flight rows not dead-lettered as cancelled: %v", keysOf(c.DeadLetters))
		}
	}
}

// leadSink records how far the source ran ahead of the sink.
type leadSink struct {
	read    *atomic.Int64
	written atomic.Int64
	maxLead atomic.Int64
}

func TestRunBackpressure(t *testing.T) {
	var reg pipeline.Registry
	var read atomic.Int64
	ls := &leadSink{read: &read}
	reg.RegisterSource("count", pipeline.Spec{}, func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) {
		return &countingSource{Source: pipelinetest.NewSource(pipelinetest.SourceOptions{Rows: 5000, BatchSize: 10}), n: &read}, nil
	})
	reg.RegisterSink("slow", pipeline.Spec{}, func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
		return ls, nil
	})
	pipelinetest.Register(&reg, pipelinetest.NewCollector())
	g, err := config.Load("t.yaml", []byte(`
name: t
stages:
  - {name: read, source: {type: count}}
  - {name: work, inputs: [read], transform: {type: copy}}
  - {name: out, inputs: [work], sink: {type: slow}}
`), &reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := plan.Run(context.Background(), &pipeline.RunOptions{ChannelSize: 1})
	if err != nil || rep.Counts.Loaded != 5000 {
		t.Fatalf("run: %v, %+v", err, rep.Counts)
	}
	// Two edges of capacity 1, plus one batch held by each of 3 stages:
	// the source can be at most ~5 batches (50 rows) ahead.
	if lead := ls.maxLead.Load(); lead > 60 {
		t.Errorf("source ran %d rows ahead of the sink; backpressure is not working", lead)
	}
}

type countingSource struct {
	*pipelinetest.Source
	n *atomic.Int64
}

func (s *countingSource) Read(ctx context.Context) (*pipeline.Batch, error) {
	b, err := s.Source.Read(ctx)
	if b != nil {
		s.n.Add(int64(b.Len()))
	}
	return b, err
}

func (l *leadSink) Write(ctx context.Context, b *pipeline.Batch) error {
	time.Sleep(100 * time.Microsecond)
	lead := l.read.Load() - l.written.Load()
	for {
		cur := l.maxLead.Load()
		if lead <= cur || l.maxLead.CompareAndSwap(cur, lead) {
			break
		}
	}
	l.written.Add(int64(b.Len()))
	return nil
}

func (l *leadSink) Close(ctx context.Context) error { return nil }

// TestRunResumedFailureReadsAll checks that a resumed attempt whose sink
// fails still reads its whole input and dead-letters every row unsettled:
// an earlier attempt may have loaded any of them, so the report must
// account for all, not only for those read before the failure (the source
// is held back by a channel of 2 batches, so it is far behind).
func TestRunResumedFailureReadsAll(t *testing.T) {
	for _, resumed := range []bool{false, true} {
		t.Run(fmt.Sprintf("resumed=%v", resumed), func(t *testing.T) {
			plan, c := prepareYAML(t, context.Background(), `
name: t
stages:
  - {name: read, source: {type: rows, rows: 5000, batch_size: 10}}
  - {name: work, inputs: [read], transform: {type: copy}}
  - {name: out, inputs: [work], sink: {type: collect, fail_writes: true}}
`, "r")
			rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), ChannelSize: 2, Resumed: resumed})
			if err == nil || rep.Status != pipeline.StatusFailed || !rep.Counts.Balanced() {
				t.Fatalf("run: %v, status %q, counts %+v", err, rep.Status, rep.Counts)
			}
			if !resumed {
				// A first attempt stops reading: what it did not read was
				// never sent, and a new run sends it.
				if rep.Counts.Read >= 5000 {
					t.Errorf("a failed first attempt read all %d rows", rep.Counts.Read)
				}
				return
			}
			if rep.Counts.Read != 5000 || rep.Counts.DeadLettered != 5000 {
				t.Fatalf("counts = %+v, want 5000 read and dead-lettered", rep.Counts)
			}
			codes := map[any]int{}
			for _, b := range c.DeadLetters {
				for i := range b.Len() {
					codes[b.Row(i)[b.Schema().Index("_error_code")]]++
				}
			}
			if codes["unsettled"] != 5000 {
				t.Errorf("dead-letter codes %v, want 5000 unsettled", codes)
			}
		})
	}
}

// TestLateCancelChangesNothing cancels the run's context while the run
// writes its dead letters, after every stage has finished (a Ctrl-C that
// lands then): the status, the dead-letter manifest's status and the exit
// error are what they would have been without it, so a run that settled
// every row is never reported cancelled while its manifest says partial.
func TestLateCancelChangesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plan, c := prepareYAML(t, ctx, `
name: t
dead_letter: mem://late-cancel/
stages:
  - {name: read, source: {type: rows, rows: 200, batch_size: 16}}
  - {name: out, inputs: [read], sink: {type: collect, reject_every: 9}}
`, "run-late")
	var closes atomic.Int32
	opener := pipelinetest.OnDeadLetterClose(c.DeadLetterOpener(), func() { closes.Add(1); cancel() })
	rep, err := plan.Run(ctx, &pipeline.RunOptions{DeadLetters: opener, ChannelSize: 2})
	if closes.Load() == 0 {
		t.Fatal("no dead-letter file was closed: the test did not cancel anything")
	}
	if ctx.Err() == nil {
		t.Fatal("the context was not cancelled")
	}
	if err != nil || rep.Status != pipeline.StatusPartial {
		t.Fatalf("status %s, err %v; want partial, nil (every row was settled before the cancel)", rep.Status, err)
	}
	if rep.Counts.Loaded+rep.Counts.DeadLettered != 200 || rep.Counts.DeadLettered != 23 {
		t.Errorf("counts %+v, want 177 loaded and 23 dead-lettered", rep.Counts)
	}
	loc, err := blobio.Parse("", rep.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	m, found, err := pipeline.ReadManifest(context.Background(), loc)
	if err != nil || !found {
		t.Fatalf("manifest %s: found %v, %v", rep.Manifest, found, err)
	}
	if m.Status != rep.Status {
		t.Errorf("manifest status %s, report status %s: one run, two outcomes", m.Status, rep.Status)
	}
}
