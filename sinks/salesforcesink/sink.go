package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// Row error codes the sink reports besides Salesforce's own sf__Error
// status codes (REQUIRED_FIELD_MISSING, UNABLE_TO_LOCK_ROW, ...) and job
// error codes (InvalidBatch, ClientInputError, ...).
const (
	// CodeUnprocessed: Salesforce did not process the row (its job failed or
	// was aborted part-way). Retryable.
	CodeUnprocessed = "UNPROCESSED"
	// CodeJobIncomplete: the row's job was created and its data uploaded,
	// but its outcome is not known (it did not finish within poll_timeout,
	// its state or results could not be read, the API budget stopped the
	// polling). It was not declared failed and may still load the row: not
	// retryable; `bulkflow run FILE --resume RUN_ID` settles it
	// (pipeline.RecoveryResume). The error names the job id (also in _ref).
	CodeJobIncomplete = pipeline.CodeJobIncomplete
	// CodeResultMismatch: the job's results do not list the row exactly
	// once (no result row matched it, or the results list rows twice or
	// rows that were not uploaded), so it is not known to be loaded. Not
	// retryable (pipeline.RecoveryInspect).
	CodeResultMismatch = pipeline.CodeResultMismatch
	// CodeCancelled: the run was cancelled before the row was loaded.
	CodeCancelled = pipeline.CodeCancelled
	// CodeAPIError: the job could not be created or its data uploaded after
	// the client's retries (5xx, request limits, network). Retryable.
	CodeAPIError = "api_error"
	// CodeInvalidValue: a value cannot be written as Bulk API CSV (NaN).
	CodeInvalidValue = "invalid_value"
	// CodeRowTooLarge: one encoded row exceeds max_job_bytes.
	CodeRowTooLarge = "row_too_large"
	// CodeAPIBudget: the daily API request allowance fell below
	// min_api_remaining, so no job was created for the row. Retryable:
	// resume the run later.
	CodeAPIBudget = "api_budget"
	// CodeLockRow is Salesforce's lock contention code; such rows are
	// re-driven up to lock_retries times.
	CodeLockRow = "UNABLE_TO_LOCK_ROW"
)

// abortTimeout bounds the clean-up calls made after cancellation.
const abortTimeout = 30 * time.Second

// testClientOptions lets tests shorten the client's retry backoff.
var testClientOptions func(*salesforce.Options)

// JobStat describes one Bulk API job the sink ran.
type JobStat struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Operation string `json:"operation"`
	Attempt   int    `json:"attempt"` // 0 for a first load, n for the n'th lock retry
	Rows      int    `json:"rows"`    // rows uploaded
	Bytes     int64  `json:"bytes"`   // CSV bytes uploaded
	State     string `json:"state"`   // last known job state
	Processed int64  `json:"processed"`
	// Succeeded, Failed and Unprocessed count the rows of the job's three
	// result files.
	Succeeded   int64         `json:"succeeded"`
	Failed      int64         `json:"failed"`
	Unprocessed int64         `json:"unprocessed"`
	Duration    time.Duration `json:"-"`
	Seconds     float64       `json:"duration_seconds"` // Duration in seconds, for reports
	Error       string        `json:"error,omitempty"`
	// Resumed is set for a job an earlier process of the same run started
	// (found in the ledger).
	Resumed bool `json:"resumed,omitempty"`
	// API is "rest" for a REST collections request (ID is its ledger
	// reference, State RestComplete or Failed); empty for Bulk jobs.
	API string `json:"api,omitempty"`
}

