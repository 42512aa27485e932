// Package pipelinetest holds in-memory plugins and helpers for testing the
// engine and plugins: a Source that replays rows, a Sink that collects them
// (and can fail chosen rows), transforms that fail or filter chosen rows,
// and a DeadLetterOpener that keeps dead letters in memory.
package pipelinetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// SourceOptions configures the test source.
type SourceOptions struct {
	// Rows is how many rows to produce: row i has id=i and name="name-i".
	Rows int `yaml:"rows"`
	// BatchSize is rows per batch (default 100).
	BatchSize int `yaml:"batch_size"`
	// Object names the origin object (default "mem://test/rows").
	Object string `yaml:"object"`
	// BadEvery makes every n'th row an unparseable record (a Drop).
	BadEvery int `yaml:"bad_every"`
	// Delay is slept before each batch (to test cancellation).
	Delay time.Duration `yaml:"delay"`
	// FailAfter makes Read fail with an error after this many batches (0: never).
	FailAfter int `yaml:"fail_after"`
}

// Schema is the test source's schema: id int, name string.
var Schema = pipeline.MustSchema(pipeline.Field{Name: "id", Type: pipeline.TypeInt}, pipeline.Field{Name: "name", Type: pipeline.TypeString})

// Source produces SourceOptions.Rows rows.
type Source struct {
	o      SourceOptions
	next   int
	closed bool
	reads  int
}

// NewSource returns a test source.
func NewSource(o SourceOptions) *Source {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.Object == "" {
		o.Object = "mem://test/rows"
	}
	return &Source{o: o}
}

// Schema returns Schema.
func (s *Source) Schema(ctx context.Context) (*pipeline.Schema, error) { return Schema, nil }

// Read returns the next batch.
func (s *Source) Read(ctx context.Context) (*pipeline.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.next >= s.o.Rows {
		return nil, io.EOF
	}
	if s.o.FailAfter > 0 && s.reads >= s.o.FailAfter {
		return nil, errors.New("test source failure")
	}
	s.reads++
	if s.o.Delay > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.o.Delay):
		}
	}
	b := pipeline.NewBatch(Schema, s.o.BatchSize)
	for k := 0; k < s.o.BatchSize && s.next < s.o.Rows; k++ {
		i := s.next
		s.next++
		o := pipeline.Origin{Object: s.o.Object, Line: int64(i + 2), Row: int64(i + 1)}
		if s.o.BadEvery > 0 && (i+1)%s.o.BadEvery == 0 {
			b.Drop(pipeline.Drop{Origin: o, Raw: fmt.Sprintf("%d,bad\"row", i), Err: &pipeline.RowError{Code: "bad_quote", Err: errors.New("bare quote in field 2")}})
			continue
		}
		b.Append(pipeline.Row{int64(i), fmt.Sprintf("name-%d", i)}, o)
	}
	return b, nil
}

// Close marks the source closed.
func (s *Source) Close() error { s.closed = true; return nil }

// TransformOptions configures the test transform.
type TransformOptions struct {
	// FailEvery dead-letters rows whose id is a multiple of n (n > 0).
	FailEvery int `yaml:"fail_every"`
	// FilterEvery filters rows whose id is a multiple of n (n > 0).
	FilterEvery int `yaml:"filter_every"`
	// Delay is slept per batch, varying with the batch's first id, to shuffle
	// worker completion order.
	Delay time.Duration `yaml:"delay"`
	// Lie makes Apply lose one row per batch (to test the engine's check).
	Lie bool `yaml:"lie"`
	// Err makes Apply fail with this error message.
	Err string `yaml:"err"`
}

// Transform upper-cases nothing: it copies rows, failing or filtering
// chosen ones.
type Transform struct{ o TransformOptions }

// NewTransform returns a test transform.
func NewTransform(o TransformOptions) *Transform { return &Transform{o: o} }

// Check accepts any schema with an int "id" first field.
func (t *Transform) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	if in.Index("id") != 0 {
		return nil, errors.New(`test transform needs an "id" first column`)
	}
	return in, nil
}

