package pipeline

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// RunOptions configures Run. The zero value is usable except that
// DeadLetters must be set for any row to be dead-lettered.
type RunOptions struct {
	// DeadLetters opens dead-letter files. cmd/bulkflow passes the CSV file
	// sink. When nil, a run that must dead-letter a row fails.
	DeadLetters DeadLetterOpener
	// ChannelSize is how many batches each edge of the graph buffers
	// (backpressure beyond it). Default 4.
	ChannelSize int
	// Progress, if set, is called every ProgressInterval (default 1s) with
	// the progress so far, from one goroutine, and once more at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Now returns the current time (for reports); default time.Now.
	Now func() time.Time
	// State keeps incremental watermarks; required when a source stage has
	// incremental:. Watermarks are committed only when the run ends
	// succeeded or partial without rows of unknown outcome and without
	// retryable dead letters (with those too when the rows reach an
	// insert without sync: see IncrementalReport.Note).
	State StateStore
	// Syncers opens the Syncer of a sink stage that has sync:; required
	// when one does (cmd/bulkflow passes pipeline/sync/syncer).
	Syncers func(ctx context.Context, stage *StageSpec, in *Schema) (Syncer, error)
	// Resumed says the run id was used before (`run --resume`, serve's
	// recovery of a crashed run): an earlier attempt may have loaded rows
	// even if it left no dead-letter manifest (it was killed). The run then
	// counts as a later attempt, so that the dead letters of rows it
	// drains are never replayed if it stops part-way (see Manifest).
	Resumed bool
	// ResumeFlags are the flags a `bulkflow run FILE --resume RUN_ID` of
	// this run must repeat (e.g. --shard, --state), for the resume command
	// the report suggests (Report.NextSteps).
	ResumeFlags []string
	// StateLocation is where State lives (a directory or blob URL), for
	// the dead-letter manifest: a replay of the run's dead letters uses
	// the same state.
	StateLocation string
	// StateName is the name the run's state is kept under there (the
	// pipeline's, or a shard's), for the same manifest.
	StateName string
	// SettleUnknown, when set, is what a person found in the destination
	// of the rows whose outcome is unknown (RecoveryInspect:
	// result_mismatch, outcome_unknown), for all of them or by the remote
	// operation each failed in. A sink's failure of such a row becomes
	// CodeAssumedLoaded (a sync records the row as loaded) or
	// CodeAssumedAbsent (retryable); either way the row is dead-lettered,
	// so it stays accounted for. Rows whose job may still run
	// (RecoveryResume) are left as they are. `bulkflow run` sets it only
	// on a resume.
	SettleUnknown *Settlement
	// MaybeStored, when set, reports whether an earlier send of the row
	// read at origin may have written it (`bulkflow replay` of rows
	// dead-lettered outcome_unknown_retry). A transient failure of such a
	// row (RecoveryRetry) does not say it is not in the destination: it is
	// dead-lettered CodeOutcomeUnknownRetry instead.
	MaybeStored func(origin Origin) bool
}

// NewRunID returns a fresh run id: UTC time plus random hex, sortable.
func NewRunID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

type stageCounters struct {
	in, out, filtered, deadLettered, loaded atomic.Int64
}

type edge struct {
	ch        chan *Batch
	producers atomic.Int32
}

// done is called by each producer when it has sent its last batch; the last
// one closes the channel.
func (e *edge) done() {
	if e.producers.Add(-1) == 0 {
		close(e.ch)
	}
}

type runner struct {
	plan     *Plan
	opts     RunOptions
	userCtx  context.Context
	workCtx  context.Context
	cancel   context.CancelCauseFunc
	dl       *deadLetters
	edges    map[*planStage]*edge
	counters map[*planStage]*stageCounters
	sinks    map[*planStage]Sink
	cursors  map[*planStage]*cursor
	syncers  map[*planStage]Syncer
	// deletesHeld are the sync stages whose deletes were held, with why,
	// and deletesFailed the deletes that failed, by sync stage (syncDiff;
	// under mu).
	deletesHeld   map[string]string
	deletesFailed map[string]int64
	log           *slog.Logger

	read, fanned, filtered, loaded, deadLettered, lost atomic.Int64
	sourcesLeft                                        atomic.Int32 // sources still reading
	sourcesDone                                        map[*planStage]*atomic.Bool
	spans                                              map[*planStage]context.Context // each stage's context (its trace span)
	retryable                                          atomic.Int64                   // dead-lettered rows marked retryable
	unknown                                            atomic.Int64                   // dead-lettered rows whose outcome is unknown (recovery resume or inspect)

	// stopped says the user cancelled the run (Ctrl-C, SIGTERM) before
	// finish began. It is read once there, so that a signal landing
	// while the run writes its dead-letter manifest, commits its sync
	// manifests and watermarks and decides its status changes none of
	// them: every row is settled by then, and the run's outcome is one.
	stopped bool

	mu        sync.Mutex
	errs      []error
	sinkStats map[string]any
}

