package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// normalizeSummary returns the summary at the end of a run's stderr (from
// its "run RUN_ID" line) with what changes from run to run replaced: the
// run id, the duration, the emulators' URLs and Salesforce job ids.
func normalizeSummary(text, runID string, urls map[string]string) string {
	if i := strings.LastIndex(text, "run "+runID+" of "); i >= 0 {
		text = text[i:]
	}
	text = strings.ReplaceAll(text, runID, "RUN_ID")
	for url, name := range urls {
		text = strings.ReplaceAll(text, url, name)
	}
	text = regexp.MustCompile(`in [0-9]+\.[0-9]{2}s`).ReplaceAllString(text, "in N.NNs")
	return regexp.MustCompile(`750[0-9A-Za-z]{12}([0-9A-Za-z]{3})?`).ReplaceAllString(text, "JOB_ID")
}

// TestSummaryQuickstart compares the end-of-run summary of the quickstart
// (rows rejected by the CSV reader, the mapping and Salesforce; none
// retryable) with its golden file, and checks the report's error groups
// against its counts.
func TestSummaryQuickstart(t *testing.T) {
	root := repoRoot(t)
	here, _ := os.Getwd()
	t.Chdir(t.TempDir())
	copyTree(t, filepath.Join(root, "pipelines"), "pipelines")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"run", "pipelines/quickstart.yaml", "--report", "report.json", "--progress", "none"}, &stdout, &stderr)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d\n%s", code, exitPartial, stderr.String())
	}
	rep := readReport(t, "report.json")
	checkGroups(t, rep)
	if len(rep.NextSteps) != 0 {
		t.Errorf("next steps %+v, want none: no row is retryable or resume-class", rep.NextSteps)
	}
	golden(t, filepath.Join(here, "testdata/summary/quickstart.golden"), []byte(normalizeSummary(stderr.String(), rep.RunID, nil)))
}

// TestSummaryRecoveryClasses runs a pipeline whose rows end in every
// recovery class but inspect: a record with too many fields (fix), rows of Bulk jobs that
// fail part-way (UNPROCESSED: retry) and rows of jobs that outlive
// poll_timeout (job_incomplete: resume). The summary, compared with its
// golden file, groups them by code and gives the replay command for the
// retryable file and the resume command for the run.
func TestSummaryRecoveryClasses(t *testing.T) {
	here, _ := os.Getwd()
	failing := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{FailJobAfterRows: 3}})
	t.Cleanup(failing.Close)
	slow := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 10 * time.Second}})
	t.Cleanup(slow.Close)
	t.Chdir(t.TempDir())
	// Each sink keeps its own ledger (one shared would be refused).
	const sink = "  - name: %s\n    inputs: [m]\n    sink: {type: salesforce, object: Account, api: bulk, max_job_rows: 5, concurrency: 1,\n" +
		"      poll_initial: 20ms, poll_max: 50ms, poll_timeout: %s, instance_url: %q, auth: {access_token: %q}, ledger: .bulkflow/ledger/%[1]s/}\n"
	yaml := "name: classes\ndead_letter: dl/\nstages:\n" +
		"  - name: read\n    source: {type: csv, url: in.csv, columns: {n: int}}\n" +
		"  - {name: m, inputs: [read], map: {Name: Name}}\n" +
		fmt.Sprintf(sink, "flaky", "30s", failing.URL, failing.AccessToken()) +
		fmt.Sprintf(sink, "slow", "300ms", slow.URL, slow.AccessToken())
	in := "Name,n\n"
	for i := range 10 {
		in += fmt.Sprintf("acct %d,%d\n", i, i)
	}
	in += "broken,1,extra field\n"
	for name, data := range map[string]string{"p.yaml": yaml, "in.csv": in} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"run", "p.yaml", "--report", "report.json", "--progress", "none", "--offline"}, &stdout, &stderr)
	if code != exitPartial {
		t.Fatalf("exit %d, want %d\n%s", code, exitPartial, stderr.String())
	}
	rep := readReport(t, "report.json")
	checkGroups(t, rep)
	want := map[string]int64{"field_count": 1, "UNPROCESSED": 4, "job_incomplete": 10}
	for _, g := range rep.ErrorGroups {
		if want[g.Code] != g.Rows {
			t.Errorf("group %s has %d rows, want %d", g.Code, g.Rows, want[g.Code])
		}
	}
	if len(rep.ErrorGroups) != len(want) {
		t.Errorf("groups %+v, want %v", rep.ErrorGroups, want)
	}
	wantSteps := []pipeline.NextStep{
		{Recovery: "retry", Rows: 4, Command: "bulkflow replay dl/" + rep.RunID + "/flaky.csv --pipeline p.yaml"},
		{Recovery: "resume", Rows: 10, Command: "bulkflow run p.yaml --resume " + rep.RunID + " --offline"},
	}
	if got, _ := json.Marshal(rep.NextSteps); string(got) != string(must(json.Marshal(wantSteps))) {
		t.Errorf("next steps %s, want %s", got, must(json.Marshal(wantSteps)))
	}
	golden(t, filepath.Join(here, "testdata/summary/classes.golden"),
		[]byte(normalizeSummary(stderr.String(), rep.RunID, map[string]string{failing.URL: "FAILING_URL", slow.URL: "SLOW_URL"})))
}

// checkGroups checks that a report's error groups add up to its
// dead-lettered count and agree with the code table.
func checkGroups(t *testing.T, rep *pipeline.Report) {
	t.Helper()
	var rows int64
	for _, g := range rep.ErrorGroups {
		rows += g.Rows
		if rec := pipeline.RecoveryOf(g.Code); g.Recovery != rec.String() || g.Retryable != rec.Retryable() {
			t.Errorf("group %s: recovery %s retryable %v, want %s %v", g.Code, g.Recovery, g.Retryable, rec, rec.Retryable())
		}
		if len(g.TopMessages) == 0 || len(g.TopMessages) > 3 {
			t.Errorf("group %s has %d top messages, want 1 to 3", g.Code, len(g.TopMessages))
		}
	}
	if rows != rep.Counts.DeadLettered {
		t.Errorf("error groups hold %d rows, the report dead-lettered %d", rows, rep.Counts.DeadLettered)
	}
}

func readReport(t *testing.T, path string) *pipeline.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep pipeline.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &rep
}

// TestResumeFlags checks the flags the summary's resume command repeats:
// those that change what the resume reads or where its state is, with an
// auth override's value left out.
func TestResumeFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"p.yaml"}, ""},
		{[]string{"p.yaml", "--shard", "1/4", "--state", "s3://b/st", "--offline"}, "--shard 1/4 --state s3://b/st --offline"},
		{[]string{"p.yaml", "--set", "load.api=bulk", "--set", "load.auth.client_secret=shh", "--instance-url", "http://127.0.0.1:8484"},
			"--set load.api=bulk --set load.auth.client_secret=AUTH_VALUE --instance-url http://127.0.0.1:8484"},
	}
	for _, tc := range tests {
		var rf runFlags
		var stderr bytes.Buffer
		if file, code := rf.parse(tc.args, &stderr); file == "" {
			t.Fatalf("%v: exit %d\n%s", tc.args, code, stderr.String())
		}
		if got := strings.Join(rf.resumeFlags(), " "); got != tc.want {
			t.Errorf("%v: resume flags %q, want %q", tc.args, got, tc.want)
		}
	}
}