// Sink loads rows into one Salesforce object with Bulk API 2.0 ingest jobs.
// Write may be called concurrently (BatchPolicy().MaxInFlight at once).
type Sink struct {
	opts    *Options
	op      salesforce.Operation
	schema  *pipeline.Schema
	client  *salesforce.Client
	inst    *Instance // opened by an InstanceOpener (instance_url "emulator:"), else nil
	log     *slog.Logger
	enc     *encoder
	delim   salesforce.ColumnDelimiter
	spool   string
	idCol   int // column identifying a record (Id or the external id), or -1
	archive *blobio.Location
	runID   string

	ledger   *ledger // nil when the ledger is off
	apiCalls atomic.Int64
	usage    usageSeen    // freshest Sforce-Limit-Info
	active   atomic.Int64 // chunks being loaded (each may still need close, polls, results)
	// limitHit is set once Salesforce kept refusing requests with
	// REQUEST_LIMIT_EXCEEDED after retries: no further request is made.
	limitHit atomic.Bool
	// limitRemaining is DailyApiRequests.Remaining read at open, when
	// apiCalls was limitCalls (min_api_remaining only).
	limitRemaining, limitCalls int64
	limitKnown                 bool

	mu         sync.Mutex
	jobs       []JobStat
	completed  int   // jobs that reached JobComplete
	fatal      error // set once a failure that every job would hit was seen
	closed     bool
	codes      map[string]int64 // failed rows by error code
	resumed    int              // chunks found in the ledger of an earlier process
	budgetOut  bool             // min_api_remaining reached
	cancelSeen bool
	deletes    *Sink // delete jobs for sync delete_missing; see deleter

	chunkHint atomic.Int64 // a little above the last in-memory chunk's size
	// nextSeq numbers the batches of Writes whose context carries no
	// pipeline.BatchSeq (Writes called outside the engine), in call order.
	nextSeq atomic.Int64
	// mismatch is set when a resume found a chunk that differs from the
	// earlier attempt's (Close returns it, so the run fails).
	mismatch *ResumeMismatchError
	// jobsCreated counts jobs created (under mu); outage is set while none
	// was and requests failed (see OutageError).
	jobsCreated int
	outage      *OutageError
	// restDescribe is the object's describe for REST deletes (rest.go).
	restDescribe restDescribe
}

// Interface guards.
var (
	_ pipeline.StatsReporter = (*Sink)(nil)
	_ pipeline.Sink          = (*Sink)(nil)
	_ pipeline.Batcher       = (*Sink)(nil)
	_ pipeline.Validator     = (*Options)(nil)
)

func init() {
	pipeline.DefaultRegistry().RegisterSink("salesforce", pipeline.Spec{
		Summary: "Load rows into a Salesforce object with Bulk API 2.0 ingest jobs",
		Example: "object: Account\noperation: upsert\nexternal_id_field: External_Id__c\n" +
			"instance_url: \"emulator:\"\nmax_job_rows: 10000\nconcurrency: 4\n",
		NewOptions: func() any { return NewOptions() },
	}, pipeline.TypedSink("salesforce sink", Open))
}

