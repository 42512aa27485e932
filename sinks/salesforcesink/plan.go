package salesforcesink

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
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
	// API is "rest" for a REST collections request (File is
	// rest-0001.json, its body, or for a delete rest-0001.ids, its ids);
	// empty for a Bulk job.
	API string `json:"api,omitempty"`
}

// APICalls estimates the Salesforce REST calls a load makes (contract §2):
// per job one create, one upload (PUT), one close (PATCH), at least one
// poll and up to three result GETs (successful, failed, unprocessed); one
// call per REST collections request; plus the token request of the auth
// flow. Lock-error re-drives (lock_retries) and extra polls of slow jobs
// come on top.
type APICalls struct {
	Jobs    int `json:"jobs"`
	Create  int `json:"create"`
	Upload  int `json:"upload"`
	Close   int `json:"close"`
	Poll    int `json:"poll_min"`
	Results int `json:"results"`
	// REST is the REST collections requests (one call each).
	REST  int `json:"rest_requests"`
	Auth  int `json:"auth"`
	Total int `json:"total_min"`
}

// PlannedCalls returns the API calls of jobs Bulk jobs made by sinks sinks
// (each sink authenticates once).
func PlannedCalls(jobs, sinks int) APICalls {
	c := APICalls{Jobs: jobs, Create: jobs, Upload: jobs, Close: jobs, Poll: jobs, Results: 3 * jobs, Auth: sinks}
	c.Total = c.Create + c.Upload + c.Close + c.Poll + c.Results + c.Auth
	return c
}

// PlannedCallsOf returns the API calls of a plan's files (a PlanSink's:
// job-*.csv are Bulk jobs, rest-* REST requests) made by sinks sinks.
func PlannedCallsOf(files []pipeline.PlanFile, sinks int) APICalls {
	jobs, rest := 0, 0
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f.File), "rest-") {
			rest++
		} else {
			jobs++
		}
	}
	c := PlannedCalls(jobs, sinks)
	c.REST = rest
	c.Total += rest
	return c
}

// Add returns the sum of two estimates.
func (c APICalls) Add(d APICalls) APICalls {
	return APICalls{Jobs: c.Jobs + d.Jobs, Create: c.Create + d.Create, Upload: c.Upload + d.Upload, Close: c.Close + d.Close,
		Poll: c.Poll + d.Poll, Results: c.Results + d.Results, REST: c.REST + d.REST, Auth: c.Auth + d.Auth, Total: c.Total + d.Total}
}

// planPartialSuffix marks job files that are not committed yet: a
// PlanSink renames them at Close, so a cancelled plan leaves no job file.
const planPartialSuffix = ".partial"

// PlanSink is a pipeline.Sink that writes, instead of loading, the exact
// job CSVs the "salesforce" sink would upload for the same rows: same
// encoder, header, delimiter and line ending, same split by the batches
// the engine hands the real sink, max_job_rows and max_job_bytes, same
// rows refused locally (invalid_value, row_too_large). Rows taken for a
// job file count as loaded. It makes no network call. Jobs are numbered
// in the order the engine hands batches over (one Write at a time).
//
// Lock-error follow-up jobs (lock_retries) depend on Salesforce's answers
// and are not planned.
type PlanSink struct {
	opts  *Options
	enc   *encoder
	dir   string
	probe *Sink // cuts REST requests as the sink does (no client)

	mu      sync.Mutex
	hdr     []byte // the encoded header
	jobs    []PlanJob
	rows    int64
	batches int64 // Writes so far: the next batch's seq
	closed  bool

	// The Bulk cut, kept across Writes (see cut): the job being built
	// (header and records, reused from job to job), its rows, the rows
	// that have reached the sink since the last boundary of the batches
	// the engine would hand the real sink, and the rows left to encode
	// cell by cell (appendRecordNext).
	buf      []byte
	jobRows  int
	fed      int
	feedRows int // the real sink's batch size (batchRows), fixed at OpenPlan
	backoff  int
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
	var old []string
	for _, pat := range []string{"job-*.csv*", "rest-*.json*", "rest-*.ids*"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		old = append(old, m...)
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("salesforce plan: remove the earlier plan's %s: %w", f, err)
		}
	}
	return &PlanSink{opts: opts, enc: newEncoder(in, opts.delimiter(), opts.lineEnding()), dir: dir, probe: probe,
		feedRows: probe.batchRows()}, nil
}

