package salesforcetest_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// BenchmarkIngest measures how many rows per second the emulator ingests
// and validates for a simple Account insert, end to end over HTTP
// (create, PUT, close, wait for JobComplete). Each iteration is one job of
// rowsPerJob rows.
func BenchmarkIngest(b *testing.B) {
	const rowsPerJob = 100000
	var sb strings.Builder
	sb.WriteString("Name,AccountNumber,Industry,NumberOfEmployees\n")
	for i := 0; i < rowsPerJob; i++ {
		fmt.Fprintf(&sb, "Account %d,AN-%d,Banking,%d\n", i, i, i%5000)
	}
	csv := sb.String()
	c := newTC(b, nil)
	b.SetBytes(int64(len(csv)))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), salesforcetest.ProcessCPU()
	for i := 0; i < b.N; i++ {
		id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
		c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", csv), 201)
		c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
		if err := c.srv.AwaitJobState(context.Background(), id, salesforcetest.StateJobComplete); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rows := float64(rowsPerJob * b.N)
	b.ReportMetric(rows/time.Since(start).Seconds(), "rows/s")
	// rows per CPU-second of the whole test process (emulator, HTTP client
	// and GC): stable when the machine is shared.
	if cpu := salesforcetest.ProcessCPU() - cpu0; cpu > 0 {
		b.ReportMetric(rows/cpu.Seconds(), "rows/cpu-s")
	}
}

// BenchmarkIngestScenarioD mirrors `bulkflow bench` scenario (d) on a
// smaller scale: each iteration runs 10 Account insert jobs of 10,000 rows
// and 8 columns (one of them the unique External_Id__c) through real HTTP
// (create, PUT, close, wait for JobComplete) and fetches every job's
// successfulResults with Accept-Encoding: gzip. All iterations load into
// the same server, so the record store grows as it does in a real run.
// CSV generation is outside the measured time and CPU. It also reports the
// heap the server retains per stored row (uploads, parsed rows, records,
// indexes and results): every retained byte is a page fault when it is
// first written and marking work for each collection after.
func BenchmarkIngestScenarioD(b *testing.B) {
	const jobs, rowsPerJob = 10, 10000
	c := newTC(b, nil)
	countries := []string{"US", "DE", "FR", "GB", "JP"}
	ratings := []string{"Hot", "Warm"}
	next := 0
	// makeCSV appends into one presized buffer: generating the input must
	// leave little garbage for the measured part's GC to collect.
	makeCSV := func() []byte {
		buf := make([]byte, 0, 128*rowsPerJob)
		buf = append(buf, "External_Id__c,Name,BillingCountry,SLAExpirationDate__c,Active__c,Rating,AccountNumber,NumberOfEmployees\n"...)
		for i := 0; i < rowsPerJob; i++ {
			next++
			buf = append(buf, "ext-"...)
			buf = strconv.AppendInt(buf, int64(next), 10)
			buf = append(buf, ",First"...)
			buf = strconv.AppendInt(buf, int64(next), 10)
			buf = append(buf, " Last"...)
			buf = strconv.AppendInt(buf, int64(next%977), 10)
			buf = append(buf, ',')
			buf = append(buf, countries[next%5]...)
			buf = fmt.Appendf(buf, ",2024-%02d-%02d,", next%12+1, next%28+1)
			buf = strconv.AppendBool(buf, next%3 == 0)
			buf = append(buf, ',')
			buf = append(buf, ratings[next%2]...)
			buf = append(buf, ",AN-"...)
			buf = strconv.AppendInt(buf, int64(next), 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(next%5000), 10)
			buf = append(buf, '\n')
		}
		return buf
	}
	heap0 := liveHeap()
	b.ReportAllocs()
	b.ResetTimer()
	var wall, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		csvs := make([][]byte, jobs)
		for k := range csvs {
			csvs[k] = makeCSV()
		}
		b.StartTimer()
		start, cpu0 := time.Now(), salesforcetest.ProcessCPU()
		for _, data := range csvs {
			id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
			c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", data), 201)
			c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
			if ji := c.awaitTerminal(id); ji.State != salesforcetest.StateJobComplete || ji.NumberRecordsFailed != 0 {
				b.Fatalf("job %s: %+v", id, ji)
			}
			r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil, "Accept-Encoding", "gzip"), 200)
			if r.header.Get("Content-Encoding") != "gzip" || len(r.body) == 0 {
				b.Fatalf("results not gzipped: %v", r.header)
			}
		}
		wall += time.Since(start)
		cpu += salesforcetest.ProcessCPU() - cpu0
	}
	b.StopTimer()
	rows := float64(jobs * rowsPerJob * b.N)
	b.ReportMetric(float64(wall.Nanoseconds())/rows, "ns/row")
	// CPU of the whole test process (emulator, HTTP client and GC) per
	// row: steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/rows, "cpu-ns/row")
	// Every row is stored: the server holds them all.
	b.ReportMetric(float64(int64(liveHeap())-int64(heap0))/rows, "retained-B/row")
	runtime.KeepAlive(c)
}

// liveHeap returns the bytes of the heap that are reachable after a full
// collection. It collects twice: the first collection moves sync.Pool
// contents to the victim cache, the second frees them.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
