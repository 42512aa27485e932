package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/obs"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

// prepare loads and checks a pipeline file, opening its sources.
func prepare(ctx context.Context, file string, stderr io.Writer) (*pipeline.Plan, *pipeline.Graph, *pipeline.Env, int) {
	return prepareShard(ctx, file, stderr, pipeline.Shard{}, config.Options{}, nil)
}

// parseShard parses --shard I/N ("" = no sharding).
func parseShard(s string) (pipeline.Shard, error) {
	if s == "" {
		return pipeline.Shard{}, nil
	}
	var sh pipeline.Shard
	if n, err := fmt.Sscanf(s, "%d/%d", &sh.Index, &sh.Count); err != nil || n != 2 || sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count ||
		fmt.Sprintf("%d/%d", sh.Index, sh.Count) != s {
		return pipeline.Shard{}, fmt.Errorf("--shard %q must be I/N with 0 <= I < N, e.g. --shard 0/4", s)
	}
	return sh, nil
}

// prepareShard is prepare for one shard of a sharded run.
// o carries --set and --instance-url; log is the run's logger (nil: warn
// and above, as text, on stderr).
func prepareShard(ctx context.Context, file string, stderr io.Writer, shard pipeline.Shard, o config.Options, log *slog.Logger) (*pipeline.Plan, *pipeline.Graph, *pipeline.Env, int) {
	g, code := loadPipeline(file, o, stderr)
	if code != exitOK {
		return nil, nil, nil, code
	}
	return prepareGraph(ctx, g, stderr, shard, log)
}

// loadPipeline loads and checks a pipeline file, printing what is wrong.
func loadPipeline(file string, o config.Options, stderr io.Writer) (*pipeline.Graph, int) {
	g, err := config.LoadFileWith(file, pipeline.DefaultRegistry(), o)
	if err != nil {
		cli.PrintError(stderr, err)
		return nil, exitUsage
	}
	return g, exitOK
}

