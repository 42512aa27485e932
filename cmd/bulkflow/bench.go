package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/bench"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// benchScenario is one measured workload of `bulkflow bench`.
type benchScenario struct {
	key  string // a, b, c, d (the --only letters)
	name string
	desc string
}

// benchScenarios are the workloads in the order they alternate.
var benchScenarios = []benchScenario{
	{"a", "baseline", "encoding/csv read + encoding/csv write (ReuseRecord, 1 MiB buffers)"},
	{"b", "plan-csv", "bulkflow plan: CSV source -> 6-field map -> Salesforce job CSVs"},
	{"c", "plan-parquet", "bulkflow plan: Parquet source -> 6-field map -> Salesforce job CSVs"},
	{"d", "run-csv", "bulkflow run: CSV -> map -> Bulk API 2.0 emulator (results fetched)"},
}

// benchMapping is the 6-field mapping of the bulkflow scenarios (Account
// fields of the salesforcetest catalog). It works on the CSV (string
// columns) and the Parquet (typed columns) input alike.
const benchMapping = `
      External_Id__c: id
      Name: first_name + " " + last_name
      BillingCountry: upper(country)
      SLAExpirationDate__c: sfDate(signup_date, "2006-01-02")
      Active__c: sfBool(active)
      Rating: 'notes == nil || notes == "" ? "Warm" : "Hot"'`

const benchUsage = `Usage: bulkflow bench [--rows N] [--runs N] [--data DIR] [--json] [--only a,b,c,d]

Generates deterministic warehouse-like data (14 columns, CSV and Parquet) and
measures, alternating the runs (a b c d a b c d ...), each in a child process:
  a  baseline      encoding/csv read + encoding/csv write of the CSV
  b  plan-csv      bulkflow plan of a CSV pipeline (6-field map) into job CSVs
  c  plan-parquet  the same pipeline reading the Parquet file
  d  run-csv       bulkflow run of the CSV pipeline against an emulator served by
                   the parent process (max_job_rows 10000, concurrency 4,
                   poll 10ms..250ms, ledger off; results fetched, dead letters written)
Reports the median wall time, rows/s, MB/s of the CSV input, the peak RSS of
the child process, its CPU seconds (user+system; for d also the emulator's),
the ratio to the baseline, and the targets: b <= 1.0x a; c <= 1.0x a with
peak RSS <= 150 MiB; d <= 2.5x b. Garbage is collected before each run.

After every run of b, c and d (untimed), the records of the job CSVs they
produced (for d, the CSVs the emulator received) are counted and hashed in an
order-independent way; all runs must hold the same row set, or bench fails.

Exit codes: 0 measured (targets met or not), 1 a scenario failed or the row
sets differ, 2 usage.

Flags:`

// benchChildResult is what a child process prints on stdout.
type benchChildResult struct {
	Rows    int64   `json:"rows"`
	Seconds float64 `json:"seconds"`
	// PeakRSS is the child's own high-water mark (VmHWM) in bytes, 0
	// where /proc is not available.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// cpu and emulatorCPU are filled in by the parent: the child's
	// user+system seconds and the emulator's (run-csv).
	cpu, emulatorCPU float64
}

