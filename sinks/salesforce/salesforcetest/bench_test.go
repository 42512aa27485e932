package salesforcetest_test

import (
	"context"
	"fmt"
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
	start, cpu0 := time.Now(), cpuTime()
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
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(rows/cpu.Seconds(), "rows/cpu-s")
	}
}