// prepareGraph opens the sources of a loaded pipeline (prepareShard).
func prepareGraph(ctx context.Context, g *pipeline.Graph, stderr io.Writer, shard pipeline.Shard, log *slog.Logger) (*pipeline.Plan, *pipeline.Graph, *pipeline.Env, int) {
	if log == nil {
		log = obs.LogOptions{}.NewLogger(stderr)
	}
	env := &pipeline.Env{
		RunID:    pipeline.NewRunID(time.Now()),
		Pipeline: g.Name,
		Lookups:  g.Lookups,
		Logger:   log,
		Shard:    shard,
	}
	plan, err := pipeline.Prepare(ctx, pipeline.DefaultRegistry(), g, env)
	if err != nil {
		cli.PrintError(stderr, err)
		return nil, nil, nil, exitUsage
	}
	return plan, g, env, exitOK
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var rf runFlags
	file, code := rf.parse(args, stderr)
	if file == "" {
		return code
	}
	shard, err := parseShard(rf.shard)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitUsage
	}
	g, code := loadPipeline(file, rf.ov.options(), stderr)
	if code != exitOK {
		return code
	}
	// A pipeline that inserts and keeps state records its run in flight
	// (unfinished.go); st is its state store, opened once for the run.
	var st *state.Store
	var inflightRun string
	committedID := "" // an in-flight run found to have committed its state (committedRun)
	if guardsUnfinished(g) {
		var in inflight
		if st, in, err = openInflight(ctx, stateLocation(rf.state, g), stateName(g, shard)); err != nil {
			fmt.Fprintf(stderr, "bulkflow: pipeline %s inserts and keeps state: cannot tell whether its last run finished "+
				"(a new run would insert again what an unfinished one loaded): %v\n", g.Name, err)
			return exitFailed
		}
		if in.Replay != "" {
			fmt.Fprintf(stderr, "bulkflow: replay %s of %s did not finish (killed, cancelled, failed, or rows of unknown outcome), and a run now "+
				"would send again the rows it may have loaded: resume it first (add --settle-unknown once you have looked at its rows of "+
				"unknown outcome): %s; nothing was read or sent\n", in.RunID, g.Name, in.Replay)
			return exitUsage
		}
		if in.RunID != "" && rf.resume == "" {
			// Killed after its state was committed: nothing to resume.
			if done, err := committedRun(ctx, st, g, in.RunID); err == nil && done {
				if err := st.Put(ctx, inflightKey, inflight{}); err != nil {
					fmt.Fprintf(stderr, "bulkflow: pipeline %s: clear the in-flight run %s: %v\n", g.Name, in.RunID, err)
					return exitFailed
				}
				committedID, in = in.RunID, inflight{}
			}
		}
		inflightRun = in.RunID
	}
	// Every log line of the run names it: the id is chosen before the
	// sources open (a resume's, or a fresh one).
	runID := rf.resume
	var unfinished string // a run that did not finish, resumed by this plain run
	if runID == "" && rf.reconcile.mode != syncer.ReconcileReport {
		id := inflightRun
		if id != "" && rf.reconcile.mode == syncer.ReconcileFix {
			fmt.Fprintf(stderr, "bulkflow: run %s of %s did not finish, and a new run would insert again the rows it loaded: "+
				"resume it first (bulkflow run %s --resume %s), then --reconcile=fix; nothing was read or sent\n", id, file, file, id)
			return exitUsage
		}
		runID, rf.resume, unfinished = id, id, id
	}
	if rf.settle.s != nil && rf.resume == "" {
		fmt.Fprintf(stderr, "bulkflow: --settle-unknown settles the rows of unknown outcome of a run being resumed, and no run of %s is: "+
			"give the run with --resume RUN_ID (its report and dead letters name it); nothing was read or sent\n", file)
		return exitUsage
	}
	if runID == "" {
		runID = pipeline.NewRunID(time.Now())
	}
	// Log lines erase the live progress frame first (it is drawn again
	// below them).
	display := obs.NewDisplay(stderr, rf.progress)
	log := rf.logs.NewLogger(display.Writer(stderr)).With("run_id", runID)
	// Traces when the OTEL_* variables ask for them (off by default).
	stopTracing, err := obs.StartTracing(ctx, log)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitUsage
	}
	defer stopTracing()
	if committedID != "" {
		log.Warn("run " + committedID + " committed its state (sync manifests, watermarks) and stopped before it recorded that it " +
			"finished: there is nothing to resume, so this is a new run; it sends what the state lacks, the rows that run dead-lettered included")
	}
	if unfinished != "" {
		log.Warn("resuming run " + unfinished + ": it did not finish (killed, cancelled, failed, or rows wait for their job's outcome), " +
			"and this pipeline inserts and keeps state: a new run would insert again the rows it loaded; the ledger skips them")
	}
	plan, env, code := readyRun(ctx, &rf, g, shard, runID, log, stderr)
	if code != exitOK {
		return code
	}
	stateLoc, stName := stateLocation(rf.state, g), stateName(g, shard)
	// One process per run id: a second resume of the same run (cron
	// overlap, two operators) fails here, before any row moves.
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	lockLoc, lockName, lockSub := runLockPlace(g, stateLoc, stName)
	unlock, err := lockRun(ctx, lockLoc, lockName, lockSub, env.RunID, cancelRun)
	if err != nil {
		plan.Close()
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	defer unlock()
	// Under the run's lock, which a replay of its dead letters holds too:
	// a finished run whose dead letters were replayed is not read again.
	if rf.resume != "" {
		if code, err := settledByReplay(ctx, g, rf.resume, file, true); err != nil {
			plan.Close()
			fmt.Fprintf(stderr, "bulkflow: %v\n", err)
			return code
		}
	}
	opts, err := runOptions(ctx, g, env, st, rf.state)
	if err != nil {
		plan.Close()
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitUsage
	}
	if code, done := applyReconcile(ctx, rf.reconcile.mode, plan, g, env, opts, rf.report, stderr); done {
		return code
	}
	opts.Resumed = rf.resume != ""
	opts.ResumeFlags = rf.resumeFlags()
	if rf.resume != "" {
		if opts.SettleUnknown, err = resumeSettlement(ctx, g, stateLoc, stName, env.RunID, rf.settle.s, log); err != nil {
			plan.Close()
			fmt.Fprintf(stderr, "bulkflow: %v\n", err)
			return exitFailed
		}
	}
	if needsState(g) {
		opts.StateLocation, opts.StateName = stateLoc, stName
	}
	if st != nil {
		pending, err := markInflight(ctx, st, g, env.RunID, "")
		if err != nil {
			plan.Close()
			fmt.Fprintf(stderr, "bulkflow: %v\n", err)
			return exitFailed
		}
		if pending != "" {
			log.Warn("run " + pending + " did not finish either: the next plain run resumes it")
		}
	}
	display.Install(opts)
	rep, runErr := plan.Run(ctx, opts)
	display.Finish()
	if rf.settle.s != nil {
		warnUnsettled(opts.SettleUnknown, log) // with what earlier attempts settled
	}
	if st != nil {
		if err := clearInflight(context.WithoutCancel(ctx), st, env.RunID, rep); err != nil {
			log.Error("the next plain run will resume this one", "err", err)
		}
	}
	return finishRun(ctx, &rf, rep, runErr, stdout, stderr)
}

