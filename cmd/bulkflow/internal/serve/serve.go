// Package serve is `bulkflow serve`: a scheduler that runs the pipeline
// files of a directory on their cron schedules, and an HTTP interface to
// it (a status page, manual triggers, reports, dead letters, Prometheus
// metrics, health).
//
// # Runs
//
// A pipeline never runs twice at once: in this process a mutex per
// pipeline, across processes a lease in the pipeline's state store
// (state.Store.AcquireFenced), renewed while the run lasts; every state
// write of the run is fenced by the lease generation it won, so a holder
// that lost its lease (paused past its TTL) records nothing. A run that a
// crash or shutdown left unfinished (the "inflight" state document) is
// resumed under its own run id before any new run; a lease held by a dead
// process of this host is taken over at once.
//
// The server does not know how to run a pipeline file: cmd/bulkflow
// passes a Runner that does what `bulkflow run --resume` does (prepare,
// provenance, run lock, engine options), so a served run is that run.
//
// # HTTP
//
// See Server.Handler for the routes and auth.go for tokens and browser
// sessions; the status page (status.go) is server-rendered HTML and SVG
// with no script and no external asset.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/schedule"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// Options configure a Server: the serve command's flags, and the Runner.
type Options struct {
	Dir              string        // --pipelines
	State            string        // --state
	Grace            time.Duration // --grace
	AllowNonLoopback bool          // --allow-non-loopback
	TokenFile        string        // --token-file: "ROLE TOKEN" lines
	TokenEnv         string        // --token-env: the same, in a variable
	MetricsPublic    bool          // --metrics-public: /metrics without a token
	TLSCert, TLSKey  string        // --tls-cert, --tls-key

	TLSTerminatedUpstream bool          // --tls-terminated-upstream: a proxy in front speaks TLS
	Holder                string        // lease holder; default hostname:pid (see deadLocalHolder)
	LeaseTTL              time.Duration // default 2m, renewed every TTL/3 while running

	// Runner runs the pipeline files (required).
	Runner Runner

	// NewLogger makes the server's logger over w (--log-level,
	// --log-format); nil: text at info, secrets masked.
	NewLogger func(w io.Writer) *slog.Logger

	// RunStarted, when set, is called when a run has its lease, before
	// the pipeline is prepared (ctx is the run's); RunDone after the run
	// is recorded and its lease and lock released. Tests use them to
	// order events.
	RunStarted func(ctx context.Context, name, runID string)
	RunDone    func(name string, rec state.RunRecord)
}

// Runner is what the server needs of bulkflow's run command.
type Runner interface {
	// Prepare loads and checks a pipeline file and opens its sources as
	// `bulkflow run` does, printing diagnostics to stderr as
	// "bulkflow: ..." lines; ok is false when the file is invalid.
	Prepare(ctx context.Context, file string, stderr io.Writer) (plan *pipeline.Plan, g *pipeline.Graph, env *pipeline.Env, ok bool)
	// StateLocation is where g's state lives (--state, else the file's
	// state:, else the default).
	StateLocation(g *pipeline.Graph) string
	// Begin readies a prepared run of run id env.RunID: it records the
	// run's provenance, takes the run lock (lost is called should it be
	// lost) and returns the engine options, with st as the state store
	// and Resumed set to resumed, and the function that releases the
	// lock. resumed says the run id is that of a run a crash or shutdown
	// left unfinished; Begin fails when such a run may not be resumed
	// (as `bulkflow run --resume` refuses it).
	Begin(ctx context.Context, g *pipeline.Graph, env *pipeline.Env, st *state.Store, resumed bool, lost func(error)) (*pipeline.RunOptions, func(), error)
	// WriteReport writes rep as JSON at location where.
	WriteReport(ctx context.Context, where string, rep *pipeline.Report) error
	// Unfinished reports whether a run of g that ended with rep (not
	// cancelled) left rows only a resume can settle without sending them
	// twice: the in-flight document then stays, and the next run resumes
	// it as a cancelled one is.
	Unfinished(g *pipeline.Graph, rep *pipeline.Report) bool
	// Committed reports whether run runID of the pipeline in file, which
	// the in-flight document names, committed all the state it keeps
	// before it stopped: it is then not resumed (its resume would be
	// refused as a re-cut) and a new run starts.
	Committed(ctx context.Context, file string, st *state.Store, runID string) bool
}