// BatchPolicy asks for batches one at a time, so that job numbers follow
// the input order. The Bulk cut does not need the real sink's batches
// (max_job_rows rows; with api auto at least rest_max_rows+1): Write
// keeps the cut across batches (see cut), so with api bulk the engine
// hands batches over as they come instead of holding 10,000 rows (by
// default) per Write, and their boxed values, while it regroups them.
// With api auto the first batch must tell, as in the sink, whether the
// whole input fits one REST load: batches of rest_max_rows+1 rows do.
// With api rest, the REST requests are cut per batch as the sink cuts
// them, so the batches are the sink's.
func (p *PlanSink) BatchPolicy() pipeline.BatchPolicy {
	switch {
	case p.opts.api() == APIREST:
		return pipeline.BatchPolicy{MaxRows: p.feedRows, MaxInFlight: 1}
	case p.probe.useREST(0, 1):
		return pipeline.BatchPolicy{MaxRows: p.opts.restMaxRows() + 1, MaxInFlight: 1}
	}
	return pipeline.BatchPolicy{MaxInFlight: 1}
}

// Write encodes the batch into job files, split exactly as (*Sink).Write
// splits the batches the engine would hand the real sink. It returns a
// *pipeline.RowErrors for rows the real sink would refuse before
// uploading. The job being built when Write returns is written by a later
// Write or by Close.
//
// Write checks ctx once, before it takes any row: a batch is planned
// whole or not at all, so that no row of a batch the engine dead-letters
// (a cancelled Write's) is also in a job file.
func (p *PlanSink) Write(ctx context.Context, b *pipeline.Batch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("salesforce plan: Write after Close")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	seq := p.batches
	p.batches++
	if p.probe.useREST(seq, b.Len()) {
		return p.writeREST(b)
	}
	var re pipeline.RowErrors
	for i := range b.Len() {
		if err := p.cut(b.Row(i)); err != nil {
			var rowErr *pipeline.RowError
			if !errors.As(err, &rowErr) {
				return err
			}
			re.Add(i, err)
		}
	}
	if len(re.Failures) > 0 {
		return &re
	}
	return nil
}

// cut adds one row to the Bulk jobs (p.mu held), as (*Sink).Write cuts
// each of its batches: a batch of p.feedRows rows (the engine's grouping
// for the real sink, counted here as rows arrive: p.fed) ends the job
// being built, and within it a job ends at max_job_rows rows or before
// the row that would take it past max_job_bytes. A row the sink would
// refuse is returned as a *pipeline.RowError and still counts towards
// the batch, as it does in the sink's. Any other error is the job file's.
func (p *PlanSink) cut(row pipeline.Row) error {
	if p.hdr == nil {
		p.hdr = p.enc.header(nil)
	}
	if p.fed == p.feedRows {
		if err := p.flush(len(p.buf)); err != nil {
			return err
		}
		p.fed = 0
	}
	p.fed++
	hdr := p.hdr
	if p.jobRows == 0 {
		p.buf = append(p.buf[:0], hdr...)
	}
	start := len(p.buf)
	buf, err := p.enc.appendRecordNext(p.buf, row, &p.backoff)
	p.buf = buf
	if err != nil {
		return err
	}
	line := len(p.buf) - start
	if int64(len(hdr)+line) > p.opts.MaxJobBytes {
		p.buf = p.buf[:start]
		return rowErr(CodeRowTooLarge, "", "", "the encoded row is %d bytes, above max_job_bytes %d", line, p.opts.MaxJobBytes)
	}
	if p.jobRows > 0 && (p.jobRows == p.opts.MaxJobRows || int64(len(p.buf)) > p.opts.MaxJobBytes) {
		// The row starts the next job: write the job before it, then
		// move the row behind a new header.
		if err := p.flush(start); err != nil {
			return err
		}
		n := copy(p.buf[len(hdr):], p.buf[start:])
		p.buf = p.buf[:len(hdr)+n]
	}
	p.jobRows++
	return nil
}

// flush writes p.buf[:n], the job being built, as the next job file, if
// it has a row (p.mu held). The job buffer is reused for the next job
// (os.WriteFile copies it out).
func (p *PlanSink) flush(n int) error {
	if p.jobRows == 0 {
		return nil
	}
	name := filepath.Join(p.dir, fmt.Sprintf("job-%04d.csv", len(p.jobs)+1))
	if err := os.WriteFile(name+planPartialSuffix, p.buf[:n], 0o644); err != nil {
		return fmt.Errorf("salesforce plan: %w", err)
	}
	p.jobs = append(p.jobs, PlanJob{File: name, Rows: p.jobRows, Bytes: int64(n)})
	p.rows += int64(p.jobRows)
	p.jobRows = 0
	return nil
}