// benchResult is one scenario's line of the report.
type benchResult struct {
	Name       string  `json:"name"`
	Rows       int64   `json:"rows"`
	Seconds    float64 `json:"seconds"`
	RowsPerS   float64 `json:"rows_per_s"`
	MBPerS     float64 `json:"mb_per_s"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// CPUSeconds is the median user+system CPU time of the bulkflow
	// process; EmulatorCPUSeconds (run-csv only) that of the emulator it
	// talked to. With 2 cores, wall time cannot drop below half their sum.
	CPUSeconds         float64 `json:"cpu_seconds"`
	EmulatorCPUSeconds float64 `json:"emulator_cpu_seconds,omitempty"`
	Ratio              float64 `json:"ratio_to_baseline"`
	key                string
}

// benchTarget is one of the targets and whether it was met.
type benchTarget struct {
	Target string `json:"target"`
	Actual string `json:"actual"`
	Status string `json:"status"` // met, not met, n/a
}

// benchReport is the --json output of `bulkflow bench`.
type benchReport struct {
	Rows         int            `json:"rows"`
	Runs         int            `json:"runs"`
	CSVBytes     int64          `json:"csv_bytes"`
	ParquetBytes int64          `json:"parquet_bytes"`
	GOMAXPROCS   int            `json:"gomaxprocs"`
	Scenarios    []*benchResult `json:"scenarios"`
	Targets      []benchTarget  `json:"targets"`
	// RowSet is the fingerprint every run of b, c and d produced (absent
	// when none of them ran).
	RowSet *bench.RowSet `json:"row_set,omitempty"`
}

// benchChildArg is the first argument of the hidden child mode:
// `bulkflow bench --child SCENARIO ...`.
const benchChildArg = "--child"

// init runs the hidden child mode when the process was started as
// `<binary> bench --child ...`, so that the re-exec works whether or not
// the command table lists "bench" yet, and in test binaries (whose own
// flag parsing would reject the arguments) too.
func init() {
	if len(os.Args) > 2 && os.Args[1] == "bench" && os.Args[2] == benchChildArg {
		tuneGC() // as main does: the child measures the product's settings
		os.Exit(benchChild(context.Background(), os.Args[3:], os.Stdout, os.Stderr))
	}
}

// runBench implements `bulkflow bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == benchChildArg {
		return benchChild(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.Int("rows", 1_000_000, "rows of generated data")
	runs := fs.Int("runs", 3, "measured runs per scenario (the median is reported)")
	dataDir := fs.String("data", "", "keep the generated data in this `folder` (reused when it holds the same row count); default a temporary folder removed at the end")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	only := fs.String("only", "a,b,c,d", "comma-separated `scenarios` to run: a (baseline), b (plan-csv), c (plan-parquet), d (run-csv)")
	profDir := fs.String("cpuprofile", "", "write a CPU profile of each measured run to `folder`/SCENARIO-RUN.pprof (for go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, benchUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bulkflow: bench takes no arguments, got %q\n", fs.Args())
		return exitUsage
	}
	selected, err := benchSelect(*only)
	if err == nil && (*rows <= 0 || *runs <= 0) {
		err = fmt.Errorf("--rows and --runs must be positive (got %d and %d)", *rows, *runs)
	} else if err != nil {
		err = fmt.Errorf("--only: %w", err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitUsage
	}

	work, err := os.MkdirTemp("", "bulkflow-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	defer os.RemoveAll(work)
	dir, csvSize, pqSize, err := benchPrepareData(work, *dataDir, *rows, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: bench data: %v\n", err)
		return exitFailed
	}
	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "bulkflow: --cpuprofile: %v\n", err)
			return exitFailed
		}
	}
	samples, err := benchLoop(ctx, selected, benchLoopOpts{data: dir, work: work, rows: *rows, runs: *runs,
		profDir: *profDir, quiet: *asJSON}, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	rep := samples.report(selected, csvSize)
	rep.Rows, rep.Runs, rep.CSVBytes, rep.ParquetBytes = *rows, *runs, csvSize, pqSize
	if !*asJSON {
		benchPrint(stdout, rep)
		return exitOK
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// benchLoopOpts are the settings of benchLoop.
type benchLoopOpts struct {
	data, work string // the data folder; the folder for each run's output
	rows, runs int
	profDir    string // "" or where each run's CPU profile goes
	quiet      bool   // no progress line per run on stderr
}

// benchLoop runs every selected scenario o.runs times, alternating them
// (a b c d a b c d ...), each in its own child process, and collects the
// measurements. A failed run or a differing row set stops it.
func benchLoop(ctx context.Context, selected []benchScenario, o benchLoopOpts, stderr io.Writer) (*benchSamples, error) {
	samples := newBenchSamples()
	var retired *salesforcetest.Server // see benchMeasure
	for run := range o.runs {
		for _, sc := range selected {
			out := filepath.Join(o.work, fmt.Sprintf("%s-%d", sc.name, run))
			prof := ""
			if o.profDir != "" {
				prof = filepath.Join(o.profDir, fmt.Sprintf("%s-%d.pprof", sc.name, run+1))
			}
			res, rss, set, err := benchMeasure(ctx, sc, o.data, out, o.rows, prof, &retired)
			if err == nil {
				err = samples.add(sc, res, rss, set)
			}
			if err != nil {
				return nil, fmt.Errorf("bench %s (run %d): %w", sc.name, run+1, err)
			}
			if !o.quiet {
				fmt.Fprintf(stderr, "bench: %-12s run %d/%d: %d rows in %.3fs, peak RSS %.1f MiB\n",
					sc.name, run+1, o.runs, res.Rows, res.Seconds, float64(rss)/(1<<20))
			}
			os.RemoveAll(out) // keep the disk footprint to one run's output
		}
	}
	return samples, nil
}

// benchPrepareData makes sure the generated data of rows rows is in dataDir (or,
// without one, under work) and returns its absolute folder and the sizes
// of the CSV and Parquet files.
func benchPrepareData(work, dataDir string, rows int, stderr io.Writer) (dir string, csvSize, pqSize int64, err error) {
	dir = dataDir
	if dir == "" {
		dir = filepath.Join(work, "data")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", 0, 0, err
	}
	if err := bench.EnsureData(dir, rows, stderr); err != nil {
		return "", 0, 0, err
	}
	csvInfo, err1 := os.Stat(filepath.Join(dir, bench.CSVFile))
	pqInfo, err2 := os.Stat(filepath.Join(dir, bench.ParquetFile))
	if err := errors.Join(err1, err2); err != nil {
		return "", 0, 0, err
	}
	return dir, csvInfo.Size(), pqInfo.Size(), nil
}

// benchSamples collects every run's measurements, per scenario name.
type benchSamples struct {
	seconds, cpu, emuCPU map[string][]float64
	peak, rows           map[string]int64
	// want is the row set of the first scenario that produced Salesforce
	// job CSVs: every other run of b, c and d must produce the same one.
	want     *bench.RowSet
	wantFrom string
}

func newBenchSamples() *benchSamples {
	return &benchSamples{seconds: map[string][]float64{}, cpu: map[string][]float64{}, emuCPU: map[string][]float64{},
		peak: map[string]int64{}, rows: map[string]int64{}}
}

// add records one run of sc; a row set that differs from the first one
// seen is an error.
func (s *benchSamples) add(sc benchScenario, res *benchChildResult, rss int64, set *bench.RowSet) error {
	if set != nil {
		if s.want == nil {
			s.want, s.wantFrom = set, sc.name
		} else if *set != *s.want {
			return fmt.Errorf("its job CSVs hold a different row set than %s's:\n  %s: %s\n  %s: %s",
				s.wantFrom, sc.name, set, s.wantFrom, s.want)
		}
	}
	s.seconds[sc.name] = append(s.seconds[sc.name], res.Seconds)
	s.cpu[sc.name] = append(s.cpu[sc.name], res.cpu)
	if sc.key == "d" {
		s.emuCPU[sc.name] = append(s.emuCPU[sc.name], res.emulatorCPU)
	}
	s.peak[sc.name] = max(s.peak[sc.name], rss)
	s.rows[sc.name] = res.Rows
	return nil
}

// report turns the samples into the report's scenario lines (medians,
// rates against the CSV input's csvSize bytes, ratios to the baseline) and
// targets; the caller fills in the run parameters.
func (s *benchSamples) report(selected []benchScenario, csvSize int64) *benchReport {
	rep := &benchReport{GOMAXPROCS: runtime.GOMAXPROCS(0), Scenarios: []*benchResult{}, RowSet: s.want}
	byKey := map[string]*benchResult{}
	for _, sc := range selected {
		r := &benchResult{Name: sc.name, Rows: s.rows[sc.name], Seconds: bench.Median(s.seconds[sc.name]), key: sc.key,
			PeakRSSMiB: float64(s.peak[sc.name]) / (1 << 20),
			CPUSeconds: bench.Median(s.cpu[sc.name]), EmulatorCPUSeconds: bench.Median(s.emuCPU[sc.name])}
		if r.Seconds > 0 {
			r.RowsPerS = float64(r.Rows) / r.Seconds
			r.MBPerS = float64(csvSize) / 1e6 / r.Seconds
		}
		rep.Scenarios = append(rep.Scenarios, r)
		byKey[sc.key] = r
	}
	if a := byKey["a"]; a != nil && a.Seconds > 0 {
		for _, r := range rep.Scenarios {
			r.Ratio = r.Seconds / a.Seconds
		}
	}
	rep.Targets = benchTargets(byKey)
	return rep
}

// benchSelect parses --only: letters a-d or scenario names, in any order;
// the result keeps the a b c d order.
func benchSelect(only string) ([]benchScenario, error) {
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		i := slices.IndexFunc(benchScenarios, func(b benchScenario) bool { return b.key == s || b.name == s })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (want a, b, c, d or baseline, plan-csv, plan-parquet, run-csv)", s)
		}
		want[benchScenarios[i].key] = true
	}
	var out []benchScenario
	for _, b := range benchScenarios {
		if want[b.key] {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario selected")
	}
	return out, nil
}

// benchTargets evaluates the targets against the results.
func benchTargets(by map[string]*benchResult) []benchTarget {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	a, b, c, d := by["a"], by["b"], by["c"], by["d"]
	t := []benchTarget{
		{Target: "(b) plan-csv <= 1.0x baseline", Status: "n/a"},
		{Target: "(c) plan-parquet <= 1.0x baseline and peak RSS <= 150 MiB", Status: "n/a"},
		{Target: "(d) run-csv <= 2.5x plan-csv", Status: "n/a"},
	}
	if a != nil && b != nil {
		t[0].Actual = fmt.Sprintf("%.2fx", b.Ratio)
		t[0].Status = verdict(b.Ratio <= 1.0)
	}
	if a != nil && c != nil {
		t[1].Actual = fmt.Sprintf("%.2fx, %.0f MiB", c.Ratio, c.PeakRSSMiB)
		t[1].Status = verdict(c.Ratio <= 1.0 && c.PeakRSSMiB <= 150)
	}
	if b != nil && d != nil && b.Seconds > 0 {
		x := d.Seconds / b.Seconds
		t[2].Actual = fmt.Sprintf("%.2fx", x)
		t[2].Status = verdict(x <= 2.5)
	}
	return t
}

// benchPrint prints the result table and the targets.
func benchPrint(w io.Writer, rep *benchReport) {
	fmt.Fprintf(w, "bulkflow bench: %d rows, CSV %.1f MB, Parquet %.1f MB, median of %d run(s), GOMAXPROCS %d, %s\n\n",
		rep.Rows, float64(rep.CSVBytes)/1e6, float64(rep.ParquetBytes)/1e6, rep.Runs, rep.GOMAXPROCS, runtime.Version())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\trows\tseconds\trows/s\tMB/s\tpeak RSS MiB\tCPU s\tx baseline\t\n")
	for _, r := range rep.Scenarios {
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		cpu := fmt.Sprintf("%.2f", r.CPUSeconds)
		if r.EmulatorCPUSeconds > 0 {
			cpu += fmt.Sprintf(" + %.2f", r.EmulatorCPUSeconds)
		}
		fmt.Fprintf(tw, "%s %s\t%d\t%.3f\t%.0f\t%.1f\t%.1f\t%s\t%s\t\n",
			r.key, r.Name, r.Rows, r.Seconds, r.RowsPerS, r.MBPerS, r.PeakRSSMiB, cpu, ratio)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nCPU s: median user+system seconds of the measured process (+ the emulator's, for run-csv).\n")
	if rep.RowSet != nil {
		fmt.Fprintf(w, "\nEvery run of b, c and d produced the same job rows: %s.\n", rep.RowSet)
	}
	fmt.Fprintf(w, "\nTargets:\n")
	for _, t := range rep.Targets {
		actual := ""
		if t.Actual != "" {
			actual = " (" + t.Actual + ")"
		}
		fmt.Fprintf(w, "  %-60s %s%s\n", t.Target, t.Status, actual)
	}
}

// benchMeasure runs one measured run of sc in a child process and returns
// its result and the child's peak RSS in bytes. For run-csv the emulator
// runs in this (the parent) process, fresh for every run, so that the
// child's RSS is bulkflow's alone.
//
// The emulator stands in for a long-lived server, whose memory is warm: a
// run-csv run's emulator reuses the memory of the previous one, which
// *retired holds until then (only the first run pays the page faults of
// a new process's heap, one per 4 KiB of records). Like testing.B before
// each benchmark, garbage is collected before every run, so that none of
// it is collected, or not, during the run by chance; without retired that
// would free the last emulator's memory, and the runtime would give it
// back to the system during the runs of the other scenarios.
func benchMeasure(ctx context.Context, sc benchScenario, dataDir, out string, rows int, cpuProfile string, retired **salesforcetest.Server) (*benchChildResult, int64, *bench.RowSet, error) {
	if sc.key == "d" {
		*retired = nil
	}
	runtime.GC()
	emuCPU := bench.SelfCPU()
	args := []string{"bench", benchChildArg, sc.name, "--data", dataDir, "--out", out, "--rows", strconv.Itoa(rows)}
	if cpuProfile != "" {
		args = append(args, "--cpuprofile", cpuProfile)
	}
	var srv *salesforcetest.Server
	if sc.key == "d" {
		srv = salesforcetest.NewServer(nil)
		defer func() {
			srv.Close()
			*retired = srv
		}()
		args = append(args, "--instance-url", srv.URL, "--token", srv.AccessToken())
		if cpuProfile != "" {
			// The emulator runs in this process: profile it too.
			stop, err := bench.StartCPUProfile(strings.TrimSuffix(cpuProfile, ".pprof") + "-emulator.pprof")
			if err != nil {
				return nil, 0, nil, err
			}
			defer stop()
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, nil, err
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		return nil, 0, nil, fmt.Errorf("child: %v\n%s", err, strings.TrimSpace(se.String()))
	}
	if srv != nil {
		// While the child ran, this process only served the emulator.
		emuCPU = bench.SelfCPU() - emuCPU
	}
	var res benchChildResult
	if err := json.Unmarshal(so.Bytes(), &res); err != nil {
		return nil, 0, nil, fmt.Errorf("child output %q: %v", so.String(), err)
	}
	res.cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	if srv != nil {
		res.emulatorCPU = emuCPU.Seconds()
	}
	rss := res.PeakRSS
	if rss <= 0 {
		rss = bench.MaxRSS(cmd.ProcessState)
	}
	// The row-set check runs after the child exits: it is not timed.
	var set *bench.RowSet
	switch sc.key {
	case "b", "c":
		s, err := bench.PlanRowSet(out)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("check the planned jobs: %w", err)
		}
		set = &s
	case "d":
		var ids []string
		for _, j := range srv.Jobs() {
			if !j.Query {
				ids = append(ids, j.ID)
			}
		}
		s, err := bench.UploadedRowSet(ids, srv.UploadedCSV)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("check the uploaded jobs: %w", err)
		}
		set = &s
	}
	if set != nil && set.Rows != res.Rows {
		return nil, 0, nil, fmt.Errorf("the job CSVs hold %d rows, the run reported %d", set.Rows, res.Rows)
	}
	return &res, rss, set, nil
}

// benchChild is the hidden `bench --child SCENARIO --data DIR --out DIR
// --rows N [--instance-url URL --token T]` mode: it runs one scenario once
// and prints a benchChildResult as JSON on stdout.
func benchChild(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "bulkflow: bench --child: missing scenario")
		return exitUsage
	}
	name := args[0]
	fs := flag.NewFlagSet("bench --child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "data folder")
	out := fs.String("out", "", "output folder")
	rows := fs.Int64("rows", 0, "expected rows")
	instanceURL := fs.String("instance-url", "", "emulator URL (run-csv)")
	token := fs.String("token", "", "emulator access token (run-csv)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured work to this file")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *dataDir == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "bulkflow: bench --child: --data and --out are required")
		return exitUsage
	}
	if *cpuProfile != "" {
		stop, err := bench.StartCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow: %v\n", err)
			return exitFailed
		}
		defer stop()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	csvPath := filepath.Join(*dataDir, bench.CSVFile)
	start := time.Now()
	var n int64
	var err error
	switch name {
	case "baseline":
		n, err = bench.Baseline(csvPath, filepath.Join(*out, "copy.csv"))
	case "plan-csv", "plan-parquet":
		src := fmt.Sprintf("{type: csv, url: %s}", strconv.Quote(csvPath))
		if name == "plan-parquet" {
			src = fmt.Sprintf("{type: parquet, url: %s}", strconv.Quote(filepath.Join(*dataDir, bench.ParquetFile)))
		}
		n, err = benchPlan(ctx, src, *out)
		// runPlan's timing includes loading the pipeline file, as `bulkflow plan` does.
	case "run-csv":
		if *instanceURL == "" || *token == "" {
			fmt.Fprintln(stderr, "bulkflow: bench --child run-csv: --instance-url and --token are required")
			return exitUsage
		}
		n, err = benchRun(ctx, csvPath, *out, *instanceURL, *token)
	default:
		fmt.Fprintf(stderr, "bulkflow: bench --child: unknown scenario %q\n", name)
		return exitUsage
	}
	elapsed := time.Since(start).Seconds()
	if err == nil && *rows > 0 && n != *rows {
		err = fmt.Errorf("%s: %d rows, want %d", name, n, *rows)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: bench %s: %v\n", name, err)
		return exitFailed
	}
	data, _ := json.Marshal(benchChildResult{Rows: n, Seconds: elapsed, PeakRSS: bench.SelfPeakRSS()})
	fmt.Fprintf(stdout, "%s\n", data)
	return exitOK
}