// servedPipeline is one scheduled pipeline.
type servedPipeline struct {
	name  string // the pipeline's name (from the file)
	file  string // path of the pipeline file
	spec  string // schedule as written, with the time zone
	sched cron.Schedule
	store *state.Store

	run   sync.Mutex // held for the whole of a run: never two at once
	mu    sync.Mutex // guards runID and groups
	runID string     // current run, "" when idle
	// groups caches the error groups of the last run's report.
	groups errorGroupCache
}

func (p *servedPipeline) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runID
}

func (p *servedPipeline) setCurrent(id string) {
	p.mu.Lock()
	p.runID = id
	p.mu.Unlock()
}

// Server schedules and runs pipelines and serves their status.
type Server struct {
	opts      Options
	pipelines map[string]*servedPipeline
	names     []string // sorted
	cron      *cron.Cron
	metrics   *metrics
	auth      *auth
	log       *slog.Logger
	stderr    io.Writer // shared, locked
	now       func() time.Time

	// runCtx is the context of runs: not cancelled by shutdown until the
	// grace period is over.
	runCtx     context.Context
	cancelRuns context.CancelFunc

	mu       sync.Mutex // guards stopping and wg.Add
	stopping bool
	wg       sync.WaitGroup
}

var (
	errUnknownPipeline = errors.New("no such pipeline")
	errAlreadyRunning  = errors.New("already running")
	errStopping        = errors.New("server is shutting down")
)

// lockedWriter serializes writes to a shared writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// capWriter keeps the first max bytes written to it.
type capWriter struct {
	mu  sync.Mutex
	buf strings.Builder
	max int
}

