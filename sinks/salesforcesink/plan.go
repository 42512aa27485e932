package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/bulkflow/bulkflow/pipeline"
)

// PlanJob is one job file written by a PlanSink: the exact CSV the
// "salesforce" sink would upload in one Bulk API 2.0 ingest job.
type PlanJob struct {
	// File is the job file's path: <dir>/job-0001.csv, job-0002.csv, ...
	File string `json:"file"`
	// Rows is the number of data rows (the header excluded).
	Rows int `json:"rows"`
	// Bytes is the file's size, header included: the upload's size.
	Bytes int64 `json:"bytes"`
}

// APICalls estimates the Salesforce REST calls a load makes (contract §2):
// per job one create, one upload (PUT), one close (PATCH), at least one
// poll and up to three result GETs (successful, failed, unprocessed), plus
// the token request of the auth flow. Lock-error re-drives (lock_retries)
// and extra polls of slow jobs come on top.
type APICalls struct {
	Jobs    int `json:"jobs"`
	Create  int `json:"create"`
	Upload  int `json:"upload"`
	Close   int `json:"close"`
	Poll    int `json:"poll_min"`
	Results int `json:"results"`
	Auth    int `json:"auth"`
	Total   int `json:"total_min"`
}

// PlannedCalls returns the API calls of jobs jobs made by sinks sinks
// (each sink authenticates once).
func PlannedCalls(jobs, sinks int) APICalls {
	c := APICalls{Jobs: jobs, Create: jobs, Upload: jobs, Close: jobs, Poll: jobs, Results: 3 * jobs, Auth: sinks}
	c.Total = c.Create + c.Upload + c.Close + c.Poll + c.Results + c.Auth
	return c
}

// planPartialSuffix marks job files that are not committed yet: a
// PlanSink renames them at Close, so a cancelled plan leaves no job file.
const planPartialSuffix = ".partial"

// PlanSink is a pipeline.Sink that writes, instead of loading, the exact
// job CSVs the "salesforce" sink would upload for the same rows: same
// encoder, header, delimiter and line ending, same split by max_job_rows
// (the engine's batches) and max_job_bytes, same rows refused locally
// (invalid_value, row_too_large). Rows written to a job file count as
// loaded. It makes no network call. Jobs are numbered in the order the
// engine hands batches over (one Write at a time).
//
// Lock-error follow-up jobs (lock_retries) depend on Salesforce's answers
// and are not planned.
type PlanSink struct {
	opts *Options
	enc  *encoder
	dir  string

	mu     sync.Mutex
	hdr    []byte // the encoded header
	buf    []byte // reused job file buffer
	jobs   []PlanJob
	rows   int64
	closed bool
}

// Interface guards.
var (
	_ pipeline.Sink          = (*PlanSink)(nil)
	_ pipeline.Batcher       = (*PlanSink)(nil)
	_ pipeline.StatsReporter = (*PlanSink)(nil)
)

// OpenPlan validates opts as Open does (options and the operation's input
// fields) and returns a PlanSink writing job files for rows of schema in
// to dir (created if needed; job files of an earlier plan in it are
// removed). It does not authenticate or contact Salesforce.
func OpenPlan(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema, dir string) (*PlanSink, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	probe := &Sink{opts: opts, op: opts.operation(), schema: in, idCol: -1}
	if err := probe.checkColumns(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("salesforce plan: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "job-*.csv*"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("salesforce plan: remove the earlier plan's %s: %w", f, err)
		}
	}
	return &PlanSink{opts: opts, enc: newEncoder(in, opts.delimiter(), opts.lineEnding()), dir: dir}, nil
}

// BatchPolicy asks for the batches the real sink gets (max_job_rows rows;
// with api auto at least rest_max_rows+1) one at a time, so that job
// numbers follow the input order. The plan describes Bulk jobs: an input
// api auto or rest would send through REST is planned as jobs too.
func (p *PlanSink) BatchPolicy() pipeline.BatchPolicy {
	return pipeline.BatchPolicy{MaxRows: (&Sink{opts: p.opts}).batchRows(), MaxInFlight: 1}
}