// benchPipeline returns the YAML of the bench pipeline: source → map →
// salesforce sink (Account insert) with the given sink options.
func benchPipeline(source, out, sinkOpts string) string {
	return fmt.Sprintf(`name: bench
dead_letter: %s
stages:
  - {name: read, source: %s}
  - name: map
    inputs: [read]
    map:%s
  - name: load
    inputs: [map]
    sink:
      type: salesforce
      object: Account
      operation: insert
      max_job_rows: 10000
      concurrency: 4
%s`, strconv.Quote(filepath.Join(out, "dead-letter")+"/"), source, benchMapping, sinkOpts)
}

// benchPlan runs `bulkflow plan` (runPlan) on the bench pipeline reading
// source and returns the rows of the planned jobs.
func benchPlan(ctx context.Context, source, out string) (int64, error) {
	file := filepath.Join(out, "bench-plan.yaml")
	y := benchPipeline(source, out, "      instance_url: \"emulator:\"\n")
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		return 0, err
	}
	report := filepath.Join(out, "plan-report.json")
	var errBuf bytes.Buffer
	if code := runPlan(ctx, []string{file, "--out", filepath.Join(out, "plan"), "--report", report}, io.Discard, &errBuf); code != exitOK {
		return 0, fmt.Errorf("plan exited %d:\n%s", code, strings.TrimSpace(errBuf.String()))
	}
	data, err := os.ReadFile(report)
	if err != nil {
		return 0, err
	}
	var pr struct {
		Stages []struct {
			Rows int64 `json:"rows"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(data, &pr); err != nil {
		return 0, fmt.Errorf("plan report: %w", err)
	}
	var n int64
	for _, s := range pr.Stages {
		n += s.Rows
	}
	return n, nil
}

// benchRun runs `bulkflow run` (runRun) on the bench CSV pipeline against
// the emulator at instanceURL and returns the rows loaded.
func benchRun(ctx context.Context, csvPath, out, instanceURL, token string) (int64, error) {
	file := filepath.Join(out, "bench-run.yaml")
	sink := fmt.Sprintf("      instance_url: %s\n      auth: {access_token: %s}\n      ledger: \"off\"\n      poll_initial: 10ms\n      poll_max: 250ms\n",
		strconv.Quote(instanceURL), strconv.Quote(token))
	y := benchPipeline(fmt.Sprintf("{type: csv, url: %s}", strconv.Quote(csvPath)), out, sink)
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		return 0, err
	}
	report := filepath.Join(out, "run-report.json")
	var errBuf bytes.Buffer
	// --offline: the bench measures the load, not the describe calls.
	if code := runRun(ctx, []string{file, "--progress", "none", "--report", report, "--offline"}, io.Discard, &errBuf); code != exitOK {
		return 0, fmt.Errorf("run exited %d:\n%s", code, strings.TrimSpace(errBuf.String()))
	}
	data, err := os.ReadFile(report)
	if err != nil {
		return 0, err
	}
	var rr struct {
		Counts struct {
			Loaded int64 `json:"loaded"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(data, &rr); err != nil {
		return 0, fmt.Errorf("run report: %w", err)
	}
	return rr.Counts.Loaded, nil
}
