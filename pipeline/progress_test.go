package pipeline_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

// sizedSource is the test "rows" source with a known row count (Sizer).
type sizedSource struct {
	*pipelinetest.Source
	total int64
	done  atomic.Int64
}

func (s *sizedSource) Read(ctx context.Context) (*pipeline.Batch, error) {
	b, err := s.Source.Read(ctx)
	if b != nil {
		s.done.Add(int64(b.Settled()))
	}
	return b, err
}

func (s *sizedSource) InputSize() pipeline.InputSize {
	return pipeline.InputSize{Done: s.done.Load(), Total: s.total, Unit: "rows"}
}

// liveSink is the test "collect" sink reporting live state (LiveReporter):
// the batches written so far as complete jobs. Each write waits a little,
// so that progress is seen while the sink works.
type liveSink struct {
	*pipelinetest.Sink
	writes atomic.Int64
}

func (s *liveSink) Write(ctx context.Context, b *pipeline.Batch) error {
	time.Sleep(2 * time.Millisecond)
	defer s.writes.Add(1)
	return s.Sink.Write(ctx, b)
}

func (s *liveSink) Live() pipeline.SinkLive {
	return pipeline.SinkLive{JobsComplete: int(s.writes.Load()), Requests: s.writes.Load()}
}

// TestProgress runs a sized source into a live sink and checks what
// RunOptions.Progress receives: reading with a known total while the
// source reads, the sink's live state under its stage name, and at the
// end reading over, the whole input done and the counts of the report.
func TestProgress(t *testing.T) {
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	reg.RegisterSource("sized", pipeline.Spec{Summary: "sized test rows", NewOptions: func() any { return &pipelinetest.SourceOptions{} }},
		pipeline.TypedSource("sized", func(ctx context.Context, env *pipeline.Env, o *pipelinetest.SourceOptions) (*sizedSource, error) {
			return &sizedSource{Source: pipelinetest.NewSource(*o), total: int64(o.Rows)}, nil
		}))
	reg.RegisterSink("live", pipeline.Spec{Summary: "live test sink", NewOptions: func() any { return &pipelinetest.SinkOptions{} }},
		pipeline.TypedSink("live", func(ctx context.Context, env *pipeline.Env, o *pipelinetest.SinkOptions, in *pipeline.Schema) (*liveSink, error) {
			s, err := reg.OpenSink(ctx, env, "collect", o, in)
			if err != nil {
				return nil, err
			}
			return &liveSink{Sink: s.(*pipelinetest.Sink)}, nil
		}))
	g, err := config.Load("test.yaml", []byte(`
name: t
dead_letter: mem://progress/
stages:
  - {name: read, source: {type: sized, rows: 2000, batch_size: 50}}
  - {name: out, inputs: [read], sink: {type: live}}
`), &reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{RunID: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []pipeline.Progress
	rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), ChannelSize: 1,
		ProgressInterval: time.Millisecond, Progress: func(p pipeline.Progress) {
			mu.Lock()
			seen = append(seen, p)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 3 {
		t.Fatalf("%d progress calls, want several", len(seen))
	}
	reading := false
	for _, p := range seen[:len(seen)-1] {
		if p.Reading {
			reading = true
			if p.Input.Total != 2000 || p.Input.Unit != "rows" || p.Input.Done > 2000 {
				t.Errorf("while reading: input %+v, want up to 2000 rows", p.Input)
			}
		}
		if len(p.Sinks) != 1 || p.Sinks[0].Stage != "out" {
			t.Fatalf("sinks %+v, want the out stage's live state", p.Sinks)
		}
	}
	if !reading {
		t.Error("no progress call while the source was reading")
	}
	last := seen[len(seen)-1]
	if last.Reading || last.Input.Done != 2000 || last.Input.Fraction() != 1 || last.Counts != rep.Counts {
		t.Errorf("last progress %+v, want reading over, 2000 of 2000 rows, the report's counts %+v", last, rep.Counts)
	}
	if last.Sinks[0].JobsComplete == 0 || last.Elapsed <= 0 {
		t.Errorf("last sink state %+v, elapsed %v", last.Sinks[0], last.Elapsed)
	}
}
