package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// maxUploadTries bounds the new jobs made for one chunk after uploads whose
// outcome could not be known (contract §2.4: abort and redo in a new job).
const maxUploadTries = 3

// runChunk loads one chunk in one job: create → one PUT → close → poll →
// results. It records every row's outcome in st, returns the rows that
// failed with UNABLE_TO_LOCK_ROW, and returns an error only for a failure
// every job would hit (the caller stops the run with it).
func (s *Sink) runChunk(ctx context.Context, st *batchState, c *chunk, attempt int) ([]int, error) {
	s.active.Add(1)
	defer s.active.Add(-1)
	ctx, span := s.startChunkSpan(ctx, c)
	defer span.End()
	if s.ledger != nil {
		rec, ok := s.ledger.last(c.key)
		if ok && !s.ledger.legacy && (rec.Digest != c.digest || rec.Rows != len(c.rows)) {
			if reachedUpload(rec.State) {
				return nil, s.refuseResume(c.batch, c.attempt, c.index, rec, c)
			}
			// No job of the earlier chunk can have run (creating, created,
			// aborted): resumeChunk aborts an Open job; this chunk is new.
		}
		if c.lastOfCut {
			if err := s.endCut(c.batch, c.attempt, c.index); err != nil {
				return nil, err
			}
		}
		if ok {
			if lk, err, done := s.resumeChunk(ctx, st, c, attempt, rec); done {
				return lk, err
			}
		}
	}
	return s.newJob(ctx, st, c, attempt)
}

// endCut is called once the chunks of a batch's first attempt were all cut
// (last is the index of the last one, -1 for none): a chunk the earlier
// attempt cut after it, and whose job may have run, means the rows moved
// (refused); otherwise the batch is verified and later batches' new
// uploads may go ahead.
func (s *Sink) endCut(batch int64, attempt, last int) error {
	if s.ledger == nil || s.ledger.gate == nil {
		return nil
	}
	key := chunkKey(batch, attempt, last+1)
	if rec, ok := s.ledger.last(key); ok && reachedUpload(rec.State) {
		return s.refuseResume(batch, attempt, last+1, rec, nil)
	}
	s.ledger.gate.done(batch)
	return nil
}

// refuseResume stops the run: the chunk at a position (c, nil when this
// attempt cut none there) differs from the earlier attempt's record rec,
// whose job may have loaded its rows.
func (s *Sink) refuseResume(batch int64, attempt, index int, rec ledgerRecord, c *chunk) error {
	e := &ResumeMismatchError{RunID: s.runID, Ledger: s.ledger.where, Batch: batch, Attempt: attempt, Chunk: index,
		Job: rec.Job, State: rec.State, WasDigest: rec.Digest, WasRows: rec.Rows, WasFrom: rec.From}
	if c != nil {
		e.NowDigest, e.NowRows, e.NowFrom = c.digest, len(c.rows), c.from
	}
	if was, now := s.ledger.origin, s.opts.Provenance; was != nil && now != nil {
		e.Known, e.Changed = true, was.diff(now)
	}
	s.mu.Lock()
	if s.mismatch == nil {
		s.mismatch = e
	}
	if s.fatal == nil {
		s.fatal = e
	}
	s.mu.Unlock()
	s.ledger.gate.fail(e)
	s.log.Error(e.Error())
	return e
}

// note records the chunk's next state in the ledger (a no-op without one).
func (s *Sink) note(ctx context.Context, c *chunk, rec ledgerRecord) error {
	if s.ledger == nil {
		return nil
	}
	rec.Chunk, rec.Rows, rec.Bytes, rec.Digest, rec.From = c.key, len(c.rows), c.bytes, c.digest, c.from
	if err := s.ledger.append(ctx, rec); err != nil {
		return fmt.Errorf("salesforce sink: %w", err)
	}
	c.lastState = rec.State
	return nil
}