// fail records a run error and stops the run: every stage drains what it
// still receives into dead letters.
func (r *runner) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.cancel(err)
}

// drainCode is the dead-letter code for rows that were in flight when the
// run stopped.
func (r *runner) drainCode() string {
	if r.opts.Resumed {
		// An earlier attempt may have loaded the row: replaying it could
		// send it twice; only a resume (through the sink's ledger) knows.
		return CodeUnsettled
	}
	if r.userCtx.Err() != nil {
		return CodeCancelled
	}
	return CodeAborted
}

func (r *runner) counts() Counts {
	return Counts{
		Read: r.read.Load(), FannedOut: r.fanned.Load(), Filtered: r.filtered.Load(),
		Loaded: r.loaded.Load(), DeadLettered: r.deadLettered.Load(), Lost: r.lost.Load(),
	}
}

// settle accounts for drops at stage s (whose input schema is in).
func (r *runner) settle(s *planStage, in *Schema, drops []Drop) {
	if len(drops) == 0 {
		return
	}
	c := r.counters[s]
	var failed []Drop
	for i := range drops {
		d := &drops[i]
		if d.Err == nil {
			continue
		}
		var re *RowError
		if errors.As(d.Err, &re) {
			if re.Stage == "" {
				re.Stage = s.spec.Name
			}
			if re.Origin == (Origin{}) {
				re.Origin = d.Origin
			}
		}
		if re != nil && re.Retryable {
			r.retryable.Add(1)
		}
		if re != nil {
			if rec := RecoveryOf(re.Code); rec == RecoveryResume || rec == RecoveryInspect {
				r.unknown.Add(1)
			}
		}
		failed = append(failed, *d)
	}
	nf := int64(len(drops) - len(failed))
	c.filtered.Add(nf)
	r.filtered.Add(nf)
	if len(failed) == 0 {
		return
	}
	if err := r.dl.write(s.spec.Name, in, failed); err != nil {
		r.lost.Add(int64(len(failed)))
		r.fail(fmt.Errorf("stage %q: %d rows could not be dead-lettered: %w", s.spec.Name, len(failed), err))
		return
	}
	c.deadLettered.Add(int64(len(failed)))
	r.deadLettered.Add(int64(len(failed)))
}

// emit settles a produced batch's drops and forwards its rows to every
// consumer.
func (r *runner) emit(s *planStage, in *Schema, b *Batch) {
	r.settle(s, in, b.Drops())
	n := int64(b.Len())
	if n == 0 {
		return
	}
	r.counters[s].out.Add(n)
	fwd := b.withoutDrops()
	if k := len(s.consumers); k > 1 {
		r.fanned.Add(n * int64(k-1))
	} else {
		fwd.sole = true // its one consumer may release its rows
	}
	for _, c := range s.consumers {
		r.edges[c].ch <- fwd // consumers always drain their input, so this cannot block forever
	}
}

// drainBatch turns every row of b into a drop with the drain code.
func (r *runner) drainBatch(b *Batch, code string, cause error) *Batch {
	out := NewBatch(b.schema, 0)
	if cause == nil {
		cause = context.Cause(r.workCtx)
	}
	if cause == nil {
		cause = errors.New("run stopped")
	}
	for i := range b.rows {
		out.Drop(Drop{Row: b.rows[i], Origin: b.origins[i], Err: &RowError{Code: code, Retryable: RecoveryOf(code) == RecoveryRetry, Err: fmt.Errorf("not processed: %w", cause)}})
	}
	return out
}