// readyRun prepares the loaded pipeline g for run id runID and checks it
// may go:
// a --resume id must be a run this pipeline knows, provenance is recorded
// in the Salesforce sinks' ledgers, and (unless --offline) the pre-flight
// passes. On any code but exitOK nothing is left open.
func readyRun(ctx context.Context, rf *runFlags, g *pipeline.Graph, shard pipeline.Shard, runID string, log *slog.Logger, stderr io.Writer) (*pipeline.Plan, *pipeline.Env, int) {
	plan, _, env, code := prepareGraph(ctx, g, stderr, shard, log)
	if code != exitOK {
		return nil, nil, code
	}
	if rf.resume != "" {
		// A typo must not start a fresh run under the typed id: every row
		// would be sent again.
		if rr := knownRun(ctx, g, env, stateLocation(rf.state, g), stateName(g, shard), rf.resume); !rr.found {
			plan.Close()
			fmt.Fprintf(stderr, "bulkflow: %s\n", unknownRunMessage(rf.resume, rr))
			return nil, nil, exitUsage
		}
	}
	// The plan shares env: sinks opened by Run see this id.
	env.RunID = runID
	// Salesforce sinks record what this attempt reads (the pipeline file,
	// its digest, the source objects' fingerprints) in their ledger, and
	// name the real file in resume hints.
	setProvenance(ctx, g, env)
	// The pre-flight validate does, before any row moves: a bad field or
	// relationship column is refused here, not by a job that then fails.
	if !rf.offline {
		if code := preflightExit(preflight(ctx, g, plan, env, stderr)); code != exitOK {
			plan.Close()
			fmt.Fprintf(stderr, "bulkflow: run stopped by the pre-flight: nothing was sent (--offline skips the pre-flight)\n")
			return nil, nil, code
		}
	}
	return plan, env, exitOK
}

// finishRun writes the report (--report, --json / --report - on the
// command's stdout: a test's buffer, serve's pipe, not blobio's process
// stdout), prints the summary and returns the exit code.
func finishRun(ctx context.Context, rf *runFlags, rep *pipeline.Report, runErr error, stdout, stderr io.Writer) int {
	report, asJSON := rf.report, rf.json
	if report == "-" {
		report, asJSON = "", true
	}
	runErr = writeRunReport(ctx, report, rep, runErr, stderr)
	if asJSON {
		if err := rep.WriteJSON(stdout); err != nil && runErr == nil {
			runErr = fmt.Errorf("write the report to stdout: %w", err)
		}
	}
	rep.Summary(stderr)
	return exitCode(rep, runErr)
}

// runFlags are the flags of `bulkflow run`.
type runFlags struct {
	report, progress, state, shard, resume string
	settle                                 settleFlag
	offline, json                          bool
	logs                                   obs.LogOptions
	reconcile                              reconcileFlag
	ov                                     overrideFlags // --set, --instance-url
}