// Apply copies rows.
func (t *Transform) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	if t.o.Err != "" {
		return nil, errors.New(t.o.Err)
	}
	if t.o.Delay > 0 && in.Len() > 0 {
		id := in.Row(0)[0].(int64)
		time.Sleep(time.Duration(id%3) * t.o.Delay)
	}
	out := pipeline.NewBatch(in.Schema(), in.Len())
	for i := range in.Len() {
		if t.o.Lie && i == 0 {
			continue
		}
		r := in.Row(i)
		id := r[0].(int64)
		switch {
		case t.o.FailEvery > 0 && id%int64(t.o.FailEvery) == 0:
			out.Drop(pipeline.Drop{Row: r, Origin: in.Origin(i), Err: &pipeline.RowError{Code: "test_fail", Field: "id", Err: fmt.Errorf("id %d is a multiple of %d", id, t.o.FailEvery)}})
		case t.o.FilterEvery > 0 && id%int64(t.o.FilterEvery) == 0:
			out.Drop(pipeline.Drop{Row: r, Origin: in.Origin(i)})
		default:
			out.Append(r, in.Origin(i))
		}
	}
	return out, nil
}

// SinkOptions configures the test sink.
type SinkOptions struct {
	// Name keys the sink in a Collector.
	Name string `yaml:"name"`
	// RejectEvery makes Write reject rows whose id is a multiple of n.
	RejectEvery int `yaml:"reject_every"`
	// RejectRetryable marks the rejections retryable.
	RejectRetryable bool `yaml:"reject_retryable"`
	// FailWrites makes every Write fail whole.
	FailWrites bool `yaml:"fail_writes"`
	// FailClose makes Close fail, as a sink whose commit fails: the rows
	// it collected are then not its output.
	FailClose bool `yaml:"fail_close"`
	// Final makes the sink a pipeline.FinalWriter: rows are final when
	// Write returns, whatever Close does.
	Final bool `yaml:"final"`
	// MaxRows and MaxInFlight are the sink's BatchPolicy.
	MaxRows     int `yaml:"max_rows"`
	MaxInFlight int `yaml:"max_in_flight"`
	// Delay is slept per Write, honouring ctx.
	Delay time.Duration `yaml:"delay"`
}

// Sink collects rows into a Collector.
type Sink struct {
	o SinkOptions
	c *Collector
}

// Collector gathers what test sinks and dead letters received.
type Collector struct {
	mu          sync.Mutex
	Rows        map[string][]pipeline.Row
	Origins     map[string][]pipeline.Origin
	Writes      map[string]int
	MaxBatch    map[string]int
	Closed      map[string]bool
	DeadLetters map[string]*pipeline.Batch // by object key
	inFlight    map[string]int
	MaxInFlight map[string]int
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{Rows: map[string][]pipeline.Row{}, Origins: map[string][]pipeline.Origin{}, Writes: map[string]int{},
		MaxBatch: map[string]int{}, Closed: map[string]bool{}, DeadLetters: map[string]*pipeline.Batch{},
		inFlight: map[string]int{}, MaxInFlight: map[string]int{}}
}

// BatchPolicy returns the configured policy.
func (s *Sink) BatchPolicy() pipeline.BatchPolicy {
	return pipeline.BatchPolicy{MaxRows: s.o.MaxRows, MaxInFlight: s.o.MaxInFlight}
}

// Write collects the batch.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	c := s.c
	c.mu.Lock()
	c.inFlight[s.o.Name]++
	c.MaxInFlight[s.o.Name] = max(c.MaxInFlight[s.o.Name], c.inFlight[s.o.Name])
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.inFlight[s.o.Name]--; c.mu.Unlock() }()
	if s.o.Delay > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.o.Delay):
		}
	}
	if s.o.FailWrites {
		return errors.New("test sink failure")
	}
	var rerr pipeline.RowErrors
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Writes[s.o.Name]++
	c.MaxBatch[s.o.Name] = max(c.MaxBatch[s.o.Name], b.Len())
	for i := range b.Len() {
		r := b.Row(i)
		if id, ok := r[0].(int64); ok && s.o.RejectEvery > 0 && id%int64(s.o.RejectEvery) == 0 {
			rerr.Add(i, &pipeline.RowError{Code: "rejected", Retryable: s.o.RejectRetryable, Err: fmt.Errorf("id %d rejected", id)})
			continue
		}
		c.Rows[s.o.Name] = append(c.Rows[s.o.Name], r)
		c.Origins[s.o.Name] = append(c.Origins[s.o.Name], b.Origin(i))
	}
	if len(rerr.Failures) > 0 {
		return &rerr
	}
	return nil
}

