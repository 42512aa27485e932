package salesforce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"
	"time"
)

func jobPath(kind, id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return "", fmt.Errorf("invalid job id %q", id)
	}
	return "jobs/" + kind + "/" + url.PathEscape(id), nil
}

// CreateJob creates an ingest job (POST /jobs/ingest, contract §2.2). The
// job starts Open; upload its data once with UploadJobData, then CloseJob.
// ContentType defaults to CSV.
func (c *Client) CreateJob(ctx context.Context, req CreateJobRequest) (*JobInfo, error) {
	if req.ContentType == "" {
		req.ContentType = "CSV"
	}
	var info JobInfo
	// Not idempotent: a lost response may have created a job, so only
	// answers that prove non-execution (or 5xx) are retried, unless the
	// caller accepts an empty Open job left behind (RepeatableCreate).
	if err := c.doJSON(ctx, &call{method: "POST", path: "jobs/ingest", json: req, idempotent: c.repeatableCreate}, &info); err != nil {
		return nil, fmt.Errorf("create job %s: %w", req.Object, err)
	}
	return &info, nil
}

// UploadJobData uploads the job's CSV (PUT /jobs/ingest/{id}/batches,
// contract §2.4) with Content-Type text/csv. Salesforce accepts exactly one
// upload per job, so the upload is never retried blindly:
//
//   - a 401 INVALID_SESSION_ID is answered before any data is accepted: the
//     client re-authenticates once and replays the body;
//   - a definite rejection (4xx) is returned at once;
//   - after an ambiguous failure (connection lost, timeout, 5xx) or a rate
//     limit, the client GETs the job. If it is still Open the body is
//     replayed once; a replay rejected as a second upload
//     (ErrDuplicateUpload) proves the first attempt landed and counts as
//     success. If the job has left Open, the error matches
//     ErrUploadUnknown and the caller should abort the job and load the
//     data in a new one.
func (c *Client) UploadJobData(ctx context.Context, jobID string, body UploadBody) error {
	p, err := jobPath("ingest", jobID)
	if err != nil {
		return fmt.Errorf("upload job data: %w", err)
	}
	if body.Open == nil {
		return fmt.Errorf("upload job data %s: nil body", jobID)
	}
	put := func() error {
		resp, err := c.do(ctx, &call{method: "PUT", path: p + "/batches", upload: body,
			contentType: "text/csv", noRetry: true})
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil
	}
	first := put()
	if first == nil {
		return nil
	}
	if ctx.Err() != nil || !(ambiguous(first) || refused(first)) {
		return fmt.Errorf("upload job data %s: %w", jobID, first)
	}
	if refused(first) {
		if err := c.sleep(ctx, max(retryAfter(first), c.initialBackoff)); err != nil {
			return fmt.Errorf("upload job data %s: %w", jobID, first)
		}
	}
	info, err := c.Job(ctx, jobID)
	if err != nil {
		return fmt.Errorf("upload job data %s: %w (checking job state: %w)", jobID, first, err)
	}
	if info.State != StateOpen {
		return fmt.Errorf("upload job data %s: %w: job is %s after: %w", jobID, ErrUploadUnknown, info.State, first)
	}
	c.log.WarnContext(ctx, "salesforce: replaying upload to a job still Open", "job", jobID, "err", first)
	second := put()
	switch {
	case second == nil:
		return nil
	case errors.Is(second, ErrDuplicateUpload):
		c.log.InfoContext(ctx, "salesforce: first upload had landed", "job", jobID)
		return nil
	}
	return fmt.Errorf("upload job data %s: replay after %v: %w", jobID, first, second)
}

// CloseJob marks the upload complete (PATCH state UploadComplete, contract
// §2.5) so Salesforce starts processing. It returns the PATCH response's
// JobInfo subset.
func (c *Client) CloseJob(ctx context.Context, jobID string) (*JobInfo, error) {
	info, err := c.setState(ctx, "ingest", jobID, StateUploadComplete)
	if err != nil {
		return nil, fmt.Errorf("close job %s: %w", jobID, err)
	}
	return info, nil
}

// AbortJob aborts an ingest job (PATCH state Aborted). Rows already
// committed stay.
func (c *Client) AbortJob(ctx context.Context, jobID string) (*JobInfo, error) {
	info, err := c.setState(ctx, "ingest", jobID, StateAborted)
	if err != nil {
		return nil, fmt.Errorf("abort job %s: %w", jobID, err)
	}
	return info, nil
}

