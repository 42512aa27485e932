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

// runQuery implements `bulkflow query 'SELECT …'`: it runs the SOQL as a
// Bulk API 2.0 query job and writes the results as Salesforce returns
// them: the first page byte for byte, and every later page without the
// header line it repeats (contract §6), so the output is one CSV.
func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bulkflow query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bulkflow query 'SELECT …' [--out FILE|BLOB_URL|-] [--all-rows] [--max-records N] [connection flags | --pipeline FILE]\n\n"+
			"Runs the SOQL as a Bulk API 2.0 query job and writes its results as CSV (stdout by default).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	conn := &jobs.Conn{}
	conn.RegisterFlags(fs, true)
	out := fs.String("out", "-", "where to write the CSV: a file, a blob URL (s3://, gs://, azblob://, mem://), or - for stdout; a file appears only when complete")
	allRows := fs.Bool("all-rows", false, "run a queryAll job: deleted and archived records too")
	maxRecords := fs.Int("max-records", 50000, "records per results page (maxRecords)")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the query job")
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "bulkflow query: want exactly one SOQL query argument (quote it), got %d\n", len(pos))
		return exitUsage
	}
	if *maxRecords <= 0 {
		fmt.Fprintf(stderr, "bulkflow query: --max-records must be positive\n")
		return exitUsage
	}
	var dst io.Writer = stdout
	var w *blobio.Writer
	client, err := conn.Connect(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow query: %s\n", jobs.DescribeErr(err))
		return exitFailed
	}
	op := salesforce.OpQuery
	if *allRows {
		op = salesforce.OpQueryAll
	}
	info, err := client.CreateQueryJob(ctx, salesforce.CreateQueryJobRequest{Operation: op, Query: pos[0]})
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow query: %s\n", jobs.DescribeErr(err))
		return exitFailed
	}
	done := false
	defer func() {
		if !done { // cancelled or failed while the job may run: abort it
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := client.AbortQueryJob(actx, info.ID); err == nil {
				fmt.Fprintf(stderr, "bulkflow query: query job %s aborted\n", info.ID)
			}
		}
	}()
	end, err := client.WaitQueryJob(ctx, info.ID, &salesforce.PollOptions{Initial: 200 * time.Millisecond, Max: 10 * time.Second, Timeout: *timeout})
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow query: query job %s: %s\n", info.ID, jobs.DescribeErr(err))
		return exitFailed
	}
	done = true // a finished job needs no abort
	if end.State != salesforce.StateJobComplete {
		fmt.Fprintf(stderr, "bulkflow query: query job %s ended %s after %d records %s; nothing was written\n",
			info.ID, end.State, end.NumberRecordsProcessed, end.ErrorMessage)
		return exitFailed
	}
	if *out != "-" {
		loc, err := blobio.Parse("", *out)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow query: --out: %v\n", err)
			return exitUsage
		}
		if w, err = blobio.NewWriter(ctx, loc); err != nil {
			fmt.Fprintf(stderr, "bulkflow query: --out %s: %v\n", *out, err)
			return exitFailed
		}
		dst = w
	}
	n, err := copyQueryResults(ctx, client, info.ID, *maxRecords, dst)
	if err == nil && w != nil {
		err = w.Close()
	}
	if err != nil {
		if w != nil {
			w.Abort()
			w.Close()
		}
		fmt.Fprintf(stderr, "bulkflow query: query job %s: results: %s\n", info.ID, jobs.DescribeErr(err))
		return exitFailed
	}
	fmt.Fprintf(stderr, "bulkflow query: job %s: %d records\n", info.ID, n)
	return exitOK
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