// noteAfter records a state reached by a remote step that already
// happened: a failure is logged, not fatal (the previous record leads a
// resume to ask Salesforce for the job's state).
func (s *Sink) noteAfter(ctx context.Context, c *chunk, rec ledgerRecord) {
	if err := s.note(ctx, c, rec); err != nil {
		s.log.Error("salesforce sink: ledger write failed", "job", rec.Job, "state", rec.State, "err", err)
	}
}

// newJob loads the chunk in a new job.
func (s *Sink) newJob(ctx context.Context, st *batchState, c *chunk, attempt int) ([]int, error) {
	if g := s.gate(); g != nil {
		// A resumed run: earlier batches must be found unchanged first.
		if err := g.wait(ctx, c.batch); err != nil {
			if ctx.Err() != nil {
				s.failRows(st, c.rows, CodeCancelled, "", "not loaded: the run was cancelled")
				return nil, nil
			}
			return nil, err
		}
	}
	for try := 1; ; try++ {
		start := time.Now()
		stat := JobStat{Object: s.opts.Object, Operation: string(s.op), Attempt: attempt, Rows: len(c.rows), Bytes: c.bytes}
		if !s.mayCreateJob(st, c) {
			return nil, nil
		}
		info, err := s.createJob(ctx, st, c)
		if info == nil {
			return nil, err // err nil: the rows are settled
		}
		stat.ID, stat.State = info.ID, string(info.State)
		s.liveJob(ctx, info.ID, info.State, 0, 0)
		s.mu.Lock()
		s.jobsCreated++
		s.mu.Unlock()
		err = s.note(ctx, c, ledgerRecord{State: stCreated, Job: info.ID})
		if err == nil {
			err = s.note(ctx, c, ledgerRecord{State: stUploading, Job: info.ID})
		}
		if err != nil {
			// The job is Open and empty: abort it and stop.
			if _, aerr := s.abort(ctx, &stat); aerr == nil {
				s.noteAfter(ctx, c, ledgerRecord{State: stAborted, Job: info.ID})
			}
			return nil, err
		}
		locked, retry, err := s.uploadJob(ctx, st, c, &stat, start, try)
		if !retry {
			return locked, err
		}
	}
}

// jobRequest is the create request of the sink's ingest jobs.
func (s *Sink) jobRequest() salesforce.CreateJobRequest {
	req := salesforce.CreateJobRequest{Object: s.opts.Object, Operation: s.op, ColumnDelimiter: s.delim,
		LineEnding: s.opts.lineEnding(), AssignmentRuleID: s.opts.AssignmentRuleID}
	if s.op == salesforce.OpUpsert {
		req.ExternalIDFieldName = s.opts.ExternalIDField
	}
	return req
}

// mayCreateJob reports whether a job may be created for the chunk; when
// Salesforce refused requests for the org's API limit, or the allowance is
// below min_api_remaining, it fails the chunk's rows (resumable) instead.
func (s *Sink) mayCreateJob(st *batchState, c *chunk) bool {
	if s.limitHit.Load() {
		s.failRows(st, c.rows, "REQUEST_LIMIT_EXCEEDED", "", "not sent: Salesforce refused earlier requests with REQUEST_LIMIT_EXCEEDED "+
			"(the org's API request limit); resume later with `%s`", s.resumeHint())
		return false
	}
	if s.overBudget() {
		s.failRows(st, c.rows, CodeAPIBudget, "", "not loaded: the daily API request allowance is below min_api_remaining %d; resume later with `%s`",
			s.opts.MinAPIRemaining, s.resumeHint())
		return false
	}
	return true
}

