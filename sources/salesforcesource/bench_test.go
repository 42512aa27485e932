package salesforcesource_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/bulkflow/bulkflow/sources/salesforcesource"
)

// benchSOQL selects the export tests' fields.
const benchSOQL = "SELECT Id, Name, NumberOfEmployees, AnnualRevenue, Description, SystemModstamp FROM Account"

// readSource reads every row of one query job through the source (pages
// of 50,000, batches of 2,000) and returns the rows read and the time the
// reading took once the job was complete.
func readSource(tb testing.TB, srv *salesforcetest.Server) (int, time.Duration) {
	ctx := context.Background()
	o := options(srv, benchSOQL)
	o.MaxRecords, o.BatchSize = 50000, 2000
	src, err := salesforcesource.Open(ctx, nil, o)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := srv.AwaitJobState(ctx, src.JobID(), "JobComplete"); err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	n := 0
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			return n, time.Since(t0)
		}
		if err != nil {
			tb.Fatal(err)
		}
		n += b.Len()
	}
}

// download runs the same query as a plain job and copies its pages to
// io.Discard (what `bulkflow query` and a jobs-style download do); it
// returns the records and the time the pages took once the job was
// complete.
func download(tb testing.TB, srv *salesforcetest.Server) (int64, time.Duration) {
	ctx := context.Background()
	auth, _ := salesforce.StaticToken(srv.URL, srv.AccessToken())
	c, err := salesforce.NewClient(ctx, auth, &salesforce.Options{HTTPClient: srv.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	info, err := c.CreateQueryJob(ctx, salesforce.CreateQueryJobRequest{Query: benchSOQL})
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.AwaitJobState(ctx, info.ID, "JobComplete"); err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	var n int64
	loc := ""
	for {
		p, err := c.QueryResults(ctx, info.ID, loc, 50000)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, p.Body); err != nil {
			tb.Fatal(err)
		}
		p.Body.Close()
		n += p.NumberOfRecords
		if loc = p.NextLocator; loc == "" {
			return n, time.Since(t0)
		}
	}
}

// BenchmarkRead compares reading 100,000 records through the source (typed
// rows in batches) with downloading the same result pages as bytes, each
// timed once its job is complete (the emulator's query run is in neither).
//
//	go test ./sources/salesforcesource -run '^$' -bench Read -benchtime 5x
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	srv := startEmulatorOpts(b, &salesforcetest.Options{})
	addAccounts(b, srv, 0, n)
	var srcTime, dlTime time.Duration
	for b.Loop() {
		got, d := readSource(b, srv)
		if got != n {
			b.Fatalf("read %d rows, want %d", got, n)
		}
		srcTime += d
		got64, d := download(b, srv)
		if got64 != n {
			b.Fatalf("downloaded %d records, want %d", got64, n)
		}
		dlTime += d
	}
	b.ReportMetric(float64(n*b.N)/srcTime.Seconds(), "source-records/s")
	b.ReportMetric(float64(n*b.N)/dlTime.Seconds(), "download-records/s")
	b.ReportMetric(dlTime.Seconds()/srcTime.Seconds(), "ratio")
}