func (c *capWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capWriter) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(c.buf.String()), "\n") {
		if l = strings.TrimPrefix(l, "bulkflow: "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// pipelineFiles lists the pipeline files of dir (*.yaml and *.yml, not
// recursive, without the NAME.test.yaml files of `bulkflow test`), sorted.
func pipelineFiles(dir string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		for _, f := range m {
			if !config.IsTestFile(f) {
				files = append(files, f)
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// logger is o.NewLogger(w), or the default logger over w.
func (o Options) logger(w io.Writer) *slog.Logger {
	if o.NewLogger != nil {
		return o.NewLogger(w)
	}
	return slog.New(redact.Handler(slog.NewTextHandler(w, nil)))
}

// New reads the pipeline files of o.Dir, validates every pipeline and
// schedule and opens the state stores. Nothing is scheduled until Start.
// The log goes to stderr.
func New(ctx context.Context, o Options, stderr io.Writer) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	tokens, err := loadTokens(o.TokenFile, o.TokenEnv)
	if err != nil {
		return nil, err
	}
	files, err := pipelineFiles(o.Dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(o.Dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("--pipelines %s: not a directory of pipeline files", o.Dir)
	}
	lw := &lockedWriter{w: stderr}
	s := &Server{
		opts:      o,
		pipelines: map[string]*servedPipeline{},
		cron:      cron.New(cron.WithLogger(cron.DiscardLogger)),
		stderr:    lw,
		log:       o.logger(lw),
		now:       time.Now,
	}
	s.auth = newAuth(tokens, o.TLSCert != "" || o.TLSTerminatedUpstream, s.log, s.now)
	var errs []error
	for _, path := range files {
		if err := s.add(ctx, path); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(s.names) == 0 {
		return nil, fmt.Errorf("%s: no pipeline file has a schedule: add schedule: \"*/15 * * * *\" (or {cron: ..., timezone: ...}) to the ones to run", o.Dir)
	}
	sort.Strings(s.names)
	s.metrics = newMetrics(s.names)
	s.runCtx, s.cancelRuns = context.WithCancel(context.WithoutCancel(ctx))
	for _, name := range s.names {
		p := s.pipelines[name]
		s.cron.Schedule(p.sched, cron.FuncJob(func() { s.scheduled(name) }))
	}
	return s, nil
}

// withDefaults checks the options and fills in the holder and lease TTL.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Runner == nil:
		return o, errors.New("serve: no Runner")
	case o.Grace < 0:
		return o, errors.New("--grace must not be negative")
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return o, errors.New("--tls-cert and --tls-key go together: give both (or neither)")
	case o.TLSCert != "" && o.TLSTerminatedUpstream:
		return o, errors.New("--tls-terminated-upstream says a proxy in front speaks TLS: do not also give --tls-cert/--tls-key")
	}
	if o.Holder == "" {
		o.Holder = fmt.Sprintf("%s:%d", localHostname(), os.Getpid())
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Minute
	}
	return o, nil
}

// add validates the pipeline file at path and, when it has a schedule,
// adds it to the served pipelines with its state store open.
func (s *Server) add(ctx context.Context, path string) error {
	g, err := config.LoadFile(path, pipeline.DefaultRegistry())
	if err != nil {
		return fmt.Errorf("%s: invalid pipeline:\n  %s", path, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	if g.Schedule == nil {
		return nil // run by hand or by an external scheduler
	}
	spec, sched, err := schedule.Parse(g.Schedule.Cron, g.Schedule.TimeZone)
	if err != nil {
		return fmt.Errorf("%s: %v", g.Schedule.Pos, err)
	}
	diag := &capWriter{max: 16 << 10}
	plan, g, _, ok := s.opts.Runner.Prepare(ctx, path, diag)
	if !ok {
		return fmt.Errorf("%s: invalid pipeline:\n  %s", path, strings.Join(diag.lines(), "\n  "))
	}
	plan.Close()
	if !cli.ValidRunID(g.Name) {
		return fmt.Errorf("%s: pipeline name %q cannot be served (letters, digits, '.', '_' and '-' only)", path, g.Name)
	}
	if other, dup := s.pipelines[g.Name]; dup {
		return fmt.Errorf("%s: pipeline name %q is also used by %s", path, g.Name, other.file)
	}
	st, err := state.Open(ctx, s.opts.Runner.StateLocation(g), g.Name)
	if err != nil {
		return err
	}
	s.pipelines[g.Name] = &servedPipeline{name: g.Name, file: path, spec: spec, sched: sched, store: st}
	s.names = append(s.names, g.Name)
	return nil
}

// Start starts the scheduler, and resumes at once every run that a
// stopped or crashed process left in flight (when its lease is free or its
// holder is a dead process of this host).
func (s *Server) Start() {
	s.cron.Start()
	for _, name := range s.names {
		p := s.pipelines[name]
		s.log.Info("scheduled", "pipeline", name, "file", p.file, "schedule", p.spec, "next", p.sched.Next(s.now()))
	}
	s.resumeInFlight()
}

// Shutdown stops scheduling and waits for running runs; after grace their
// context is cancelled (they then stop, record a cancelled run and release
// their leases).
func (s *Server) Shutdown(grace time.Duration) {
	<-s.cron.Stop().Done() // cron jobs only trigger: this returns at once
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	default:
		s.log.Info("waiting for running pipelines", "grace", grace)
		t := time.NewTimer(grace)
		select {
		case <-done:
		case <-t.C:
			s.log.Warn("grace period over: cancelling running pipelines")
			s.cancelRuns()
			<-done
		}
		t.Stop()
	}
	s.cancelRuns()
}
