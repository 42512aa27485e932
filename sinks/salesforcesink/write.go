package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/bulkflow/bulkflow/pipeline"
)

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
	bufs := getBatchBufs(n, s.schema.Len())
	defer putBatchBufs(bufs)
	st := &batchState{cells: bufs.cells, errs: bufs.errs, ok: bufs.ok, plain: bufs.plain}
	if wantIDs {
		st.ids = make([]string, n)
	}
	pending := s.encodeRows(b, st, bufs)
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
	if err := s.writeBulk(ctx, b, st, pending, seq, &cutEnded); err != nil {
		return st.ids, err
	}
	if ctx.Err() != nil {
		s.noteCancel()
	}
	if re := s.outcomes(st, n); re != nil {
		return st.ids, re
	}
	return st.ids, nil
}

// encodeRows encodes the cells of every row of b into st, recording the
// rows it cannot encode as failed, and returns the rows to send, in
// batch order.
func (s *Sink) encodeRows(b *pipeline.Batch, st *batchState, bufs *batchBufs) []int {
	nf := s.schema.Len()
	pending, all := bufs.pending, bufs.all
	for i := range b.Len() {
		c, err := s.enc.cells(b.Row(i), all[i*nf:i*nf:(i+1)*nf])
		if err != nil {
			st.errs[i] = err
			continue
		}
		st.cells[i] = c
		pending = append(pending, i)
	}
	return pending
}

// writeBulk sends pending rows of batch seq in Bulk ingest jobs: the first
// attempt cuts them into chunks of max_job_rows, and rows that hit
// UNABLE_TO_LOCK_ROW are re-driven in smaller jobs, up to lock_retries
// times. *cutEnded is set once the first attempt's cut has ended. An error
// fails the whole batch.
func (s *Sink) writeBulk(ctx context.Context, b *pipeline.Batch, st *batchState, pending []int, seq int64, cutEnded *bool) error {
	retries := s.opts.lockRetries()
	for attempt := 0; len(pending) > 0; attempt++ {
		maxRows := s.opts.MaxJobRows
		if attempt > 0 {
			maxRows = max(1, maxRows>>attempt)
		}
		locked, cut, err := s.bulkAttempt(ctx, b, st, pending, seq, attempt, maxRows, cutEnded)
		if err != nil {
			return err
		}
		pending = nil
		if attempt == 0 && !*cutEnded && ctx.Err() == nil {
			// The batch's last rows made no chunk (refused locally).
			*cutEnded = true
			if err := s.endCut(seq, 0, cut-1); err != nil {
				return s.failBatch(st, nil, err)
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
	return nil
}

// bulkAttempt cuts pending into chunks of at most maxRows rows and runs
// each as one job, in order. It returns the rows that hit a lock error and
// the number of chunks cut. When ctx is cancelled, the rows not cut yet
// fail as cancelled.
func (s *Sink) bulkAttempt(ctx context.Context, b *pipeline.Batch, st *batchState, pending []int, seq int64, attempt, maxRows int, cutEnded *bool) (locked []int, cut int, err error) {
	for len(pending) > 0 {
		if ctx.Err() != nil {
			s.noteCancel()
			for _, i := range pending {
				st.fail(i, s.rowErr(CodeCancelled, "", "", "not loaded: the run was cancelled"))
			}
			return locked, cut, nil
		}
		c, rest, err := s.spoolChunk(st, pending, maxRows)
		if err != nil {
			return locked, cut, s.failBatch(st, pending, fmt.Errorf("salesforce sink: spool: %w", err))
		}
		pending = rest
		if c == nil {
			continue
		}
		c.batch, c.attempt, c.index = seq, attempt, cut
		c.from = b.Origin(c.rows[0]).String()
		c.lastOfCut = attempt == 0 && len(rest) == 0
		cut++
		if s.ledger != nil {
			if s.ledger.legacy {
				c.key = s.ledger.key(c.digest)
			} else {
				c.key = chunkKey(seq, attempt, c.index)
			}
		}
		if c.lastOfCut {
			*cutEnded = true
		}
		lk, err := s.runChunk(ctx, st, c, attempt)
		s.dropSpool(c)
		if err != nil {
			return locked, cut, s.failBatch(st, append(c.rows, pending...), err)
		}
		locked = append(locked, lk...)
	}
	return locked, cut, nil
}

// outcomes returns the failed rows of the batch (nil when every row was
// loaded); a row with no recorded outcome fails as result_mismatch.
func (s *Sink) outcomes(st *batchState, n int) *pipeline.RowErrors {
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
	if len(re.Failures) == 0 {
		return nil
	}
	s.countCodes(&re)
	return &re
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
		c.releaseData()
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
