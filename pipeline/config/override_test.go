package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

const overrideFile = `name: t
stages:
  - name: read
    source: {type: rows, rows: 3, delay: 1s}
  - name: work
    inputs: [read]
    transform: {type: copy}
  - name: out
    inputs: [work]
    sink: {type: collect, name: a}
`

func TestOverrides(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want func(*pipeline.Graph) string // "" when as expected
		err  string
	}{
		{"int", []string{"read.rows=7"}, func(g *pipeline.Graph) string {
			if o := g.Stages[0].Options.(*pipelinetest.SourceOptions); o.Rows != 7 || o.Delay != time.Second {
				return "rows/delay not 7/1s"
			}
			return ""
		}, ""},
		{"duration and string", []string{"read.delay=250ms", "out.name=emulator:"}, func(g *pipeline.Graph) string {
			if o := g.Stages[0].Options.(*pipelinetest.SourceOptions); o.Delay != 250*time.Millisecond || o.Rows != 3 {
				return "delay not 250ms or rows changed"
			}
			if o := g.Stages[2].Options.(*pipelinetest.SinkOptions); o.Name != "emulator:" {
				return "name = " + o.Name
			}
			return ""
		}, ""},
		{"later wins", []string{"read.rows=7", "read.rows=9"}, func(g *pipeline.Graph) string {
			if o := g.Stages[0].Options.(*pipelinetest.SourceOptions); o.Rows != 9 {
				return "rows not 9"
			}
			return ""
		}, ""},
		{"typed like the file", []string{"read.rows=many"}, nil, `--set read.rows: source "rows": rows: want a whole number, got "many"`},
		{"misspelled key", []string{"read.rwos=1"}, nil, `--set read.rwos: unknown option "rwos" for source "rows" (did you mean "rows"?)`},
		{"misspelled stage", []string{"raed.rows=1"}, nil, `--set raed.rows: the pipeline has no stage "raed" (did you mean "read"?)`},
		{"no options", []string{"work.x=1"}, nil, `--set work.x: unknown option "x" for transform "copy"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o config.Options
			for _, s := range tc.set {
				ov, err := config.ParseOverride(s)
				if err != nil {
					t.Fatal(err)
				}
				o.Set = append(o.Set, ov)
			}
			r := config.LoadAll("p.yaml", []byte(overrideFile), testRegistry(), o)
			err := errors.Join(r.Errs...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.want(r.Graph); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestParseOverrideRefusesAndHidesValue(t *testing.T) {
	for _, s := range []string{"noequals", "nodot=1", ".k=v", "s.=v", "s..k=v"} {
		if _, err := config.ParseOverride(s); err == nil {
			t.Errorf("ParseOverride(%q) accepted it", s)
		}
	}
	_, err := config.ParseOverride("x=supersecretvalue")
	if err == nil || strings.Contains(err.Error(), "supersecret") {
		t.Errorf("error %v shows the value", err)
	}
}

// TestLoadAllEveryProblem: problems in several stages and several keys
// of one stage are all reported, sorted by position.
func TestLoadAllEveryProblem(t *testing.T) {
	r := config.LoadAll("p.yaml", []byte(`name: t
stages:
  - name: read
    source: {type: rows, rwos: 3, batch_size: big, delay: soon}
  - name: work
    inputs: [raed]
    transform: {type: copy}
  - name: out
    inputs: [work]
    sink: {type: collect, nmae: a}
`), testRegistry(), config.Options{})
	var got []string
	for _, e := range r.Errs {
		got = append(got, e.Error())
	}
	want := []string{
		`p.yaml:4:26: unknown option "rwos" for source "rows" (did you mean "rows"?)`,
		`p.yaml:4:47: source "rows": batch_size: want a whole number, got "big"`,
		`p.yaml:4:59: source "rows": delay: want a duration such as 30s, 5m or 1h30m, got "soon"`,
		`p.yaml:5:5: stage "work": unknown input "raed" (did you mean "read"?)`,
		`p.yaml:10:27: unknown option "nmae" for sink "collect" (did you mean "name"?)`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems:\n%s\nwant %d", len(got), strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %s\nwant prefix   %s", i, got[i], want[i])
		}
	}
	if r.Graph == nil || !r.Broken["read"] || !r.Broken["out"] || r.Broken["work"] {
		t.Errorf("broken = %v", r.Broken)
	}
}
