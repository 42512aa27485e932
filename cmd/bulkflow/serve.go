package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/obs"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// runServe parses serve's flags and runs the scheduler and its HTTP
// interface (package serve) with serveRunner.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, addr, logs, code, ok := parseServeFlags(args, stderr)
	if !ok {
		return code
	}
	if err := logs.Check(); err != nil {
		fmt.Fprintf(stderr, "bulkflow: serve: %v\n", err)
		return exitUsage
	}
	o.NewLogger = logs.NewLogger
	o.Runner = serveRunner{stateFlag: o.State, logs: logs}
	// Traces when the OTEL_* variables ask for them (off by default): a
	// span tree per scheduled or manual run.
	stopTracing, err := obs.StartTracing(ctx, logs.NewLogger(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: serve: %v\n", err)
		return exitUsage
	}
	defer stopTracing()
	return serve.Run(ctx, o, addr, stdout, stderr)
}

// parseServeFlags parses serve's flags; ok is false when the command
// must exit with code (usage, --help).
func parseServeFlags(args []string, stderr io.Writer) (o serve.Options, addr string, logs obs.LogOptions, code int, ok bool) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Dir, "pipelines", "", "`DIR` holding the pipeline files (*.yaml, *.yml); those with schedule: are run (required)")
	fs.StringVar(&addr, "addr", "127.0.0.1:8585", "HTTP listen address (status page, POST /run/NAME, /metrics, /healthz)")
	fs.StringVar(&o.State, "state", "", "state store `LOCATION` (a directory or blob URL) for every pipeline: run history, reports, leases,\nwatermarks, sync manifests; default: each pipeline's state:, else "+state.DefaultLocation)
	fs.DurationVar(&o.Grace, "grace", 5*time.Minute, "on SIGTERM, how long running pipelines may finish before they are cancelled")
	fs.BoolVar(&o.AllowNonLoopback, "allow-non-loopback", false, "allow --addr beyond loopback; needs tokens and TLS (--tls-cert/--tls-key or --tls-terminated-upstream)")
	fs.StringVar(&o.TokenFile, "token-file", "", "`FILE` of access tokens, one \"ROLE TOKEN\" per line (role read: status page, reports, dead letters,\nmetrics; run: also POST /run); when tokens are given every route but /healthz needs one")
	fs.StringVar(&o.TokenEnv, "token-env", "", "environment `VAR` holding \"ROLE TOKEN\" entries separated by commas or newlines (with or instead of --token-file)")
	fs.BoolVar(&o.MetricsPublic, "metrics-public", false, "serve /metrics without a token (for a Prometheus scraper without credentials)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "serve https with this PEM certificate `FILE` (chain first) and --tls-key")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	obs.AddLogFlags(fs, &logs, "info")
	fs.BoolVar(&o.TLSTerminatedUpstream, "tls-terminated-upstream", false, "plain http here because a proxy in front terminates TLS (satisfies --allow-non-loopback's TLS requirement)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bulkflow serve --pipelines DIR [--addr 127.0.0.1:8585] [--state LOCATION] [--grace 5m]\n"+
			"         [--token-file FILE] [--token-env VAR] [--metrics-public] [--tls-cert FILE --tls-key FILE]\n"+
			"         [--allow-non-loopback [--tls-terminated-upstream]]\n\nRuns every pipeline file in DIR that has a schedule, e.g.\n\n  schedule: {cron: \"*/15 * * * *\", timezone: Europe/Berlin}\n\n(5-field cron, @hourly/@every 1h; UTC unless a time zone is given), never two\nruns of one pipeline at once (a lease in the state store guards against other\nprocesses too), records every run and its report in the state store, and\nserves a status page (run-history chart, the last run's error groups, next\nrun, lease holder), POST /run/NAME (manual run), /metrics and /healthz.\nEvery pipeline is validated at start. SIGTERM stops scheduling, lets running\npipelines finish for --grace, then cancels them.")
		fs.PrintDefaults()
	}
	if err := cli.ParseFlags(fs, args); err != nil {
		return o, "", logs, flagExit(err), false
	}
	if o.Dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return o, "", logs, exitUsage, false
	}
	return o, addr, logs, exitOK, true
}

