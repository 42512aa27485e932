package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// Bench data layout and generation parameters. Bump benchDataVersion when
// the generator changes, so that a kept --data folder is regenerated.
const (
	benchDataVersion  = 1
	benchSeed1        = 20260101
	benchSeed2        = 42
	benchRowGroupRows = 128 * 1024
	benchCSVFile      = "accounts.csv"
	benchParquetFile  = "accounts.parquet"
	benchMetaFile     = "bench-data.json"
	benchIOBuffer     = 1 << 20
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
	RowSet *rowSet `json:"row_set,omitempty"`
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
	if *rows <= 0 || *runs <= 0 {
		fmt.Fprintf(stderr, "bulkflow: --rows and --runs must be positive (got %d and %d)\n", *rows, *runs)
		return exitUsage
	}
	selected, err := benchSelect(*only)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: --only: %v\n", err)
		return exitUsage
	}

	work, err := os.MkdirTemp("", "bulkflow-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	defer os.RemoveAll(work)
	dir := *dataDir
	if dir == "" {
		dir = filepath.Join(work, "data")
	}
	if dir, err = filepath.Abs(dir); err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	if err := benchEnsureData(dir, *rows, stderr); err != nil {
		fmt.Fprintf(stderr, "bulkflow: bench data: %v\n", err)
		return exitFailed
	}
	csvInfo, err1 := os.Stat(filepath.Join(dir, benchCSVFile))
	pqInfo, err2 := os.Stat(filepath.Join(dir, benchParquetFile))
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(stderr, "bulkflow: bench data: %v\n", err)
		return exitFailed
	}

	if *profDir != "" {
		if err := os.MkdirAll(*profDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "bulkflow: --cpuprofile: %v\n", err)
			return exitFailed
		}
	}

	seconds := map[string][]float64{}
	peak := map[string]int64{}
	cpu, emuCPU := map[string][]float64{}, map[string][]float64{}
	rowsOf := map[string]int64{}
	// want is the row set of the first scenario that produced Salesforce
	// job CSVs: every other run of b, c and d must produce the same one.
	var want *rowSet
	var wantFrom string
	var retired *salesforcetest.Server // see benchMeasure
	for run := range *runs {
		for _, sc := range selected {
			out := filepath.Join(work, fmt.Sprintf("%s-%d", sc.name, run))
			prof := ""
			if *profDir != "" {
				prof = filepath.Join(*profDir, fmt.Sprintf("%s-%d.pprof", sc.name, run+1))
			}
			res, rss, set, err := benchMeasure(ctx, sc, dir, out, *rows, prof, &retired)
			if err != nil {
				fmt.Fprintf(stderr, "bulkflow: bench %s (run %d): %v\n", sc.name, run+1, err)
				return exitFailed
			}
			if set != nil {
				if want == nil {
					want, wantFrom = set, sc.name
				} else if *set != *want {
					fmt.Fprintf(stderr, "bulkflow: bench %s (run %d): its job CSVs hold a different row set than %s's:\n  %s: %s\n  %s: %s\n",
						sc.name, run+1, wantFrom, sc.name, set, wantFrom, want)
					return exitFailed
				}
			}
			if !*asJSON {
				fmt.Fprintf(stderr, "bench: %-12s run %d/%d: %d rows in %.3fs, peak RSS %.1f MiB\n",
					sc.name, run+1, *runs, res.Rows, res.Seconds, float64(rss)/(1<<20))
			}
			seconds[sc.name] = append(seconds[sc.name], res.Seconds)
			cpu[sc.name] = append(cpu[sc.name], res.cpu)
			if sc.key == "d" {
				emuCPU[sc.name] = append(emuCPU[sc.name], res.emulatorCPU)
			}
			peak[sc.name] = max(peak[sc.name], rss)
			rowsOf[sc.name] = res.Rows
			os.RemoveAll(out) // keep the disk footprint to one run's output
		}
	}

	rep := &benchReport{Rows: *rows, Runs: *runs, CSVBytes: csvInfo.Size(), ParquetBytes: pqInfo.Size(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Scenarios: []*benchResult{}, RowSet: want}
	byKey := map[string]*benchResult{}
	for _, sc := range selected {
		s := median(seconds[sc.name])
		r := &benchResult{Name: sc.name, Rows: rowsOf[sc.name], Seconds: s, key: sc.key,
			PeakRSSMiB: float64(peak[sc.name]) / (1 << 20),
			CPUSeconds: median(cpu[sc.name]), EmulatorCPUSeconds: median(emuCPU[sc.name])}
		if s > 0 {
			r.RowsPerS = float64(r.Rows) / s
			r.MBPerS = float64(csvInfo.Size()) / 1e6 / s
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

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "bulkflow: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	benchPrint(stdout, rep)
	return exitOK
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

// median returns the median of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
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
func benchMeasure(ctx context.Context, sc benchScenario, dataDir, out string, rows int, cpuProfile string, retired **salesforcetest.Server) (*benchChildResult, int64, *rowSet, error) {
	if sc.key == "d" {
		*retired = nil
	}
	runtime.GC()
	emuCPU := selfCPU()
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
			stop, err := startCPUProfile(strings.TrimSuffix(cpuProfile, ".pprof") + "-emulator.pprof")
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
		emuCPU = selfCPU() - emuCPU
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
		rss = maxRSS(cmd.ProcessState)
	}
	// The row-set check runs after the child exits: it is not timed.
	var set *rowSet
	switch sc.key {
	case "b", "c":
		s, err := planRowSet(out)
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
		s, err := uploadedRowSet(ids, srv.UploadedCSV)
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

// maxRSS returns the peak resident set size of a finished process in
// bytes, from the Maxrss field of its syscall.Rusage (KiB on Linux and
// the BSDs, bytes on macOS), or 0 where the platform has none. The field
// is read by reflection so that the file builds on every GOOS.
//
// On Linux Maxrss is not the child's own peak: exec folds the high-water
// mark of the address space it replaces into it, and os/exec starts the
// child with vfork sharing the parent's address space, so a child never
// reports less than the parent's peak. That is why the child reports its
// VmHWM (selfPeakRSS) and Maxrss is only the fallback.
func maxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	v := reflect.ValueOf(ps.SysUsage())
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("Maxrss")
	if !f.IsValid() || !f.CanInt() {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return f.Int()
	}
	return f.Int() * 1024
}

// selfPeakRSS returns this process's peak resident set size in bytes
// (VmHWM of /proc/self/status), or 0 where it cannot be read.
func selfPeakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
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
		stop, err := startCPUProfile(*cpuProfile)
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
	csvPath := filepath.Join(*dataDir, benchCSVFile)
	start := time.Now()
	var n int64
	var err error
	switch name {
	case "baseline":
		n, err = benchBaseline(csvPath, filepath.Join(*out, "copy.csv"))
	case "plan-csv", "plan-parquet":
		src := fmt.Sprintf("{type: csv, url: %s}", strconv.Quote(csvPath))
		if name == "plan-parquet" {
			src = fmt.Sprintf("{type: parquet, url: %s}", strconv.Quote(filepath.Join(*dataDir, benchParquetFile)))
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
	data, _ := json.Marshal(benchChildResult{Rows: n, Seconds: elapsed, PeakRSS: selfPeakRSS()})
	fmt.Fprintf(stdout, "%s\n", data)
	return exitOK
}

// startCPUProfile starts profiling this process into file; stop ends it.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", file, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// benchBaseline copies the CSV file in to out with encoding/csv and
// returns the number of records after the header.
func benchBaseline(in, out string) (int64, error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, benchIOBuffer))
	r.ReuseRecord = true
	o, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	bw := bufio.NewWriterSize(o, benchIOBuffer)
	w := csv.NewWriter(bw)
	var n int64 = -1 // the header
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		if err := w.Write(rec); err != nil {
			return 0, err
		}
		n++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return max(n, 0), o.Close()
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
	if code := runRun(ctx, []string{file, "--progress", "none", "--report", report}, io.Discard, &errBuf); code != exitOK {
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

// benchMeta describes the data in a bench folder.
type benchMeta struct {
	Version int `json:"version"`
	Rows    int `json:"rows"`
}

// benchEnsureData makes dir hold the CSV and Parquet files of rows rows,
// reusing them when the folder's metadata says they already do.
func benchEnsureData(dir string, rows int, stderr io.Writer) error {
	metaPath := filepath.Join(dir, benchMetaFile)
	if data, err := os.ReadFile(metaPath); err == nil {
		var m benchMeta
		if json.Unmarshal(data, &m) == nil && m == (benchMeta{benchDataVersion, rows}) {
			_, err1 := os.Stat(filepath.Join(dir, benchCSVFile))
			_, err2 := os.Stat(filepath.Join(dir, benchParquetFile))
			if err1 == nil && err2 == nil {
				return nil
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Remove(metaPath) // stale until both files are written
	start := time.Now()
	if err := benchGenerate(dir, rows); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: generated %d rows in %s in %.1fs\n", rows, dir, time.Since(start).Seconds())
	data, _ := json.Marshal(benchMeta{benchDataVersion, rows})
	return os.WriteFile(metaPath, data, 0o644)
}

// benchRow is one generated warehouse row.
type benchRow struct {
	id                                 int64
	first, last, email, phone, company string
	street, city, country              string
	revenueCents                       int64 // < 0: empty
	signup                             time.Time
	updated                            time.Time
	active                             bool
	notes                              string
}

var (
	benchFirst     = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Dennis", "Margaret", "Linus", "Frances", "John", "Radia"}
	benchLast      = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Ritchie", "Hamilton", "Torvalds", "Allen", "McCarthy", "Perlman"}
	benchCities    = []string{"Springfield", "Berlin", "London", "Paris", "Tokyo", "Stockholm", "Austin", "Lyon", "Osaka", "Malmo"}
	benchCountries = []string{"us", "de", "gb", "fr", "jp", "se", "ca", "au"}
	benchSuffixes  = []string{"Inc", "GmbH", "Ltd", "SA", "KK", "AB"}
	benchStreets   = []string{"Main St", "High St", "Elm Ave", "Lindenstrasse", "Rue de la Paix", "Market Sq"}
	benchNotes     = []string{"prefers email", "renewal due, call in Q3", "VIP; key account", "asked for a discount"}
)

// benchGen generates the deterministic rows.
type benchGen struct {
	r    *rand.Rand
	i    int64
	base time.Time
}

func newBenchGen() *benchGen {
	return &benchGen{r: rand.New(rand.NewPCG(benchSeed1, benchSeed2)), base: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (g *benchGen) next() benchRow {
	r := g.r
	g.i++
	fn, ln := benchFirst[r.IntN(len(benchFirst))], benchLast[r.IntN(len(benchLast))]
	row := benchRow{
		id: 1_000_000 + g.i, first: fn, last: ln,
		email:   strings.ToLower(fn+"."+ln) + strconv.FormatInt(g.i, 10) + "@example.com",
		company: ln + " " + benchSuffixes[r.IntN(len(benchSuffixes))],
		street:  strconv.Itoa(1+r.IntN(9999)) + " " + benchStreets[r.IntN(len(benchStreets))],
		city:    benchCities[r.IntN(len(benchCities))], country: benchCountries[r.IntN(len(benchCountries))],
		revenueCents: r.Int64N(10_000_000_000),
		signup:       g.base.AddDate(0, 0, r.IntN(5800)),
		updated:      g.base.Add(time.Duration(r.Int64N(16*365*24*3600)) * time.Second),
		active:       r.IntN(3) > 0,
	}
	if r.IntN(20) > 0 { // 5% empty phones
		row.phone = fmt.Sprintf("+1-%03d-555-%04d", 200+r.IntN(800), r.IntN(10000))
	}
	if r.IntN(33) == 0 { // 3% empty revenue
		row.revenueCents = -1
	}
	switch x := r.IntN(100); {
	case x == 0: // 1%: commas, quotes and an embedded newline
		row.notes = fmt.Sprintf("called %d times, said \"call back later\"\nthen emailed, \"urgent\"", 1+r.IntN(9))
	case x < 25:
		row.notes = benchNotes[r.IntN(len(benchNotes))]
	}
	return row
}

// benchHeader is the header of the generated CSV (the Parquet column
// names too).
var benchHeader = []string{"id", "first_name", "last_name", "email", "phone", "company", "street", "city",
	"country", "revenue", "signup_date", "updated_at", "active", "notes"}

// benchGenerate writes rows rows to dir/accounts.csv and, with the same
// values and typed columns, to dir/accounts.parquet.
func benchGenerate(dir string, rows int) error {
	f, err := os.Create(filepath.Join(dir, benchCSVFile))
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, benchIOBuffer)
	cw := csv.NewWriter(bw)

	revType := &arrow.Decimal128Type{Precision: 12, Scale: 2}
	tsType := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	str := arrow.BinaryTypes.String
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "first_name", Type: str}, {Name: "last_name", Type: str}, {Name: "email", Type: str},
		{Name: "phone", Type: str}, {Name: "company", Type: str}, {Name: "street", Type: str},
		{Name: "city", Type: str}, {Name: "country", Type: str},
		{Name: "revenue", Type: revType, Nullable: true},
		{Name: "signup_date", Type: arrow.FixedWidthTypes.Date32},
		{Name: "updated_at", Type: tsType},
		{Name: "active", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "notes", Type: str},
	}, nil)
	pf, err := os.Create(filepath.Join(dir, benchParquetFile))
	if err != nil {
		return err
	}
	defer pf.Close()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(benchRowGroupRows))
	pw, err := pqarrow.NewFileWriter(schema, pf, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return err
	}
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer rb.Release()
	flush := func() error {
		rec := rb.NewRecordBatch()
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		return pw.Write(rec)
	}

	if err := cw.Write(benchHeader); err != nil {
		return err
	}
	g := newBenchGen()
	rec := make([]string, len(benchHeader))
	for i := range rows {
		row := g.next()
		revenue := ""
		if row.revenueCents >= 0 {
			revenue = fmt.Sprintf("%d.%02d", row.revenueCents/100, row.revenueCents%100)
		}
		rec = append(rec[:0], strconv.FormatInt(row.id, 10), row.first, row.last, row.email, row.phone,
			row.company, row.street, row.city, row.country, revenue, row.signup.Format("2006-01-02"),
			row.updated.Format(time.RFC3339), strconv.FormatBool(row.active), row.notes)
		if err := cw.Write(rec); err != nil {
			return err
		}

		rb.Field(0).(*array.Int64Builder).Append(row.id)
		for j, s := range []string{row.first, row.last, row.email, row.phone, row.company, row.street, row.city, row.country} {
			rb.Field(1 + j).(*array.StringBuilder).Append(s)
		}
		if row.revenueCents >= 0 {
			rb.Field(9).(*array.Decimal128Builder).Append(decimal128.FromI64(row.revenueCents))
		} else {
			rb.Field(9).AppendNull()
		}
		rb.Field(10).(*array.Date32Builder).Append(arrow.Date32FromTime(row.signup))
		rb.Field(11).(*array.TimestampBuilder).Append(arrow.Timestamp(row.updated.UnixMicro()))
		rb.Field(12).(*array.BooleanBuilder).Append(row.active)
		rb.Field(13).(*array.StringBuilder).Append(row.notes)
		if (i+1)%benchRowGroupRows == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := pw.Close(); err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := pf.Close(); err != nil && !errors.Is(err, os.ErrClosed) { // pw.Close closes it
		return err
	}
	return nil
}
