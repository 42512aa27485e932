package soak

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestJudge checks the oracle itself on hand-made truths: each broken
// promise is counted in its class, and nothing else is.
func TestJudge(t *testing.T) {
	source := map[string]string{"K1": "One", "K2": "Two", "K3": "Three"}
	rec := func(k, name string) map[string]string {
		return map[string]string{"Id": "001" + k, "AccountNumber": k, "Name": name}
	}
	all := []map[string]string{rec("K1", "One"), rec("K2", "Two"), rec("K3", "Three")}
	dl := func(k, code string) liveRow { return liveRow{key: k, code: code, file: "dl/r/write.csv"} }
	tests := []struct {
		name    string
		records []map[string]string
		live    []liveRow
		mode    judgeMode
		want    verdict // Problems not compared
	}{
		{"every row stored once", all, nil, judgeFinal, verdict{}},
		{"one row dead-lettered instead", all[:2], []liveRow{dl("K3", "UNABLE_TO_LOCK_ROW")}, judgeFinal, verdict{}},
		{"a row stored twice", append(all, rec("K2", "Two")), nil, judgeFinal, verdict{Duplicated: 1}},
		{"a row stored three times", append(all, rec("K2", "Two"), rec("K2", "Two")), nil, judgeFinal, verdict{Duplicated: 2}},
		{"a record of no source row", append(all, rec("K9", "Nine")), nil, judgeFinal, verdict{Duplicated: 1}},
		{"a row nowhere", all[:2], nil, judgeFinal, verdict{Lost: 1}},
		{"stored and dead-lettered", all, []liveRow{dl("K3", "cancelled")}, judgeFinal, verdict{Misreported: 1}},
		{"in two dead letters", all[:2], []liveRow{dl("K3", "UNPROCESSED"), dl("K3", "UNPROCESSED")}, judgeFinal, verdict{Misreported: 1}},
		{"stored with another name", []map[string]string{rec("K1", "One"), rec("K2", "Two"), rec("K3", "3")}, nil, judgeFinal, verdict{Misreported: 1}},
		{"a dead letter of no source row", all, []liveRow{dl("K9", "UNPROCESSED")}, judgeFinal, verdict{Misreported: 1}},
		{"unknown outcome between steps", all, []liveRow{dl("K3", "job_incomplete")}, judgeBetween, verdict{}},
		{"unknown outcome at the end", all, []liveRow{dl("K3", "job_incomplete")}, judgeFinal, verdict{Misreported: 1}},
		{"a row not read before Ctrl-C", all[:2], nil, judgeCancelled, verdict{}},
		{"a cancelled row that is stored", all, []liveRow{dl("K3", "cancelled")}, judgeCancelled, verdict{Misreported: 1}},
		{"contradictory results need a look", all, []liveRow{dl("K3", "result_mismatch")}, judgeFinal, verdict{}},
		{"contradictory results, not stored", all[:2], []liveRow{dl("K3", "result_mismatch")}, judgeFinal, verdict{}},
		{"a retryable code is no unknown outcome", all, []liveRow{dl("K3", "api_error")}, judgeBetween, verdict{Misreported: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge(source, "AccountNumber", tt.records, tt.live, tt.mode)
			if v.Lost != tt.want.Lost || v.Duplicated != tt.want.Duplicated || v.Misreported != tt.want.Misreported {
				t.Errorf("lost %d duplicated %d misreported %d, want %d %d %d (%v)", v.Lost, v.Duplicated, v.Misreported,
					tt.want.Lost, tt.want.Duplicated, tt.want.Misreported, v.Problems)
			}
			if v.ok() != (len(v.Problems) == 0) {
				t.Errorf("ok %v with problems %v", v.ok(), v.Problems)
			}
		})
	}
}