// Write encodes the batch into one or more job files, split exactly as
// (*Sink).Write splits it. It returns a *pipeline.RowErrors for rows the
// real sink would refuse before uploading.
func (p *PlanSink) Write(ctx context.Context, b *pipeline.Batch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("salesforce plan: Write after Close")
	}
	var re pipeline.RowErrors
	if p.hdr == nil {
		p.hdr = p.enc.header(nil)
	}
	hdr := p.hdr
	// Rows are encoded straight into buf, the job file being built, which
	// is reused from job to job (os.WriteFile copies it out).
	buf := p.buf[:0]
	defer func() { p.buf = buf[:0] }()
	rows := 0
	flush := func(n int) error { // writes buf[:n] as a job of rows rows
		if rows == 0 {
			return nil
		}
		name := filepath.Join(p.dir, fmt.Sprintf("job-%04d.csv", len(p.jobs)+1))
		if err := os.WriteFile(name+planPartialSuffix, buf[:n], 0o644); err != nil {
			return fmt.Errorf("salesforce plan: %w", err)
		}
		p.jobs = append(p.jobs, PlanJob{File: name, Rows: rows, Bytes: int64(n)})
		p.rows += int64(rows)
		rows = 0
		return nil
	}
	for i := range b.Len() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rows == 0 {
			buf = append(buf[:0], hdr...)
		}
		start := len(buf)
		var err error
		buf, err = p.enc.appendRecord(buf, b.Row(i))
		if err != nil {
			re.Add(i, err)
			continue
		}
		line := len(buf) - start
		if int64(len(hdr)+line) > p.opts.MaxJobBytes {
			buf = buf[:start]
			re.Add(i, rowErr(CodeRowTooLarge, "", "", "the encoded row is %d bytes, above max_job_bytes %d", line, p.opts.MaxJobBytes))
			continue
		}
		if rows > 0 && (rows == p.opts.MaxJobRows || int64(len(buf)) > p.opts.MaxJobBytes) {
			// The row starts the next job: write the job before it, then
			// move the row behind a new header.
			if err := flush(start); err != nil {
				return err
			}
			n := copy(buf[len(hdr):], buf[start:])
			buf = buf[:len(hdr)+n]
		}
		rows++
	}
	if err := flush(len(buf)); err != nil {
		return err
	}
	if len(re.Failures) > 0 {
		return &re
	}
	return nil
}

// Close commits the job files (renames them into place). It is idempotent.
func (p *PlanSink) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, j := range p.jobs {
		if err := os.Rename(j.File+planPartialSuffix, j.File); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("salesforce plan: %w", err)
	}
	return nil
}

// Jobs returns the job files written so far, in job order.
func (p *PlanSink) Jobs() []PlanJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PlanJob(nil), p.jobs...)
}

// PlanStats is what a PlanSink reports under its stage in the run report.
type PlanStats struct {
	Object    string    `json:"object"`
	Operation string    `json:"operation"`
	Dir       string    `json:"dir"`
	Rows      int64     `json:"rows"`
	Bytes     int64     `json:"bytes"`
	Jobs      []PlanJob `json:"jobs"`
	APICalls  APICalls  `json:"api_calls"`
}

// Stats returns the plan's jobs and their estimated API calls (see
// pipeline.StatsReporter).
func (p *PlanSink) Stats() any {
	jobs := p.Jobs()
	st := PlanStats{Object: p.opts.Object, Operation: string(p.opts.operation()), Dir: p.dir, Jobs: jobs,
		APICalls: PlannedCalls(len(jobs), 1)}
	if st.Jobs == nil {
		st.Jobs = []PlanJob{}
	}
	for _, j := range jobs {
		st.Rows += int64(j.Rows)
		st.Bytes += j.Bytes
	}
	return st
}

// RetryableCodes are the dead-letter error codes whose rows `bulkflow
// replay` may send again unchanged: the RecoveryRetry codes of
// pipeline.Codes, sorted.
//
// Deprecated: use pipeline.RecoveryOf or pipeline.Codes, which also say
// which rows need `bulkflow run --resume` (RecoveryResume) or a look
// (RecoveryInspect).
var RetryableCodes = func() []string {
	var out []string
	for _, c := range pipeline.Codes() {
		if c.Recovery.Retryable() {
			out = append(out, c.Code)
		}
	}
	return out
}()

// Retryable reports whether a dead-lettered row with error code code may
// be sent again unchanged (pipeline.RetryableCode). The message is not
// read: rows are classified by their code alone.
//
// Deprecated: use pipeline.RetryableCode or pipeline.RecoveryOf.
func Retryable(code, _ string) bool { return pipeline.RetryableCode(code) }
