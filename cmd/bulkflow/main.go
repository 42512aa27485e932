// Command bulkflow runs pipeline files that move warehouse data (CSV,
// Parquet, blob stores) through expression transforms into sinks such as
// Salesforce Bulk API 2.0 or files, accounting for every row.
//
// Usage:
//
//	bulkflow run FILE [--report FILE] [--progress auto|plain|none] [--resume RUN_ID] [--set STAGE.KEY=VALUE ...] [--instance-url URL]
//	bulkflow validate FILE [--offline] [--json] [--set STAGE.KEY=VALUE ...] [--instance-url URL]
//	bulkflow test [FILE|DIR] [--json] [--junit FILE] [--set STAGE.KEY=VALUE ...]
//	bulkflow plan FILE [--out DIR] [--report FILE] [--instance-url URL --token TOKEN ...]
//	bulkflow replay DEAD_LETTER_URL --pipeline FILE [--all] [--map FIELD=EXPR ...] [--report FILE] [--force]
//	bulkflow serve --pipelines DIR [--addr 127.0.0.1:8585] [--state LOCATION] [--grace 5m]
//	bulkflow bench [--rows N] [--runs N] [--json] [--only a,b,c,d]
//	bulkflow plugins
//	bulkflow schema [--out FILE]
//	bulkflow init --from SAMPLE.csv|SAMPLE.parquet [--object Account] > my.yaml
//	bulkflow jobs list|show|results|abort|delete|create [flags]
//	bulkflow emulator [--addr 127.0.0.1:8484] [flags]
//	bulkflow version
//
// Exit codes: 0 every row loaded or filtered; 3 finished with dead-lettered
// rows; 1 the run failed or was cancelled; 2 invalid pipeline file or usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/jobs"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/scratch"

	_ "github.com/bulkflow/bulkflow/pipeline/blobio/clouddrivers" // s3://, gs://, azblob:// locations
	_ "github.com/bulkflow/bulkflow/sinks/all"
	_ "github.com/bulkflow/bulkflow/sources/all"
	_ "github.com/bulkflow/bulkflow/transforms/all"
)

// Exit codes (package cli holds them for the commands' own packages).
const (
	exitOK      = cli.ExitOK
	exitFailed  = cli.ExitFailed
	exitUsage   = cli.ExitUsage
	exitPartial = cli.ExitPartial
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run a pipeline file", runRun},
		{"validate", "check a pipeline file (decode, compile expressions against the real source headers, check the graph, pre-flight Salesforce sinks against describe) without moving rows", runValidate},
		{"test", "run the test cases beside pipeline files (NAME.test.yaml or tests:): input rows through the transforms, expected rows and dead letters compared; no sink is touched", runTest},
		{"plan", "run sources and transforms, write the job CSVs Salesforce sinks would upload to a folder, estimate API calls (nothing sent)", runPlan},
		{"replay", "re-send a dead-letter file's retryable rows (or --all, with --map fixes) through the pipeline, once", runReplay},
		{"serve", "run scheduled pipelines with a status page, manual triggers and Prometheus metrics", runServe},
		{"bench", "measure bulkflow on generated data against an encoding/csv baseline (plan from CSV and Parquet, a full run on the emulator)", runBench},
		{"plugins", "list the registered sources, transforms and sinks", runPlugins},
		{"init", "write a commented starter pipeline (CSV or Parquet -> map -> Salesforce) from a sample file's header", runInit},
		{"schema", "write the JSON Schema of pipeline files (for editor completion and checks; see pipelines/bulkflow.schema.json)", runSchema},
		{"jobs", "inspect and manage Bulk API 2.0 ingest jobs (list, show, results, abort, delete, create)", jobs.Run},
		{"query", "run a SOQL query as a Bulk API 2.0 query job and write its results as CSV (stdout or --out)", runQuery},
		{"emulator", "serve a local Salesforce Bulk API 2.0 emulator (for tests and dry runs)", runEmulator},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "bulkflow moves warehouse data into Salesforce (and files), accounting for every row.\n\nUsage:\n  bulkflow COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'bulkflow COMMAND --help' for a command's flags.\n\nExit codes: 0 all rows loaded or filtered, 3 finished with dead-lettered rows,\n1 run failed or cancelled, 2 invalid pipeline file or usage.\n")
}

func main() {
	tuneGC()
	sweepScratch(os.Args[1:], os.Stderr)
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// sweepScratch, before a command that runs pipelines, removes the scratch
// folders (spilled rows, job CSVs) that killed runs left in the temporary
// directory: those no process holds (pipeline/scratch). It is best effort
// and says what it removed. Not in realMain: tests run commands in-process,
// many at once, and must not sweep the machine's temporary directory.
func sweepScratch(args []string, stderr io.Writer) {
	if len(args) == 0 || !slices.Contains([]string{"run", "plan", "replay", "serve"}, args[0]) {
		return
	}
	// An hour: a folder is held from the instant after it is made, so any
	// age would do; this one also spares a folder a process without
	// flock(2) support made.
	removed, err := scratch.RemoveStale("", time.Hour)
	if len(removed) > 0 {
		fmt.Fprintf(stderr, "bulkflow: removed %d temporary folders that killed runs left (%s)\n", len(removed), filepath.Dir(removed[0]))
	}
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: warning: %v\n", err)
	}
}

func realMain(args []string, stdout, stderr io.Writer) int {
	// Everything bulkflow prints is masked: values a pipeline file
	// interpolated (registered when it is loaded) never reach the terminal.
	stdout, stderr = redact.Writer(stdout), redact.Writer(stderr)
	switch {
	case len(args) == 0:
		usage(stdout)
		return exitUsage
	case args[0] == "--version" || args[0] == "-version":
		args = []string{"version"}
	case len(args) > 1 && args[0] == "help":
		// `bulkflow help run` is `bulkflow run --help`.
		args = []string{args[1], "--help"}
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		usage(stdout)
		return exitOK
	}
	// The first Ctrl-C or SIGTERM cancels the context: the run stops
	// reading, drains in-flight rows to dead letters, closes sinks, aborts
	// open Salesforce jobs and writes its report. A second one kills the
	// process (stop restores the default handling).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "bulkflow: unknown command %q%s\n\n", args[0], didYouMeanCommand(args[0]))
	usage(stderr)
	return exitUsage
}

// didYouMeanCommand returns ` (did you mean "NAME"?)` for the command
// closest to a mistyped one, or "".
func didYouMeanCommand(got string) string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if m := pipeline.Closest(got, names); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return ""
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "bulkflow %s (%s, %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