// resumeFlags returns the flags a `run --resume` of this run must repeat,
// for the resume command the summary gives.
func (f *runFlags) resumeFlags() []string {
	var out []string
	if f.shard != "" {
		out = append(out, "--shard", f.shard)
	}
	if f.state != "" {
		out = append(out, "--state", f.state)
	}
	if f.offline {
		out = append(out, "--offline")
	}
	// The resume must load the same pipeline: the same overrides. An
	// auth value is not repeated (it may be a secret typed on the command
	// line, which no output may hold): the command shows AUTH_VALUE.
	for _, ov := range f.ov.set {
		v := ov.Value
		if strings.HasPrefix(ov.Key, "auth.") || ov.Key == "auth" {
			v = "AUTH_VALUE"
		}
		out = append(out, "--set", ov.Stage+"."+ov.Key+"="+v)
	}
	if f.ov.instanceURL != "" {
		out = append(out, "--instance-url", f.ov.instanceURL)
	}
	return out
}

// parse parses args into f and returns the pipeline file, or "" with the
// exit code to return (usage or the problem printed).
func (f *runFlags) parse(args []string, stderr io.Writer) (string, int) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.report, "report", "", "write the JSON run report to this path or blob URL (- for stdout)")
	fs.BoolVar(&f.json, "json", false, "write the JSON run report to stdout (progress, logs and the summary go to stderr)")
	obs.AddLogFlags(fs, &f.logs, "warn")
	fs.StringVar(&f.progress, "progress", "auto", "progress display: auto (a bar on a terminal, plain lines otherwise), plain, none")
	fs.StringVar(&f.state, "state", "", "state location (directory or blob URL) for incremental and sync stages; default: the pipeline's state:, else "+state.DefaultLocation)
	fs.StringVar(&f.shard, "shard", "", "run shard `I/N` of the pipeline: sources that read several files read only every N-th file from the I-th (0-based);\nstart N processes (I = 0..N-1) to split a large source; each shard keeps its own state")
	fs.Var(&f.reconcile, "reconcile", reconcileUsage)
	fs.BoolVar(&f.offline, "offline", false, "skip the pre-flight of salesforce sinks against the org's describe metadata (the same check as validate)")
	fs.StringVar(&f.resume, "resume", "", "continue the run with this `RUN_ID` (from its report or log): the Salesforce sink's ledger skips\nwhat that run already loaded and never uploads a chunk twice;\na finished run whose dead letters were replayed is not resumed (exit 2)")
	fs.Var(&f.settle, "settle-unknown", "with --resume (or a plain run resuming an unfinished one): settle the run's rows of unknown outcome\n(result_mismatch, outcome_unknown) as you found them in Salesforce: `loaded` (recorded as stored, never sent again)\nor absent (sent again by the next sync run or replay), for every such row, or JOB_ID=loaded / JOB_ID=absent for\nthe rows of one job or REST request (their _ref), or @FILE: a copy of the dead-letter file with a _settle\ncolumn (loaded, absent or empty) for single rows; repeatable, or comma-separated. They are dead-lettered\nassumed_loaded or assumed_absent")
	f.ov.register(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bulkflow run FILE [--report FILE] [--progress auto|plain|none] [--resume RUN_ID [--settle-unknown ...]] [--state LOC] [--shard I/N] [--offline] [--set STAGE.KEY=VALUE ...] [--instance-url URL] [--json] [--log-level LEVEL] [--log-format text|json]\n\n"+
			"Runs a pipeline file. Flags may come before or after FILE. Unless --offline, every salesforce sink is first\n"+
			"checked against the org's describe metadata, as validate does (GET requests only); a problem stops the run\n"+
			"before any row moves (exit 2, or 1 when Salesforce cannot be reached).")
		fs.PrintDefaults()
	}
	file, err := parseInterspersed(fs, args)
	if err != nil {
		return "", flagExit(err)
	}
	if file == "" {
		fs.Usage()
		return "", exitUsage
	}
	switch f.progress {
	case "auto", "plain", "none":
	default:
		fmt.Fprintf(stderr, "bulkflow: --progress must be auto, plain or none, not %q\n", f.progress)
		return "", exitUsage
	}
	if err := f.logs.Check(); err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return "", exitUsage
	}
	if f.resume != "" && !cli.ValidRunID(f.resume) {
		fmt.Fprintf(stderr, "bulkflow: --resume %q is not a run id (letters, digits, '.', '_' and '-', as in 20260101T120000Z-1a2b3c4d)\n", f.resume)
		return "", exitUsage
	}
	return file, exitOK
}

