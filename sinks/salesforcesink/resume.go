package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// resumeChunk continues a chunk that an earlier process of the same run
// recorded in the ledger (rec is its last record). done is false when the
// chunk is to be sent in a new job: nothing of it was ever uploaded to a
// job that could run. A chunk whose job may have been processed is never
// uploaded again:
//
//	creating, aborted        → new job (at worst an empty Open job exists)
//	created, uploading       → GET the job: Open → abort it, new job;
//	                           UploadComplete/InProgress → wait, results;
//	                           terminal → results; 404 after created → new job
//	uploaded, closed         → GET the job: Open → close it (the data landed);
//	                           otherwise wait, results
//	finished                 → all rows loaded per the ledger: done without a
//	                           call; otherwise fetch the results again
//
// Rows that an Aborted job left unprocessed were never processed: they are
// sent again in a new job (their own chunk, in batch order).
func (s *Sink) resumeChunk(ctx context.Context, st *batchState, c *chunk, attempt int, rec ledgerRecord) ([]int, error, bool) {
	if rec.State == stCreating || rec.State == stAborted {
		return nil, nil, false
	}
	if rec.Rows != len(c.rows) {
		// Same bytes imply the same rows; a mismatch means a corrupt record.
		s.log.Warn("salesforce sink: resume: ledger record does not match the chunk; treating it as unknown",
			"job", rec.Job, "ledger_rows", rec.Rows, "rows", len(c.rows))
	}
	s.mu.Lock()
	s.resumed++
	s.mu.Unlock()
	c.lastState = rec.State
	start := time.Now()
	stat := JobStat{ID: rec.Job, Object: s.opts.Object, Operation: string(s.op), Attempt: attempt, Rows: len(c.rows),
		Bytes: c.bytes, State: rec.JobState, Resumed: true}
	log := s.log.With("job", rec.Job, "ledger_state", rec.State)

	if rec.State == stFinished {
		lk, err := s.resumeFinished(ctx, st, c, attempt, rec, &stat, start)
		return lk, err, true
	}

	info, err := s.jobInfo(ctx, rec.Job)
	if err != nil {
		if errors.Is(err, salesforce.ErrNotFound) && rec.State == stCreated {
			log.Warn("salesforce sink: resume: the job of an upload that never started is gone; sending the chunk in a new job")
			return nil, nil, false
		}
		stat.Error, stat.Duration = err.Error(), time.Since(start)
		s.record(stat)
		s.failRows(st, c.rows, CodeJobIncomplete, rec.Job,
			"not confirmed: the ledger says job %s got to %q but its state cannot be read (%v); the rows are not sent again, to avoid duplicates",
			rec.Job, rec.State, err)
		return nil, nil, true
	}
	stat.State = string(info.State)
	if info.State == salesforce.StateOpen {
		if rec.State == stUploaded || rec.State == stClosed {
			// The upload landed (201): close the job, never upload again.
			log.Info("salesforce sink: resume: closing the job of a finished upload")
			lk, err := s.finishJob(ctx, st, c, &stat, start)
			return lk, err, true
		}
		// An Open job is never processed: abort it and start over.
		ai, done := s.abortResumed(ctx, st, c, rec, &stat, start, log)
		if ai == nil {
			return nil, nil, done
		}
		info = ai // it was closed meanwhile and may have run
	}
	if !info.State.Terminal() {
		// The data landed and the job was closed: wait for it.
		if rec.State != stClosed {
			s.noteAfter(ctx, c, ledgerRecord{State: stClosed, Job: rec.Job})
		}
		log.Info("salesforce sink: resume: waiting for the job of an earlier attempt", "state", info.State)
		lk, err := s.awaitAndRecord(ctx, st, c, &stat, start)
		return s.redriveAborted(ctx, st, c, attempt, lk, err)
	}
	lk, err := s.collectAndRecord(ctx, st, c, &stat, info, start)
	return s.redriveAborted(ctx, st, c, attempt, lk, err)
}

