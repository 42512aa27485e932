package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/pipeline/redact"
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
		{"wrong option type", "name: t\nstages:\n  - {name: r, source: {type: rows, rows: many}}\n", `p.yaml:3:42: source "rows": rows: want a whole number, got "many"`},
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

// objectPipeline is a pipeline whose source's object option is the string
// value (with ${...} in it).
func objectPipeline(value string) []byte {
	return []byte("name: t\nstages:\n  - {name: r, source: {type: rows, object: \"" + value + "\"}}\n  - {name: o, inputs: [r], sink: {type: collect}}\n")
}

// TestInterpolation: the forms of ${...}, and which values become secrets
// (masked by redact.Redact) and which do not.
func TestInterpolation(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("file-secret-9d1e\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"TOKEN": "env-secret-4b7c", "OBJ": "Account__public_c", "EMPTY": "", "SHORT": "abc12"}
	tests := []struct {
		name, ref  string
		want       string // the interpolated value
		wantSecret bool   // masked by redact.Redact after Load
	}{
		{"env", "${TOKEN}", "env-secret-4b7c", true},
		{"file", "${file:" + file + "}", "file-secret-9d1e", true},
		{"public", "${OBJ:public}", "Account__public_c", false},
		{"default unused", "${TOKEN:-dflt-unused-1}", "env-secret-4b7c", true},
		{"default used", "${UNSET_X:-default-secret-3a}", "default-secret-3a", true},
		{"public default used", "${UNSET_X:public:-default-public-8e}", "default-public-8e", false},
		{"default with colons", "${UNSET_X:-https://h:443/x}", "https://h:443/x", true},
		{"empty default", "${UNSET_X:-}", "", false},
		{"set but empty beats default", "${EMPTY:-not-used-77}", "", false},
		{"below MinLen", "${SHORT}", "abc12", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := config.Load("p.yaml", objectPipeline(tc.ref),
				testRegistry(), env(vars))
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Stages[0].Options.(*pipelinetest.SourceOptions).Object; got != tc.want {
				t.Fatalf("object = %q, want %q", got, tc.want)
			}
			if tc.want == "" {
				return
			}
			masked := redact.Redact("x " + tc.want + " y")
			if secret := masked != "x "+tc.want+" y"; secret != tc.wantSecret {
				t.Errorf("after Load, Redact(%q) = %q; want it masked: %v", tc.want, masked, tc.wantSecret)
			}
		})
	}
}

func TestInterpolationErrors(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"${TOKEN:publik}", `p.yaml:3:44: ${TOKEN:publik}: ":publik" after the variable name is not understood`},
		{"${TOKEN:public:x}", `":public:x" after the variable name is not understood`},
		{"${UNSET_X:public}", "environment variable UNSET_X is not set"},
		{"${1X:-d}", `"1X" is not a valid variable name`},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := config.Load("p.yaml", objectPipeline(tc.ref),
				testRegistry(), env(map[string]string{"TOKEN": "env-secret-4b7c"}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestSecretFileLimits: ${file:} reads regular files of at most 1 MiB and
// refuses anything else with an error naming the file and the limit.
func TestSecretFileLimits(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact")
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(exact, bytes.Repeat([]byte("k"), config.MaxSecretFileSize), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, bytes.Repeat([]byte("k"), config.MaxSecretFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{exact, ""},
		{big, big + " is larger than 1 MiB, the limit for ${file:PATH}"},
		{dir, dir + " is a directory, not a regular file"},
		{"/dev/zero", "/dev/zero is a device, not a regular file"},
		{filepath.Join(dir, "missing"), "cannot read the file: no such file or directory"},
	}
	tests = append(tests, specialFiles(t, dir)...)
	for _, tc := range tests {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			if _, err := os.Stat(tc.path); tc.path == "/dev/zero" && err != nil {
				t.Skip("no /dev/zero here")
			}
			_, err := config.Load("p.yaml", objectPipeline("${file:"+tc.path+"}"), testRegistry(), env(nil))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a file of exactly the limit: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "p.yaml:3:44: ${file:"+tc.path+"}") {
				t.Errorf("error = %v, want p.yaml:3:44 and %q", err, tc.want)
			}
		})
	}
}

