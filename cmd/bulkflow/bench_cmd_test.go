package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/bench"
)

// benchFull, when set (go test -run TestBenchCommand -bench.full="--rows
// 1000000 --runs 3"), makes TestBenchCommandFull run `bulkflow bench` with
// those arguments and log the table.
var benchFull = flag.String("bench.full", "", "arguments for a full `bulkflow bench` run in TestBenchCommandFull (empty: skipped)")

// TestBenchCommand runs `bulkflow bench` end to end on a small data set;
// the child processes are re-executions of the test binary, which the
// init hook of bench.go turns into the hidden child mode.
func TestBenchCommand(t *testing.T) {
	data := t.TempDir()
	run := func() *benchReport {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := runBench(context.Background(), []string{"--rows", "2000", "--runs", "1", "--json", "--data", data}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
		}
		var rep benchReport
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
		}
		return &rep
	}
	rep := run()
	if rep.Rows != 2000 || rep.Runs != 1 {
		t.Errorf("rows, runs = %d, %d; want 2000, 1", rep.Rows, rep.Runs)
	}
	var names []string
	for _, s := range rep.Scenarios {
		names = append(names, s.Name)
		if s.Rows != 2000 {
			t.Errorf("%s: rows = %d, want 2000", s.Name, s.Rows)
		}
		if !(s.RowsPerS > 0 && s.Seconds > 0 && s.MBPerS > 0) {
			t.Errorf("%s: want positive measurements, got %+v", s.Name, s)
		}
		// Every scenario but the baseline (and the emulator's own passes)
		// is paired with it, run for run.
		if (s.Wall.Pairs == 1 && s.CPU.Pairs == 1 && s.Wall.Median > 0) != (s.Name != "baseline" && s.Name != "emulator-upsert") {
			t.Errorf("%s: paired ratios %+v, %+v", s.Name, s.Wall, s.CPU)
		}
		if s.PeakRSSMiB <= 0 {
			t.Errorf("%s: peak RSS %v MiB, want > 0 (measured in a child process)", s.Name, s.PeakRSSMiB)
		}
		// Only run-csv talks to an emulator, whose CPU is reported apart.
		if runtime.GOOS == "linux" && (s.CPUSeconds <= 0 || (s.EmulatorCPUSeconds > 0) != (s.Name == "run-csv")) {
			t.Errorf("%s: cpu %v s, emulator cpu %v s; want cpu > 0 and emulator cpu > 0 for run-csv only",
				s.Name, s.CPUSeconds, s.EmulatorCPUSeconds)
		}
		// The realistic workload has Salesforce reject about 4.5 %.
		if (s.Rejected > 20 && s.Rejected < 200) != (s.Name == "run-csv") {
			t.Errorf("%s: %d rows rejected, want about 90 for run-csv only", s.Name, s.Rejected)
		}
		if s.Name == "emulator-upsert" {
			if len(s.Upserts) != 3 || s.Upserts[0].Created != 2000-s.Upserts[0].Failed || s.Upserts[1].Created != 0 ||
				s.Upserts[2].Rows != 2000 || len(s.UpsertWall) != 2 || len(s.UpsertCPU) != 2 || len(s.UpsertMemory) != 2 {
				t.Errorf("emulator-upsert passes: %+v, ratios %v %v", s.Upserts, s.UpsertWall, s.UpsertMemory)
			}
		}
	}
	if got := strings.Join(names, ","); got != "baseline,plan-csv,plan-parquet,run-csv,plan-csv-easy,emulator-upsert,sync-diff" {
		t.Errorf("scenarios = %s", got)
	}
	if len(rep.Targets) != 17 {
		t.Errorf("targets = %+v, want 17", rep.Targets)
	}
	// sync-diff's child checked that its second run sent exactly the 1 %
	// changed rows and filtered the rest; its target is paired with
	// plan-csv's runs.
	if !slices.ContainsFunc(rep.Targets, func(tg benchTarget) bool {
		return strings.HasPrefix(tg.Target, "sync diff (1% changed) wall <= 1.5x plan-csv") && strings.Contains(tg.Actual, "(1 pair)")
	}) {
		t.Errorf("no paired sync diff target in %+v", rep.Targets)
	}
	for _, tg := range rep.Targets {
		scaled := strings.HasPrefix(tg.Target, "peak RSS x") || strings.Contains(tg.Target, " at x")
		if scaled && tg.Status != "not measured" || !scaled && tg.Status != "met" && tg.Status != "not met" {
			t.Errorf("target %q: status %q", tg.Target, tg.Status)
		}
	}

	// The data folder is kept and reused for the same row count.
	for _, f := range []string{bench.CSVFile, bench.ParquetFile, bench.MetaFile} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.Stat(filepath.Join(data, bench.CSVFile))
	var stdout, stderr bytes.Buffer
	if code := runBench(context.Background(), []string{"--rows", "2000", "--runs", "1", "--only", "a", "--data", data}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	after, _ := os.Stat(filepath.Join(data, bench.CSVFile))
	if !after.ModTime().Equal(before.ModTime()) || strings.Contains(stderr.String(), "generated") {
		t.Errorf("data was regenerated instead of reused:\n%s", stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "a baseline") || !strings.Contains(out, "not measured") {
		t.Errorf("table output:\n%s", out)
	}
}

// TestBenchScaled checks --rss-scale: one more run of each scenario at N x
// the rows, its peak RSS against the 1x runs' and sync-diff's wall time
// against plan-csv's at that scale, as one pair.
func TestBenchScaled(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--rows", "1000", "--runs", "1", "--only", "b,g", "--rss-scale", "3", "--json", "--data", t.TempDir()}
	if code := runBench(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep benchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	for _, s := range rep.Scenarios {
		if s.SecondsScaled <= 0 || s.RSSScaledMiB <= 0 {
			t.Errorf("%s: scaled run %v s, %v MiB; want both > 0", s.Name, s.SecondsScaled, s.RSSScaledMiB)
		}
	}
	var found int
	for _, tg := range rep.Targets {
		switch {
		case strings.Contains(tg.Target, "x10"):
			t.Errorf("target %q: the scale is 3, not 10", tg.Target)
		case strings.HasPrefix(tg.Target, "sync diff (1% changed) wall at x3 rows <= 1.5x plan-csv at x3"),
			strings.HasPrefix(tg.Target, "peak RSS x3 rows / x1 <= 1.10: plan-csv"),
			strings.HasPrefix(tg.Target, "peak RSS x3 rows / x1 <= 1.10: sync-diff"):
			found++
			if tg.Status != "met" && tg.Status != "not met" {
				t.Errorf("target %q: status %q, want measured", tg.Target, tg.Status)
			}
			if strings.HasPrefix(tg.Target, "sync") && !strings.Contains(tg.Actual, "(1 pair)") {
				t.Errorf("target %q: actual %q, want one pair", tg.Target, tg.Actual)
			}
		}
	}
	if found != 3 {
		t.Errorf("found %d of the 3 scaled targets in %+v", found, rep.Targets)
	}
}

// TestBenchProfiles checks --cpuprofile and --memprofile: a CPU profile of
// each measured child (and of the emulator beside run-csv's) and an
// allocation profile of each child, in pprof's gzipped format.
func TestBenchProfiles(t *testing.T) {
	data, cpuDir, memDir := t.TempDir(), t.TempDir(), t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"--rows", "2000", "--runs", "1", "--only", "b,d", "--data", data, "--cpuprofile", cpuDir, "--memprofile", memDir}
	if code := runBench(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, tc := range []struct{ file, has string }{
		{filepath.Join(cpuDir, "plan-csv-1.pprof"), "cpu"},
		{filepath.Join(cpuDir, "run-csv-1.pprof"), "cpu"},
		{filepath.Join(cpuDir, "run-csv-1-emulator.pprof"), "cpu"},
		{filepath.Join(memDir, "plan-csv-1.allocs.pprof"), "alloc_space"},
		{filepath.Join(memDir, "run-csv-1.allocs.pprof"), "alloc_space"},
	} {
		f, err := os.Open(tc.file)
		if err != nil {
			t.Error(err)
			continue
		}
		zr, err := gzip.NewReader(f)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		f.Close()
		if err != nil || !bytes.Contains(body, []byte(tc.has)) {
			t.Errorf("%s: not a pprof profile holding %q (%v)", tc.file, tc.has, err)
		}
	}
	if entries, _ := os.ReadDir(memDir); len(entries) != 2 {
		t.Errorf("%d allocation profiles, want 2 (one per measured child)", len(entries))
	}
}

// TestBenchUsage checks the usage errors of `bulkflow bench`.
func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--rows", "0"},
		{"--runs", "-1"},
		{"--rows", "x"},
		{"--only", "h"},
		{"--rss-scale", "1"},
		{"--only", ","},
		{"--nope"},
		{"extra"},
		{benchChildArg},
		{benchChildArg, "nope", "--data", "x", "--out", "y"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runBench(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("bench %q: exit %d, want %d (stderr %s)", args, code, exitUsage, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runBench(context.Background(), []string{"--help"}, &stdout, &stderr); code != exitOK {
		t.Errorf("--help: exit %d", code)
	}
}

// TestBenchCommandFull runs `bulkflow bench` with the -bench.full
// arguments and logs the table (run with -v to see it).
func TestBenchCommandFull(t *testing.T) {
	if *benchFull == "" {
		t.Skip("set -bench.full to run, e.g. -bench.full='--rows 1000000 --runs 3'")
	}
	var stdout, stderr bytes.Buffer
	code := runBench(context.Background(), strings.Fields(*benchFull), &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	t.Logf("stdout:\n%s", stdout.String())
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
}

// TestBenchTargetsNoise: a paired target whose pairs fall on both sides
// of its limit keeps the median's verdict but says it is within the
// machine's noise, in the table and in --json; one whose pairs are all
// on one side says nothing more.
func TestBenchTargetsNoise(t *testing.T) {
	by := map[string]*benchResult{
		"a": {Name: "baseline"},
		"b": {Name: "plan-csv",
			CPU:  bench.Ratio{Median: 0.97, Min: 0.88, Max: 1.22, Pairs: 3}, // met, by luck
			Wall: bench.Ratio{Median: 0.55, Min: 0.5, Max: 0.6, Pairs: 3}},  // met outright
		"c": {Name: "plan-parquet", PeakRSSMiB: 131,
			Wall: bench.Ratio{Median: 0.85, Min: 0.7, Max: 0.9, Pairs: 3}}, // not met, but pairs on both sides
	}
	targets := benchTargets(by, &benchSamples{}, 0)
	want := map[string]struct {
		status string
		noisy  bool
	}{
		"plan-csv CPU <= 1.0x baseline CPU":  {"met", true},
		"plan-csv wall <= 0.8x baseline":     {"met", false},
		"plan-parquet wall <= 0.8x baseline": {"not met", true},
	}
	for _, tg := range targets {
		w, ok := want[tg.Target]
		if !ok {
			continue
		}
		delete(want, tg.Target)
		if tg.Status != w.status || (tg.Noise != "") != w.noisy {
			t.Errorf("%s: status %q, noise %q; want %q, noisy %v", tg.Target, tg.Status, tg.Noise, w.status, w.noisy)
		}
	}
	if len(want) > 0 {
		t.Fatalf("targets missing: %v", want)
	}
	var out bytes.Buffer
	benchPrint(&out, &benchReport{Targets: targets})
	if s := out.String(); !strings.Contains(s, "met (0.97x (0.88-1.22, 3 pairs); pairs on both sides of 1.0x: within this machine's noise)") ||
		strings.Contains(s, "0.60, 3 pairs);") {
		t.Errorf("table:\n%s", s)
	}
}