// TestLiveDeadLetters checks which dead-letter rows count as live: rows of
// files a manifest lists, less the rows a replay took (the retryable ones,
// or all with --all); a file no manifest lists (a superseded attempt's) is
// not read, and a manifest whose row count is wrong is a problem.
func TestLiveDeadLetters(t *testing.T) {
	const header = "AccountNumber,Name,_stage,_error_code,_error,_error_field,_retryable,_ref,_origin,_run_id,_raw\n"
	row := func(k, code, retry string) string {
		return k + ",N," + "write," + code + ",msg,," + retry + ",750x,a.csv:2,r1,\n"
	}
	tests := []struct {
		name         string
		replayed     string // replayed.json, "" for none
		manifestRows int
		wantKeys     []string
		wantProblems int
	}{
		{"nothing replayed", "", 3, []string{"K1", "K2", "K3"}, 0},
		{"replayed without --all", `{"replays":[{"sha256":"SHA","run_id":"r2","status":"partial","counts":{"loaded":1,"dead_lettered":1}}]}`, 3, []string{"K2"}, 0},
		{"replayed with --all", `{"replays":[{"sha256":"SHA","run_id":"r2","all":true,"status":"succeeded","counts":{"loaded":3}}]}`, 3, nil, 0},
		{"a replay that sent nothing does not consume", `{"replays":[{"sha256":"SHA","run_id":"r2","status":"succeeded","counts":{"filtered":3}}]}`, 3, []string{"K1", "K2", "K3"}, 0},
		{"manifest row count wrong", "", 5, []string{"K1", "K2", "K3"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			run := filepath.Join(dir, "r1")
			if err := os.MkdirAll(filepath.Join(run, "attempt-2"), 0o755); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(run, "attempt-2", "write.csv")
			content := header + row("K1", "UNABLE_TO_LOCK_ROW", "true") + row("K2", "REQUIRED_FIELD_MISSING", "false") + row("K3", "UNPROCESSED", "true")
			write := func(path, s string) {
				if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(file, content)
			write(filepath.Join(run, "write.csv"), header+row("K7", "cancelled", "true")) // superseded: not listed
			write(filepath.Join(run, "manifest.json"), `{"run_id":"r1","files":[{"stage":"write","url":"`+file+`","rows":`+
				strconv.Itoa(tt.manifestRows)+`}]}`)
			f, err := readDLFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if tt.replayed != "" {
				write(filepath.Join(dir, "replayed.json"), strings.ReplaceAll(tt.replayed, "SHA", f.sha256))
			}
			files, problems, err := readDeadLetters(dir)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, l := range liveRows(files, "AccountNumber") {
				keys = append(keys, l.key)
			}
			if !reflect.DeepEqual(keys, tt.wantKeys) || len(problems) != tt.wantProblems {
				t.Errorf("live %v problems %v, want %v and %d problems", keys, problems, tt.wantKeys, tt.wantProblems)
			}
		})
	}
}

// TestNewScenario checks that a seed decides its scenario, that the
// classes take turns, and that fault runs have a fault on.
func TestNewScenario(t *testing.T) {
	seen := map[string]int{}
	for seed := uint64(1); seed <= uint64(10*len(classes)); seed++ {
		a, b := newScenario(seed, true), newScenario(seed, true)
		if a != b {
			t.Fatalf("seed %d gave two scenarios:\n%s\n%s", seed, a, b)
		}
		seen[a.Class]++
		if a.Class == classFaults && !faultsOn(a.Faults) {
			t.Errorf("seed %d: a fault scenario without faults: %s", seed, a)
		}
		if a.KillAfterJobs < 1 || a.KillAfterJobs > (a.Rows+a.JobRows-1)/a.JobRows {
			t.Errorf("seed %d: kill after %d jobs of %d", seed, a.KillAfterJobs, (a.Rows+a.JobRows-1)/a.JobRows)
		}
		if a.Class == classREST && (a.API != "rest" || a.CollFaults.Latency <= 0 || a.Faults.ProcessingDelay != 0 || a.Faults.FailJobAfterRows != 0) {
			t.Errorf("seed %d: a REST scenario without api rest and latency, or with Bulk-only faults: %s", seed, a)
		}
		if a.Class == classIncomplete && a.Faults.ProcessingDelay <= a.PollTimeout {
			t.Errorf("seed %d: jobs (delay %s) do not outlive poll_timeout %s", seed, a.Faults.ProcessingDelay, a.PollTimeout)
		}
	}
	for _, c := range classes {
		if seen[c] != 10 {
			t.Errorf("class %s played %d times in %d seeds, want 10", c, seen[c], 10*len(classes))
		}
	}
}

// TestSuccesses checks the upsert oracle's count: successful rows of the
// object's ingest jobs (processed − failed), not of queries or other
// objects.
func TestSuccesses(t *testing.T) {
	jobs := []salesforcetest.JobInfo{
		{Object: "Account", NumberRecordsProcessed: 100, NumberRecordsFailed: 3},
		{Object: "Account", NumberRecordsProcessed: 50},
		{Object: "Account", Query: true, NumberRecordsProcessed: 999},
		{Object: "Contact", NumberRecordsProcessed: 7},
		{Object: "Account", NumberRecordsProcessed: 0, State: salesforcetest.StateAborted},
	}
	if got := successes(jobs, "Account"); got != 147 {
		t.Errorf("successes = %d, want 147", got)
	}
	if got := successes(nil, "Account"); got != 0 {
		t.Errorf("successes of no jobs = %d", got)
	}
}