// resumeFinished settles a chunk whose ledger says its job finished: when
// every row was loaded, without a call; otherwise from the job's results,
// fetched again (rows an Aborted job left unprocessed go in a new job).
func (s *Sink) resumeFinished(ctx context.Context, st *batchState, c *chunk, attempt int, rec ledgerRecord, stat *JobStat, start time.Time) ([]int, error) {
	if rec.JobState == string(salesforce.StateJobComplete) && rec.Loaded == len(c.rows) && rec.Rows == len(c.rows) {
		for _, i := range c.rows {
			st.succeed(i)
		}
		stat.Processed, stat.Succeeded = rec.Processed, rec.Succeeded
		s.record(*stat)
		return nil, nil
	}
	info := &salesforce.JobInfo{ID: rec.Job, State: salesforce.JobState(rec.JobState),
		NumberRecordsProcessed: rec.Processed, NumberRecordsFailed: rec.Failed, ErrorMessage: rec.Error}
	lk, err := s.collectAndRecord(ctx, st, c, stat, info, start)
	lk, err, _ = s.redriveAborted(ctx, st, c, attempt, lk, err)
	return lk, err
}

// abortResumed aborts the Open job of an upload an earlier attempt did not
// finish. It returns the job's state when the abort found it closed (it may
// have run: the caller settles it), else nil and done: false when the job
// is aborted (the chunk goes in a new job), true when it could not be
// aborted (the chunk's rows are failed, never sent again).
func (s *Sink) abortResumed(ctx context.Context, st *batchState, c *chunk, rec ledgerRecord, stat *JobStat, start time.Time, log *slog.Logger) (*salesforce.JobInfo, bool) {
	ai, err := s.abort(ctx, stat)
	switch {
	case err != nil:
		stat.Error, stat.Duration = err.Error(), time.Since(start)
		s.record(*stat)
		s.failRows(st, c.rows, CodeJobIncomplete, rec.Job, "not confirmed: job %s of an earlier attempt could not be aborted: %v", rec.Job, err)
		return nil, true
	case ai.State == salesforce.StateAborted:
		s.noteAfter(ctx, c, ledgerRecord{State: stAborted, Job: rec.Job})
		stat.Duration = time.Since(start)
		s.record(*stat)
		log.Info("salesforce sink: resume: aborted the Open job of an unfinished upload; sending the chunk in a new job")
		return nil, false
	}
	return ai, false
}

func (s *Sink) awaitAndRecord(ctx context.Context, st *batchState, c *chunk, stat *JobStat, start time.Time) ([]int, error) {
	defer func() {
		stat.Duration = time.Since(start)
		s.record(*stat)
	}()
	return s.awaitJob(ctx, st, c, stat)
}

// jobInfo GETs a job (no request once REQUEST_LIMIT_EXCEEDED stopped the
// sink).
func (s *Sink) jobInfo(ctx context.Context, id string) (*salesforce.JobInfo, error) {
	if s.limitHit.Load() {
		return nil, fmt.Errorf("not asked: Salesforce refused requests with REQUEST_LIMIT_EXCEEDED: %w", salesforce.ErrRequestLimit)
	}
	info, err := s.client.Job(ctx, id) // the client retries transient failures
	if errors.Is(err, salesforce.ErrRequestLimit) {
		s.limitHit.Store(true) // no request more: it would be refused too
	}
	return info, err
}

// redriveAborted sends again, in new jobs, the rows that a job of an
// earlier attempt left unprocessed when it was aborted (by a cancelled
// run, typically). They were never processed, so this cannot duplicate.
func (s *Sink) redriveAborted(ctx context.Context, st *batchState, c *chunk, attempt int, lk []int, err error) ([]int, error, bool) {
	if err != nil || c.lastState != stFinished || ctx.Err() != nil {
		return lk, err, true
	}
	if c.finalJobState != string(salesforce.StateAborted) {
		return lk, nil, true
	}
	var rows []int
	for _, i := range c.unprocessed {
		if !st.ok[i] {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 {
		return lk, nil, true
	}
	slices.Sort(rows)
	rows = slices.Compact(rows)
	s.log.Info("salesforce sink: resume: sending the rows an aborted job left unprocessed in a new job",
		"job", c.key, "rows", len(rows))
	for len(rows) > 0 {
		c2, rest, serr := s.spoolChunk(st, rows, len(rows))
		if serr != nil {
			return lk, serr, true
		}
		rows = rest
		if c2 == nil {
			continue
		}
		c2.batch, c2.attempt, c2.index, c2.from = c.batch, c.attempt, c.index, c.from
		if s.ledger.legacy {
			c2.key = s.ledger.key(c2.digest)
		} else {
			c2.key = c.key + ".r" + strconv.Itoa(c.redrives)
		}
		c.redrives++
		lk2, rerr := s.runChunk(ctx, st, c2, attempt)
		s.dropSpool(c2)
		lk = append(lk, lk2...)
		if rerr != nil {
			return lk, rerr, true
		}
	}
	return lk, nil, true
}