// Run executes the plan: it opens the sinks, starts one goroutine per stage
// (plus transform workers and sink writers), all owned by one errgroup, and
// returns when every stage has finished. Cancelling ctx stops the sources;
// rows already read drain into dead letters with code "cancelled", sinks are
// closed (committing what they wrote), and the report is still returned.
//
// Run always returns a non-nil Report. The error is non-nil when the status
// is failed or cancelled; a run that dead-lettered rows returns status
// "partial" and a nil error.
func (p *Plan) Run(ctx context.Context, opts *RunOptions) (*Report, error) {
	if opts == nil {
		opts = &RunOptions{}
	}
	o := opts.withDefaults()
	env := p.env
	if env.RunID == "" {
		env.RunID = NewRunID(o.Now())
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{RunID: env.RunID, Pipeline: p.graph.Name, File: p.graph.File, FileHash: p.graph.FileHash,
		StartedAt: o.Now().UTC(), DeadLetters: []string{}, Errors: []string{}}

	ctx, endRun := startRunSpan(ctx, rep)
	defer func() { endRun(rep) }()
	workCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &runner{plan: p, opts: o, userCtx: ctx, workCtx: workCtx, cancel: cancel, log: log,
		edges: map[*planStage]*edge{}, counters: map[*planStage]*stageCounters{}, sinks: map[*planStage]Sink{},
		cursors: map[*planStage]*cursor{}, syncers: map[*planStage]Syncer{}}
	if err := r.openDeadLetters(ctx, env, rep); err != nil {
		return r.finish(rep, err)
	}

	r.sourcesDone, r.spans = map[*planStage]*atomic.Bool{}, map[*planStage]context.Context{}
	r.startStageSpans(ctx)
	defer r.endStages()
	r.connectStages()
	// Open every sink before any row moves: a sink that cannot open fails
	// the run with nothing read.
	if err := r.openSinks(ctx, env); err != nil {
		return r.finish(rep, err)
	}
	if err := r.openSyncState(ctx); err != nil {
		p.Close()
		r.closeSinks(ctx)
		r.closeSyncers()
		return r.finish(rep, err)
	}
	defer r.closeSyncers()

	log.Info("run started", "pipeline", rep.Pipeline, "stages", len(p.stages))
	r.runStages(o.Now())
	rep, err := r.finish(rep, nil)
	log.Info("run finished", "status", rep.Status, "read", rep.Counts.Read, "loaded", rep.Counts.Loaded,
		"filtered", rep.Counts.Filtered, "dead_lettered", rep.Counts.DeadLettered, "seconds", rep.Seconds)
	return rep, err
}

// withDefaults returns o with the defaults of its zero fields set.
func (o RunOptions) withDefaults() RunOptions {
	if o.ChannelSize <= 0 {
		o.ChannelSize = 4
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// openDeadLetters readies the run's dead-letter folder. A resumed run id
// supersedes its earlier attempts' dead letters before any row moves.
// On error the plan is closed.
func (r *runner) openDeadLetters(ctx context.Context, env *Env, rep *Report) error {
	dlLoc := r.plan.graph.DeadLetter
	if dlLoc == "" {
		dlLoc = "dead-letter/"
	}
	prefix, err := blobio.Parse(env.BaseDir, dlLoc)
	if err != nil {
		return fmt.Errorf("dead_letter: %w", err)
	}
	r.dl = &deadLetters{ctx: context.WithoutCancel(ctx), open: r.opts.DeadLetters, prefix: prefix, runID: env.RunID, files: map[string]*dlFile{}}
	if err := r.dl.begin(&Manifest{RunID: rep.RunID, Pipeline: rep.Pipeline, File: rep.File, FileHash: rep.FileHash, State: r.opts.StateLocation,
		StateName: r.opts.StateName}, r.opts.Resumed); err != nil {
		r.plan.Close()
		return err
	}
	return nil
}

// connectStages gives every stage its counters and every stage with
// inputs the channel its producers send to.
func (r *runner) connectStages() {
	for _, s := range r.plan.stages {
		r.counters[s] = &stageCounters{}
		if s.spec.Kind == KindSource {
			r.sourcesDone[s] = &atomic.Bool{}
			r.sourcesLeft.Add(1)
		}
		if s.spec.Kind != KindSource {
			e := &edge{ch: make(chan *Batch, r.opts.ChannelSize)}
			e.producers.Store(int32(len(s.spec.Inputs)))
			r.edges[s] = e
		}
	}
}

// openSinks opens every sink stage's sink. When one cannot open, it closes
// the plan and the sinks opened so far and returns a *ConfigError at the
// stage.
func (r *runner) openSinks(ctx context.Context, env *Env) error {
	p := r.plan
	for _, s := range p.stages {
		if s.spec.Kind != KindSink {
			continue
		}
		sk, err := p.reg.OpenSink(r.stageCtx(ctx, s), r.stageEnv(env, s), s.spec.Type, s.spec.Options, s.in)
		if err != nil {
			p.Close()
			r.closeSinks(ctx)
			return &ConfigError{Pos: s.spec.Pos, Msg: fmt.Sprintf("stage %q: open sink %q: %v", s.spec.Name, s.spec.Type, err)}
		}
		r.sinks[s] = sk
	}
	return nil
}

// closeSinks closes the sinks opened so far of a run that stops before
// any row moves.
func (r *runner) closeSinks(ctx context.Context) {
	for _, opened := range r.sinks {
		opened.Close(context.WithoutCancel(ctx))
	}
}

// runStages runs every stage in its own goroutine and, with
// RunOptions.Progress, reports progress every ProgressInterval and once at
// the end; it returns when every stage has ended.
func (r *runner) runStages(start time.Time) {
	var stages errgroup.Group
	for _, s := range r.plan.stages {
		stages.Go(func() error {
			defer r.endStage(s)
			switch s.spec.Kind {
			case KindSource:
				r.runSource(s)
			case KindTransform:
				r.runTransform(s)
			case KindSink:
				r.runSink(s)
			}
			return nil
		})
	}
	o := r.opts
	var progress errgroup.Group
	stagesDone := make(chan struct{})
	if o.Progress != nil {
		progress.Go(func() error {
			t := time.NewTicker(o.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-stagesDone:
					return nil
				case <-t.C:
					o.Progress(r.progress(start))
				}
			}
		})
	}
	stages.Wait()
	close(stagesDone)
	progress.Wait()
	if o.Progress != nil {
		o.Progress(r.progress(start))
	}
}

// finish closes dead letters, writes the manifest, checks the accounting and
// fills in the report.
func (r *runner) finish(rep *Report, setupErr error) (*Report, error) {
	r.stopped = r.userCtx.Err() != nil
	if setupErr != nil {
		r.errs = append(r.errs, setupErr)
	}
	if r.dl != nil {
		files, err := r.dl.close()
		if err != nil {
			r.errs = append(r.errs, err)
		}
		for _, f := range files {
			rep.DeadLetters = append(rep.DeadLetters, f.URL)
		}
		if len(files) > 0 {
			rep.DeadLetterDir = blobio.Join(r.dl.prefix, r.dl.runID).String() + "/"
			rep.ErrorGroups = r.dl.tally.groups()
			rep.NextSteps = r.dl.tally.nextSteps(rep.File, rep.RunID, files, r.opts.ResumeFlags)
			if slices.ContainsFunc(rep.ErrorGroups, func(g ErrorGroup) bool {
				return g.Recovery == RecoveryResume.String() || g.Recovery == RecoveryInspect.String()
			}) {
				rep.ResumeCommand = ShellCommand(append([]string{"bulkflow", "run", cmp.Or(rep.File, "PIPELINE_FILE"), "--resume", rep.RunID}, r.opts.ResumeFlags...)...)
			}
		}
		c := r.counts()
		if !c.Balanced() {
			r.errs = append(r.errs, fmt.Errorf("%w: read %d + fan-out copies %d != loaded %d + filtered %d + dead-lettered %d + lost %d",
				ErrAccounting, c.Read, c.FannedOut, c.Loaded, c.Filtered, c.DeadLettered, c.Lost))
		}
		rep.Counts = c
		rep.Status = r.status()
		if len(files) > 0 || c.Read > 0 || r.dl.resumed() {
			m := &Manifest{RunID: rep.RunID, Pipeline: rep.Pipeline, File: rep.File, FileHash: rep.FileHash,
				Status: rep.Status, Counts: c, Files: files, FinishedAt: r.opts.Now().UTC(), State: r.opts.StateLocation,
				StateName: r.opts.StateName}
			if m.Files == nil {
				m.Files = []DeadLetterFile{}
			}
			if len(files) > 0 || r.dl.resumed() {
				loc, err := r.dl.writeManifest(m)
				if err != nil {
					r.errs = append(r.errs, err)
				}
				rep.Manifest = loc
			}
		}
	}
	for _, s := range r.plan.stages {
		c := r.counters[s]
		if c == nil {
			c = &stageCounters{}
		}
		rep.Stages = append(rep.Stages, StageReport{Name: s.spec.Name, Kind: s.spec.Kind, Type: s.spec.Type,
			In: c.in.Load(), Out: c.out.Load(), Filtered: c.filtered.Load(), DeadLettered: c.deadLettered.Load(), Loaded: c.loaded.Load()})
	}
	r.finishSync(rep)
	rep.Status = r.status()
	rep.Sinks = r.sinkStats
	for _, e := range r.errs {
		rep.Errors = append(rep.Errors, e.Error())
	}
	rep.FinishedAt = r.opts.Now().UTC()
	rep.Seconds = rep.FinishedAt.Sub(rep.StartedAt).Seconds()
	switch rep.Status {
	case StatusFailed:
		return rep, errors.Join(r.errs...)
	case StatusCancelled:
		return rep, fmt.Errorf("run cancelled: %w", context.Cause(r.userCtx))
	}
	return rep, nil
}

func (r *runner) status() string {
	switch {
	case len(r.errs) > 0:
		return StatusFailed
	case r.stopped:
		return StatusCancelled
	case r.deadLettered.Load() > 0:
		return StatusPartial
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.deletesFailed) > 0 {
		return StatusPartial // records a mirror should have deleted are still there
	}
	return StatusSucceeded
}

func (r *runner) closeOutputs(s *planStage) {
	for _, c := range s.consumers {
		r.edges[c].done()
	}
}

func (r *runner) runSource(s *planStage) {
	defer func() {
		r.sourcesDone[s].Store(true)
		r.sourcesLeft.Add(-1)
	}()
	defer r.closeOutputs(s)
	defer func() {
		if err := s.source.Close(); err != nil {
			r.fail(fmt.Errorf("stage %q: close source: %w", s.spec.Name, err))
		}
	}()
	c := r.counters[s]
	cur := r.cursors[s]
	// A resumed attempt that fails (a refused re-cut, a sink error) reads
	// its input to the end all the same: an earlier attempt may have
	// loaded any of its rows, so each one is dead-lettered unsettled (the
	// stages downstream drain them) and the report accounts for the whole
	// input, however far the source had got when the failure came. Only
	// the user (Ctrl-C, SIGTERM) stops such a source early.
	base, running := r.workCtx, r.workCtx.Err
	if r.opts.Resumed {
		base, running = r.userCtx, r.userCtx.Err
	}
	ctx := r.stageCtx(base, s)
	for running() == nil {
		b, err := s.source.Read(ctx)
		if b != nil {
			n := int64(b.Settled())
			r.read.Add(n)
			c.in.Add(n)
			if cur != nil {
				b = cur.filter(b)
			}
			r.emit(s, s.out, b)
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if r.workCtx.Err() == nil {
				r.fail(fmt.Errorf("stage %q: read: %w", s.spec.Name, err))
			}
			return
		}
	}
}

// apply runs the transform on one batch, or drains it when the run is
// stopping. It never returns nil.
func (r *runner) apply(s *planStage, b *Batch) *Batch {
	r.counters[s].in.Add(int64(b.Len()))
	if r.workCtx.Err() != nil {
		return r.drainBatch(b, r.drainCode(), nil)
	}
	out, err := s.transform.Apply(r.workCtx, b)
	if err != nil {
		if r.workCtx.Err() == nil {
			r.fail(fmt.Errorf("stage %q: %w", s.spec.Name, err))
		}
		return r.drainBatch(b, r.drainCode(), err)
	}
	if out == nil || out.Settled() != b.Len() {
		got := 0
		if out != nil {
			got = out.Settled()
		}
		err := fmt.Errorf("stage %q: transform %q returned %d rows and drops for %d input rows (a plugin bug)", s.spec.Name, s.spec.Type, got, b.Len())
		r.fail(err)
		return r.drainBatch(b, CodeAborted, err)
	}
	return out
}

func (r *runner) runTransform(s *planStage) {
	defer r.closeOutputs(s)
	in := r.edges[s].ch
	workers := s.spec.Workers
	releases := releasesRows(s.transform)
	// done releases b's rows once the batch made of them has been emitted
	// (its drops, which may hold b's rows, settled).
	done := func(b *Batch) {
		if releases && b.sole {
			b.release()
		}
	}
	if workers <= 1 {
		for b := range in {
			r.emit(s, s.in, r.apply(s, b))
			done(b)
		}
		return
	}
	var g errgroup.Group
	if s.spec.Unordered {
		for range workers {
			g.Go(func() error {
				for b := range in {
					r.emit(s, s.in, r.apply(s, b))
					done(b)
				}
				return nil
			})
		}
		g.Wait()
		return
	}
	// Ordered: a dispatcher hands batches to workers and queues one result
	// slot per batch in input order; this goroutine emits the slots in order.
	type job struct {
		b   *Batch
		res chan *Batch
	}
	jobs := make(chan job, workers)
	slots := make(chan job, 2*workers)
	g.Go(func() error {
		defer close(jobs)
		defer close(slots)
		for b := range in {
			j := job{b, make(chan *Batch, 1)}
			slots <- j
			jobs <- j
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for j := range jobs {
				j.res <- r.apply(s, j.b)
			}
			return nil
		})
	}
	for j := range slots {
		r.emit(s, s.in, <-j.res)
		done(j.b)
	}
	g.Wait()
}

func (r *runner) runSink(s *planStage) {
	sink := r.sinks[s]
	policy := BatchPolicy{}
	if bp, ok := sink.(Batcher); ok {
		policy = bp.BatchPolicy()
	}
	if policy.MaxInFlight <= 0 {
		policy.MaxInFlight = 1
	}
	var writers errgroup.Group
	writers.SetLimit(policy.MaxInFlight)
	sy := r.syncers[s]
	var seq int64                  // batches cut for the sink so far (see BatchSeq)
	cl := newCommitLog(sink, s.in) // rows loaded but not committed until Close
	defer cl.close()
	feed := &sinkFeed{in: s.in, limit: policy.MaxRows, withOps: sy != nil, write: func(b *Batch, ops []SyncOp) {
		ctx := WithBatchSeq(r.stageCtx(r.workCtx, s), seq)
		seq++
		writers.Go(func() error { r.write(ctx, s, sink, cl, b, sy, ops); return nil })
	}}
	if feed.limit <= 0 {
		feed.limit = syncBatchRows // only sync stages get here without MaxRows
	}
	syReleases := sy != nil && releasesRows(sy)
	for b := range r.edges[s].ch {
		r.counters[s].in.Add(int64(b.Len()))
		switch {
		case sy != nil:
			r.spool(s, sy, b)
			if syReleases && b.sole {
				b.release()
			}
		case policy.MaxRows <= 0:
			feed.write(b, nil)
		default:
			feed.addBatch(b)
		}
	}
	if sy != nil {
		r.syncDiff(s, sink, sy, feed.add, feed.flush)
	}
	feed.flush()
	writers.Wait()
	r.closeSink(s, sink, cl)
}

// sinkFeed joins rows into batches of up to limit rows for a sink and
// hands each full batch (with the rows' sync ops when withOps) to write.
type sinkFeed struct {
	in         *Schema
	limit      int
	withOps    bool
	write      func(*Batch, []SyncOp)
	pending    *Batch
	pendingOps []SyncOp
}

// add queues one row (a sync stage's, with its op).
func (f *sinkFeed) add(row Row, origin Origin, op SyncOp) {
	if f.pending == nil {
		f.pending = NewBatch(f.in, f.limit)
	}
	f.pending.Append(row, origin)
	if f.withOps {
		f.pendingOps = append(f.pendingOps, op)
	}
	if f.pending.Len() >= f.limit {
		f.write(f.pending, f.pendingOps)
		f.pending, f.pendingOps = nil, nil
	}
}

// addBatch queues the rows of b, whole runs of rows at a time (no sync
// ops to keep here).
func (f *sinkFeed) addBatch(b *Batch) {
	for i := 0; i < b.Len(); {
		if f.pending == nil {
			f.pending = NewBatch(f.in, f.limit)
		}
		n := min(f.limit-f.pending.Len(), b.Len()-i)
		f.pending.rows = append(f.pending.rows, b.rows[i:i+n]...)
		f.pending.origins = append(f.pending.origins, b.origins[i:i+n]...)
		i += n
		if f.pending.Len() >= f.limit {
			f.write(f.pending, nil)
			f.pending = nil
		}
	}
}

// flush writes the rows queued so far.
func (f *sinkFeed) flush() {
	if f.pending != nil && f.pending.Len() > 0 {
		f.write(f.pending, f.pendingOps)
	}
	f.pending, f.pendingOps = nil, nil
}

// closeSink closes the stage's sink once every Write has returned, with a
// context that survives cancellation: a sink commits what it has loaded,
// so the accounting stays true. Rows a failed Close did not commit are
// dead-lettered. The sink's stats go to the report.
func (r *runner) closeSink(s *planStage, sink Sink, cl *commitLog) {
	if err := sink.Close(context.WithoutCancel(r.userCtx)); err != nil {
		if n := cl.total(); n > 0 {
			r.fail(fmt.Errorf("stage %q: close sink: %w (the %d rows it took were not committed: they are dead-lettered sink_failed)", s.spec.Name, err, n))
		} else {
			r.fail(fmt.Errorf("stage %q: close sink: %w", s.spec.Name, err))
		}
		r.uncommit(s, cl, err)
	}
	if sr, ok := sink.(StatsReporter); ok {
		r.mu.Lock()
		if r.sinkStats == nil {
			r.sinkStats = map[string]any{}
		}
		r.sinkStats[s.spec.Name] = sr.Stats()
		r.mu.Unlock()
	}
}

// write hands one batch to the sink and accounts for every row. With a
// syncer, it tells the syncer each row's outcome (ops[i] is row i's op).
// ctx is the run's work context carrying the batch's sequence number.
func (r *runner) write(ctx context.Context, s *planStage, sink Sink, cl *commitLog, b *Batch, sy Syncer, ops []SyncOp) {
	// Every path below is done with b's rows when it returns (drops are
	// settled before), unless the commit log kept the batch in memory.
	kept := false
	if b.sole && releasesRows(sink) {
		defer func() {
			if !kept {
				b.release()
			}
		}()
	}
	c := r.counters[s]
	if r.workCtx.Err() != nil {
		r.settle(s, s.in, r.drainBatch(b, r.drainCode(), nil).Drops())
		return
	}
	var ids []string
	var err error
	if iw, ok := sink.(IDWriter); ok && sy != nil {
		ids, err = iw.WriteIDs(ctx, b)
	} else {
		err = sink.Write(ctx, b)
	}
	if r.opts.SettleUnknown != nil {
		err = settleUnknown(err, r.opts.SettleUnknown, s.spec.Name, b.origins)
	}
	if r.opts.MaybeStored != nil {
		err = keepMaybeStored(err, r.opts.MaybeStored, b.origins)
	}
	if sy != nil {
		defer r.syncOutcomes(sy, b, ops, ids, err)
	}
	var rowErrs *RowErrors
	switch {
	case err == nil:
		c.loaded.Add(int64(b.Len()))
		r.loaded.Add(int64(b.Len()))
		kept = cl.add(b, nil)
	case errors.As(err, &rowErrs):
		seen := make(map[int]bool, len(rowErrs.Failures))
		var drops []Drop
		for _, f := range rowErrs.Failures {
			if f.Index < 0 || f.Index >= b.Len() || seen[f.Index] {
				r.fail(fmt.Errorf("stage %q: sink %q reported row %d of a %d-row batch (a plugin bug)", s.spec.Name, s.spec.Type, f.Index, b.Len()))
				continue
			}
			seen[f.Index] = true
			e := f.Err
			if e == nil {
				e = errors.New("rejected by the sink")
			}
			drops = append(drops, Drop{Row: b.rows[f.Index], Origin: b.origins[f.Index], Err: e})
		}
		n := int64(b.Len() - len(seen))
		c.loaded.Add(n)
		r.loaded.Add(n)
		kept = cl.add(b, seen)
		r.settle(s, s.in, drops)
	default:
		code := CodeSinkFailed
		if r.opts.Resumed {
			code = CodeUnsettled
		}
		if r.workCtx.Err() != nil {
			code = r.drainCode()
		} else {
			r.fail(fmt.Errorf("stage %q: write: %w", s.spec.Name, err))
		}
		r.settle(s, s.in, r.drainBatch(b, code, err).Drops())
	}
}