// setState PATCHes the job's state. The PATCH is retried after transport
// errors; if a retry is refused with INVALIDJOBSTATE, an earlier attempt
// may have succeeded, so the job is read back and accepted when it has
// reached (or passed) the wanted state.
func (c *Client) setState(ctx context.Context, kind, jobID string, want JobState) (*JobInfo, error) {
	p, err := jobPath(kind, jobID)
	if err != nil {
		return nil, err
	}
	cl := &call{method: "PATCH", path: p, json: stateRequest{State: want}, idempotent: true}
	var info JobInfo
	err = c.doJSON(ctx, cl, &info)
	if err == nil {
		return &info, nil
	}
	if cl.attempts > 1 && errors.Is(err, ErrInvalidJobState) {
		got, gerr := c.job(ctx, kind, jobID)
		if gerr == nil && reached(got.State, want) {
			return got, nil
		}
	}
	return nil, err
}

func reached(have, want JobState) bool {
	if want == StateAborted {
		return have == StateAborted
	}
	return have != StateOpen && have != StateAborted
}

// DeleteJob deletes a job and its results (DELETE, contract §2.8). Only
// UploadComplete or terminal jobs can be deleted.
func (c *Client) DeleteJob(ctx context.Context, jobID string) error {
	if err := c.deleteJob(ctx, "ingest", jobID); err != nil {
		return fmt.Errorf("delete job %s: %w", jobID, err)
	}
	return nil
}

func (c *Client) deleteJob(ctx context.Context, kind, jobID string) error {
	p, err := jobPath(kind, jobID)
	if err != nil {
		return err
	}
	cl := &call{method: "DELETE", path: p, idempotent: true}
	err = c.doJSON(ctx, cl, nil)
	if err != nil && cl.attempts > 1 && errors.Is(err, ErrNotFound) {
		return nil // an earlier attempt deleted it
	}
	return err
}

// Job returns the full JobInfo of an ingest job (GET, contract §2.6).
func (c *Client) Job(ctx context.Context, jobID string) (*JobInfo, error) {
	info, err := c.job(ctx, "ingest", jobID)
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", jobID, err)
	}
	return info, nil
}

