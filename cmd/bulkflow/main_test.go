package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// repoRoot returns the repository root (tests run in cmd/bulkflow).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	pipelinetest.Golden(t, path, got, *update)
}

// TestBrokenPipelines refuses every broken pipeline file before any work,
// with exit code 2 and the message in its golden file.
func TestBrokenPipelines(t *testing.T) {
	here, _ := os.Getwd()
	files, err := filepath.Glob(filepath.Join(here, "testdata/broken/*.yaml"))
	if err != nil || len(files) < 15 {
		t.Fatalf("want at least 15 broken pipeline files, have %d (%v)", len(files), err)
	}
	t.Setenv("BULKFLOW_TEST_UNSET_DIR", "")
	os.Unsetenv("BULKFLOW_TEST_UNSET_DIR")
	root := repoRoot(t)
	t.Chdir(root)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			rel, _ := filepath.Rel(root, f)
			var stdout, stderr bytes.Buffer
			code := realMain([]string{"validate", rel}, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), rel+":") {
				t.Errorf("message does not name the file %s:\n%s", rel, stderr.String())
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", stderr.Bytes())
		})
	}
}

// TestPipelinesValidate checks every example pipeline file validates.
func TestPipelinesValidate(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "pipelines/*.yaml"))
	files = slices.DeleteFunc(files, config.IsTestFile) // bulkflow test files
	if len(files) == 0 {
		t.Fatal("no pipeline files in pipelines/")
	}
	t.Chdir(root)
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			if !pgExampleEnv(t, rel) {
				t.Skip("reads PostgreSQL, and no test server runs")
			}
			var stdout, stderr bytes.Buffer
			if code := realMain([]string{"validate", rel}, &stdout, &stderr); code != exitOK {
				t.Errorf("validate %s: exit %d\n%s", rel, code, stderr.String())
			}
		})
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestQuickstart runs the README's first command, pipelines/quickstart.yaml
// (CSV → filter → map → Salesforce insert on the in-process emulator), in a
// scratch copy of the pipelines folder, and compares its dead letters with
// golden files. Jobs run concurrently, so dead-letter lines are compared
// sorted and job ids are replaced by JOB_ID.
func TestQuickstart(t *testing.T) {
	root := repoRoot(t)
	here, _ := os.Getwd()
	work := t.TempDir()
	copyTree(t, filepath.Join(root, "pipelines"), filepath.Join(work, "pipelines"))
	t.Chdir(work)
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"run", "pipelines/quickstart.yaml", "--report", "out/report.json", "--progress", "none"}, &stdout, &stderr)
	if code != exitPartial {
		t.Fatalf("exit code = %d, want %d (rows were dead-lettered)\n%s", code, exitPartial, stderr.String())
	}
	var rep struct {
		pipeline.Report
		Sinks map[string]struct {
			Jobs []struct {
				ID          string `json:"id"`
				Rows        int64  `json:"rows"`
				State       string `json:"state"`
				Succeeded   int64  `json:"succeeded"`
				Failed      int64  `json:"failed"`
				Unprocessed int64  `json:"unprocessed"`
			} `json:"jobs"`
		} `json:"sinks"`
	}
	b, err := os.ReadFile("out/report.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	c := rep.Counts
	if !c.Balanced() || c.Read != 302 || c.Filtered != 33 || c.Loaded < 200 || c.DeadLettered < 10 {
		t.Errorf("counts = %+v, want 302 read, 33 filtered, most loaded, some dead-lettered, balanced", c)
	}
	var uploaded, succeeded, failed int64
	for _, j := range rep.Sinks["load"].Jobs {
		if j.State != "JobComplete" || j.Succeeded+j.Failed+j.Unprocessed != j.Rows {
			t.Errorf("job %+v does not account for its rows", j)
		}
		uploaded += j.Rows
		succeeded += j.Succeeded
		failed += j.Failed
	}
	if succeeded != c.Loaded || uploaded == 0 || failed == 0 {
		t.Errorf("jobs: uploaded %d, succeeded %d, failed %d; report loaded %d", uploaded, succeeded, failed, c.Loaded)
	}
	jobID := regexp.MustCompile(`750[0-9A-Za-z]{12}([0-9A-Za-z]{3})?`)
	dls, _ := filepath.Glob(filepath.Join("out/quickstart/dead-letter", rep.RunID, "*.csv"))
	if len(dls) != 3 {
		t.Fatalf("dead-letter files %v, want read, map and load", dls)
	}
	for _, f := range dls {
		b, _ := os.ReadFile(f)
		b = bytes.ReplaceAll(b, []byte(rep.RunID), []byte("RUN_ID"))
		b = jobID.ReplaceAll(b, []byte("JOB_ID"))
		lines := strings.SplitAfter(string(b), "\n")
		sort.Strings(lines[1:])
		golden(t, filepath.Join(here, "testdata/quickstart/dead-letter", filepath.Base(f)), []byte(strings.Join(lines, "")))
	}
}

