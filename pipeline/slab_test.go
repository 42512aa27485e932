package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

// slabSource produces rows (id, "name-id") whose values live in slabs of
// its pool, attached to each batch with Recycle; it keeps every slab it
// handed out, to look at after the run.
type slabSource struct {
	rows, batch int
	next        int
	pool        pipeline.SlabPool
	mu          sync.Mutex
	slabs       [][]any
}

func (s *slabSource) Schema(ctx context.Context) (*pipeline.Schema, error) {
	return pipelinetest.Schema, nil
}

func (s *slabSource) Read(ctx context.Context) (*pipeline.Batch, error) {
	if s.next >= s.rows {
		return nil, io.EOF
	}
	n := min(s.batch, s.rows-s.next)
	b := pipeline.NewBatch(pipelinetest.Schema, n)
	slab := s.pool.Get(2 * n)
	b.Recycle(&s.pool, slab)
	s.mu.Lock()
	s.slabs = append(s.slabs, slab)
	s.mu.Unlock()
	for k := range n {
		row := pipeline.Row(slab[2*k : 2*k+2 : 2*k+2])
		row[0], row[1] = int64(s.next), fmt.Sprintf("name-%d", s.next)
		b.Append(row, pipeline.Origin{Object: "mem://slabs", Row: int64(s.next + 1)})
		s.next++
	}
	return b, nil
}

func (s *slabSource) Close() error { return nil }

// released counts the slabs whose every value is pipeline.Released (in a
// test binary, what a released slab holds) and the others.
func released(slabs [][]any) (yes, no int) {
	for _, s := range slabs {
		all := len(s) > 0
		for _, v := range s {
			if _, ok := v.(pipeline.Released); !ok {
				all = false
			}
		}
		if all {
			yes++
		} else {
			no++
		}
	}
	return yes, no
}

// slabCopy copies rows into slabs of its own, upper-casing the name, and
// dead-letters rows whose id is a multiple of 7 (its drops hold input
// rows). It releases rows when releases is set.
type slabCopy struct {
	releases bool
	pool     pipeline.SlabPool
	mu       sync.Mutex
	slabs    [][]any
}

func (t *slabCopy) Check(in *pipeline.Schema) (*pipeline.Schema, error) { return in, nil }

func (t *slabCopy) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	out := pipeline.NewBatch(in.Schema(), in.Len())
	slab := t.pool.Get(2 * in.Len())
	for i := range in.Len() {
		r := in.Row(i)
		if r[0].(int64)%7 == 0 {
			out.Drop(pipeline.Drop{Row: r, Origin: in.Origin(i), Err: &pipeline.RowError{Code: "seven", Err: errors.New("a multiple of 7")}})
			continue
		}
		row := pipeline.Row(slab[2*i : 2*i+2 : 2*i+2])
		row[0], row[1] = r[0], strings.ToUpper(r[1].(string))
		out.Append(row, in.Origin(i))
	}
	out.Recycle(&t.pool, slab)
	t.mu.Lock()
	t.slabs = append(t.slabs, slab)
	t.mu.Unlock()
	return out, nil
}

func (t *slabCopy) ReleasesRows() bool { return t.releases }

// encodeSink turns each row into text as Write runs and keeps only the
// text; it releases rows when releases is set.
type encodeSink struct {
	releases  bool
	final     bool // a FinalWriter; otherwise the engine keeps a commit log
	failClose bool // Close fails: the rows it took are not its output
	mu        sync.Mutex
	lines     []string
}

func (s *encodeSink) Write(ctx context.Context, b *pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range b.Len() {
		r := b.Row(i)
		s.lines = append(s.lines, fmt.Sprintf("%v,%v", r[0], r[1]))
	}
	return nil
}

func (s *encodeSink) Close(ctx context.Context) error {
	if s.failClose {
		return errors.New("commit failed")
	}
	return nil
}
func (s *encodeSink) WritesAreFinal() bool { return s.final }
func (s *encodeSink) ReleasesRows() bool   { return s.releases }

// runSlabs runs a pipeline of the stages after "src" (the slabs source),
// with the plugins slabs (src), slabcopy (cp), encode (enc) and the test
// plugins; dead letters go to the returned collector.
func runSlabs(t *testing.T, src *slabSource, cp *slabCopy, enc *encodeSink, stages string) (*pipeline.Report, *pipelinetest.Collector, error) {
	t.Helper()
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	reg.RegisterSource("slabs", pipeline.Spec{}, func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) {
		return src, nil
	})
	reg.RegisterTransform("slabcopy", pipeline.Spec{}, func(env *pipeline.Env, opts any) (pipeline.Transform, error) {
		return cp, nil
	})
	reg.RegisterSink("encode", pipeline.Spec{}, func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
		return enc, nil
	})
	g, err := config.Load("t.yaml", []byte("name: t\nstages:\n  - {name: src, source: {type: slabs}}"+stages+"\n"), &reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.DeadLetter = "mem://slab-test/"
	plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), ChannelSize: 2})
	if rep == nil {
		t.Fatal("Run returned a nil report")
	}
	return rep, c, err
}

