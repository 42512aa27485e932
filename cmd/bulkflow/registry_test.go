package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
)

// TestPluginExamples walks the registry: every plugin's Spec.Example must
// decode strictly into its options (and validate), so the documented
// examples cannot rot.
func TestPluginExamples(t *testing.T) {
	reg := pipeline.DefaultRegistry()
	for _, kind := range []pipeline.Kind{pipeline.KindSource, pipeline.KindTransform, pipeline.KindSink} {
		names := reg.Names(kind)
		if len(names) == 0 {
			t.Errorf("no %s plugins registered", kind)
		}
		for _, name := range names {
			t.Run(string(kind)+"/"+name, func(t *testing.T) {
				spec, err := reg.Spec(kind, name)
				if err != nil {
					t.Fatal(err)
				}
				if spec.Summary == "" || spec.Example == "" {
					t.Fatalf("%s %q has no summary or example", kind, name)
				}
				y := exampleYAML(kind, name, spec.Example)
				if _, err := config.Load("example.yaml", []byte(y), reg, func(string) (string, bool) { return "x", true }); err != nil {
					t.Errorf("example of %s %q does not load: %v\n%s", kind, name, err, y)
				}
			})
		}
	}
}

// exampleYAML wraps a plugin example in a minimal pipeline.
func exampleYAML(kind pipeline.Kind, name, example string) string {
	indent := func(s, pad string) string {
		var b strings.Builder
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			b.WriteString(pad + l + "\n")
		}
		return b.String()
	}
	src := "  - name: src\n    source: {type: csv, url: pipelines/data/accounts.csv}\n"
	snk := func(in string) string {
		return fmt.Sprintf("  - name: out\n    inputs: [%s]\n    sink: {type: csv, url: out/x.csv}\n", in)
	}
	switch kind {
	case pipeline.KindSource:
		return "name: ex\nstages:\n  - name: src\n    source:\n      type: " + name + "\n" + indent(example, "      ") + snk("src")
	case pipeline.KindTransform:
		return "name: ex\nstages:\n" + src + "  - name: t\n    inputs: [src]\n    transform:\n      type: " + name + "\n" + indent(example, "      ") + snk("t")
	default:
		return "name: ex\nstages:\n" + src + "  - name: out\n    inputs: [src]\n    sink:\n      type: " + name + "\n" + indent(example, "      ")
	}
}