// TestAccountsToCSV runs pipelines/accounts-to-csv.yaml end to end in a
// scratch copy of the repository's pipelines folder and compares its output
// and dead letters with golden files.
func TestAccountsToCSV(t *testing.T) {
	root := repoRoot(t)
	here, _ := os.Getwd()
	work := t.TempDir()
	copyTree(t, filepath.Join(root, "pipelines"), filepath.Join(work, "pipelines"))
	t.Chdir(work)
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"run", "pipelines/accounts-to-csv.yaml", "--report", "out/report.json", "--progress", "none"}, &stdout, &stderr)
	if code != exitPartial {
		t.Fatalf("exit code = %d, want %d (rows were dead-lettered)\n%s", code, exitPartial, stderr.String())
	}
	var rep pipeline.Report
	b, err := os.ReadFile("out/report.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	c := rep.Counts
	if !c.Balanced() || c.Read != 302 || c.Filtered == 0 || c.DeadLettered < 5 || c.Loaded == 0 {
		t.Errorf("counts = %+v, want 302 read, some filtered, at least 5 dead-lettered, balanced", c)
	}
	out, err := os.ReadFile("out/accounts-to-csv/accounts.csv")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(here, "testdata/accounts-to-csv/accounts.csv"), out)

	runDir := filepath.Join("out/accounts-to-csv/dead-letter", rep.RunID)
	dls, _ := filepath.Glob(filepath.Join(runDir, "*.csv"))
	if len(dls) == 0 || len(rep.DeadLetters) != len(dls) {
		t.Fatalf("dead-letter files %v, report lists %v", dls, rep.DeadLetters)
	}
	for _, f := range dls {
		b, _ := os.ReadFile(f)
		b = bytes.ReplaceAll(b, []byte(rep.RunID), []byte("RUN_ID"))
		golden(t, filepath.Join(here, "testdata/accounts-to-csv/dead-letter", filepath.Base(f)), b)
	}
	var m pipeline.Manifest
	mb, err := os.ReadFile(filepath.Join(runDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mb, &m); err != nil || m.Counts != rep.Counts || len(m.Files) != len(dls) {
		t.Errorf("manifest = %+v (err %v), want counts %+v and %d files", m, err, rep.Counts, len(dls))
	}
	if !regexp.MustCompile(`read 302, loaded \d+, filtered \d+, dead-lettered \d+`).Match(stderr.Bytes()) {
		t.Errorf("summary missing from stderr:\n%s", stderr.String())
	}
}

// TestReplayDeadLetters reads a dead-letter file back as a CSV source, as
// the replay feature will: no edits needed.
func TestReplayDeadLetters(t *testing.T) {
	root := repoRoot(t)
	work := t.TempDir()
	copyTree(t, filepath.Join(root, "pipelines"), filepath.Join(work, "pipelines"))
	t.Chdir(work)
	var stdout, stderr bytes.Buffer
	realMain([]string{"run", "pipelines/accounts-to-csv.yaml", "--report", "out/report.json", "--progress", "none"}, &stdout, &stderr)
	var rep pipeline.Report
	b, _ := os.ReadFile("out/report.json")
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	replay := `
name: replay
dead_letter: out/replay-dl/
stages:
  - name: read
    source: {type: csv, url: "out/accounts-to-csv/dead-letter/` + rep.RunID + `/map.csv"}
  - name: write
    inputs: [read]
    sink: {type: csv, url: out/replayed.csv}
`
	os.WriteFile("replay.yaml", []byte(replay), 0o644)
	stderr.Reset()
	if code := realMain([]string{"run", "replay.yaml", "--progress", "none"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("replay exit %d:\n%s", code, stderr.String())
	}
	got, _ := os.ReadFile("out/replayed.csv")
	want, _ := os.ReadFile("out/accounts-to-csv/dead-letter/" + rep.RunID + "/map.csv")
	if !bytes.Equal(got, want) || len(got) == 0 {
		t.Errorf("replayed dead letters differ from the original file:\n%s\nvs\n%s", got, want)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Commands:"},
		{[]string{"--help"}, exitOK, "Exit codes"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"run"}, exitUsage, "Usage: bulkflow run FILE"},
		{[]string{"run", "x.yaml", "--progress", "fancy"}, exitUsage, "--progress must be"},
		{[]string{"version"}, exitOK, "bulkflow dev"},
		{[]string{"plugins"}, exitOK, "csv"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Errorf("realMain(%q) = %d, output:\n%s%s\nwant %d and %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.want)
			}
		})
	}
}

var _ = context.Background
