package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// multiArgs are the extra flags a testdata/multi file is validated with.
var multiArgs = map[string][]string{
	"overrides_bad": {"--set", "load.concurrency=lots", "--set", "laod.x=1"},
}

// TestValidateMulti: validate reports every problem of a broken pipeline
// in one pass, sorted by position, with a count (golden files; each file
// has at least two problems), and --json says the same.
func TestValidateMulti(t *testing.T) {
	here, _ := os.Getwd()
	files, err := filepath.Glob(filepath.Join(here, "testdata/multi/*.yaml"))
	if err != nil || len(files) < 10 {
		t.Fatalf("want at least 10 broken pipelines in testdata/multi, have %d (%v)", len(files), err)
	}
	root := repoRoot(t)
	t.Chdir(root)
	count := regexp.MustCompile(`: (\d+) problems\n$`)
	posLine := regexp.MustCompile(`^bulkflow: [^:]+:(\d+):(\d+): `)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			rel, _ := filepath.Rel(root, f)
			args := append([]string{"validate", rel}, multiArgs[name]...)
			var stdout, stderr bytes.Buffer
			if code := realMain(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", code, exitUsage, stderr.String())
			}
			out := stderr.String()
			m := count.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no count line ending the output:\n%s", out)
			}
			n, _ := strconv.Atoi(m[1])
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if n < 2 || len(lines) != n+1 {
				t.Errorf("count %d, %d lines; want 2 or more problems, one line each:\n%s", n, len(lines)-1, out)
			}
			// Sorted by position; no Go type names.
			last := [2]int{}
			for _, l := range lines[:len(lines)-1] {
				if p := posLine.FindStringSubmatch(l); p != nil {
					line, _ := strconv.Atoi(p[1])
					col, _ := strconv.Atoi(p[2])
					if line < last[0] || line == last[0] && col < last[1] {
						t.Errorf("not sorted by position at %q", l)
					}
					last = [2]int{line, col}
				}
				if strings.Contains(l, "Go struct") || strings.Contains(l, "unmarshal") {
					t.Errorf("Go internals in %q", l)
				}
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", stderr.Bytes())

			stdout.Reset()
			stderr.Reset()
			realMain(append(args, "--json"), &stdout, &stderr)
			var js struct {
				Valid    bool
				Count    int
				Problems []struct {
					Line, Col int
					Message   string
				}
			}
			if err := json.Unmarshal(stdout.Bytes(), &js); err != nil {
				t.Fatalf("--json: %v\n%s", err, stdout.String())
			}
			if js.Valid || js.Count != n || len(js.Problems) != n {
				t.Errorf("--json: valid %v count %d problems %d, want false %d %d", js.Valid, js.Count, len(js.Problems), n, n)
			}
		})
	}
}

// TestValidateJSONValid: --json on a valid pipeline lists its stages.
func TestValidateJSONValid(t *testing.T) {
	t.Chdir(repoRoot(t))
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"validate", "--json", "--offline", "pipelines/accounts-to-csv.yaml"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var js struct {
		Valid    bool
		Pipeline string
		Problems []any
		Stages   []struct{ Name, Schema string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &js); err != nil {
		t.Fatal(err)
	}
	if !js.Valid || js.Pipeline != "accounts-to-csv" || len(js.Problems) != 0 || len(js.Stages) != 4 || !strings.Contains(js.Stages[2].Schema, "Country_Name__c") {
		t.Errorf("--json = %s", stdout.String())
	}
}
