package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"
	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/schedule"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

type serveOptions struct {
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
}

// servedPipeline is one scheduled pipeline.
type servedPipeline struct {
	name  string // the pipeline's name (from the file)
	file  string // path of the pipeline file
	spec  string // schedule as written, with the time zone
	sched cron.Schedule
	store *state.Store

	run   sync.Mutex // held for the whole of a run: never two at once
	mu    sync.Mutex // guards current
	runID string     // current run, "" when idle
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

// server schedules and runs pipelines and serves their status.
type server struct {
	opts      serveOptions
	pipelines map[string]*servedPipeline
	names     []string // sorted
	cron      *cron.Cron
	metrics   *serveMetrics
	auth      *serveAuth
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

	// Test hooks: runStarted is called when a run has its lease, before the
	// pipeline is prepared; runDone after the run is recorded and its lease
	// and lock released.
	runStarted func(ctx context.Context, name, runID string)
	runDone    func(name string, rec state.RunRecord)
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
	buf bytes.Buffer
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
// recursive), sorted.
func pipelineFiles(dir string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	return files, nil
}

// newServer reads DIR/serve.yaml, validates every pipeline and schedule and
// opens the state stores. Nothing is scheduled until start.
func newServer(ctx context.Context, o serveOptions, stderr io.Writer) (*server, error) {
	if o.Grace < 0 {
		return nil, errors.New("--grace must not be negative")
	}
	if o.Holder == "" {
		o.Holder = fmt.Sprintf("%s:%d", localHostname(), os.Getpid())
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Minute
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both (or neither)")
	}
	if o.TLSCert != "" && o.TLSTerminatedUpstream {
		return nil, errors.New("--tls-terminated-upstream says a proxy in front speaks TLS: do not also give --tls-cert/--tls-key")
	}
	tokens, err := loadServeTokens(o.TokenFile, o.TokenEnv)
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
	s := &server{
		opts:      o,
		pipelines: map[string]*servedPipeline{},
		cron:      cron.New(cron.WithLogger(cron.DiscardLogger)),
		stderr:    lw,
		log:       slog.New(redact.Handler(slog.NewTextHandler(lw, nil))),
		now:       time.Now,
	}
	s.auth = newServeAuth(tokens, o.TLSCert != "" || o.TLSTerminatedUpstream, s.log, s.now)
	var errs []error
	for _, path := range files {
		g, err := config.LoadFile(path, pipeline.DefaultRegistry())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid pipeline:\n  %s", path, strings.ReplaceAll(err.Error(), "\n", "\n  ")))
			continue
		}
		if g.Schedule == nil {
			continue // run by hand or by an external scheduler
		}
		spec, sched, err := schedule.Parse(g.Schedule.Cron, g.Schedule.TimeZone)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", g.Schedule.Pos, err))
			continue
		}
		var diag capWriter
		diag.max = 16 << 10
		plan, g, _, code := prepare(ctx, path, &diag)
		if code != exitOK {
			errs = append(errs, fmt.Errorf("%s: invalid pipeline:\n  %s", path, strings.Join(diag.lines(), "\n  ")))
			continue
		}
		plan.Close()
		if !validRunID(g.Name) {
			errs = append(errs, fmt.Errorf("%s: pipeline name %q cannot be served (letters, digits, '.', '_' and '-' only)", path, g.Name))
			continue
		}
		if other, dup := s.pipelines[g.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: pipeline name %q is also used by %s", path, g.Name, other.file))
			continue
		}
		st, err := state.Open(ctx, stateLocation(o.State, g), g.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.pipelines[g.Name] = &servedPipeline{name: g.Name, file: path, spec: spec, sched: sched, store: st}
		s.names = append(s.names, g.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(s.names) == 0 {
		return nil, fmt.Errorf("%s: no pipeline file has a schedule: add schedule: \"*/15 * * * *\" (or {cron: ..., timezone: ...}) to the ones to run", o.Dir)
	}
	sort.Strings(s.names)
	s.metrics = newServeMetrics(s.names)
	s.runCtx, s.cancelRuns = context.WithCancel(context.WithoutCancel(ctx))
	for _, name := range s.names {
		p := s.pipelines[name]
		s.cron.Schedule(p.sched, cron.FuncJob(func() { s.scheduled(name) }))
	}
	return s, nil
}

// start starts the scheduler, and resumes at once every run that a
// stopped or crashed process left in flight (when its lease is free or its
// holder is a dead process of this host).
func (s *server) start() {
	s.cron.Start()
	for _, name := range s.names {
		p := s.pipelines[name]
		s.log.Info("scheduled", "pipeline", name, "file", p.file, "schedule", p.spec, "next", p.sched.Next(s.now()))
	}
	s.resumeInFlight()
}

// resumeInFlight triggers the pipelines whose state names a run in flight.
func (s *server) resumeInFlight() {
	for _, name := range s.names {
		var in inflight
		found, err := s.pipelines[name].store.Get(context.WithoutCancel(s.runCtx), inflightKey, &in)
		if err != nil {
			s.log.Warn("cannot read the in-flight run", "pipeline", name, "err", err)
			continue
		}
		if !found || in.RunID == "" {
			continue
		}
		if _, err := s.trigger(name, "startup"); err != nil {
			s.log.Info("run in flight not resumed at start", "pipeline", name, "run_id", in.RunID, "reason", err)
		}
	}
}

// scheduled is the cron job of a pipeline.
func (s *server) scheduled(name string) {
	if _, err := s.trigger(name, "schedule"); err != nil {
		s.log.Warn("scheduled run skipped", "pipeline", name, "reason", err)
	}
}

// trigger starts a run of the pipeline in the background and returns its
// run id. It fails with errAlreadyRunning when this process runs it, or
// when another process holds its lease.
func (s *server) trigger(name, why string) (string, error) {
	p, ok := s.pipelines[name]
	if !ok {
		return "", errUnknownPipeline
	}
	if !p.run.TryLock() {
		return "", fmt.Errorf("pipeline %q is %w (run %s)", name, errAlreadyRunning, p.current())
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		p.run.Unlock()
		return "", errStopping
	}
	s.wg.Add(1)
	s.mu.Unlock()
	ctx := context.WithoutCancel(s.runCtx)
	// Everything the run writes to the state goes through st, bound to
	// the lease generation won: refused (state.ErrFenced) once a newer
	// holder takes the lease.
	st, got, err := p.store.AcquireFenced(ctx, s.opts.Holder, s.opts.LeaseTTL)
	var cur state.Lease
	if err == nil && !got {
		if cur, err = p.store.ReadLease(ctx); err == nil && s.deadLocalHolder(cur) {
			// Its process is gone: do not wait for the lease to expire.
			if st, got, err = p.store.TakeOverLease(ctx, s.opts.Holder, cur, s.opts.LeaseTTL); got {
				s.log.Warn("took over the lease of a dead process of this host", "pipeline", name,
					"dead_holder", cur.Holder, "generation", st.Generation())
			} else if err == nil {
				cur, err = p.store.ReadLease(ctx) // someone else took it over
			}
		}
	}
	if err != nil || !got {
		p.run.Unlock()
		s.wg.Done()
		if err != nil {
			return "", fmt.Errorf("pipeline %q: lease: %w", name, err)
		}
		return "", fmt.Errorf("pipeline %q is %w in %s (lease until %s)", name, errAlreadyRunning, cur.Holder, cur.Expires.Format(time.RFC3339))
	}
	runID := pipeline.NewRunID(s.now())
	// A run that a crash left unfinished is resumed (same run id: the
	// Salesforce sink's ledger skips what it loaded) before any new one.
	var in inflight
	if found, err := p.store.Get(ctx, inflightKey, &in); err != nil {
		s.log.Warn("cannot read the in-flight run; starting a new run", "pipeline", name, "err", err)
	} else if found && in.RunID != "" && validRunID(in.RunID) {
		s.log.Warn("resuming a run that did not finish (its process stopped or crashed)", "pipeline", name,
			"run_id", in.RunID, "holder", in.Holder, "started_at", in.StartedAt)
		runID, why = in.RunID, why+"+resume"
	}
	if err := st.Put(ctx, inflightKey, inflight{RunID: runID, Holder: s.opts.Holder, StartedAt: s.now().UTC()}); err != nil {
		st.ReleaseLease(ctx, s.opts.Holder)
		p.run.Unlock()
		s.wg.Done()
		return "", fmt.Errorf("pipeline %q: record the run: %w", name, err)
	}
	p.setCurrent(runID)
	go s.execute(p, st, runID, why)
	return runID, nil
}

// deadLocalHolder reports whether a lease's holder ("host:pid") is a
// process of this host, in this pid namespace and since the last boot
// (state.LocalNode), that no longer exists. A holder elsewhere, a live
// process, or one whose state cannot be told (another user's process,
// another OS) is not dead: its lease expires as usual.
func (s *server) deadLocalHolder(le state.Lease) bool {
	host, pidText, ok := strings.Cut(le.Holder, ":")
	if !ok || host != localHostname() || le.Node == "" || le.Node != state.LocalNode() {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return processGone(pid)
}

// localHostname names this host in lease holders.
func localHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown-host"
	}
	return h
}

// inflightKey is the state document naming the run in progress; it is
// cleared when the run is recorded, so one found at the start of a run
// belongs to a run whose process died.
const inflightKey = "inflight"

type inflight struct {
	RunID     string    `json:"run_id"`
	Holder    string    `json:"holder,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
}

// execute runs the pipeline once; the caller holds p.run, the lease (st is
// the store fenced by its generation) and a wg count, which execute gives
// back.
func (s *server) execute(p *servedPipeline, st *state.Store, runID, why string) {
	ctx, cancel := context.WithCancel(s.runCtx)
	defer cancel()
	bg := context.WithoutCancel(ctx) // state writes happen even after cancellation
	s.metrics.running.WithLabelValues(p.name).Set(1)
	log := s.log.With("pipeline", p.name, "run_id", runID)
	log.Info("run started", "trigger", why)

	// Keep the lease while running; losing it to another holder stops
	// the run.
	renewDone := make(chan struct{})
	var renewWG sync.WaitGroup
	renewWG.Go(func() {
		t := time.NewTicker(max(s.opts.LeaseTTL/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-renewDone:
				return
			case <-t.C:
				if err := st.RenewLease(bg, s.opts.Holder, s.opts.LeaseTTL); err != nil {
					log.Error("lease renewal failed", "err", err)
					if errors.Is(err, state.ErrLeaseLost) {
						cancel()
					}
				}
			}
		}
	})

	if s.runStarted != nil {
		s.runStarted(ctx, p.name, runID)
	}
	start := s.now()
	rep := s.runOnce(ctx, p, st, runID, strings.HasSuffix(why, "+resume"), log)
	close(renewDone)
	renewWG.Wait()

	rec := state.RunRecord{
		RunID: runID, Status: rep.Status, Trigger: why, Holder: s.opts.Holder, StartedAt: rep.StartedAt, FinishedAt: rep.FinishedAt,
		Counts: rep.Counts, DeadLetters: rep.DeadLetters, Errors: rep.Errors, LeaseGeneration: st.Generation(),
	}
	if rec.StartedAt.IsZero() {
		rec.StartedAt = start.UTC()
	}
	if rec.FinishedAt.IsZero() {
		rec.FinishedAt = s.now().UTC()
	}
	if u, err := st.ReportURL(runID); err == nil {
		if err := st.CheckFence(bg); err != nil {
			log.Error("write report", "err", err)
			rec.Errors = append(rec.Errors, err.Error())
		} else if err := writeReport(bg, u, rep); err != nil {
			log.Error("write report", "err", err)
			rec.Errors = append(rec.Errors, err.Error())
		} else {
			rec.ReportURL = u
		}
	}
	if err := st.AppendRun(bg, rec); err != nil {
		log.Error("record run", "err", err)
	}
	if rec.Status != pipeline.StatusCancelled {
		// A cancelled run (shutdown) stays in flight: the next start
		// resumes it.
		if err := st.Put(bg, inflightKey, inflight{}); err != nil {
			log.Error("clear the in-flight run", "err", err)
		}
	}
	s.metrics.observe(p.name, rec)
	s.metrics.observeReport(p.name, rep)
	if err := st.ReleaseLease(bg, s.opts.Holder); err != nil {
		log.Error("release lease", "err", err)
	}
	log.Info("run finished", "status", rec.Status, "read", rec.Counts.Read, "loaded", rec.Counts.Loaded,
		"filtered", rec.Counts.Filtered, "dead_lettered", rec.Counts.DeadLettered, "seconds", rec.FinishedAt.Sub(rec.StartedAt).Seconds())
	s.metrics.running.WithLabelValues(p.name).Set(0)
	p.setCurrent("")
	p.run.Unlock()
	if s.runDone != nil {
		s.runDone(p.name, rec)
	}
	s.wg.Done()
}

// runOnce prepares and runs the pipeline as `bulkflow run` does; it always
// returns a report.
// runOnce runs p once under runID; resumed says the id is that of a run a
// crash or shutdown left unfinished. It does what `bulkflow run --resume`
// does around the engine: provenance in the sink ledgers, the run lock,
// RunOptions.Resumed (earlier attempts' dead letters are superseded).
func (s *server) runOnce(ctx context.Context, p *servedPipeline, st *state.Store, runID string, resumed bool, log *slog.Logger) *pipeline.Report {
	diag := &capWriter{max: 16 << 10}
	plan, g, env, code := prepare(ctx, p.file, io.MultiWriter(diag, s.stderr))
	if code != exitOK {
		now := s.now().UTC()
		msgs := diag.lines()
		if len(msgs) == 0 {
			msgs = []string{"prepare failed"}
		}
		status := pipeline.StatusFailed
		if ctx.Err() != nil {
			status = pipeline.StatusCancelled // stopped (shutdown) while opening sources
		}
		return &pipeline.Report{RunID: runID, Pipeline: p.name, File: p.file, Status: status,
			StartedAt: now, FinishedAt: now, Stages: []pipeline.StageReport{}, DeadLetters: []string{}, Errors: msgs}
	}
	// The plan shares env: sinks opened by Run see this run id.
	env.RunID = runID
	setProvenance(ctx, g, env)
	failed := func(err error) *pipeline.Report {
		now := s.now().UTC()
		return &pipeline.Report{RunID: runID, Pipeline: p.name, File: p.file, Status: pipeline.StatusFailed,
			StartedAt: now, FinishedAt: now, Stages: []pipeline.StageReport{}, DeadLetters: []string{}, Errors: []string{err.Error()}}
	}
	// The same lock as `bulkflow run`: an operator's `run --resume` of
	// this id cannot upload beside serve's.
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	lockLoc, lockName, lockSub := runLockPlace(g, stateLocation(s.opts.State, g), stateName(g, pipeline.Shard{}))
	unlock, err := lockRun(ctx, lockLoc, lockName, lockSub, runID, cancelRun)
	if err != nil {
		plan.Close()
		return failed(err)
	}
	defer unlock()
	opts, err := runOptions(ctx, g, env, st, "")
	if err != nil {
		plan.Close()
		return failed(err)
	}
	opts.Resumed = resumed
	rep, err := plan.Run(ctx, opts)
	if err != nil {
		log.Warn("run error", "err", err)
	}
	return rep
}

// shutdown stops scheduling and waits for running runs; after grace their
// context is cancelled (they then stop, record a cancelled run and release
// their leases).
func (s *server) shutdown(grace time.Duration) {
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

// --- metrics ---

type serveMetrics struct {
	reg         *prometheus.Registry
	rows        *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	running     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	jobs        *prometheus.CounterVec
	apiLeft     *prometheus.GaugeVec
	synced      *prometheus.CounterVec
}

// rowOutcomes are the final outcomes of rows (Counts.Balanced: read plus
// fan-out copies equals their sum).
var rowOutcomes = []string{"loaded", "filtered", "dead_lettered", "lost"}

func newServeMetrics(names []string) *serveMetrics {
	m := &serveMetrics{
		reg: prometheus.NewRegistry(),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkflow_rows_total", Help: "Rows by final outcome (loaded, filtered, dead_lettered, lost), per pipeline.",
		}, []string{"pipeline", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkflow_runs_total", Help: "Finished runs by status (succeeded, partial, failed, cancelled).",
		}, []string{"pipeline", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bulkflow_run_duration_seconds", Help: "Duration of finished runs.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
		}, []string{"pipeline"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulkflow_running", Help: "1 while the pipeline runs in this process.",
		}, []string{"pipeline"}),
	}
	m.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bulkflow_last_success_timestamp_seconds", Help: "When the last run that succeeded (or was partial) finished, Unix time.",
	}, []string{"pipeline"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkflow_salesforce_jobs_total", Help: "Bulk API ingest jobs by final state, per sink stage.",
	}, []string{"pipeline", "stage", "state"})
	m.apiLeft = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bulkflow_salesforce_api_requests_remaining", Help: "Daily API requests left in the org at the end of the last run (Sforce-Limit-Info).",
	}, []string{"pipeline", "stage"})
	m.synced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkflow_sync_keys_total", Help: "Sync stage keys by decision and outcome (new, changed, unchanged, loaded, failed, deleted, delete_failed).",
	}, []string{"pipeline", "stage", "kind"})
	m.reg.MustRegister(m.rows, m.runs, m.duration, m.running, m.lastSuccess, m.jobs, m.apiLeft, m.synced)
	for _, n := range names {
		m.running.WithLabelValues(n).Set(0)
		for _, o := range rowOutcomes {
			m.rows.WithLabelValues(n, o)
		}
	}
	return m
}

func (m *serveMetrics) observe(name string, rec state.RunRecord) {
	c := rec.Counts
	for i, v := range []int64{c.Loaded, c.Filtered, c.DeadLettered, c.Lost} {
		m.rows.WithLabelValues(name, rowOutcomes[i]).Add(float64(v))
	}
	m.runs.WithLabelValues(name, rec.Status).Inc()
	m.duration.WithLabelValues(name).Observe(rec.FinishedAt.Sub(rec.StartedAt).Seconds())
}

// observeReport records what the run report's sink and sync sections say:
// Salesforce jobs by state, the API allowance left, sync decisions. The
// sections are read through their JSON form so that serve does not depend
// on each sink's Go types.
func (m *serveMetrics) observeReport(name string, rep *pipeline.Report) {
	if rep == nil {
		return
	}
	if rep.Status == pipeline.StatusSucceeded || rep.Status == pipeline.StatusPartial {
		m.lastSuccess.WithLabelValues(name).Set(float64(rep.FinishedAt.Unix()))
	}
	for stage, v := range rep.Sinks {
		var st struct {
			Jobs []struct {
				State string `json:"state"`
			} `json:"jobs"`
			APIUsed int64 `json:"api_used"`
			APIMax  int64 `json:"api_max"`
		}
		if b, err := json.Marshal(v); err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		for _, j := range st.Jobs {
			m.jobs.WithLabelValues(name, stage, j.State).Inc()
		}
		if st.APIMax > 0 {
			m.apiLeft.WithLabelValues(name, stage).Set(float64(st.APIMax - st.APIUsed))
		}
	}
	for stage, v := range rep.Sync {
		var sm map[string]any
		if b, err := json.Marshal(v); err != nil || json.Unmarshal(b, &sm) != nil {
			continue
		}
		for _, k := range []string{"new", "changed", "unchanged", "loaded", "failed", "deleted", "delete_failed"} {
			if f, ok := sm[k].(float64); ok {
				m.synced.WithLabelValues(name, stage, k).Add(f)
			}
		}
	}
}

// --- HTTP ---

// newServeHandler returns the HTTP interface: / status page, POST
// /run/{pipeline}, /reports/{pipeline}/{run_id}.json,
// /dead-letters/{pipeline}/{run_id}/{n}, /metrics, /healthz, and the
// browser login (/login, /logout). With tokens configured every route but
// /healthz, the login (and /metrics with --metrics-public) needs a token
// (see serveAuth.wrap). Cross-origin POSTs are refused (a web page cannot
// trigger runs), and unless non-loopback serving is allowed, so are
// requests whose Host is not a loopback name (DNS rebinding).
func newServeHandler(s *server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", s.auth.handleLogin)
	mux.HandleFunc("POST /logout", s.auth.handleLogout)
	mux.HandleFunc("GET /{$}", s.handleStatus)
	mux.HandleFunc("POST /run/{pipeline}", s.handleRun)
	mux.HandleFunc("GET /reports/{pipeline}/{file}", s.handleReport)
	mux.HandleFunc("GET /dead-letters/{pipeline}/{run}/{n}", s.handleDeadLetter)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	h := http.NewCrossOriginProtection().Handler(s.auth.wrap(securityHeaders(mux), s.opts.MetricsPublic))
	if s.opts.AllowNonLoopback {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !isLoopbackHost(host) {
			http.Error(w, "bulkflow serve: only loopback host names are accepted (see --allow-non-loopback)", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// securityHeaders sets headers every response gets: no MIME sniffing, no
// framing (the status page has a Run now button), no scripts.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func writeJSONResponse(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(redact.Writer(w)).Encode(v) // one Write: masked whole
}

func (s *server) handleRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("pipeline")
	runID, err := s.trigger(name, "manual")
	code := http.StatusAccepted
	switch {
	case errors.Is(err, errUnknownPipeline):
		code = http.StatusNotFound
	case errors.Is(err, errAlreadyRunning):
		code = http.StatusConflict
	case errors.Is(err, errStopping):
		code = http.StatusServiceUnavailable
	case err != nil:
		code = http.StatusInternalServerError
	}
	if err != nil {
		writeJSONResponse(w, code, map[string]string{"error": err.Error()})
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		http.Redirect(w, r, "/", http.StatusSeeOther) // the status page's button
		return
	}
	writeJSONResponse(w, code, map[string]string{"pipeline": name, "run_id": runID})
}

func (s *server) handleReport(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipelines[r.PathValue("pipeline")]
	id, isJSON := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok || !isJSON || !validRunID(id) {
		http.NotFound(w, r)
		return
	}
	u, err := p.store.ReportURL(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	serveObject(w, r, u, "application/json", "")
}

// serveObject streams the object at location u (a path or blob URL) as
// the response: 404 when it does not exist. A non-empty attachment is the
// file name a browser saves it under (Content-Disposition: attachment)
// instead of showing it.
func serveObject(w http.ResponseWriter, r *http.Request, u, contentType, attachment string) {
	loc, err := blobio.Parse("", u)
	var rc io.ReadCloser
	if err == nil {
		rc, err = blobio.NewReader(r.Context(), loc)
	}
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			http.NotFound(w, r)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if attachment != "" {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": attachment}))
	}
	io.Copy(w, rc)
}

type statusRun struct {
	state.RunRecord
	Seconds     float64
	Report      string // link, "" when no report
	DeadLetters []statusLink
}

type statusLink struct{ Href, Name string }

// deadLetterHistory is how many recent runs' dead letters can be fetched
// through the status page.
const deadLetterHistory = 50

// handleDeadLetter serves the n'th dead-letter file of a recent run. Only
// locations recorded in the run history are read, so the route cannot be
// used to fetch anything else.
func (s *server) handleDeadLetter(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipelines[r.PathValue("pipeline")]
	id := r.PathValue("run")
	n, err := strconv.Atoi(r.PathValue("n"))
	if !ok || !validRunID(id) || err != nil || n < 0 {
		http.NotFound(w, r)
		return
	}
	runs, err := p.store.Runs(r.Context(), deadLetterHistory)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, rec := range runs {
		if rec.RunID != id || n >= len(rec.DeadLetters) {
			continue
		}
		serveObject(w, r, rec.DeadLetters[n], "text/csv; charset=utf-8", id+"-"+deadLetterName(rec.DeadLetters[n]))
		return
	}
	http.NotFound(w, r)
}

// deadLetterName is the file name of a dead-letter location, without the
// query of a blob URL.
func deadLetterName(loc string) string {
	if i := strings.IndexByte(loc, '?'); i >= 0 && strings.Contains(loc, "://") {
		loc = loc[:i]
	}
	return path.Base(filepath.ToSlash(loc))
}

// statusPage is what the status page shows.
type statusPage struct {
	Pipelines []statusPipeline
	CanRun    bool // the viewer may trigger runs
	Session   bool // the viewer logged in with the browser form
}

type statusPipeline struct {
	Name, File, Schedule, Next, Running string
	Runs                                []statusRun
	Err                                 string
}

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>bulkflow serve</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
.succeeded{color:#070}.partial{color:#a60}.failed,.cancelled{color:#b00}</style></head>
<body><h1>bulkflow serve</h1>
<p>{{len .Pipelines}} pipeline(s). Metrics at <a href="/metrics">/metrics</a>.{{if .Session}} <form method="post" action="/logout" style="display:inline"><button>Log out</button></form>{{end}}</p>
{{range .Pipelines}}<h2 id="{{.Name}}">{{.Name}}</h2>
<p>File <code>{{.File}}</code> &middot; schedule <code>{{.Schedule}}</code> &middot; next run {{.Next}}
{{if .Running}}&middot; <strong>running</strong> {{.Running}}{{else if $.CanRun}}<form method="post" action="/run/{{.Name}}" style="display:inline"><button>Run now</button></form>{{end}}</p>
{{if .Err}}<p class="failed">state store: {{.Err}}</p>{{end}}
{{if .Runs}}<table><tr><th>run</th><th>trigger</th><th>status</th><th>started</th><th>seconds</th><th>read</th><th>loaded</th><th>filtered</th><th>dead-lettered</th><th>report</th><th>dead letters</th></tr>
{{range .Runs}}<tr><td>{{.RunID}}</td><td>{{.Trigger}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{ts .StartedAt}}</td><td>{{printf "%.1f" .Seconds}}</td><td>{{.Counts.Read}}</td><td>{{.Counts.Loaded}}</td><td>{{.Counts.Filtered}}</td><td>{{.Counts.DeadLettered}}</td><td>{{if .Report}}<a href="{{.Report}}">JSON</a>{{end}}</td><td>{{range .DeadLetters}}<a href="{{.Href}}">{{.Name}}</a> {{end}}</td></tr>
{{end}}</table>{{else}}<p>No runs yet.</p>{{end}}
{{end}}</body></html>
`))

func (s *server) handleStatus(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	var out statusPage
	out.CanRun = requestRole(r) >= roleRun
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" && s.auth.enabled() {
		out.Session = true
	}
	for _, name := range s.names {
		p := s.pipelines[name]
		sp := statusPipeline{Name: name, File: p.file, Schedule: p.spec, Running: p.current(), Next: "never"}
		if next := p.sched.Next(now); !next.IsZero() {
			sp.Next = next.Format("2006-01-02 15:04 MST")
		}
		runs, err := p.store.Runs(r.Context(), 10)
		if err != nil {
			sp.Err = err.Error()
		}
		for _, rec := range runs {
			sr := statusRun{RunRecord: rec, Seconds: rec.FinishedAt.Sub(rec.StartedAt).Seconds()}
			if rec.ReportURL != "" {
				sr.Report = "/reports/" + name + "/" + rec.RunID + ".json"
			}
			for i, dl := range rec.DeadLetters {
				sr.DeadLetters = append(sr.DeadLetters, statusLink{Href: fmt.Sprintf("/dead-letters/%s/%s/%d", name, rec.RunID, i), Name: deadLetterName(dl)})
			}
			sp.Runs = append(sp.Runs, sr)
		}
		out.Pipelines = append(out.Pipelines, sp)
	}
	var b bytes.Buffer
	if err := statusTmpl.Execute(&b, out); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	redact.Writer(w).Write(b.Bytes())
}