// TestRunReleasesRows: the engine recycles a batch's slabs exactly when
// the one stage the batch went to releases its rows, and after it has
// settled the drops that hold them. In a test binary a released slab is
// poisoned (every value pipeline.Released) instead of reused: a stage
// that read a row after its release would see it, and so would the
// checks of every value below.
func TestRunReleasesRows(t *testing.T) {
	const rows = 1000
	for _, tc := range []struct {
		name                 string
		stages               string
		copyReleases         bool
		sinkReleases         bool
		sinkNotFinal         bool // the engine keeps a commit log of the encode sink's rows
		wantSrcReleased      bool // every slab of the source released, or none
		wantCopyReleased     bool
		wantKept, wantEncode int // rows the collect sink keeps, rows the encode sink wrote
	}{
		{"all release", `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: encode}}`, true, true, false, true, true, 0, rows - 143},
		{"the sink has a commit log", `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: encode}}`, true, true, true, true, true, 0, rows - 143},
		{"the sink keeps rows", `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: collect, name: kept, final: true}}`, true, false, false, true, false, rows - 143, 0},
		{"the transform keeps rows", `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: encode}}`, false, true, false, false, true, 0, rows - 143},
		{"fan-out", `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: encode}}
  - {name: raw, inputs: [src], sink: {type: collect, name: kept}}`, true, true, false, false, true, rows, rows - 143},
		{"the sink keeps rows and commits at Close", `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: collect, name: kept}}`, true, false, false, true, false, rows - 143, 0},
		{"the sink re-batches", `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: collect, name: kept, max_rows: 64, final: true}}`, true, false, false, true, false, rows - 143, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &slabSource{rows: rows, batch: 50}
			cp := &slabCopy{releases: tc.copyReleases}
			enc := &encodeSink{releases: tc.sinkReleases, final: !tc.sinkNotFinal}
			rep, c, err := runSlabs(t, src, cp, enc, tc.stages)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if rep.Counts.DeadLettered != 143 {
				t.Errorf("dead-lettered %d rows, want 143 (the multiples of 7 below %d)", rep.Counts.DeadLettered, rows)
			}

			// Every value that came out is the one that went in.
			for _, line := range enc.lines {
				var id int
				var name string
				if _, err := fmt.Sscanf(line, "%d,NAME-%s", &id, &name); err != nil || name != fmt.Sprint(id) || id%7 == 0 {
					t.Fatalf("the encode sink wrote %q", line)
				}
			}
			if len(enc.lines) != tc.wantEncode {
				t.Errorf("the encode sink wrote %d rows, want %d", len(enc.lines), tc.wantEncode)
			}
			kept := c.Rows["kept"]
			if len(kept) != tc.wantKept {
				t.Errorf("the collect sink kept %d rows, want %d", len(kept), tc.wantKept)
			}
			for _, r := range kept { // read after the run: still intact
				id, ok := r[0].(int64)
				if want := fmt.Sprintf("name-%d", id); !ok || (r[1] != want && r[1] != strings.ToUpper(want)) {
					t.Fatalf("the collect sink kept %v", r)
				}
			}
			var dl int
			for _, b := range c.DeadLetters {
				for i := range b.Len() {
					r := b.Row(i)
					id, ok := r[0].(int64)
					if !ok || id%7 != 0 || r[1] != fmt.Sprintf("name-%d", id) {
						t.Fatalf("dead letter row %v", r)
					}
					dl++
				}
			}
			if dl != 143 {
				t.Errorf("%d dead letters, want 143", dl)
			}

			for _, x := range []struct {
				what  string
				slabs [][]any
				want  bool
			}{{"source", src.slabs, tc.wantSrcReleased}, {"transform", cp.slabs, tc.wantCopyReleased}} {
				yes, no := released(x.slabs)
				if x.want && no != 0 || !x.want && yes != 0 {
					t.Errorf("%s: %d slabs released, %d not; want all released: %v", x.what, yes, no, x.want)
				}
			}
		})
	}
}

// TestRunReleasesRowsCommitLog: a sink that releases rows but commits at
// Close gets a commit log, which copies the rows it took; when Close
// fails, those rows are dead-lettered from the log with their values,
// though their slabs were recycled long before.
func TestRunReleasesRowsCommitLog(t *testing.T) {
	const rows = 500
	src := &slabSource{rows: rows, batch: 50}
	cp := &slabCopy{releases: true}
	enc := &encodeSink{releases: true, failClose: true}
	rep, c, err := runSlabs(t, src, cp, enc, `
  - {name: c, inputs: [src], transform: {type: slabcopy}}
  - {name: out, inputs: [c], sink: {type: encode}}`)
	if err == nil || rep.Counts.DeadLettered != rows || rep.Counts.Loaded != 0 {
		t.Fatalf("run: %v, %+v; want a failure with all %d rows dead-lettered", err, rep.Counts, rows)
	}
	if yes, no := released(cp.slabs); no != 0 || yes == 0 {
		t.Errorf("transform: %d slabs released, %d not; want all", yes, no)
	}
	seen := map[int64]bool{}
	for _, b := range c.DeadLetters {
		for i := range b.Len() {
			r := b.Row(i)
			id, ok := r[0].(int64)
			want := fmt.Sprintf("name-%d", id)
			if id%7 != 0 {
				want = strings.ToUpper(want) // loaded, then uncommitted: the map's output
			}
			if !ok || r[1] != want || seen[id] {
				t.Fatalf("dead letter row %v", r)
			}
			seen[id] = true
		}
	}
	if len(seen) != rows {
		t.Errorf("%d rows dead-lettered, want %d", len(seen), rows)
	}
}