// Open validates opts, authenticates (or starts the embedded emulator for
// instance_url "emulator:") and returns a sink for rows of schema in.
func Open(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) (*Sink, error) {
	if env == nil {
		env = &pipeline.Env{}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{opts: opts, op: opts.operation(), schema: in, log: env.Logger, delim: opts.delimiter(),
		enc: newEncoder(in, opts.delimiter(), opts.lineEnding()), idCol: -1, runID: env.RunID, codes: map[string]int64{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", "salesforce", "object", opts.Object)
	if s.runID == "" {
		s.runID = pipeline.NewRunID(time.Now())
	}
	if err := s.checkColumns(); err != nil {
		return nil, err
	}
	if opts.ArchiveResults != "" {
		loc, err := blobio.Parse(env.BaseDir, opts.ArchiveResults)
		if err != nil {
			return nil, fmt.Errorf("archive_results: %w", err)
		}
		s.archive = &loc
	}
	copts := &salesforce.Options{APIVersion: opts.APIVersion, Logger: env.Logger,
		ResponseCompression: salesforce.Compression(opts.ResponseCompression), RepeatableCreate: true}
	var auth *salesforce.Auth
	var err error
	if _, _, ok := instanceOpener(opts.InstanceURL); ok || opts.InstanceURL == EmulatorURL {
		s.inst, err = openInstance(ctx, opts.InstanceURL)
		if err == nil {
			copts.HTTPClient = s.inst.HTTPClient
			auth, err = salesforce.StaticToken(s.inst.URL, s.inst.AccessToken)
			s.log.Info("salesforce sink: opened an instance for instance_url; nothing reaches Salesforce", "instance_url", opts.InstanceURL, "url", s.inst.URL)
		}
	} else {
		auth, err = newAuth(ctx, env, opts)
	}
	if err == nil {
		if testClientOptions != nil {
			testClientOptions(copts)
		}
		copts.HTTPClient = countingClient(copts.HTTPClient, &s.apiCalls, &s.usage)
		s.client, err = salesforce.NewClient(ctx, auth, copts)
	}
	if err != nil {
		s.closeEmulator()
		return nil, fmt.Errorf("salesforce sink: connect: %w", err)
	}
	if where := opts.ledgerLocation(); where != "" {
		if s.ledger, err = openLedger(ctx, env.BaseDir, where, env.Pipeline, s.runID); err != nil {
			s.closeEmulator()
			return nil, fmt.Errorf("salesforce sink: ledger: %w", err)
		}
		fp := s.fingerprint()
		if prev, ok := s.ledger.last(runKey); ok && prev.Options != fp {
			s.closeEmulator()
			s.closeLedger()
			return nil, fmt.Errorf("salesforce sink: ledger %s: run %s was started with other sink options or input fields "+
				"(%s, now %s); resuming would cut the rows into other jobs and could load rows twice. "+
				"Resume with the original pipeline file, or start a new run", s.ledger.where, s.runID, prev.Options, fp)
		}
		if s.ledger.resuming() {
			s.log.Info("salesforce sink: resuming: the ledger holds chunks of an earlier attempt of this run; "+
				"they are matched by content and never uploaded twice", "run", s.runID, "ledger", s.ledger.where,
				"chunks", s.ledger.chunks())
		}
		if err := s.ledger.append(ctx, ledgerRecord{Chunk: runKey, State: "opened", Options: fp, Provenance: opts.Provenance}); err != nil {
			s.closeEmulator()
			s.closeLedger()
			return nil, fmt.Errorf("salesforce sink: %w", err)
		}
		s.spool = s.ledger.spoolDir()
	}
	if s.spool == "" {
		if s.spool, err = os.MkdirTemp("", "bulkflow-sf-"); err != nil {
			s.closeEmulator()
			s.closeLedger()
			return nil, fmt.Errorf("salesforce sink: spool directory: %w", err)
		}
	}
	if opts.MinAPIRemaining > 0 {
		if lim, lerr := s.client.Limits(ctx); lerr != nil {
			s.log.Warn("salesforce sink: min_api_remaining: could not read /limits; relying on Sforce-Limit-Info", "err", lerr)
		} else if l, ok := lim["DailyApiRequests"]; ok {
			s.limitRemaining, s.limitCalls, s.limitKnown = l.Remaining, s.apiCalls.Load(), true
		}
	}
	return s, nil
}

// fingerprint sums up what decides how rows are cut into chunks and
// encoded: a resume must use the same.
func (s *Sink) fingerprint() string {
	o := s.opts
	fp := fmt.Sprintf("object=%s op=%s ext=%s max_job_rows=%d max_job_bytes=%d delim=%s eol=%s fields=%s",
		o.Object, s.op, o.ExternalIDField, o.MaxJobRows, o.MaxJobBytes, s.delim, o.lineEnding(), strings.Join(s.schema.Names(), ","))
	if a := o.api(); a != APIBulk {
		// The path decides how rows are cut (rest.go); ledgers of Bulk
		// runs keep their fingerprint.
		fp += fmt.Sprintf(" api=%s rest_max_rows=%d", a, o.restMaxRows())
	}
	return fp
}

func (s *Sink) closeLedger() {
	if s.ledger != nil {
		if err := s.ledger.close(); err != nil {
			s.log.Error("salesforce sink: ledger: close", "err", err)
		}
	}
}

// gate returns the resume gate, or nil when this is not a resumed run.
func (s *Sink) gate() *resumeGate {
	if s.ledger == nil {
		return nil
	}
	return s.ledger.gate
}

// resumeHint is how users continue this run.
func (s *Sink) resumeHint() string {
	file := "FILE"
	if p := s.opts.Provenance; p != nil && p.PipelineFile != "" {
		file = p.PipelineFile
	}
	return "bulkflow run " + file + " --resume " + s.runID
}

// checkColumns applies the I/O-free header rules of the operation.
func (s *Sink) checkColumns() error {
	names := s.schema.Names()
	find := func(name string) int {
		for i, n := range names {
			if strings.EqualFold(n, name) {
				return i
			}
		}
		return -1
	}
	switch s.op {
	case salesforce.OpDelete, salesforce.OpHardDelete:
		if len(names) != 1 || !strings.EqualFold(names[0], "Id") {
			return fmt.Errorf("operation %s needs exactly one input field, Id (got %s)", s.op, strings.Join(names, ", "))
		}
		s.idCol = 0
	case salesforce.OpUpdate:
		if s.idCol = find("Id"); s.idCol < 0 {
			return fmt.Errorf("operation update needs an Id field (got %s)", strings.Join(names, ", "))
		}
	case salesforce.OpUpsert:
		if s.idCol = find(s.opts.ExternalIDField); s.idCol < 0 && !strings.EqualFold(s.opts.ExternalIDField, "Id") {
			return fmt.Errorf("operation upsert needs the external id field %s among the input fields (got %s)",
				s.opts.ExternalIDField, strings.Join(names, ", "))
		}
	}
	return nil
}

// BatchPolicy asks for batches of max_job_rows rows and concurrency Writes
// in flight, so memory is bounded by max_job_rows × concurrency rows.
func (s *Sink) BatchPolicy() pipeline.BatchPolicy {
	return pipeline.BatchPolicy{MaxRows: s.batchRows(), MaxInFlight: s.opts.Concurrency}
}

// Jobs returns a snapshot of the jobs run so far, in the order they
// finished.
func (s *Sink) Jobs() []JobStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]JobStat(nil), s.jobs...)
	for i := range out {
		out[i].Seconds = out[i].Duration.Seconds()
	}
	return out
}