// --- command ---

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o serveOptions
	fs.StringVar(&o.Dir, "pipelines", "", "`DIR` holding the pipeline files (*.yaml, *.yml); those with schedule: are run (required)")
	addr := fs.String("addr", "127.0.0.1:8585", "HTTP listen address (status page, POST /run/NAME, /metrics, /healthz)")
	fs.StringVar(&o.State, "state", "", "state store `LOCATION` (a directory or blob URL) for every pipeline: run history, reports, leases,\nwatermarks, sync manifests; default: each pipeline's state:, else "+state.DefaultLocation)
	fs.DurationVar(&o.Grace, "grace", 5*time.Minute, "on SIGTERM, how long running pipelines may finish before they are cancelled")
	fs.BoolVar(&o.AllowNonLoopback, "allow-non-loopback", false, "allow --addr beyond loopback; needs tokens and TLS (--tls-cert/--tls-key or --tls-terminated-upstream)")
	fs.StringVar(&o.TokenFile, "token-file", "", "`FILE` of access tokens, one \"ROLE TOKEN\" per line (role read: status page, reports, dead letters,\nmetrics; run: also POST /run); when tokens are given every route but /healthz needs one")
	fs.StringVar(&o.TokenEnv, "token-env", "", "environment `VAR` holding \"ROLE TOKEN\" entries separated by commas or newlines (with or instead of --token-file)")
	fs.BoolVar(&o.MetricsPublic, "metrics-public", false, "serve /metrics without a token (for a Prometheus scraper without credentials)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "serve https with this PEM certificate `FILE` (chain first) and --tls-key")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	fs.BoolVar(&o.TLSTerminatedUpstream, "tls-terminated-upstream", false, "plain http here because a proxy in front terminates TLS (satisfies --allow-non-loopback's TLS requirement)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bulkflow serve --pipelines DIR [--addr 127.0.0.1:8585] [--state LOCATION] [--grace 5m]\n"+
			"         [--token-file FILE] [--token-env VAR] [--metrics-public] [--tls-cert FILE --tls-key FILE]\n"+
			"         [--allow-non-loopback [--tls-terminated-upstream]]\n\nRuns every pipeline file in DIR that has a schedule, e.g.\n\n  schedule: {cron: \"*/15 * * * *\", timezone: Europe/Berlin}\n\n(5-field cron, @hourly/@every 1h; UTC unless a time zone is given), never two\nruns of one pipeline at once (a lease in the state store guards against other\nprocesses too), records every run and its report in the state store, and\nserves a status page, POST /run/NAME (manual run), /metrics and /healthz.\nEvery pipeline is validated at start. SIGTERM stops scheduling, lets running\npipelines finish for --grace, then cancels them.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if o.Dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if err := checkServeExposure(*addr, o, o.TokenFile != "" || o.TokenEnv != ""); err != nil {
		fmt.Fprintf(stderr, "bulkflow: serve: %v\n", err)
		return exitUsage
	}
	var tlsConf *tls.Config
	if o.TLSCert != "" && o.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow: serve: --tls-cert %s / --tls-key %s: %v\n", o.TLSCert, o.TLSKey, err)
			return exitUsage
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s, err := newServer(ctx, o, stderr)
	if err != nil {
		printConfigErr(stderr, fmt.Errorf("serve: refusing to start:\n%w", err))
		return exitUsage
	}
	if !s.auth.enabled() {
		s.log.Warn("serve: no tokens configured: anyone who can reach " + *addr + " on this machine can view runs, download dead letters and trigger runs; give --token-file or --token-env")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: serve: %v\n", err)
		return exitFailed
	}
	scheme := "http"
	if tlsConf != nil {
		ln, scheme = tls.NewListener(ln, tlsConf), "https"
	}
	hs := &http.Server{Handler: newServeHandler(s), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "bulkflow: serving %d pipeline(s) on %s://%s\n", len(s.names), scheme, ln.Addr())
	s.start()
	code := exitOK
	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
	case err := <-served:
		s.log.Error("http server stopped", "err", err)
		code = exitFailed
	}
	// The status page and /metrics stay up while runs drain.
	s.shutdown(o.Grace)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	return code
}
