package config_test

import (
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/config"
)

// FuzzLoad: no input makes the loader panic, and every error it returns
// is a positioned message.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("name: t\nstages:\n  - {name: r, source: {type: rows, rows: 3}}\n  - {name: o, inputs: [r], sink: {type: collect}}\n"))
	f.Add([]byte("name: t\nstages:\n  - name: r\n    source: {type: rows, object: \"${X}\"}\n"))
	f.Add([]byte("stages: [{name: a, inputs: [a], transform: {type: copy}}]"))
	f.Add([]byte("{"))
	f.Add([]byte("- - -"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := config.Load("f.yaml", data, testRegistry(), env(map[string]string{"X": "x"}))
		if err == nil && g == nil {
			t.Fatal("nil graph and nil error")
		}
	})
}