// TestFileLimits: pathological pipeline files are refused, with a position,
// before the YAML parser runs (100,000 nested [ took over a minute there).
func TestFileLimits(t *testing.T) {
	deepBlock := "name: t\nstages:\n"
	for i := range 120 {
		deepBlock += strings.Repeat(" ", i+1) + "k:\n"
	}
	deepDashes := "name: t\nstages:\n  " + strings.Repeat("- ", 120) + "x\n"
	// A real-looking file with brackets in quotes, comments and block
	// scalars passes the scan.
	fine := "name: t # [[[[ {{{{\nstages:\n  - {name: r, source: {type: rows, object: \"" + strings.Repeat("[", 200) + "\"}}\n" +
		"  - name: o\n    inputs: [r]\n    sink:\n      type: collect\n      name: |\n        " + strings.Repeat("{", 200) + "\n        " + strings.Repeat("[", 200) + "\n"
	tests := []struct{ name, yaml, want string }{
		{"100k nested [", "name: t\nstages: " + strings.Repeat("[", 100_000) + "\n", "p.yaml:2:108: the pipeline file nests deeper than 100 levels"},
		{"100k nested { over lines", "name: t\nstages:\n" + strings.Repeat("{a:\n", 100_000), "p.yaml:102:1: the pipeline file nests deeper than 100 levels"},
		{"nested [ in single quotes do not count", "name: t\nx: '" + strings.Repeat("[", 500) + "'\nstages: " + strings.Repeat("[", 101) + "\n", "p.yaml:3:108: the pipeline file nests deeper"},
		{"deep indentation", deepBlock, "p.yaml:102:101: the pipeline file nests deeper than 100 levels"},
		{"deep dashes", deepDashes, "p.yaml:3:243: the pipeline file nests deeper than 100 levels"},
		{"too large", "name: t\n#" + strings.Repeat("x", config.MaxFileSize), "the pipeline file is larger than 10 MiB"},
		{"brackets in quotes, comments and block scalars", fine, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("p.yaml", []byte(tc.yaml), testRegistry(), env(nil))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a file within the limits: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestLoadFileSizeLimit: LoadFile reads at most MaxFileSize+1 bytes of a
// pipeline file and refuses a larger one.
func TestLoadFileSizeLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, append([]byte("name: t\n#"), bytes.Repeat([]byte("x"), config.MaxFileSize)...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadFile(p, testRegistry())
	if err == nil || !strings.Contains(err.Error(), p+": the pipeline file is larger than 10 MiB") {
		t.Errorf("error = %v", err)
	}
}

// TestLoadIncrementalDeleteMissing: a sync sink that deletes missing keys
// is refused, before anything opens, when a source that feeds it (directly
// or through other stages) is incremental: such a run reads only rows past
// the watermark, and every key it did not read would be deleted. A
// delete_missing sink fed only by full reads loads, beside an incremental
// branch.
func TestLoadIncrementalDeleteMissing(t *testing.T) {
	const head = "name: t\nstages:\n"
	for _, tc := range []struct {
		name, stages, want string
	}{
		{"direct", `  - {name: r, source: {type: rows}, incremental: {cursor: id}}
  - {name: o, inputs: [r], sink: {type: collect}, sync: {mode: changed, key: id, delete_missing: true}}
`, `p.yaml:4:51: stage "o": sync delete_missing cannot be used with the incremental source "r"`},
		{"through a transform and a fan-in", `  - {name: full, source: {type: rows}}
  - {name: inc, source: {type: rows}, incremental: {cursor: id}}
  - {name: f, inputs: [inc], filter: "id > 0"}
  - {name: o, inputs: [full, f], sink: {type: collect}, sync: {mode: changed, key: id, delete_missing: true}}
`, `stage "o": sync delete_missing cannot be used with the incremental source "inc"`},
		{"incremental without delete_missing", `  - {name: r, source: {type: rows}, incremental: {cursor: id}}
  - {name: o, inputs: [r], sink: {type: collect}, sync: {mode: changed, key: id}}
`, ""},
		{"delete_missing on a full read beside an incremental branch", `  - {name: full, source: {type: rows}}
  - {name: inc, source: {type: rows}, incremental: {cursor: id}}
  - {name: o, inputs: [full], sink: {type: collect}, sync: {mode: changed, key: id, delete_missing: true}}
  - {name: o2, inputs: [inc], sink: {type: collect, name: two}}
`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("p.yaml", []byte(head+tc.stages), testRegistry(), env(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Load error = %v\nwant it to contain %q", err, tc.want)
			}
			var ce *pipeline.ConfigError
			if err != nil && !errors.As(err, &ce) {
				t.Errorf("error %T is not a *pipeline.ConfigError", err)
			}
		})
	}
}

// TestLoadIncrementalLookback: a lookback reads rows already sent again,
// so every sink its source reaches must have a sync block (whose manifest
// filters them); a number decodes as well as a duration.
func TestLoadIncrementalLookback(t *testing.T) {
	const head = "name: t\nstages:\n"
	for _, tc := range []struct {
		name, stages, want string
	}{
		{"sync sink", `  - {name: r, source: {type: rows}, incremental: {cursor: id, lookback: 1000}}
  - {name: o, inputs: [r], sink: {type: collect}, sync: {mode: changed, key: id}}
`, ""},
		{"sink without sync", `  - {name: r, source: {type: rows}, incremental: {cursor: id, lookback: 15m}}
  - {name: o, inputs: [r], sink: {type: collect}}
`, `p.yaml:3:37: stage "r": incremental lookback reads again rows already sent, and sink stage "o" has no sync`},
		{"one of two sinks without sync, behind a filter", `  - {name: r, source: {type: rows}, incremental: {cursor: id, lookback: 15m}}
  - {name: f, inputs: [r], filter: "id > 0"}
  - {name: o, inputs: [f], sink: {type: collect}, sync: {mode: changed, key: id}}
  - {name: copy, inputs: [f], sink: {type: collect, name: two}}
`, `sink stage "copy" has no sync`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := config.Load("p.yaml", []byte(head+tc.stages), testRegistry(), env(nil))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.want == "" && g.Stages[0].Incremental.Lookback != "1000":
				t.Fatalf("lookback %q, want 1000", g.Stages[0].Incremental.Lookback)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Load error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
