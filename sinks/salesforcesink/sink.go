package salesforcesink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/scratch"
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
	// CodeEntityIsDeleted is Salesforce's code for a record that is
	// deleted already; Delete counts it as deleted.
	CodeEntityIsDeleted = "ENTITY_IS_DELETED"
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
	opts   *Options
	op     salesforce.Operation
	schema *pipeline.Schema
	client *salesforce.Client
	inst   *Instance // opened by an InstanceOpener (instance_url "emulator:"), else nil
	log    *slog.Logger
	enc    *encoder
	delim  salesforce.ColumnDelimiter
	spool  string
	// scratch is spool when the sink made it (no ledger): a temporary
	// folder that Close removes (scratch.RemoveStale, if the process is
	// killed).
	scratch *scratch.Dir
	idCol   int // column identifying a record (Id or the external id), or -1
	archive *blobio.Location
	runID   string

	ledger   *ledger  // nil when the ledger is off
	live     liveJobs // jobs not ended, for Live and spans (live.go)
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

// gate returns the resume gate, or nil when this is not a resumed run.
func (s *Sink) gate() *resumeGate {
	if s.ledger == nil {
		return nil
	}
	return s.ledger.gate
}

// resumeHint is how users continue this run: the CLI's ResumeCommand
// when it set one (a replay is resumed by `bulkflow replay ... --resume`,
// not by `run --resume`, which would read the pipeline's source), else
// `bulkflow run FILE --resume RUN`.
func (s *Sink) resumeHint() string {
	if s.opts.ResumeCommand != "" {
		return s.opts.ResumeCommand
	}
	file := "FILE"
	if p := s.opts.Provenance; p != nil && p.PipelineFile != "" {
		file = p.PipelineFile
	}
	return "bulkflow run " + file + " --resume " + s.runID
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
		pathStats                         // bulk_jobs, rest_requests, ... (rest.go)
	}{Jobs: s.Jobs(), APICalls: s.apiCalls.Load(), ErrorsByCode: codes, RunID: s.runID, ResumedChunks: resumed}
	st.pathStats = countPaths(st.Jobs)
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

// unseenChunks checks, at the end of a resume that produced every chunk
// it had (complete), the chunks of earlier attempts it did not produce
// again: their rows are not in this attempt's input (a sync's manifest
// holds them, or the input changed), so this attempt neither sends nor
// counts them. A chunk whose job confirmed every row loaded leaves nothing
// behind (logged). Any other one (its job not finished, or rows of it
// failed or unprocessed) may have left rows in Salesforce, or nowhere,
// that no dead letter of this attempt holds: an error, so that the run
// does not say succeeded.
func (s *Sink) unseenChunks(complete bool) error {
	un := s.ledger.unseen()
	if len(un) == 0 || !complete {
		return nil
	}
	var loaded, open []string
	for _, r := range un {
		if allLoaded(r) {
			loaded = append(loaded, r.Job)
		} else {
			open = append(open, cmp.Or(r.Job, "(none created)"))
		}
	}
	if len(open) == 0 {
		s.log.Warn("salesforce sink: resume: chunks of the earlier attempt were not produced again (their rows are not in this "+
			"attempt's input); their jobs had loaded every row, so none is sent again or left out",
			"chunks", len(un), "jobs", strings.Join(loaded, ","))
		return nil
	}
	slices.Sort(open)
	return fmt.Errorf("salesforce sink: resume: %d chunks of the earlier attempt were not produced again (did the input change?), "+
		"and jobs %s did not confirm every row of theirs loaded: this attempt neither re-checked nor counts those rows, which may "+
		"be stored or not. Look at those jobs (`bulkflow jobs show JOB`), then resume with the input the earlier attempt read. Ledger: %s",
		len(un), strings.Join(open, ", "), s.ledger.where)
}

// allLoaded reports whether a chunk's ledger record confirms every row of
// it loaded: a finished job that loaded them all, or a REST request with
// no failed row.
func allLoaded(r ledgerRecord) bool {
	switch r.State {
	case stFinished:
		return r.Rows > 0 && r.Loaded == r.Rows
	case stRESTDone:
		return len(r.RESTFailed) == 0
	}
	return false
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
		rm := func() error { return os.RemoveAll(s.spool) }
		if s.scratch != nil {
			rm = s.scratch.Remove
		}
		if err := rm(); err != nil {
			errs = append(errs, fmt.Errorf("remove spool: %w", err))
		}
	} else {
		os.Remove(s.spool) // only when empty: unfinished chunks keep their files
		s.mu.Lock()
		complete := s.fatal == nil && !s.cancelSeen
		s.mu.Unlock()
		if err := s.unseenChunks(complete); err != nil {
			errs = append(errs, err)
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

// rowErr is rowErrHint naming this run's resume command.
//
// In a resumed attempt (the ledger holds an earlier attempt's chunks), a
// row given up as cancelled is unsettled instead, as the engine's drain
// code is: the earlier attempt may have loaded it, and its chunk's ledger
// record may not have been consulted yet (rows not cut when the run
// stopped, chunks waiting at the resume gate), so replaying it could load
// it twice; only another resume can tell. The soak found it: a refused
// re-cut resume dead-lettered 362 rows the first attempt had stored as
// cancelled (retryable) in 2-3 of 12 plays of seed 12021.
func (s *Sink) rowErr(code, field, jobID, format string, args ...any) *pipeline.RowError {
	if code == CodeCancelled && s.ledger != nil && s.ledger.resuming() {
		code = pipeline.CodeUnsettled
	}
	return rowErrHint(s.resumeHint(), code, field, jobID, format, args...)
}