// Stats returns what the run report shows for this sink (see
// pipeline.StatsReporter): its jobs, and the API usage last seen in
// Sforce-Limit-Info.
func (s *Sink) Stats() any {
	s.mu.Lock()
	codes := make(map[string]int64, len(s.codes))
	for k, v := range s.codes {
		codes[k] = v
	}
	resumed := s.resumed
	s.mu.Unlock()
	st := struct {
		Jobs          []JobStat        `json:"jobs"`
		APIUsed       int64            `json:"api_used,omitempty"`
		APIMax        int64            `json:"api_max,omitempty"`
		APICalls      int64            `json:"api_calls"`
		ErrorsByCode  map[string]int64 `json:"errors_by_code"`
		RunID         string           `json:"run_id"`
		Ledger        string           `json:"ledger,omitempty"`
		ResumedChunks int              `json:"resumed_chunks,omitempty"`
		// ErrorsByRecovery counts the failed rows by pipeline.RecoveryOf
		// their code: "retry" (replay may send them), "resume" (only
		// `bulkflow run --resume` settles them), "inspect", "fix".
		ErrorsByRecovery map[string]int64 `json:"errors_by_recovery,omitempty"`
	}{Jobs: s.Jobs(), APICalls: s.apiCalls.Load(), ErrorsByCode: codes, RunID: s.runID, ResumedChunks: resumed}
	for code, n := range codes {
		if st.ErrorsByRecovery == nil {
			st.ErrorsByRecovery = map[string]int64{}
		}
		st.ErrorsByRecovery[pipeline.RecoveryOf(code).String()] += n
	}
	if s.ledger != nil {
		st.Ledger = s.ledger.where
	}
	if s.client != nil {
		if u, ok := s.client.APIUsage(); ok {
			st.APIUsed, st.APIMax = u.Used, u.Max
		}
	}
	return st
}

