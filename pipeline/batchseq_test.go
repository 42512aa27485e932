package pipeline_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

// seqSink records the BatchSeq of every Write and the first id of its
// batch; Writes run concurrently and finish in random order.
type seqSink struct {
	mu    sync.Mutex
	first map[int64]int64 // seq → first row id
	dup   bool
	none  bool
}

func (s *seqSink) BatchPolicy() pipeline.BatchPolicy {
	return pipeline.BatchPolicy{MaxRows: 10, MaxInFlight: 4}
}

func (s *seqSink) Write(ctx context.Context, b *pipeline.Batch) error {
	time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	seq, ok := pipeline.BatchSeq(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.none = true
		return nil
	}
	if _, dup := s.first[seq]; dup {
		s.dup = true
	}
	s.first[seq] = b.Row(0)[0].(int64)
	return nil
}

func (s *seqSink) Close(ctx context.Context) error { return nil }

// TestBatchSeq: every Write of a sink with concurrent Writes carries its
// batch's place in the cut (batch n starts at row n*MaxRows), whatever the
// order the Writes run in.
func TestBatchSeq(t *testing.T) {
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	sk := &seqSink{first: map[int64]int64{}}
	reg.RegisterSink("seq", pipeline.Spec{Summary: "records batch numbers"},
		func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
			return sk, nil
		})
	y := "name: t\ndead_letter: mem://batchseq/\nstages:\n  - {name: read, source: {type: rows, rows: 200, batch_size: 7}}\n  - {name: out, inputs: [read], sink: {type: seq}}\n"
	g, err := config.Load("t.yaml", []byte(y), &reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener()}); err != nil {
		t.Fatal(err)
	}
	if sk.none || sk.dup || len(sk.first) != 20 {
		t.Fatalf("writes without a sequence number %v, twice the same %v, %d batches", sk.none, sk.dup, len(sk.first))
	}
	for seq, id := range sk.first {
		if id != seq*10 {
			t.Errorf("batch %d starts at row %d, want %d", seq, id, seq*10)
		}
	}
}
