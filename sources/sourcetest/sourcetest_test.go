package sourcetest_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// fixtureSource is the simplest correct source: it serves fixtures from
// memory with row-number origins and no lines, as a columnar format would.
// Running the suite on it checks the suite is format-neutral.
type fixtureSource struct {
	objs   []sourcetest.Fixture
	obj    int
	row    int
	closed bool
}

func (s *fixtureSource) Schema(ctx context.Context) (*pipeline.Schema, error) {
	fields := make([]pipeline.Field, len(s.objs[0].Header))
	for i, n := range s.objs[0].Header {
		fields[i] = pipeline.Field{Name: n, Type: pipeline.TypeString}
	}
	return pipeline.NewSchema(fields...)
}

func (s *fixtureSource) Read(ctx context.Context) (*pipeline.Batch, error) {
	if s.closed {
		return nil, io.ErrClosedPipe
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sch, _ := s.Schema(ctx)
	b := pipeline.NewBatch(sch, 100)
	for b.Len() < 100 && s.obj < len(s.objs) {
		f := s.objs[s.obj]
		if s.row == len(f.Rows) {
			s.obj, s.row = s.obj+1, 0
			continue
		}
		row := make(pipeline.Row, len(f.Header))
		for j, c := range f.Rows[s.row] {
			row[j] = c
		}
		s.row++
		b.Append(row, pipeline.Origin{Object: "fixture://" + f.Name, Row: int64(s.row)})
	}
	if b.Len() == 0 {
		return nil, io.EOF
	}
	return b, nil
}

func (s *fixtureSource) Close() error { s.closed = true; return nil }

type fixtureHarness struct{}

func (h fixtureHarness) MakeSource(ctx context.Context, tb testing.TB, objs []sourcetest.Fixture) (pipeline.Source, error) {
	return h.MakeSourceEnv(ctx, tb, nil, objs)
}

// MakeSourceEnv serves the objects env.Shard keeps; the schema is still the
// first object's.
func (fixtureHarness) MakeSourceEnv(ctx context.Context, tb testing.TB, env *pipeline.Env, objs []sourcetest.Fixture) (pipeline.Source, error) {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b sourcetest.Fixture) int { return strings.Compare(a.Name, b.Name) })
	src := &fixtureSource{objs: objs}
	if env != nil && env.Shard.Count > 1 {
		for i := range objs {
			if !env.Shard.Keep(i) {
				objs[i].Rows = nil
			}
		}
	}
	return src, nil
}

func (fixtureHarness) WantOrigin(objs []sourcetest.Fixture, obj, row int) pipeline.Origin {
	return pipeline.Origin{Object: "fixture://" + objs[obj].Name, Row: int64(row + 1)}
}

func (fixtureHarness) BadRow(ctx context.Context, tb testing.TB) (sourcetest.BadRowCase, bool) {
	return sourcetest.BadRowCase{}, false
}

func (fixtureHarness) Unimplementable() []string { return []string{"BadRow"} }

var _ sourcetest.EnvHarness = fixtureHarness{}

func TestSuiteOnFixtureSource(t *testing.T) {
	sourcetest.RunConformance(t, func(testing.TB) sourcetest.Harness { return fixtureHarness{} })
}

func BenchmarkSuiteOnFixtureSource(b *testing.B) {
	sourcetest.RunBenchmarks(b, func(testing.TB) sourcetest.Harness { return fixtureHarness{} })
}