// Close deletes the finished jobs when delete_jobs is set, removes the
// spool directory and stops the embedded emulator. It is idempotent.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	jobs := append([]JobStat(nil), s.jobs...)
	s.mu.Unlock()
	var errs []error
	if s.opts.DeleteJobs {
		for _, j := range jobs {
			if !salesforce.JobState(j.State).Terminal() {
				continue // still running (job_incomplete): keep it for resume
			}
			if err := s.client.DeleteJob(ctx, j.ID); err != nil && !errors.Is(err, salesforce.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	if s.ledger == nil || s.ledger.dir == "" {
		if err := os.RemoveAll(s.spool); err != nil {
			errs = append(errs, fmt.Errorf("remove spool: %w", err))
		}
	} else {
		os.Remove(s.spool) // only when empty: unfinished chunks keep their files
		s.mu.Lock()
		complete := s.fatal == nil && !s.cancelSeen
		s.mu.Unlock()
		if un := s.ledger.unseen(); len(un) > 0 && complete {
			jobs := make([]string, 0, len(un))
			for _, r := range un {
				jobs = append(jobs, r.Job)
			}
			s.log.Error("salesforce sink: resume: chunks of the earlier attempt were not produced again (did the input change?); "+
				"their jobs were not re-checked and their rows may be loaded twice if the input moved to other chunks",
				"chunks", len(un), "jobs", strings.Join(jobs, ","))
		}
	}
	s.closeLedger()
	s.mu.Lock()
	// Rows a resume settles: never sent for a transient reason, or in a
	// job whose outcome is unknown (not rows to fix, nor a refused resume).
	var open int64
	var codes []string
	for c, n := range s.codes {
		if r := pipeline.RecoveryOf(c); r == pipeline.RecoveryRetry || r == pipeline.RecoveryResume {
			open += n
			codes = append(codes, c)
		}
	}
	refused := s.mismatch != nil
	s.mu.Unlock()
	if open > 0 && s.ledger != nil && !refused {
		sort.Strings(codes)
		s.log.Warn("salesforce sink: rows not confirmed loaded ("+strings.Join(codes, ", ")+"); "+
			"the ledger records every job, so nothing is sent twice: resume with `"+s.resumeHint()+"`",
			"rows", open, "ledger", s.ledger.where)
	}
	s.closeEmulator()
	s.mu.Lock()
	if s.mismatch != nil {
		// The run must not end as succeeded or partial: the rows of the
		// refused chunk and of every later one were not sent.
		errs = append(errs, s.mismatch)
	}
	s.mu.Unlock()
	if err := s.outageErr(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("salesforce sink: close: %w", err)
	}
	return nil
}

func (s *Sink) closeEmulator() {
	if s.inst != nil && s.inst.Close != nil {
		s.inst.Close()
		s.inst.Close = nil
	}
}

// rowErr builds the RowError of a failed row. Whether it is retryable
// comes from the code (pipeline.RecoveryOf), never from the caller or the
// message; the message says it for people.
func rowErr(code, field, jobID, format string, args ...any) *pipeline.RowError {
	return rowErrHint("", code, field, jobID, format, args...)
}

// rowErrHint is rowErr with the command that resumes the run, named in the
// message of rows whose job may have run (pipeline.RecoveryResume).
func rowErrHint(resume, code, field, jobID, format string, args ...any) *pipeline.RowError {
	rec := pipeline.RecoveryOf(code)
	msg := fmt.Sprintf(format, args...)
	tail := "retryable=" + strconv.FormatBool(rec.Retryable())
	switch rec {
	case pipeline.RecoveryResume:
		tail += "; the job may have loaded it: "
		if resume != "" {
			tail += "use `" + resume + "`"
		} else {
			tail += "use `bulkflow run FILE --resume RUN_ID`"
		}
		tail += ", not replay, which could load it twice"
	case pipeline.RecoveryInspect:
		tail += "; it may or may not be loaded: look at the job before sending it again"
	}
	if jobID != "" {
		msg += " (job " + jobID + ", " + tail + ")"
	} else {
		msg += " (" + tail + ")"
	}
	return &pipeline.RowError{Code: code, Field: field, Err: errors.New(msg), Retryable: rec.Retryable(), Ref: jobID}
}

// rowErr is rowErr naming this run's resume command.
func (s *Sink) rowErr(code, field, jobID, format string, args ...any) *pipeline.RowError {
	return rowErrHint(s.resumeHint(), code, field, jobID, format, args...)
}

// Write loads the batch in one or more jobs (split by max_job_bytes and
// max_job_rows). It returns nil when Salesforce reported every row
// successful, a *pipeline.RowErrors naming the rows that were not, or a
// plain error when nothing was loaded and every later job would fail the
// same way (unknown object or field, bad external id, refused upload).
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	_, err := s.write(ctx, b, false)
	return err
}

// WriteIDs is Write that also returns the Salesforce record id of each
// loaded row (sf__Id of the successful results; "" for failed rows, and for
// rows of a chunk a resumed run found already loaded in the ledger).
// It implements pipeline.IDWriter, used by sync stages.
func (s *Sink) WriteIDs(ctx context.Context, b *pipeline.Batch) ([]string, error) {
	return s.write(ctx, b, true)
}

func (s *Sink) write(ctx context.Context, b *pipeline.Batch, wantIDs bool) ([]string, error) {
	s.mu.Lock()
	fatal := s.fatal
	s.mu.Unlock()
	if fatal != nil {
		return nil, fatal
	}
	n := b.Len()
	nf := s.schema.Len()
	bufs := getBatchBufs(n, nf)
	defer putBatchBufs(bufs)
	st := &batchState{cells: bufs.cells, errs: bufs.errs, ok: bufs.ok}
	if wantIDs {
		st.ids = make([]string, n)
	}
	pending, all := bufs.pending, bufs.all
	for i := range n {
		c, err := s.enc.cells(b.Row(i), all[i*nf:i*nf:(i+1)*nf])
		if err != nil {
			st.errs[i] = err
			continue
		}
		st.cells[i] = c
		pending = append(pending, i)
	}
	seq, ok := pipeline.BatchSeq(ctx)
	if !ok {
		seq = s.nextSeq.Add(1) - 1
	}
	cutEnded := false // the first attempt's chunks were all cut and checked
	defer func() {
		if !cutEnded && s.ledger != nil && s.ledger.gate != nil {
			s.ledger.gate.done(seq)
		}
	}()
	if s.useREST(seq, n) {
		cutEnded = true // checkRESTCut ends the cut
		if err := s.writeREST(ctx, b, st, pending, seq); err != nil {
			return st.ids, err
		}
		pending = nil
	}
	retries := s.opts.lockRetries()
	for attempt := 0; len(pending) > 0; attempt++ {
		maxRows := s.opts.MaxJobRows
		if attempt > 0 {
			maxRows = max(1, maxRows>>attempt)
		}
		var locked []int
		k := 0 // chunks cut in this attempt
		for len(pending) > 0 {
			if ctx.Err() != nil {
				s.noteCancel()
				for _, i := range pending {
					st.fail(i, s.rowErr(CodeCancelled, "", "", "not loaded: the run was cancelled"))
				}
				pending = nil
				break
			}
			c, rest, err := s.spoolChunk(st, pending, maxRows)
			if err != nil {
				return st.ids, s.failBatch(st, pending, fmt.Errorf("salesforce sink: spool: %w", err))
			}
			pending = rest
			if c == nil {
				continue
			}
			c.batch, c.attempt, c.index = seq, attempt, k
			c.from = b.Origin(c.rows[0]).String()
			c.lastOfCut = attempt == 0 && len(rest) == 0
			k++
			if s.ledger != nil {
				if s.ledger.legacy {
					c.key = s.ledger.key(c.digest)
				} else {
					c.key = chunkKey(seq, attempt, c.index)
				}
			}
			if c.lastOfCut {
				cutEnded = true
			}
			lk, err := s.runChunk(ctx, st, c, attempt)
			s.dropSpool(c)
			if err != nil {
				return st.ids, s.failBatch(st, append(c.rows, pending...), err)
			}
			locked = append(locked, lk...)
		}
		if attempt == 0 && !cutEnded && ctx.Err() == nil {
			// The batch's last rows made no chunk (refused locally).
			cutEnded = true
			if err := s.endCut(seq, 0, k-1); err != nil {
				return st.ids, s.failBatch(st, nil, err)
			}
		}
		if attempt < retries && len(locked) > 0 && ctx.Err() == nil {
			s.log.Info("salesforce sink: re-driving rows that hit UNABLE_TO_LOCK_ROW in a smaller job",
				"rows", len(locked), "retry", attempt+1, "of", retries)
			// In batch order, so that a resumed run builds the same chunks.
			sort.Ints(locked)
			pending = locked
		}
	}
	if ctx.Err() != nil {
		s.noteCancel()
	}
	var re pipeline.RowErrors
	for i := range n {
		switch {
		case st.ok[i]:
		case st.errs[i] != nil:
			re.Add(i, st.errs[i])
		default:
			re.Add(i, s.rowErr(CodeResultMismatch, "", "", "no outcome was recorded for the row (a sink bug)"))
		}
	}
	if len(re.Failures) > 0 {
		s.countCodes(&re)
		return st.ids, &re
	}
	return st.ids, nil
}

// countCodes adds the failures of re to the counts by error code.
func (s *Sink) countCodes(re *pipeline.RowErrors) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range re.Failures {
		code := "error"
		var e *pipeline.RowError
		if errors.As(f.Err, &e) && e.Code != "" {
			code = e.Code
		}
		s.codes[code]++
	}
}

