package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

// TestRunJSONOutput runs the quickstart with --json and with --report -:
// stdout is the run report and nothing else (it parses as one JSON
// object, the same run as the summary on stderr), and the summary and
// logs are on stderr.
func TestRunJSONOutput(t *testing.T) {
	root := repoRoot(t)
	t.Chdir(t.TempDir())
	copyTree(t, filepath.Join(root, "pipelines"), "pipelines")
	for _, flags := range [][]string{{"--json"}, {"--report", "-"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"run", "pipelines/quickstart.yaml", "--progress", "plain"}, flags...)
			if code := realMain(args, &stdout, &stderr); code != exitPartial {
				t.Fatalf("exit %d, want %d\n%s", code, exitPartial, stderr.String())
			}
			var rep pipeline.Report
			dec := json.NewDecoder(&stdout)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&rep); err != nil {
				t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
			}
			if dec.More() {
				t.Errorf("stdout holds more than the report")
			}
			if rep.Status != pipeline.StatusPartial || rep.Counts.Read != 302 || len(rep.ErrorGroups) == 0 {
				t.Errorf("report: status %s, counts %+v, %d error groups", rep.Status, rep.Counts, len(rep.ErrorGroups))
			}
			if !strings.Contains(stderr.String(), "run "+rep.RunID+" of \"quickstart\": partial") || !strings.Contains(stderr.String(), "progress: ") {
				t.Errorf("stderr lacks the summary or the progress lines:\n%s", stderr.String())
			}
		})
	}
}

// TestRunLogFlags checks --log-level and --log-format on a run: at debug
// level in JSON every line before the summary is a JSON object with the
// run's id, the sink's lines name their stage and Salesforce requests are
// there; at the default level (warn) none of those info and debug lines
// is; a bad value is refused before anything runs.
func TestRunLogFlags(t *testing.T) {
	root := repoRoot(t)
	t.Chdir(t.TempDir())
	copyTree(t, filepath.Join(root, "pipelines"), "pipelines")

	var stdout, stderr bytes.Buffer
	args := []string{"run", "pipelines/quickstart.yaml", "--progress", "none", "--json", "--log-level", "debug", "--log-format", "json"}
	if code := realMain(args, &stdout, &stderr); code != exitPartial {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var rep pipeline.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	levels, stages := map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "run "+rep.RunID) {
			break // the summary
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		if rec["run_id"] != rep.RunID {
			t.Errorf("log line without run_id %s: %s", rep.RunID, line)
		}
		if _, ok := rec["job"]; ok {
			t.Errorf("log line with key job, not job_id: %s", line)
		}
		levels[rec["level"].(string)]++
		if s, ok := rec["stage"].(string); ok {
			stages[s]++
		}
	}
	if levels["DEBUG"] == 0 || levels["INFO"] == 0 || stages["load"] == 0 {
		t.Errorf("levels %v, stages %v: want debug and info lines, and the load stage's", levels, stages)
	}

	stdout.Reset()
	stderr.Reset()
	if code := realMain([]string{"run", "pipelines/quickstart.yaml", "--progress", "none"}, &stdout, &stderr); code != exitPartial {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "level=INFO") || strings.Contains(s, "level=DEBUG") {
		t.Errorf("default level logged info or debug lines:\n%s", s)
	}

	for _, bad := range [][]string{{"--log-level", "loud"}, {"--log-format", "xml"}} {
		stderr.Reset()
		args := append([]string{"run", "pipelines/quickstart.yaml"}, bad...)
		if code := realMain(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), bad[0]) {
			t.Errorf("%v: exit %d, want %d naming the flag\n%s", bad, code, exitUsage, stderr.String())
		}
	}
	if _, err := os.Stat("out/quickstart"); err != nil {
		t.Errorf("the runs wrote no dead letters: %v", err)
	}
}

// TestLogFlagsPlanReplay checks that plan and replay take the log flags:
// a plan at debug level in JSON logs JSON lines naming its run; bad values
// are refused by both before anything runs.
func TestLogFlagsPlanReplay(t *testing.T) {
	root := repoRoot(t)
	t.Chdir(t.TempDir())
	copyTree(t, filepath.Join(root, "pipelines"), "pipelines")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"plan", "pipelines/quickstart.yaml", "--out", "planned", "--log-level", "debug", "--log-format", "json"}, &stdout, &stderr)
	if code != exitPartial && code != exitOK {
		t.Fatalf("plan: exit %d\n%s", code, stderr.String())
	}
	jsonLines := 0
	for _, line := range strings.Split(stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["run_id"] != nil && rec["level"] != nil {
			jsonLines++
		}
	}
	if jsonLines == 0 {
		t.Errorf("plan logged no JSON line with a run_id:\n%s", stderr.String())
	}
	for _, args := range [][]string{
		{"plan", "pipelines/quickstart.yaml", "--log-level", "loud"},
		{"replay", "dl.csv", "--pipeline", "pipelines/quickstart.yaml", "--log-format", "xml"},
	} {
		stderr.Reset()
		if code := realMain(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--log-") {
			t.Errorf("%v: exit %d, want %d naming the flag\n%s", args, code, exitUsage, stderr.String())
		}
	}
}