// createJob records the create in the ledger and creates the job. A nil
// job comes with the error that fails the batch, or none when the chunk's
// rows were failed (cancelled, or no job could be created).
func (s *Sink) createJob(ctx context.Context, st *batchState, c *chunk) (*salesforce.JobInfo, error) {
	if err := s.note(ctx, c, ledgerRecord{State: stCreating}); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		s.failRows(st, c.rows, CodeCancelled, "", "not loaded: the run was cancelled")
		return nil, nil
	}
	// The client retries the create (RepeatableCreate: a lost answer
	// leaves at worst an empty Open job, never processed). The create runs
	// to its answer even if the run is cancelled meanwhile: cut off then,
	// the job would be created in Salesforce and left Open, its id never
	// known. Cancellation is checked once the answer is in, and the new
	// job aborted.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	info, err := s.client.CreateJob(cctx, s.jobRequest())
	cancel()
	switch {
	case err == nil && ctx.Err() != nil:
		stat := JobStat{Object: s.opts.Object, Operation: string(s.op), Rows: len(c.rows), Bytes: c.bytes, ID: info.ID}
		if _, aerr := s.abort(ctx, &stat); aerr == nil {
			s.noteAfter(ctx, c, ledgerRecord{State: stAborted, Job: info.ID})
		}
		s.failRows(st, c.rows, CodeCancelled, "", "not loaded: the run was cancelled")
		return nil, nil
	case err == nil:
		return info, nil
	case ctx.Err() != nil:
		s.failRows(st, c.rows, CodeCancelled, "", "not loaded: the run was cancelled")
		return nil, nil
	case !salesforce.IsDefiniteRefusal(err) && !errors.Is(err, salesforce.ErrInvalidSession):
		if errors.Is(err, salesforce.ErrRequestLimit) {
			s.limitHit.Store(true) // no request more: it would be refused too
		}
		code := failureCode(err)
		s.log.Error("salesforce sink: could not create a job", "rows", len(c.rows), "code", code, "err", err)
		s.failRows(st, c.rows, code, "", "not loaded: no job could be created: %v", err)
		s.noteCreateFailure(code, len(c.rows), err)
		return nil, nil
	}
	return nil, fmt.Errorf("salesforce sink: %w", err)
}

