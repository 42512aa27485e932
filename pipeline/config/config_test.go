package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

func testRegistry() *pipeline.Registry {
	var reg pipeline.Registry
	pipelinetest.Register(&reg, pipelinetest.NewCollector())
	return &reg
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	g, err := config.Load("p.yaml", []byte(`
name: demo
dead_letter: "${DL}/x/"
lookups:
  c: {url: c.csv, key: code, value: name}
stages:
  - name: read
    source: {type: rows, rows: 3, object: "${file:`+secretFile(t)+`}"}
  - name: work
    inputs: [read]
    workers: 3
    ordered: false
    transform: {type: copy}
  - name: out
    inputs: [work]
    sink: {type: collect, name: "$${literal}"}
`), testRegistry(), env(map[string]string{"DL": "mem://dl"}))
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "demo" || g.DeadLetter != "mem://dl/x/" || len(g.Stages) != 3 || g.Lookups["c"].Key != "code" {
		t.Fatalf("graph = %+v", g)
	}
	if src := g.Stages[0].Options.(*pipelinetest.SourceOptions); src.Rows != 3 || src.Object != "s3cr3t" {
		t.Errorf("source options = %+v, want rows 3 and object from the file", src)
	}
	if w := g.Stages[1]; w.Workers != 3 || !w.Unordered || w.Kind != pipeline.KindTransform || w.Pos.Line != 9 {
		t.Errorf("work stage = %+v", w)
	}
	if s := g.Stages[2].Options.(*pipelinetest.SinkOptions); s.Name != "${literal}" {
		t.Errorf("$${ escape: name = %q", s.Name)
	}
	if len(g.FileHash) != 64 {
		t.Errorf("file hash %q", g.FileHash)
	}
}

func secretFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(p, []byte("s3cr3t\n"), 0o600)
	return p
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string
	}{
		{"unknown plugin option", "name: t\nstages:\n  - {name: r, source: {type: rows, rowz: 3}}\n", `p.yaml:3:36: unknown option "rowz" for source "rows" (did you mean "rows"?)`},
		{"unknown type", "name: t\nstages:\n  - {name: r, source: {type: rowz}}\n", `p.yaml:3:30: unknown source type "rowz" (did you mean "rows"?)`},
		{"missing env", "name: t\nstages:\n  - {name: r, source: {type: rows, object: \"${NOPE}\"}}\n", `p.yaml:3:44: environment variable NOPE is not set`},
		{"bad env name", "name: t\nstages:\n  - {name: r, source: {type: rows, object: \"${a-b}\"}}\n", `is not a valid variable name`},
		{"stages not list", "name: t\nstages: 3\n", `p.yaml:2:9: stages must be a list`},
		{"empty", "", `p.yaml:1:1: the pipeline file is empty`},
		{"two docs", "name: t\n---\nname: u\n", `only one YAML document`},
		{"duplicate key", "name: t\nname: u\nstages: []\n", `p.yaml:2:1: mapping key "name" already defined`},
		{"workers on sink", "name: t\nstages:\n  - {name: r, source: {type: rows}}\n  - {name: o, inputs: [r], workers: 2, sink: {type: collect}}\n", `workers and ordered apply to transform stages only`},
		{"wrong option type", "name: t\nstages:\n  - {name: r, source: {type: rows, rows: many}}\n", `p.yaml:3:42: source "rows": cannot unmarshal string into Go struct field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("p.yaml", []byte(tc.yaml), testRegistry(), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error = %v\nwant it to contain %q", err, tc.want)
			}
			var ce *pipeline.ConfigError
			if err != nil && !errors.As(err, &ce) {
				t.Errorf("error %T is not a *pipeline.ConfigError", err)
			}
		})
	}
}

// TestSecretsNotInErrors: a value that came from ${...} never appears in an
// error message.
func TestSecretsNotInErrors(t *testing.T) {
	_, err := config.Load("p.yaml", []byte("name: t\nstages:\n  - {name: r, source: {type: rows}}\n  - {name: w, inputs: [r], workers: \"${TOKEN}\", transform: {type: copy}}\n  - {name: o, inputs: [w], sink: {type: collect}}\n"),
		testRegistry(), env(map[string]string{"TOKEN": "00Dxx!SECRET"}))
	if err == nil {
		t.Fatal("want an error for non-numeric workers")
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error leaks the secret: %v", err)
	}
}
