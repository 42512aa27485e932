package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// InflightKey is the state document naming the run in progress; it is
// cleared when the run is recorded, so one found at the start of a run
// belongs to a run whose process died. `bulkflow run --resume` reads it
// to tell whether a run id exists.
const InflightKey = "inflight"

// Inflight is the InflightKey document ({} when no run is in flight).
type Inflight struct {
	RunID     string    `json:"run_id"`
	Holder    string    `json:"holder,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Replay is set when the run in flight is a `bulkflow replay` of a
	// dead-letter file: the command that resumes it. Such a run is not
	// resumed by running the pipeline (that would read its source, not the
	// file), so no run of the pipeline starts until the replay finishes.
	Replay string `json:"replay,omitempty"`
}

// resumeInFlight triggers the pipelines whose state names a run in flight.
func (s *Server) resumeInFlight() {
	for _, name := range s.names {
		var in Inflight
		found, err := s.pipelines[name].store.Get(context.WithoutCancel(s.runCtx), InflightKey, &in)
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
func (s *Server) scheduled(name string) {
	if _, err := s.trigger(name, "schedule"); err != nil {
		s.log.Warn("scheduled run skipped", "pipeline", name, "reason", err)
	}
}

// trigger starts a run of the pipeline in the background and returns its
// run id. It fails with errAlreadyRunning when this process runs it, or
// when another process holds its lease.
func (s *Server) trigger(name, why string) (string, error) {
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
	st, err := s.acquire(ctx, p)
	if err != nil {
		p.run.Unlock()
		s.wg.Done()
		return "", err
	}
	runID, why, err := s.runIDFor(ctx, p, st, why)
	if err != nil {
		st.ReleaseLease(ctx, s.opts.Holder)
		p.run.Unlock()
		s.wg.Done()
		return "", err
	}
	if err := st.Put(ctx, InflightKey, Inflight{RunID: runID, Holder: s.opts.Holder, StartedAt: s.now().UTC()}); err != nil {
		st.ReleaseLease(ctx, s.opts.Holder)
		p.run.Unlock()
		s.wg.Done()
		return "", fmt.Errorf("pipeline %q: record the run: %w", p.name, err)
	}
	p.setCurrent(runID)
	go s.execute(p, st, runID, why)
	return runID, nil
}

// acquire takes the pipeline's lease and returns its store fenced by the
// generation won: everything the run writes to the state goes through it,
// refused (state.ErrFenced) once a newer holder takes the lease. A lease
// held by a dead process of this host is taken over at once; one held
// elsewhere is errAlreadyRunning.
func (s *Server) acquire(ctx context.Context, p *servedPipeline) (*state.Store, error) {
	st, got, err := p.store.AcquireFenced(ctx, s.opts.Holder, s.opts.LeaseTTL)
	var cur state.Lease
	if err == nil && !got {
		if cur, err = p.store.ReadLease(ctx); err == nil && s.deadLocalHolder(cur) {
			// Its process is gone: do not wait for the lease to expire.
			if st, got, err = p.store.TakeOverLease(ctx, s.opts.Holder, cur, s.opts.LeaseTTL); got {
				s.log.Warn("took over the lease of a dead process of this host", "pipeline", p.name,
					"dead_holder", cur.Holder, "generation", st.Generation())
			} else if err == nil {
				cur, err = p.store.ReadLease(ctx) // someone else took it over
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: lease: %w", p.name, err)
	}
	if !got {
		return nil, fmt.Errorf("pipeline %q is %w in %s (lease until %s)", p.name, errAlreadyRunning, cur.Holder, cur.Expires.Format(time.RFC3339))
	}
	return st, nil
}

// runIDFor returns the run id and trigger of the run about to start: a
// run that a crash left unfinished is resumed (same run id: the
// Salesforce sink's ledger skips what it loaded, why gets "+resume")
// before any new one. A replay in flight (Inflight.Replay) is an error:
// only that replay's resume finishes it.
func (s *Server) runIDFor(ctx context.Context, p *servedPipeline, st *state.Store, why string) (runID, trigger string, err error) {
	var in Inflight
	if found, err := st.Get(ctx, InflightKey, &in); err != nil {
		s.log.Warn("cannot read the in-flight run; starting a new run", "pipeline", p.name, "err", err)
	} else if found && in.RunID != "" && cli.ValidRunID(in.RunID) {
		if in.Replay != "" {
			return "", "", fmt.Errorf("pipeline %q: replay %s did not finish, and a run now would send again the rows it may have loaded: "+
				"resume it first: %s", p.name, in.RunID, in.Replay)
		}
		if s.opts.Runner.Committed(ctx, p.file, st, in.RunID) {
			s.log.Warn("a run that did not record its end had committed its state (sync manifests, watermarks): nothing to resume, "+
				"starting a new run", "pipeline", p.name, "run_id", in.RunID, "holder", in.Holder)
			if err := st.Put(ctx, InflightKey, Inflight{}); err != nil {
				return "", "", fmt.Errorf("pipeline %q: clear the in-flight run %s: %w", p.name, in.RunID, err)
			}
			return pipeline.NewRunID(s.now()), why, nil
		}
		s.log.Warn("resuming a run that did not finish (its process stopped or crashed)", "pipeline", p.name,
			"run_id", in.RunID, "holder", in.Holder, "started_at", in.StartedAt)
		return in.RunID, why + "+resume", nil
	}
	return pipeline.NewRunID(s.now()), why, nil
}

// execute runs the pipeline once; the caller holds p.run, the lease (st is
// the store fenced by its generation) and a wg count, which execute gives
// back.
func (s *Server) execute(p *servedPipeline, st *state.Store, runID, why string) {
	ctx, cancel := context.WithCancel(s.runCtx)
	defer cancel()
	s.metrics.running.WithLabelValues(p.name).Set(1)
	log := s.log.With("pipeline", p.name, "run_id", runID)
	log.Info("run started", "trigger", why)

	stopRenewing := s.keepLease(ctx, st, log, cancel)
	if s.opts.RunStarted != nil {
		s.opts.RunStarted(ctx, p.name, runID)
	}
	start := s.now()
	rep, unfinished := s.runOnce(ctx, p, st, runID, strings.HasSuffix(why, "+resume"), log)
	stopRenewing()

	rec := s.record(context.WithoutCancel(ctx), st, runID, rep, unfinished, why, start, log)
	s.metrics.observe(p.name, rec)
	s.metrics.observeReport(p.name, rep)
	if err := st.ReleaseLease(context.WithoutCancel(ctx), s.opts.Holder); err != nil {
		log.Error("release lease", "err", err)
	}
	log.Info("run finished", "status", rec.Status, "read", rec.Counts.Read, "loaded", rec.Counts.Loaded,
		"filtered", rec.Counts.Filtered, "dead_lettered", rec.Counts.DeadLettered, "seconds", rec.FinishedAt.Sub(rec.StartedAt).Seconds())
	s.metrics.running.WithLabelValues(p.name).Set(0)
	p.setCurrent("")
	p.run.Unlock()
	if s.opts.RunDone != nil {
		s.opts.RunDone(p.name, rec)
	}
	s.wg.Done()
}

// keepLease renews the lease every TTL/3 until the returned function is
// called (which waits for the renewer to exit); losing the lease to
// another holder cancels the run.
func (s *Server) keepLease(ctx context.Context, st *state.Store, log *slog.Logger, cancel context.CancelFunc) (stop func()) {
	return st.KeepLease(ctx, s.opts.Holder, s.opts.LeaseTTL, func(err error) {
		log.Error("lease renewal failed", "err", err)
		if errors.Is(err, state.ErrLeaseLost) {
			cancel()
		}
	})
}

// record writes the run's report and run record through the fenced store
// and clears the in-flight document (unless the run was cancelled or left
// rows only a resume settles (unfinished): then the next run resumes it).
// State writes happen even after cancellation: ctx is not cancelled.
func (s *Server) record(ctx context.Context, st *state.Store, runID string, rep *pipeline.Report, unfinished bool, why string, start time.Time, log *slog.Logger) state.RunRecord {
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
		if err := st.CheckFence(ctx); err != nil {
			log.Error("write report", "err", err)
			rec.Errors = append(rec.Errors, err.Error())
		} else if err := s.opts.Runner.WriteReport(ctx, u, rep); err != nil {
			log.Error("write report", "err", err)
			rec.Errors = append(rec.Errors, err.Error())
		} else {
			rec.ReportURL = u
		}
	}
	if err := st.AppendRun(ctx, rec); err != nil {
		log.Error("record run", "err", err)
	}
	if rec.Status != pipeline.StatusCancelled && !unfinished {
		if err := st.Put(ctx, InflightKey, Inflight{}); err != nil {
			log.Error("clear the in-flight run", "err", err)
		}
	}
	return rec
}

// runOnce runs p once under runID; resumed says the id is that of a run a
// crash or shutdown left unfinished. The Runner does what `bulkflow run
// --resume` does around the engine: provenance in the sink ledgers, the
// run lock, RunOptions.Resumed (earlier attempts' dead letters are
// superseded). It always returns a report, and whether the run left rows
// only a resume settles (Runner.Unfinished).
func (s *Server) runOnce(ctx context.Context, p *servedPipeline, st *state.Store, runID string, resumed bool, log *slog.Logger) (*pipeline.Report, bool) {
	failed := func(status string, msgs ...string) *pipeline.Report {
		now := s.now().UTC()
		return &pipeline.Report{RunID: runID, Pipeline: p.name, File: p.file, Status: status,
			StartedAt: now, FinishedAt: now, Stages: []pipeline.StageReport{}, DeadLetters: []string{}, Errors: msgs}
	}
	diag := &capWriter{max: 16 << 10}
	plan, g, env, ok := s.opts.Runner.Prepare(ctx, p.file, io.MultiWriter(diag, s.stderr))
	if !ok {
		msgs := diag.lines()
		if len(msgs) == 0 {
			msgs = []string{"prepare failed"}
		}
		if ctx.Err() != nil {
			return failed(pipeline.StatusCancelled, msgs...), false // stopped (shutdown) while opening sources
		}
		return failed(pipeline.StatusFailed, msgs...), false
	}
	// The plan shares env: sinks opened by Run see this run id.
	env.RunID = runID
	// The run lock is the one of `bulkflow run`: an operator's `run
	// --resume` of this id cannot upload beside serve's.
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	opts, unlock, err := s.opts.Runner.Begin(ctx, g, env, st, resumed, cancelRun)
	if err != nil {
		plan.Close()
		return failed(pipeline.StatusFailed, err.Error()), false
	}
	defer unlock()
	rep, err := plan.Run(ctx, opts)
	if err != nil {
		log.Warn("run error", "err", err)
	}
	return rep, s.opts.Runner.Unfinished(g, rep)
}