func (c *Client) job(ctx context.Context, kind, jobID string) (*JobInfo, error) {
	p, err := jobPath(kind, jobID)
	if err != nil {
		return nil, err
	}
	var info JobInfo
	if err := c.doJSON(ctx, &call{method: "GET", path: p, idempotent: true}, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// ListJobsOptions filter ListJobs (contract §2.7). Empty fields are not sent.
type ListJobsOptions struct {
	JobType             string // V2Ingest, Classic, BigObjectIngest, V2Query
	IsPkChunkingEnabled *bool
	ConcurrencyMode     string
}

// ListJobsPage fetches one page of ingest jobs. Pass next == "" for the
// first page and JobList.NextRecordsURL for later ones (opts is then
// ignored: the URL carries the query).
func (c *Client) ListJobsPage(ctx context.Context, opts *ListJobsOptions, next string) (*JobList, error) {
	return c.listPage(ctx, "ingest", opts, next)
}

func (c *Client) listPage(ctx context.Context, kind string, opts *ListJobsOptions, next string) (*JobList, error) {
	cl := &call{method: "GET", path: "jobs/" + kind, idempotent: true}
	if next != "" {
		u, err := url.Parse(next)
		if err != nil || u.Host != "" || !strings.HasPrefix(u.Path, "/services/") {
			return nil, fmt.Errorf("list %s jobs: unexpected nextRecordsUrl %q", kind, next)
		}
		cl.path = u.RequestURI()
	} else if opts != nil {
		q := url.Values{}
		if opts.JobType != "" {
			q.Set("jobType", opts.JobType)
		}
		if opts.IsPkChunkingEnabled != nil {
			q.Set("isPkChunkingEnabled", fmt.Sprint(*opts.IsPkChunkingEnabled))
		}
		if opts.ConcurrencyMode != "" {
			q.Set("concurrencyMode", opts.ConcurrencyMode)
		}
		cl.query = q
	}
	var l JobList
	if err := c.doJSON(ctx, cl, &l); err != nil {
		return nil, fmt.Errorf("list %s jobs: %w", kind, err)
	}
	return &l, nil
}

// ListJobs iterates over all ingest jobs, following nextRecordsUrl until
// done. Iteration stops after the first error, which is yielded.
func (c *Client) ListJobs(ctx context.Context, opts *ListJobsOptions) iter.Seq2[*JobInfo, error] {
	return c.listAll(ctx, "ingest", opts)
}

func (c *Client) listAll(ctx context.Context, kind string, opts *ListJobsOptions) iter.Seq2[*JobInfo, error] {
	return func(yield func(*JobInfo, error) bool) {
		next := ""
		for {
			page, err := c.listPage(ctx, kind, opts, next)
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range page.Records {
				if !yield(&page.Records[i], nil) {
					return
				}
			}
			if page.Done || page.NextRecordsURL == "" {
				return
			}
			next = page.NextRecordsURL
		}
	}
}

// PollOptions shape WaitJob's polling. Zero values mean defaults.
type PollOptions struct {
	// Initial is the first delay between polls (default 1s).
	Initial time.Duration
	// Max caps the delay (default 10s).
	Max time.Duration
	// Multiplier grows the delay after each poll (default 1.5).
	Multiplier float64
	// Timeout is the patience: after it WaitJob gives up with
	// ErrPollTimeout. 0 means wait until ctx ends.
	Timeout time.Duration
	// OnPoll, if set, sees every JobInfo fetched.
	OnPoll func(*JobInfo)
	// Failures is how many polls in a row may fail (each after the
	// call's own retries) before WaitJob returns the error; a failed poll
	// waits the current delay and polls again, within Timeout. Definite
	// refusals (IsDefiniteRefusal) end the wait at once. Default 0: the
	// first failed poll ends it.
	Failures int
}

// WaitJob polls an ingest job until it is JobComplete, Failed or Aborted
// and returns its final JobInfo with a nil error; inspect State (or call
// JobInfo.Err) for the outcome. If ctx ends or the patience
// (PollOptions.Timeout) runs out first, it returns the last JobInfo seen
// (possibly nil) and an error matching ErrPollTimeout (and ctx.Err() when
// ctx ended); the job may still finish later.
func (c *Client) WaitJob(ctx context.Context, jobID string, opts *PollOptions) (*JobInfo, error) {
	return c.wait(ctx, "ingest", jobID, opts)
}

func (c *Client) wait(ctx context.Context, kind, jobID string, opts *PollOptions) (*JobInfo, error) {
	var o PollOptions
	if opts != nil {
		o = *opts
	}
	if o.Initial <= 0 {
		o.Initial = time.Second
	}
	if o.Max <= 0 {
		o.Max = 10 * time.Second
	}
	if o.Multiplier < 1 {
		o.Multiplier = 1.5
	}
	start := c.now()
	delay := o.Initial
	var last *JobInfo
	timeout := func(cause error) (*JobInfo, error) {
		state := JobState("unknown")
		if last != nil {
			state = last.State
		}
		if cause != nil {
			return last, fmt.Errorf("wait %s job %s: %w (last state %s): %w", kind, jobID, ErrPollTimeout, state, cause)
		}
		return last, fmt.Errorf("wait %s job %s: %w after %v (last state %s)", kind, jobID, ErrPollTimeout, o.Timeout, state)
	}
	failed := 0
	for {
		info, err := c.job(ctx, kind, jobID)
		if err != nil {
			if ctx.Err() != nil {
				return timeout(ctx.Err())
			}
			failed++
			if failed > o.Failures || IsDefiniteRefusal(err) ||
				(o.Timeout > 0 && c.now().Sub(start)+delay >= o.Timeout) {
				return last, fmt.Errorf("wait %s job %s: %w", kind, jobID, err)
			}
			c.log.WarnContext(ctx, "salesforce: polling the job failed; polling again", "job", jobID, "failed", failed, "err", err)
			if serr := c.sleep(ctx, delay); serr != nil {
				return timeout(serr)
			}
			continue
		}
		failed = 0
		last = info
		if o.OnPoll != nil {
			o.OnPoll(info)
		}
		if info.State.Terminal() {
			return info, nil
		}
		d := delay
		if o.Timeout > 0 {
			remaining := o.Timeout - c.now().Sub(start)
			if remaining <= 0 {
				return timeout(nil)
			}
			d = min(d, remaining) // one last poll at the deadline
		}
		if err := c.sleep(ctx, d); err != nil {
			return timeout(err)
		}
		delay = min(time.Duration(float64(delay)*o.Multiplier), o.Max)
	}
}

// SuccessfulResults streams the successfulResults CSV of a terminal job
// (contract §4.1). The caller must close the reader. Decompression is
// transparent; nothing is buffered.
func (c *Client) SuccessfulResults(ctx context.Context, jobID string) (io.ReadCloser, error) {
	return c.results(ctx, jobID, "successfulResults", "successful results")
}

// FailedResults streams the failedResults CSV of a terminal job.
func (c *Client) FailedResults(ctx context.Context, jobID string) (io.ReadCloser, error) {
	return c.results(ctx, jobID, "failedResults", "failed results")
}

// UnprocessedRecords streams the unprocessedrecords CSV of a terminal job.
func (c *Client) UnprocessedRecords(ctx context.Context, jobID string) (io.ReadCloser, error) {
	return c.results(ctx, jobID, "unprocessedrecords", "unprocessed records")
}

func (c *Client) results(ctx context.Context, jobID, sub, what string) (io.ReadCloser, error) {
	p, err := jobPath("ingest", jobID)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", what, err)
	}
	resp, err := c.do(ctx, &call{method: "GET", path: p + "/" + sub, accept: "text/csv", idempotent: true})
	if err != nil {
		return nil, fmt.Errorf("get %s of job %s: %w", what, jobID, err)
	}
	return resp.Body, nil
}