// The in-flight run document, which the run lock's lookup of a run id
// reads too.
type inflight = serve.Inflight

const inflightKey = serve.InflightKey

// serveRunner runs a served pipeline as `bulkflow run --resume RUN_ID`
// does: the same prepare, provenance, run lock and engine options.
type serveRunner struct {
	stateFlag string         // --state
	logs      obs.LogOptions // --log-level, --log-format: the runs' log lines too
}

// Prepare is prepare, logging at serve's --log-level and --log-format.
func (r serveRunner) Prepare(ctx context.Context, file string, stderr io.Writer) (*pipeline.Plan, *pipeline.Graph, *pipeline.Env, bool) {
	plan, g, env, code := prepareShard(ctx, file, stderr, pipeline.Shard{}, config.Options{}, r.logs.NewLogger(stderr))
	return plan, g, env, code == exitOK
}

// StateLocation is stateLocation with serve's --state.
func (r serveRunner) StateLocation(g *pipeline.Graph) string { return stateLocation(r.stateFlag, g) }

// Begin records provenance, takes the run lock and returns the run
// options over st. A resume is refused, as `run --resume` refuses it, when
// the run finished and its dead letters were replayed (settledByReplay).
func (r serveRunner) Begin(ctx context.Context, g *pipeline.Graph, env *pipeline.Env, st *state.Store, resumed bool, lost func(error)) (*pipeline.RunOptions, func(), error) {
	setProvenance(ctx, g, env)
	lockLoc, lockName, lockSub := runLockPlace(g, stateLocation(r.stateFlag, g), stateName(g, pipeline.Shard{}))
	unlock, err := lockRun(ctx, lockLoc, lockName, lockSub, env.RunID, lost)
	if err != nil {
		return nil, nil, err
	}
	if resumed {
		// Under the run's lock, which a replay of its dead letters holds.
		if _, err := settledByReplay(ctx, g, env.RunID, g.File, true); err != nil {
			unlock()
			return nil, nil, err
		}
	}
	opts, err := runOptions(ctx, g, env, st, "")
	if err != nil {
		unlock()
		return nil, nil, err
	}
	opts.Resumed = resumed
	if resumed {
		// What --settle-unknown settled in an earlier attempt holds.
		if opts.SettleUnknown, err = resumeSettlement(ctx, g, stateLocation(r.stateFlag, g), stateName(g, pipeline.Shard{}), env.RunID, nil, env.Logger); err != nil {
			unlock()
			return nil, nil, err
		}
	}
	if needsState(g) {
		// For replay: the dead-letter manifest names the state.
		opts.StateLocation, opts.StateName = stateLocation(r.stateFlag, g), stateName(g, pipeline.Shard{})
	}
	return opts, unlock, nil
}

// Unfinished is what a plain `bulkflow run` asks before it clears the
// in-flight document: g inserts with a ledger and keeps state
// (guardsUnfinished), and rep is not finished.
func (serveRunner) Unfinished(g *pipeline.Graph, rep *pipeline.Report) bool {
	return guardsUnfinished(g) && !finished(rep)
}

// Committed is committedRun for the pipeline in file (false when it
// cannot be read: the run is then resumed, as before).
func (serveRunner) Committed(ctx context.Context, file string, st *state.Store, runID string) bool {
	g, code := loadPipeline(file, config.Options{}, io.Discard)
	if code != exitOK {
		return false
	}
	done, err := committedRun(ctx, st, g, runID)
	return err == nil && done
}

// WriteReport is writeReport.
func (serveRunner) WriteReport(ctx context.Context, where string, rep *pipeline.Report) error {
	return writeReport(ctx, where, rep)
}