// WritesAreFinal reports the Final option (see pipeline.FinalWriter).
func (s *Sink) WritesAreFinal() bool { return s.o.Final }

// Close marks the sink closed.
func (s *Sink) Close(ctx context.Context) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.Closed[s.o.Name] = true
	if s.o.FailClose {
		return errors.New("test sink commit failure")
	}
	return nil
}

// DeadLetterOpener returns an opener that keeps dead letters in c, keyed by
// object key.
func (c *Collector) DeadLetterOpener() pipeline.DeadLetterOpener {
	return func(ctx context.Context, loc blobio.Location, schema *pipeline.Schema) (pipeline.Sink, error) {
		return &dlSink{c: c, key: loc.Key, schema: schema}, nil
	}
}

// OnDeadLetterClose returns open with fn called each time one of the
// files it opened is closed (before it closes): for tests that act at a
// chosen moment of the run's end, such as a Ctrl-C that lands while the
// dead letters are written.
func OnDeadLetterClose(open pipeline.DeadLetterOpener, fn func()) pipeline.DeadLetterOpener {
	return func(ctx context.Context, loc blobio.Location, schema *pipeline.Schema) (pipeline.Sink, error) {
		s, err := open(ctx, loc, schema)
		if err != nil {
			return nil, err
		}
		return closeHook{s, fn}, nil
	}
}

// closeHook is a dead-letter file that calls onClose when it is closed.
type closeHook struct {
	pipeline.Sink
	onClose func()
}

func (h closeHook) Close(ctx context.Context) error {
	h.onClose()
	return h.Sink.Close(ctx)
}

type dlSink struct {
	c      *Collector
	key    string
	schema *pipeline.Schema
}

func (d *dlSink) Write(ctx context.Context, b *pipeline.Batch) error {
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	cur := d.c.DeadLetters[d.key]
	if cur == nil {
		cur = pipeline.NewBatch(d.schema, 0)
		d.c.DeadLetters[d.key] = cur
	}
	for i := range b.Len() {
		cur.Append(b.Row(i), b.Origin(i))
	}
	return nil
}

func (d *dlSink) Close(ctx context.Context) error { return nil }

// Register adds the test plugins to reg: source "rows", transform "copy",
// sink "collect" (collecting into c).
func Register(reg *pipeline.Registry, c *Collector) {
	reg.RegisterSource("rows", pipeline.Spec{Summary: "test rows", Example: "rows: 10\n", NewOptions: func() any { return &SourceOptions{} }},
		pipeline.TypedSource("rows", func(ctx context.Context, env *pipeline.Env, o *SourceOptions) (*Source, error) {
			return NewSource(*o), nil
		}))
	reg.RegisterTransform("copy", pipeline.Spec{Summary: "test transform", Example: "fail_every: 3\n", NewOptions: func() any { return &TransformOptions{} }},
		pipeline.TypedTransform("copy", func(env *pipeline.Env, o *TransformOptions) (*Transform, error) {
			return NewTransform(*o), nil
		}))
	reg.RegisterSink("collect", pipeline.Spec{Summary: "test sink", Example: "name: out\n", NewOptions: func() any { return &SinkOptions{} }},
		pipeline.TypedSink("collect", func(ctx context.Context, env *pipeline.Env, po *SinkOptions, in *pipeline.Schema) (*Sink, error) {
			o := *po
			if o.Name == "" {
				o.Name = "out"
			}
			return &Sink{o: o, c: c}, nil
		}))
}
