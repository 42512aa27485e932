package pipeline_test

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/transforms/filter"
	"github.com/bulkflow/bulkflow/transforms/mapping"
)

// projSource is a Projector with string columns a, b, c, d: row i holds
// "a<i>", "b<i>", ... It records what it was asked to project.
type projSource struct {
	cols  []string
	asked *[][]string
	rows  int
	n     int
}

func (s *projSource) Schema(context.Context) (*pipeline.Schema, error) {
	fs := make([]pipeline.Field, len(s.cols))
	for i, c := range s.cols {
		fs[i] = pipeline.Field{Name: c, Type: pipeline.TypeString}
	}
	return pipeline.NewSchema(fs...)
}

func (s *projSource) Project(names []string) error {
	*s.asked = append(*s.asked, slices.Clone(names))
	s.cols = slices.Clone(names)
	return nil
}

func (s *projSource) Read(ctx context.Context) (*pipeline.Batch, error) {
	if s.n >= s.rows {
		return nil, io.EOF
	}
	sch, _ := s.Schema(ctx)
	b := pipeline.NewBatch(sch, s.rows)
	for ; s.n < s.rows; s.n++ {
		row := make(pipeline.Row, len(s.cols))
		for j, c := range s.cols {
			row[j] = c + string(rune('0'+s.n))
		}
		b.Append(row, pipeline.Origin{Object: "mem://proj", Row: int64(s.n + 1)})
	}
	return b, nil
}

func (s *projSource) Close() error { return nil }

func TestProjection(t *testing.T) {
	tests := []struct {
		name   string
		stages string
		want   []string // what the source was asked to read; nil: not projected
		dlCols []string // columns of the map stage's dead letters, when it has some
	}{
		{"map reads a and c", `
  - {name: m, inputs: [read], map: {X: c + a, Y: 'c == "c2" ? a : "ok"', Z: 'c == "c1" ? int(a) : 0'}}
  - {name: out, inputs: [m], sink: {type: collect}}`, []string{"a", "c"}, []string{"a", "c"}},
		{"filter then map: both count", `
  - {name: f, inputs: [read], filter: 'd != "d1"'}
  - {name: m, inputs: [f], map: {X: b}}
  - {name: out, inputs: [m], sink: {type: collect}}`, []string{"b", "d"}, nil},
		{"filter straight into a sink: all columns", `
  - {name: f, inputs: [read], filter: 'd != "d1"'}
  - {name: out, inputs: [f], sink: {type: collect}}`, nil, nil},
		{"sink reads everything", `
  - {name: out, inputs: [read], sink: {type: collect}}`, nil, nil},
		{"$env reads anything", `
  - {name: m, inputs: [read], map: {X: '$env["b"]'}}
  - {name: out, inputs: [m], sink: {type: collect}}`, nil, nil},
		{"fan-in keeps every column", `
  - {name: read2, source: {type: proj}}
  - {name: m, inputs: [read, read2], map: {X: a}}
  - {name: out, inputs: [m], sink: {type: collect}}`, nil, nil},
		{"every column used", `
  - {name: m, inputs: [read], map: {X: a + b + c + d}}
  - {name: out, inputs: [m], sink: {type: collect}}`, nil, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var asked [][]string
			var reg pipeline.Registry
			c := pipelinetest.NewCollector()
			pipelinetest.Register(&reg, c)
			reg.RegisterSource("proj", pipeline.Spec{Summary: "test", Example: "{}\n"},
				func(context.Context, *pipeline.Env, any) (pipeline.Source, error) {
					return &projSource{cols: []string{"a", "b", "c", "d"}, asked: &asked, rows: 4}, nil
				})
			reg.RegisterTransform("map", pipeline.Spec{Summary: "map", Example: "fields: []\n", NewOptions: func() any { return &mapping.Options{} }},
				func(env *pipeline.Env, o any) (pipeline.Transform, error) {
					return mapping.New(env, o.(*mapping.Options))
				})
			reg.RegisterTransform("filter", pipeline.Spec{Summary: "filter", Example: "expr: true\n", NewOptions: func() any { return &filter.Options{} }},
				func(env *pipeline.Env, o any) (pipeline.Transform, error) {
					return filter.New(env, o.(*filter.Options))
				})
			// Each case its own dead-letter bucket: a second run of run-1
			// in the same folder would be its resume (attempt 2).
			y := "name: t\ndead_letter: mem://dl" + strconv.Itoa(i) + "/\nstages:\n  - {name: read, source: {type: proj}}" + tc.stages + "\n"
			g, err := config.Load("test.yaml", []byte(y), &reg, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{RunID: "run-1"})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener()})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !rep.Counts.Balanced() || rep.Counts.Read%4 != 0 {
				t.Errorf("counts = %+v", rep.Counts)
			}
			var got []string
			if len(asked) > 0 {
				got = asked[len(asked)-1]
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("projected %v, want %v", got, tc.want)
			}
			if tc.dlCols != nil {
				b := c.DeadLetters["run-1/m.csv"]
				if b == nil {
					t.Fatalf("no dead letters for the map stage (have %v)", keysOf(c.DeadLetters))
				}
				var data []string
				for _, n := range b.Schema().Names() {
					if !strings.HasPrefix(n, "_") {
						data = append(data, n)
					}
				}
				if !slices.Equal(data, tc.dlCols) {
					t.Errorf("dead-letter columns %v, want %v", data, tc.dlCols)
				}
			}
			// Whatever was projected, the mapped values are right.
			if rows := c.Rows["out"]; tc.name == "map reads a and c" {
				if len(rows) != 3 || rows[0][0] != "c0a0" || rows[1][1] != "a2" || rows[2][1] != "ok" {
					t.Errorf("mapped rows = %v", rows)
				}
			}
		})
	}
}