// uploadJob uploads the chunk to the open job stat names and finishes it.
// When the upload fails the job is aborted (or, if it ran after all,
// settled from its results); retry is true when the rows should go again
// in a new job (try of maxUploadTries).
func (s *Sink) uploadJob(ctx context.Context, st *batchState, c *chunk, stat *JobStat, start time.Time, try int) (locked []int, retry bool, err error) {
	body, err := c.body()
	if err == nil {
		err = s.client.UploadJobData(ctx, stat.ID, body)
	}
	if err == nil {
		s.noteAfter(ctx, c, ledgerRecord{State: stUploaded, Job: stat.ID})
		locked, err = s.finishJob(ctx, st, c, stat, start)
		return locked, false, err
	}
	id := stat.ID
	ai, aerr := s.abort(ctx, stat)
	if aerr == nil && ai.State.Terminal() && ai.State != salesforce.StateAborted {
		// The job ran after all: settle it from its results.
		stat.Error = err.Error()
		locked, err = s.collectAndRecord(ctx, st, c, stat, ai, start)
		return locked, false, err
	}
	if aerr == nil && ai.State == salesforce.StateAborted {
		s.noteAfter(ctx, c, ledgerRecord{State: stAborted, Job: id})
	}
	stat.Error, stat.Duration = err.Error(), time.Since(start)
	s.record(*stat)
	switch {
	case ctx.Err() != nil:
		s.failRows(st, c.rows, CodeCancelled, id, "not loaded: the run was cancelled before the upload completed")
		return nil, false, nil
	case !salesforce.IsDefiniteRefusal(err):
		if try < maxUploadTries {
			s.log.Warn("salesforce sink: upload failed; aborted the job and retrying the rows in a new job",
				"job", id, "try", try, "err", err)
			return nil, true, nil
		}
		if errors.Is(err, salesforce.ErrInvalidSession) {
			return nil, false, fmt.Errorf("salesforce sink: authentication keeps failing: %w", err)
		}
		s.failRows(st, c.rows, failureCode(err), id, "not loaded: upload failed %d times (the job was aborted): %v", try, err)
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("salesforce sink: %w", err)
}

// finishJob closes an uploaded job, waits for it and settles its rows.
func (s *Sink) finishJob(ctx context.Context, st *batchState, c *chunk, stat *JobStat, start time.Time) ([]int, error) {
	defer func() {
		stat.Duration = time.Since(start)
		s.record(*stat)
	}()
	id := stat.ID
	if _, err := s.client.CloseJob(ctx, id); err != nil {
		stat.Error = err.Error()
		code, why := CodeAPIError, fmt.Sprintf("closing the job failed: %v", err)
		if ctx.Err() != nil {
			code, why = CodeCancelled, "the run was cancelled"
		}
		s.log.Warn("salesforce sink: could not close the job; aborting it", "job", id, "err", err)
		return s.settleAborted(ctx, st, c, stat, code, why)
	}
	stat.State = string(salesforce.StateUploadComplete)
	s.noteAfter(ctx, c, ledgerRecord{State: stClosed, Job: id})
	return s.awaitJob(ctx, st, c, stat)
}

// awaitJob waits for a closed job and settles its rows.
func (s *Sink) awaitJob(ctx context.Context, st *batchState, c *chunk, stat *JobStat) ([]int, error) {
	id := stat.ID
	info, err := s.wait(ctx, stat)
	if err != nil {
		if ctx.Err() != nil {
			return s.settleAborted(ctx, st, c, stat, CodeCancelled, "the run was cancelled")
		}
		stat.Error = err.Error()
		hint := "`bulkflow jobs show " + id + "`"
		if s.ledger != nil {
			hint = "`" + s.resumeHint() + "` picks it up from the ledger"
		}
		s.log.Warn("salesforce sink: job not finished; its rows are reported job_incomplete. "+
			"It was not declared failed: "+hint,
			"job", id, "state", stat.State, "rows", len(c.rows), "err", err)
		s.failRows(st, c.rows, CodeJobIncomplete, id, "not confirmed: job %s is still %s: %v", id, stat.State, err)
		return nil, nil
	}
	return s.collect(ctx, st, c, stat, info, "")
}

func (s *Sink) collectAndRecord(ctx context.Context, st *batchState, c *chunk, stat *JobStat, info *salesforce.JobInfo, start time.Time) ([]int, error) {
	defer func() {
		stat.Duration = time.Since(start)
		s.record(*stat)
	}()
	return s.collect(ctx, st, c, stat, info, "")
}

// wait polls the job until it is terminal or the patience (poll_timeout)
// runs out; the client polls again after failed polls (maxFailedPolls in
// a row at most). It never spins: polling stops (the job left to a
// resume, its rows job_incomplete) when the next poll would eat into
// min_api_remaining (errPollBudget), or at once when a request of the
// sink already gave up on REQUEST_LIMIT_EXCEEDED.
func (s *Sink) wait(ctx context.Context, stat *JobStat) (*salesforce.JobInfo, error) {
	if s.limitHit.Load() {
		return nil, fmt.Errorf("polling stopped: Salesforce refused requests with REQUEST_LIMIT_EXCEEDED: %w", salesforce.ErrRequestLimit)
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	budgetOut := false
	info, err := s.client.WaitJob(pctx, stat.ID, &salesforce.PollOptions{Initial: s.opts.PollInitial,
		Max: s.opts.PollMax, Timeout: s.opts.PollTimeout, Failures: maxFailedPolls,
		OnPoll: func(ji *salesforce.JobInfo) {
			stat.State = string(ji.State)
			s.liveJob(ctx, stat.ID, ji.State, ji.NumberRecordsProcessed, ji.NumberRecordsFailed)
			if !ji.State.Terminal() && s.pollBudgetOut() {
				budgetOut = true
				stop()
			}
		}})
	if budgetOut && ctx.Err() == nil {
		return info, errPollBudget
	}
	if errors.Is(err, salesforce.ErrRequestLimit) {
		s.limitHit.Store(true) // no request more: it would be refused too
	}
	return info, err
}

// maxFailedPolls bounds the polls of one job that fail in a row (each
// after the client's own retries): then the job is left to a resume.
const maxFailedPolls = 3

// errPollBudget: polling stopped at min_api_remaining.
var errPollBudget = errors.New("polling stopped: the daily API request allowance reached min_api_remaining")

// abort aborts a job that will not be processed, with a context that
// survives cancellation.
func (s *Sink) abort(ctx context.Context, stat *JobStat) (*salesforce.JobInfo, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	info, err := s.client.AbortJob(actx, stat.ID)
	if err != nil {
		// It may have finished meanwhile.
		if ji, gerr := s.client.Job(actx, stat.ID); gerr == nil {
			info, err = ji, nil
		}
	}
	if err != nil {
		s.log.Error("salesforce sink: could not abort the job", "job", stat.ID, "err", err)
		return nil, err
	}
	stat.State = string(info.State)
	return info, nil
}

// settleAborted aborts a closed job and settles its rows from its results:
// rows Salesforce reports as saved are loaded, the rest fail with code.
func (s *Sink) settleAborted(ctx context.Context, st *batchState, c *chunk, stat *JobStat, code, why string) ([]int, error) {
	info, err := s.abort(ctx, stat)
	if err == nil && !info.State.Terminal() {
		info, err = s.client.WaitJob(context.WithoutCancel(ctx), stat.ID,
			&salesforce.PollOptions{Initial: 100 * time.Millisecond, Max: time.Second, Timeout: abortTimeout})
	}
	if err != nil {
		s.failRows(st, c.rows, CodeJobIncomplete, stat.ID, "not confirmed (%s); the job's state is unknown: %v", why, err)
		return nil, nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	return s.collect(actx, st, c, stat, info, code)
}

// failRows fails every row of rows that is not settled yet.
func (s *Sink) failRows(st *batchState, rows []int, code, jobID, format string, args ...any) {
	err := s.rowErr(code, "", jobID, format, args...)
	for _, i := range rows {
		st.fail(i, err)
	}
}

func (s *Sink) record(stat JobStat) {
	s.liveEnd(stat)
	s.mu.Lock()
	s.jobs = append(s.jobs, stat)
	if stat.State == string(salesforce.StateJobComplete) {
		s.completed++
	}
	s.mu.Unlock()
}

// fatalJobCode reports whether a Failed job's error code means the file
// itself was refused (header, delimiter, line ending): every job would fail.
func fatalJobCode(code string) bool {
	return code == "InvalidBatch" || code == "ClientInputError"
}

// resultCounts are the rows of a job's three result files.
type resultCounts struct{ succeeded, failed, unprocessed int64 }

func (n resultCounts) total() int64 { return n.succeeded + n.failed + n.unprocessed }

// collect reads the results of a terminal job and settles each of its rows.
// abortCode, when set, is the code of rows left unprocessed by an abort the
// sink made; otherwise unprocessed rows get UNPROCESSED.
func (s *Sink) collect(ctx context.Context, st *batchState, c *chunk, stat *JobStat, info *salesforce.JobInfo, abortCode string) ([]int, error) {
	id := info.ID
	stat.State, stat.Processed = string(info.State), info.NumberRecordsProcessed
	if info.State == salesforce.StateFailed {
		stat.Error = info.ErrorMessage
	}
	m := newMatcher(s, st, c)
	n, locked, err := s.readResults(ctx, st, c, info, abortCode, m)
	stat.Succeeded, stat.Failed, stat.Unprocessed = n.succeeded, n.failed, n.unprocessed
	if err != nil {
		stat.Error = err.Error()
		s.log.Error("salesforce sink: could not read the job's results; its unsettled rows are reported job_incomplete",
			"job", id, "err", err)
		s.failUnsettled(st, c, m, CodeJobIncomplete, id, "not confirmed: the results of job %s could not be read: %v", id, err)
		return nil, nil
	}
	defer func() {
		loaded := 0
		for _, i := range c.rows {
			if st.ok[i] {
				loaded++
			}
		}
		c.finalJobState = string(info.State)
		s.noteAfter(ctx, c, ledgerRecord{State: stFinished, Job: id, JobState: string(info.State), Processed: info.NumberRecordsProcessed,
			Succeeded: n.succeeded, Failed: n.failed, Unprocessed: n.unprocessed, Loaded: loaded, Error: info.ErrorMessage})
	}()
	if info.State == salesforce.StateFailed && n.succeeded == 0 && n.failed == 0 {
		return nil, s.settleFailedJob(st, c, info)
	}
	s.checkResults(st, c, stat, m, n, info, abortCode)
	// Lock failures are re-driven by the caller only if still failed.
	var out []int
	for _, i := range locked {
		if !st.ok[i] {
			out = append(out, i)
		}
	}
	return out, nil
}

// readResults streams the job's successful results, and its failed and
// unprocessed records when they may hold rows, settling each matched row.
// It returns the rows of each file and the rows that failed with
// UNABLE_TO_LOCK_ROW.
func (s *Sink) readResults(ctx context.Context, st *batchState, c *chunk, info *salesforce.JobInfo, abortCode string, m *matcher) (resultCounts, []int, error) {
	id := info.ID
	var n resultCounts
	var locked []int
	c.unprocessed = nil
	err := s.readResult(ctx, id, "successful", s.client.SuccessfulResults, m, func(i int, r *salesforce.ResultRow) {
		n.succeeded++
		if i >= 0 {
			st.succeed(i)
			if st.ids != nil { // r.ID is valid only until the next row
				st.setID(i, strings.Clone(r.ID))
			}
		}
	})
	needAll := info.State != salesforce.StateJobComplete
	if err == nil && (needAll || info.NumberRecordsFailed > 0) {
		err = s.readResult(ctx, id, "failed", s.client.FailedResults, m, func(i int, r *salesforce.ResultRow) {
			n.failed++
			if i < 0 {
				return
			}
			// The dead letter keeps parts of sf__Error, which is valid
			// only until the next row.
			sfError := strings.Clone(r.Error)
			pe := salesforce.ParseRowError(sfError)
			code := pe.Code
			if code == "" {
				code = "row_failed"
			}
			// The dead letter gets sf__Error split: code, message, fields.
			field := strings.Join(pe.Fields, ";")
			msg := pe.Message
			if msg == "" {
				msg = sfError
			}
			if code == CodeLockRow {
				locked = append(locked, i)
			}
			st.fail(i, s.rowErr(code, field, id, "%s", msg))
		})
	}
	if err == nil && needAll {
		code, why := CodeUnprocessed, "not processed by Salesforce"
		if info.State == salesforce.StateFailed {
			why += ": " + info.ErrorMessage
		}
		if abortCode != "" {
			code, why = abortCode, "not processed: "+whyOf(abortCode)
		}
		err = s.readResult(ctx, id, "unprocessed", s.client.UnprocessedRecords, m, func(i int, r *salesforce.ResultRow) {
			n.unprocessed++
			if i >= 0 {
				c.unprocessed = append(c.unprocessed, i)
				st.fail(i, s.rowErr(code, "", id, "%s", why))
			}
		})
	}
	return n, locked, err
}

// readResult streams one result file of job id through the matcher,
// copying it to archive_results when set.
func (s *Sink) readResult(ctx context.Context, id, kind string, open func(context.Context, string) (io.ReadCloser, error),
	m *matcher, each func(i int, r *salesforce.ResultRow)) error {
	rc, err := open(ctx, id) // the client retries transient failures
	if err != nil {
		return err
	}
	defer rc.Close()
	var src io.Reader = rc
	var aw *blobio.Writer
	if s.archive != nil {
		if aw, err = blobio.NewWriter(context.WithoutCancel(ctx), blobio.Join(*s.archive, s.runID, id+"-"+kind+".csv")); err != nil {
			s.log.Warn("salesforce sink: archive_results: cannot write", "job", id, "err", err)
			aw = nil
		} else {
			src = io.TeeReader(rc, aw)
		}
	}
	err = m.read(src, each)
	if aw != nil {
		if err != nil {
			aw.Abort()
		} else if _, cerr := io.Copy(io.Discard, src); cerr != nil {
			aw.Abort()
		}
		if cerr := aw.Close(); cerr != nil {
			s.log.Warn("salesforce sink: archive_results: cannot write", "job", id, "err", cerr)
		}
	}
	return err
}

// settleFailedJob fails every row of a job that Failed before processing
// any: with the job's error code, or as an error that stops the run when
// the file itself was refused on the run's first job.
func (s *Sink) settleFailedJob(st *batchState, c *chunk, info *salesforce.JobInfo) error {
	je := salesforce.ParseJobError(info.ErrorMessage)
	code := je.Code
	if code == "" {
		code = "job_failed"
	}
	if fatalJobCode(code) && st.loaded == 0 {
		s.mu.Lock()
		first := s.completed == 0
		s.mu.Unlock()
		if first {
			return fmt.Errorf("salesforce sink: job %s failed before loading any row: %s (every job would fail the same way)", info.ID, info.ErrorMessage)
		}
	}
	for _, i := range c.rows {
		st.fail(i, s.rowErr(code, "", info.ID, "job failed: %s", info.ErrorMessage))
	}
	return nil
}

// checkResults settles the rows no result row matched, and fails the job's
// check when its results do not account for every row exactly once:
// duplicated or extra result rows make every row of the job
// result_mismatch (their word on which row was loaded cannot be trusted).
func (s *Sink) checkResults(st *batchState, c *chunk, stat *JobStat, m *matcher, n resultCounts, info *salesforce.JobInfo, abortCode string) {
	id := info.ID
	missing := abortCode
	if missing == "" && info.State == salesforce.StateFailed {
		missing = CodeUnprocessed
	}
	if n.total() != int64(len(c.rows)) || m.unmatched > 0 {
		s.log.Error("salesforce sink: job results do not match the upload; rows without a result are reported result_mismatch",
			"job", id, "uploaded", len(c.rows), "successful", n.succeeded, "failed", n.failed, "unprocessed", n.unprocessed,
			"unmatched_results", m.unmatched)
		if missing == "" {
			missing = CodeResultMismatch
		}
		if n.total() > int64(len(c.rows)) || m.unmatched > 0 {
			stat.Error = fmt.Sprintf("results do not match the upload: %d successful + %d failed + %d unprocessed for %d uploaded rows, %d result rows matching no uploaded row",
				n.succeeded, n.failed, n.unprocessed, len(c.rows), m.unmatched)
			err := s.rowErr(CodeResultMismatch, "", id, "job %s %s", id, stat.Error)
			for _, i := range c.rows {
				st.revoke(i, err)
			}
		}
	}
	if missing == "" {
		missing = CodeResultMismatch
	}
	s.failUnsettled(st, c, m, missing, id, "no result row of job %s matched the row: %s", id, whyOf(missing))
}

// failUnsettled fails the rows of c that no result row of the job matched.
func (s *Sink) failUnsettled(st *batchState, c *chunk, m *matcher, code, jobID, format string, args ...any) {
	err := s.rowErr(code, "", jobID, format, args...)
	for _, i := range c.rows {
		if !m.used[i] {
			st.fail(i, err)
		}
	}
}

func whyOf(code string) string {
	switch code {
	case CodeCancelled:
		return "the run was cancelled"
	case CodeUnprocessed:
		return "not processed by Salesforce"
	case CodeAPIError:
		return "the job could not be completed"
	}
	return "it is not known to be loaded"
}
