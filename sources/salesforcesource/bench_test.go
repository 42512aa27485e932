package salesforcesource_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/bulkflow/bulkflow/sources/salesforcesource"
)

var memRecords = flag.String("salesforcesource.mem", "", "comma-free list of record counts for TestPeakMemory, e.g. 100000 or 1000000 (run one count per process)")

const benchSOQL = "SELECT Id, Name, NumberOfEmployees, AnnualRevenue, Description, SystemModstamp FROM Account"

// loadAccounts stores n Accounts of six typical values in a new emulator.
func loadAccounts(tb testing.TB, n int) *salesforcetest.Server {
	tb.Helper()
	srv := startEmulatorOpts(tb, &salesforcetest.Options{})
	for i := range n {
		if _, err := srv.AddRecord("Account", map[string]string{"Name": fmt.Sprintf("Account %07d, Ltd", i),
			"NumberOfEmployees": fmt.Sprint(i % 5000), "AnnualRevenue": fmt.Sprintf("%d.%02d", i, i%100),
			"Description": "a typical description of some forty bytes"}); err != nil {
			tb.Fatal(err)
		}
	}
	return srv
}

// readSource reads every row of one query job through the source and
// returns the rows; peak, when set, receives the largest live heap
// (after a GC, sampled after the first batch of every 50,000-row page) above the live heap
// before the first page.
func readSource(tb testing.TB, srv *salesforcetest.Server, peak *uint64) int {
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
	var base uint64
	var ms runtime.MemStats
	if peak != nil {
		if err := srv.AwaitJobState(ctx, src.JobID(), "JobComplete"); err != nil {
			tb.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base = ms.HeapInuse
	}
	n, samples := 0, 0
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			if peak != nil && samples == 0 {
				tb.Fatalf("no memory sample taken in %d rows", n)
			}
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
		n += b.Len()
		if peak != nil && n%50000 == 2000 {
			// Live heap, mid-page: what the source retains (garbage
			// not yet collected would measure the GC's pacing).
			runtime.GC()
			runtime.ReadMemStats(&ms)
			samples++
			if ms.HeapInuse > base && ms.HeapInuse-base > *peak {
				*peak = ms.HeapInuse - base
			}
		}
	}
}

// download runs the same query as a plain job and copies its pages to
// io.Discard (what `bulkflow query` and a jobs-style download do).
func download(tb testing.TB, srv *salesforcetest.Server) int64 {
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
	if _, err := c.WaitQueryJob(ctx, info.ID, &salesforce.PollOptions{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}); err != nil {
		tb.Fatal(err)
	}
	var n int64
	loc := ""
	for {
		p, err := c.QueryResults(ctx, info.ID, loc, 50000)
		if err != nil {
			tb.Fatal(err)
		}
		io.Copy(io.Discard, p.Body)
		p.Body.Close()
		n += p.NumberOfRecords
		if loc = p.NextLocator; loc == "" {
			return n
		}
	}
}

// BenchmarkRead compares reading 100,000 records through the source (typed
// rows in batches) with downloading the same result pages as bytes.
//
//	go test ./sources/salesforcesource -run '^$' -bench Read -benchtime 3x
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	srv := loadAccounts(b, n)
	b.Run("source", func(b *testing.B) {
		for b.Loop() {
			if got := readSource(b, srv, nil); got != n {
				b.Fatalf("read %d rows, want %d", got, n)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("download", func(b *testing.B) {
		for b.Loop() {
			if got := download(b, srv); got != n {
				b.Fatalf("downloaded %d records, want %d", got, n)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

// TestPeakMemory reads -salesforcesource.mem records through the source
// and logs the peak heap above the emulator's (which holds the records and
// the job's result). Run once per count and compare:
//
//	go test ./sources/salesforcesource -run TestPeakMemory -salesforcesource.mem 100000 -v
//	go test ./sources/salesforcesource -run TestPeakMemory -salesforcesource.mem 1000000 -v
func TestPeakMemory(t *testing.T) {
	if *memRecords == "" {
		t.Skip("set -salesforcesource.mem N to measure")
	}
	var n int
	if _, err := fmt.Sscan(*memRecords, &n); err != nil || n <= 0 {
		t.Fatalf("-salesforcesource.mem %q: want a positive count", *memRecords)
	}
	srv := loadAccounts(t, n)
	var peak uint64
	if got := readSource(t, srv, &peak); got != n {
		t.Fatalf("read %d rows, want %d", got, n)
	}
	t.Logf("%d records: peak live heap of the source above the emulator's: %.1f MiB", n, float64(peak)/(1<<20))
	// One page of 50,000 records of ~120 bytes is ~6 MB of CSV; the
	// source holds at most a page's stream and a batch.
	if peak > 64<<20 {
		t.Errorf("peak %d MiB: the source holds more than a page", peak>>20)
	}
}
