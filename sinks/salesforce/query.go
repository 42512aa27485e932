package salesforce

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strconv"
	"strings"
)

// CreateQueryJob creates a Bulk API 2.0 query job (POST /jobs/query,
// contract §6). Operation defaults to query and ContentType to CSV.
func (c *Client) CreateQueryJob(ctx context.Context, req CreateQueryJobRequest) (*JobInfo, error) {
	if req.Operation == "" {
		req.Operation = OpQuery
	}
	if req.ContentType == "" {
		req.ContentType = "CSV"
	}
	var info JobInfo
	if err := c.doJSON(ctx, &call{method: "POST", path: "jobs/query", json: req}, &info); err != nil {
		return nil, fmt.Errorf("create query job: %w", err)
	}
	return &info, nil
}

// QueryJob returns a query job's JobInfo (GET /jobs/query/{id}).
func (c *Client) QueryJob(ctx context.Context, jobID string) (*JobInfo, error) {
	info, err := c.job(ctx, "query", jobID)
	if err != nil {
		return nil, fmt.Errorf("get query job %s: %w", jobID, err)
	}
	return info, nil
}

// WaitQueryJob is WaitJob for query jobs.
func (c *Client) WaitQueryJob(ctx context.Context, jobID string, opts *PollOptions) (*JobInfo, error) {
	return c.wait(ctx, "query", jobID, opts)
}

// AbortQueryJob aborts a query job (PATCH state Aborted).
func (c *Client) AbortQueryJob(ctx context.Context, jobID string) (*JobInfo, error) {
	info, err := c.setState(ctx, "query", jobID, StateAborted)
	if err != nil {
		return nil, fmt.Errorf("abort query job %s: %w", jobID, err)
	}
	return info, nil
}

// DeleteQueryJob deletes a terminal query job.
func (c *Client) DeleteQueryJob(ctx context.Context, jobID string) error {
	if err := c.deleteJob(ctx, "query", jobID); err != nil {
		return fmt.Errorf("delete query job %s: %w", jobID, err)
	}
	return nil
}

// ListQueryJobs iterates over all query jobs, following nextRecordsUrl.
func (c *Client) ListQueryJobs(ctx context.Context, opts *ListJobsOptions) iter.Seq2[*JobInfo, error] {
	return c.listAll(ctx, "query", opts)
}

// QueryResultsPage is one page of query results.
type QueryResultsPage struct {
	// Body streams the page's CSV, header row included (every page repeats
	// it). The caller must close it.
	Body io.ReadCloser
	// NextLocator is the locator of the next page, or "" when this page is
	// the last (the server sent Sforce-Locator: null or none).
	NextLocator string
	// NumberOfRecords is Sforce-NumberOfRecords, or -1 if absent.
	NumberOfRecords int64
}

// QueryResults fetches one page of a completed query job's results
// (GET /jobs/query/{id}/results, contract §6). Pass locator "" for the
// first page, then the previous page's NextLocator; maxRecords <= 0 lets
// the server choose.
func (c *Client) QueryResults(ctx context.Context, jobID, locator string, maxRecords int) (*QueryResultsPage, error) {
	p, err := jobPath("query", jobID)
	if err != nil {
		return nil, fmt.Errorf("get query results: %w", err)
	}
	q := url.Values{}
	if locator != "" {
		q.Set("locator", locator)
	}
	if maxRecords > 0 {
		q.Set("maxRecords", strconv.Itoa(maxRecords))
	}
	resp, err := c.do(ctx, &call{method: "GET", path: p + "/results", query: q, accept: "text/csv", idempotent: true})
	if err != nil {
		return nil, fmt.Errorf("get query results of job %s: %w", jobID, err)
	}
	page := &QueryResultsPage{Body: resp.Body, NumberOfRecords: -1}
	if loc := strings.TrimSpace(resp.Header.Get("Sforce-Locator")); loc != "null" {
		page.NextLocator = loc
	}
	if n, err := strconv.ParseInt(resp.Header.Get("Sforce-NumberOfRecords"), 10, 64); err == nil {
		page.NumberOfRecords = n
	}
	return page, nil
}

// QueryRecords reads the records of one query results page (CSV with
// the header on its first line, contract §6) as ResultReader parses a
// result file: fields of the shape Salesforce writes alias the reader's
// buffer, and anything else goes through encoding/csv, so the two always
// agree on quoting, "" escapes and line breaks inside values.
type QueryRecords struct {
	rr     *ResultReader
	header []string
}

// NewQueryRecords returns a reader of a results page's CSV body written
// with delim ("" means COMMA). It reads nothing until Header or Read.
func NewQueryRecords(body io.Reader, delim ColumnDelimiter) *QueryRecords {
	return &QueryRecords{rr: NewResultReader(body, delim)}
}

// Header returns the page's header row (io.EOF for a 0-byte page). The
// slice is the reader's own: do not change it.
func (q *QueryRecords) Header() ([]string, error) {
	if q.header != nil {
		return q.header, nil
	}
	h, _, err := q.rr.next()
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("query results header: %w", err)
	}
	q.header = make([]string, len(h))
	for i, name := range h {
		q.header[i] = strings.Clone(name)
	}
	return q.header, nil
}

// Read returns the fields of the next record and the 1-based line where
// it starts, or io.EOF after the last. The fields, and the memory of
// their strings, are valid only until the next Read: copy what is kept.
// A record whose field count differs from the header's is an error
// naming its line.
func (q *QueryRecords) Read() ([]string, int, error) {
	if _, err := q.Header(); err != nil {
		return nil, 0, err
	}
	rec, line, err := q.rr.next()
	if err != nil {
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("query results: %w", err)
	}
	if len(rec) != len(q.header) {
		return nil, line, fmt.Errorf("query results line %d: %d fields, the header has %d", line, len(rec), len(q.header))
	}
	return rec, line, nil
}

// Limits returns the org's limits (GET /limits, contract §5.5).
func (c *Client) Limits(ctx context.Context) (Limits, error) {
	var l Limits
	if err := c.doJSON(ctx, &call{method: "GET", path: "limits", idempotent: true}, &l); err != nil {
		return nil, fmt.Errorf("get limits: %w", err)
	}
	return l, nil
}

// Describe returns an sObject's describe result (GET
// /sobjects/{object}/describe, contract §7). An unknown object matches
// ErrNotFound.
func (c *Client) Describe(ctx context.Context, object string) (*DescribeResult, error) {
	if object == "" || strings.ContainsAny(object, "/?#") {
		return nil, fmt.Errorf("describe: invalid object name %q", object)
	}
	var d DescribeResult
	if err := c.doJSON(ctx, &call{method: "GET", path: "sobjects/" + url.PathEscape(object) + "/describe", idempotent: true}, &d); err != nil {
		return nil, fmt.Errorf("describe %s: %w", object, err)
	}
	return &d, nil
}

// ObjectNames returns the API names of the org's sObjects (GET /sobjects,
// the global describe).
func (c *Client) ObjectNames(ctx context.Context) ([]string, error) {
	var g struct {
		SObjects []struct {
			Name string `json:"name"`
		} `json:"sobjects"`
	}
	if err := c.doJSON(ctx, &call{method: "GET", path: "sobjects", idempotent: true}, &g); err != nil {
		return nil, fmt.Errorf("global describe: %w", err)
	}
	out := make([]string, len(g.SObjects))
	for i, o := range g.SObjects {
		out[i] = o.Name
	}
	return out, nil
}
