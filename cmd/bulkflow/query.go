package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/jobs"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// queryFlags are the flags of `bulkflow query`.
type queryFlags struct {
	conn       jobs.Conn
	out        string
	allRows    bool
	maxRecords int
	timeout    time.Duration
}

// parse parses args; soql is "" when the command must stop with code.
func (qf *queryFlags) parse(args []string, stderr io.Writer) (soql string, code int) {
	fs := flag.NewFlagSet("bulkflow query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bulkflow query 'SELECT …' [--out FILE|BLOB_URL|-] [--all-rows] [--max-records N] [connection flags | --pipeline FILE]\n\n"+
			"Runs the SOQL as a Bulk API 2.0 query job and writes its results as CSV (stdout by default).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	qf.conn.RegisterFlags(fs, true)
	fs.StringVar(&qf.out, "out", "-", "where to write the CSV: a file, a blob URL (s3://, gs://, azblob://, mem://), or - for stdout; a file appears only when complete")
	fs.BoolVar(&qf.allRows, "all-rows", false, "run a queryAll job: deleted and archived records too")
	fs.IntVar(&qf.maxRecords, "max-records", 50000, "records per results page (maxRecords)")
	fs.DurationVar(&qf.timeout, "timeout", 30*time.Minute, "how long to wait for the query job")
	soql, err := parseInterspersed(fs, args)
	if err != nil {
		return "", flagExit(err)
	}
	if soql == "" {
		fmt.Fprintf(stderr, "bulkflow query: want exactly one SOQL query argument (quote it)\n")
		return "", exitUsage
	}
	if qf.maxRecords <= 0 {
		fmt.Fprintf(stderr, "bulkflow query: --max-records must be positive\n")
		return "", exitUsage
	}
	return soql, exitOK
}

// runQuery implements `bulkflow query 'SELECT …'`: it runs the SOQL as a
// Bulk API 2.0 query job and writes the results as Salesforce returns
// them: the first page byte for byte, and every later page without the
// header line it repeats (contract §6), so the output is one CSV.
func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var qf queryFlags
	soql, code := qf.parse(args, stderr)
	if soql == "" {
		return code
	}
	client, err := qf.conn.Connect(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow query: %s\n", jobs.DescribeErr(err))
		return exitFailed
	}
	op := salesforce.OpQuery
	if qf.allRows {
		op = salesforce.OpQueryAll
	}
	job, err := completeQueryJob(ctx, client, op, soql, qf.timeout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow query: %v\n", err)
		return exitFailed
	}
	n, code := writeQueryResults(ctx, client, job, &qf, stdout, stderr)
	if code != exitOK {
		return code
	}
	fmt.Fprintf(stderr, "bulkflow query: job %s: %d records\n", job, n)
	return exitOK
}

// completeQueryJob creates the query job and waits until it is complete;
// it returns the job's id. A job that may still run when it returns an
// error (cancelled, timed out) is aborted, and the abort reported to
// stderr.
func completeQueryJob(ctx context.Context, client *salesforce.Client, op salesforce.Operation, soql string, timeout time.Duration, stderr io.Writer) (string, error) {
	info, err := client.CreateQueryJob(ctx, salesforce.CreateQueryJobRequest{Operation: op, Query: soql})
	if err != nil {
		return "", errors.New(jobs.DescribeErr(err))
	}
	end, err := client.WaitQueryJob(ctx, info.ID, &salesforce.PollOptions{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Timeout: timeout})
	if err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, aerr := client.AbortQueryJob(actx, info.ID); aerr == nil {
			fmt.Fprintf(stderr, "bulkflow query: query job %s aborted\n", info.ID)
		}
		return "", fmt.Errorf("query job %s: %s", info.ID, jobs.DescribeErr(err))
	}
	if end.State != salesforce.StateJobComplete {
		return "", fmt.Errorf("query job %s ended %s after %d records %s; nothing was written",
			info.ID, end.State, end.NumberRecordsProcessed, end.ErrorMessage)
	}
	return info.ID, nil
}

// writeQueryResults copies the results of a complete job to --out (a
// file or blob appears only when complete) or stdout and returns the
// number of records.
func writeQueryResults(ctx context.Context, client *salesforce.Client, job string, qf *queryFlags, stdout, stderr io.Writer) (int64, int) {
	var dst io.Writer = stdout
	var w *blobio.Writer
	if qf.out != "-" {
		loc, err := blobio.Parse("", qf.out)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow query: --out: %v\n", err)
			return 0, exitUsage
		}
		if w, err = blobio.NewWriter(ctx, loc); err != nil {
			fmt.Fprintf(stderr, "bulkflow query: --out %s: %v\n", qf.out, err)
			return 0, exitFailed
		}
		dst = w
	}
	n, err := copyQueryResults(ctx, client, job, qf.maxRecords, dst)
	if err == nil && w != nil {
		err = w.Close()
	}
	if err != nil {
		if w != nil {
			w.Abort()
			w.Close()
		}
		fmt.Fprintf(stderr, "bulkflow query: query job %s: results: %s\n", job, jobs.DescribeErr(err))
		return n, exitFailed
	}
	return n, exitOK
}

// copyQueryResults writes every results page of job to dst, each page
// after the first without its header line. It returns the records the
// pages announced (Sforce-NumberOfRecords).
func copyQueryResults(ctx context.Context, client *salesforce.Client, job string, maxRecords int, dst io.Writer) (int64, error) {
	var n int64
	locator := ""
	for first := true; ; first = false {
		p, err := client.QueryResults(ctx, job, locator, maxRecords)
		if err != nil {
			return n, err
		}
		body := io.Reader(p.Body)
		if !first {
			body = &skipLine{r: p.Body}
		}
		_, err = io.Copy(dst, body)
		p.Body.Close()
		if err != nil {
			return n, err
		}
		if p.NumberOfRecords > 0 {
			n += p.NumberOfRecords
		}
		if p.NextLocator == "" {
			return n, nil
		}
		locator = p.NextLocator
	}
}

// skipLine reads r without its first line (a header: field names hold no
// line break).
type skipLine struct {
	r       io.Reader
	skipped bool
}

// Read implements io.Reader.
func (s *skipLine) Read(p []byte) (int, error) {
	for !s.skipped {
		n, err := s.r.Read(p)
		if i := bytes.IndexByte(p[:n], '\n'); i >= 0 {
			s.skipped = true
			return copy(p, p[i+1:n]), nil
		}
		if err != nil {
			return 0, err
		}
	}
	return s.r.Read(p)
}