// writeREST writes the batch as the sObject Collections requests the
// sink would send (p.mu held): rest-0001.json, ... with each request's
// JSON body, or for a delete rest-0001.ids with its ids (the DELETE's ids
// parameter, comma-separated). A delete's ids are checked for their shape
// only (the sink also checks their key prefix, which needs a describe).
func (p *PlanSink) writeREST(b *pipeline.Batch) error {
	var re pipeline.RowErrors
	rows := make([]int, b.Len())
	for i := range rows {
		rows[i] = i
	}
	ext := ".json"
	if p.probe.op == salesforce.OpDelete {
		ext = ".ids"
	}
	for _, rq := range p.probe.cutRequests(b, rows, nil, re.Add) {
		body := rq.body
		if ext == ".ids" {
			body = append(bytes.TrimSuffix(body, []byte(",")), '\n')
		}
		name := filepath.Join(p.dir, fmt.Sprintf("rest-%04d%s", len(p.jobs)+1, ext))
		if err := os.WriteFile(name+planPartialSuffix, body, 0o644); err != nil {
			return fmt.Errorf("salesforce plan: %w", err)
		}
		p.jobs = append(p.jobs, PlanJob{File: name, Rows: len(rq.rows), Bytes: int64(len(body)), API: APIREST})
		p.rows += int64(len(rq.rows))
	}
	if len(re.Failures) > 0 {
		return &re
	}
	return nil
}

// ReleasesRows implements pipeline.RowReleaser: Write encodes every row
// before it returns (job CSV or REST bodies) and keeps none.
func (p *PlanSink) ReleasesRows() bool { return true }

// Close commits the job files (renames them into place). It is idempotent.
func (p *PlanSink) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	// The last job: its rows were taken (counted loaded) by a Write.
	if err := p.flush(len(p.buf)); err != nil {
		return err
	}
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

// WritesAreFinal reports true (pipeline.FinalWriter): a plan sends
// nothing, so there is no output whose absence the engine must account
// for row by row — its rows are counted "planned", and when Close cannot
// rename the job files into place the plan fails as a whole (the error
// names the files; run the plan again). Without it the engine would spool
// every planned row to a commit log only to read it back if Close failed:
// 28 % of plan-csv's CPU in `bulkflow bench` (issue 23).
func (p *PlanSink) WritesAreFinal() bool { return true }

// Jobs returns the job files written so far, in job order.
func (p *PlanSink) Jobs() []PlanJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PlanJob(nil), p.jobs...)
}

// PlanStats is what a PlanSink reports under its stage in the run report.
type PlanStats struct {
	Object    string `json:"object"`
	Operation string `json:"operation"`
	// API is the api option (auto, bulk, rest) and Path the path the
	// sink would take: "rest", "bulk", or "" when no row reached it.
	API       string    `json:"api"`
	Path      string    `json:"path"`
	Dir       string    `json:"dir"`
	Rows      int64     `json:"rows"`
	Bytes     int64     `json:"bytes"`
	Jobs      []PlanJob `json:"jobs"`
	APICalls  APICalls  `json:"api_calls"`
	restLimit int       // rest_max_rows, for SummaryLine
}

// Stats returns the plan's jobs and their estimated API calls (see
// pipeline.StatsReporter).
func (p *PlanSink) Stats() any {
	jobs := p.Jobs()
	st := PlanStats{Object: p.opts.Object, Operation: string(p.opts.operation()), API: p.opts.api(), Dir: p.dir, Jobs: jobs,
		APICalls: PlannedCallsOf(p.PlanFiles(), 1), restLimit: p.opts.restMaxRows()}
	if st.Jobs == nil {
		st.Jobs = []PlanJob{}
	}
	for _, j := range jobs {
		st.Rows += int64(j.Rows)
		st.Bytes += j.Bytes
		st.Path = cmp.Or(j.API, APIBulk)
	}
	return st
}

// SummaryLine says which path the sink would take and its API calls, for
// the plan's text summary (pipeline.SummaryLiner).
func (st PlanStats) SummaryLine() string {
	why := ""
	if st.API == APIAuto {
		why = fmt.Sprintf(" (api auto: at most rest_max_rows %d rows)", st.restLimit)
		if st.Path == APIBulk {
			why = fmt.Sprintf(" (api auto: more than rest_max_rows %d rows)", st.restLimit)
		}
	}
	c := st.APICalls
	switch st.Path {
	case APIREST:
		return fmt.Sprintf("REST collections%s: %d requests (%d records), %d API calls", why, c.REST, st.Rows, c.Total)
	case APIBulk:
		return fmt.Sprintf("Bulk API 2.0%s: %d jobs (%d rows), at least %d API calls", why, c.Jobs, st.Rows, c.Total)
	}
	return ""
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