// warnUnsettled warns of the settings of s (--settle-unknown) that
// matched no row of unknown outcome.
func warnUnsettled(s *pipeline.Settlement, log *slog.Logger) {
	if s == nil {
		return
	}
	refs, rows := s.Unmatched()
	if len(refs) > 0 {
		log.Warn("--settle-unknown: no row of unknown outcome failed in " + strings.Join(refs, ", ") + ": nothing was settled for it")
	}
	if rows > 0 {
		log.Warn(fmt.Sprintf("--settle-unknown: %d rows of the settlement file matched no row of unknown outcome (a row settled "+
			"earlier, a row of another run, or an _origin or _stage that differs)", rows))
	}
}

// settleFlag is run's and replay's --settle-unknown: repeatable, each value one or
// more comma-separated settings (pipeline.Settlement.Add).
type settleFlag struct{ s *pipeline.Settlement }

func (f *settleFlag) String() string {
	if f == nil {
		return ""
	}
	return f.s.String()
}

func (f *settleFlag) Set(v string) error {
	if f.s == nil {
		f.s = &pipeline.Settlement{}
	}
	if strings.HasPrefix(v, "@") {
		return f.s.Add(v) // a file name may hold commas
	}
	for _, one := range strings.Split(v, ",") {
		if err := f.s.Add(strings.TrimSpace(one)); err != nil {
			return err
		}
	}
	return nil
}

// writeRunReport writes rep to where (a path, blob URL or "-"; nothing when
// empty) and returns runErr, or the write's error when runErr is nil: a
// run whose report could not be written has not fully succeeded.
func writeRunReport(ctx context.Context, where string, rep *pipeline.Report, runErr error, stderr io.Writer) error {
	if where == "" {
		return runErr
	}
	if err := writeReport(ctx, where, rep); err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		if runErr == nil {
			return err
		}
	}
	return runErr
}

// exitCode maps a finished run (run, replay, plan) to bulkflow's exit
// codes: 2 for a resume refused before any upload (the input or pipeline
// changed: change it back), 1 for a failed or cancelled run or any error,
// 3 for a partial run, 0 when every row was loaded or filtered.
func exitCode(rep *pipeline.Report, runErr error) int {
	var mismatch *salesforcesink.ResumeMismatchError
	switch {
	case errors.As(runErr, &mismatch):
		return exitUsage
	case rep.Status == pipeline.StatusFailed || rep.Status == pipeline.StatusCancelled || runErr != nil:
		return exitFailed
	case rep.Status == pipeline.StatusPartial:
		return exitPartial
	}
	return exitOK
}

// parseInterspersed parses flags that may come before or after the one
// positional argument.
func parseInterspersed(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := cli.ParseFlags(fs, args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", nil
	}
	return pos[0], nil
}

func writeReport(ctx context.Context, where string, rep *pipeline.Report) error {
	loc, err := blobio.Parse("", where)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	var b strings.Builder
	if err := rep.WriteJSON(&b); err != nil {
		return err
	}
	return blobio.WriteAll(context.WithoutCancel(ctx), loc, []byte(b.String()))
}

func runPlugins(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	reg := pipeline.DefaultRegistry()
	for _, k := range []pipeline.Kind{pipeline.KindSource, pipeline.KindTransform, pipeline.KindSink} {
		fmt.Fprintf(stdout, "%ss:\n", k)
		for _, n := range reg.Names(k) {
			spec, _ := reg.Spec(k, n)
			fmt.Fprintf(stdout, "  %-12s %s\n", n, spec.Summary)
		}
	}
	return exitOK
}