// noteCancel logs once how to continue a cancelled run.
func (s *Sink) noteCancel() {
	s.mu.Lock()
	first := !s.cancelSeen
	s.cancelSeen = true
	s.mu.Unlock()
	if !first {
		return
	}
	if s.ledger != nil {
		s.log.Warn("salesforce sink: run cancelled; jobs in flight stay in the ledger. Continue with `"+s.resumeHint()+"`",
			"ledger", s.ledger.where)
	} else {
		s.log.Warn("salesforce sink: run cancelled (ledger off: resume is not possible)")
	}
}

// dropSpool removes the spool file of a chunk unless a job of it may still
// be running (the ledger then needs it until the chunk finishes).
func (s *Sink) dropSpool(c *chunk) {
	if c.path == "" {
		c.data = nil
		return
	}
	switch c.lastState {
	case "", stCreating, stAborted, stFinished:
		os.Remove(c.path)
	}
}

// failBatch handles an error every later job would hit too. When nothing
// of the batch was loaded it is returned as is (the run stops); otherwise
// the rows not yet settled are reported with it so that loaded rows are not
// counted as failed, and the next Write returns it.
func (s *Sink) failBatch(st *batchState, rows []int, err error) error {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
	if st.loaded == 0 {
		s.mu.Lock()
		s.codes[pipeline.CodeSinkFailed] += int64(len(st.ok))
		s.mu.Unlock()
		return err
	}
	for _, i := range rows {
		st.fail(i, s.rowErr(pipeline.CodeSinkFailed, "", "", "%v", err))
	}
	var re pipeline.RowErrors
	for i := range st.ok {
		if !st.ok[i] {
			e := st.errs[i]
			if e == nil {
				e = s.rowErr(pipeline.CodeSinkFailed, "", "", "%v", err)
			}
			re.Add(i, e)
		}
	}
	s.countCodes(&re)
	return &re
}
