package parquetsink_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
	_ "github.com/bulkflow/bulkflow/pipeline/blobio/clouddrivers" // s3://
	"github.com/bulkflow/bulkflow/sinks/parquetsink"
)

var memoryCounts = flag.String("parquetsink.memory", "",
	"row counts for TestMemoryByRowCount, in increasing order, e.g. 100000,1000000")

// memoryRun is what one write of TestMemoryByRowCount measured.
type memoryRun struct {
	rows      int
	peakHeap  int64 // bytes of heap objects, live or not yet swept
	peakLive  int64 // bytes of live heap, as the last GC marked it
	peakRSS   int64 // bytes; from VmHWM, reset before the write
	object    int64 // the object's size
	rowGroups int
	footer    int64 // the footer's size (FileMetaData)
	elapsed   time.Duration
}

// TestMemoryByRowCount writes each -parquetsink.memory count of each of
// memoryShapes' rows in row groups of 4 MiB, to a local file and, when the
// S3 test server runs, to S3, in this process, one write at a time. Before
// each write it collects the garbage, returns it to the OS and resets the
// process's peak RSS (/proc/self/clear_refs); during the write it samples
// the heap every millisecond (live as the last GC found it, and all
// objects), collecting at GOGC=memoryGCPercent. It fails when the last count's peak live heap or peak RSS is
// more than 1.15 times the first's, and logs the footer's bytes per row
// group: the only part of the file the sink keeps until Close, and the one
// that grows with the row count (Parquet's FileMetaData holds every row
// group's column chunk metadata).
//
//	.ci/blobservers.sh start && source "$(.ci/blobservers.sh env)"
//	go test ./sinks/parquetsink -run TestMemoryByRowCount -parquetsink.memory 100000,1000000 -v -timeout 30m
func TestMemoryByRowCount(t *testing.T) {
	if *memoryCounts == "" {
		t.Skip("set -parquetsink.memory 100000,1000000 to run")
	}
	var counts []int
	for _, f := range strings.Split(*memoryCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || len(counts) > 0 && n <= counts[len(counts)-1] {
			t.Fatalf("-parquetsink.memory %q: want increasing positive counts", *memoryCounts)
		}
		counts = append(counts, n)
	}
	if _, err := os.Stat("/proc/self/clear_refs"); err != nil {
		t.Skipf("peak RSS is read from Linux's /proc/self: %v", err)
	}
	for _, shape := range memoryShapes {
		for _, st := range blobtest.Stores {
			if st.Name != "file" && st.Name != "S3" {
				continue
			}
			t.Run(shape.name+"/"+st.Name, func(t *testing.T) { testMemoryByRowCount(t, shape, st, counts) })
		}
	}
}

func testMemoryByRowCount(t *testing.T, shape memoryShape, st blobtest.Store, counts []int) {
	bucket := st.NewBucket(t)
	var runs []memoryRun
	for _, n := range counts {
		r := writeMeasured(t, shape, bucket.URL(fmt.Sprintf("rows-%d.parquet", n)), n)
		if n == counts[0] {
			// The first write also allocates what the process keeps
			// (zstd's encoders, arrow's kernels), and a short write
			// samples few collections: take the highest peaks of three.
			for range 2 {
				again := writeMeasured(t, shape, bucket.URL(fmt.Sprintf("rows-%d.parquet", n)), n)
				r.peakHeap = max(r.peakHeap, again.peakHeap)
				r.peakLive = max(r.peakLive, again.peakLive)
				r.peakRSS = max(r.peakRSS, again.peakRSS)
			}
		}
		runs = append(runs, r)
		perGroup := int64(0)
		if r.rowGroups > 0 {
			perGroup = r.footer / int64(r.rowGroups)
		}
		t.Logf("%s, %d rows: peak live heap %.1f MiB, peak heap %.1f MiB, peak RSS %.1f MiB; object %.1f MiB in %d row groups, footer %d bytes (%d per row group); %.1fs",
			st.Name, n, mib(r.peakLive), mib(r.peakHeap), mib(r.peakRSS), mib(r.object), r.rowGroups, r.footer, perGroup, r.elapsed.Seconds())
	}
	first, last := runs[0], runs[len(runs)-1]
	if last.peakLive*100 > first.peakLive*115 {
		t.Errorf("%s: peak live heap grew from %.1f MiB at %d rows to %.1f MiB at %d (more than 15%%)",
			st.Name, mib(first.peakLive), first.rows, mib(last.peakLive), last.rows)
	}
	if last.peakRSS*100 > first.peakRSS*115 {
		t.Errorf("%s: peak RSS grew from %.1f MiB at %d rows to %.1f MiB at %d (more than 15%%)",
			st.Name, mib(first.peakRSS), first.rows, mib(last.peakRSS), last.rows)
	}
}

// memoryRowGroupBytes bounds TestMemoryByRowCount's row groups (4 MiB, as
// the Salesforce export test's) so that the first count already fills
// several: the sink's share of memory is then the same at every count.
const memoryRowGroupBytes = 4 << 20

// memoryShape is a kind of row TestMemoryByRowCount writes.
type memoryShape struct {
	name   string
	schema *pipeline.Schema
	opts   func(url string) *parquetsink.Options
	row    func(r *rand.Rand, i int) pipeline.Row
}

// memoryShapes are the kinds of rows TestMemoryByRowCount writes: random
// rows of every type (randomRow's) and 300 random letters, which barely
// compress. 100,000 of them fill a dozen row groups and make an object of
// about 20 MiB, past the S3 uploader's 16 MiB single-request threshold, so
// that the first count already reaches every fixed bound (a row group,
// the zstd encoders, the uploader's part buffers) and what is left to grow
// is what grows with the rows. Rows that compress well (the Salesforce
// export's Accounts: 1.5 MiB for 100,000) reach those bounds only at a
// few million rows.
var memoryShapes = []memoryShape{
	{
		name:   "random",
		schema: pipeline.MustSchema(append(all.Fields(), pipeline.Field{Name: "text", Type: pipeline.TypeString})...),
		opts:   allOptions,
		row: func(r *rand.Rand, i int) pipeline.Row {
			text := make([]byte, 300)
			for k := range text {
				text[k] = byte('a' + r.IntN(26))
			}
			return append(randomRow(r, int64(i)), string(text))
		},
	},
}

// memoryGCPercent is the GOGC of the writes TestMemoryByRowCount measures:
// frequent collections sample the live heap often (a short write collects
// too seldom at the default to see its peak) and bound the garbage in the
// peak RSS.
const memoryGCPercent = 25

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// writeMeasured writes n random rows to url through the parquet sink with
// its defaults and measures the write; see TestMemoryByRowCount.
func writeMeasured(t *testing.T, shape memoryShape, url string, n int) memoryRun {
	t.Helper()
	ctx := context.Background()
	defer debug.SetGCPercent(debug.SetGCPercent(memoryGCPercent))
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peakHeap, peakLive int64
	wg.Add(1)
	go func() { // owned by writeMeasured: it stops and waits for it
		defer wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peakHeap = max(peakHeap, int64(sample[0].Value.Uint64()))
			peakLive = max(peakLive, int64(sample[1].Value.Uint64()))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t0 := time.Now()
	loc, err := blobio.Parse("", url)
	if err != nil {
		t.Fatal(err)
	}
	o := shape.opts(url)
	o.RowGroupBytes = memoryRowGroupBytes
	s, err := parquetsink.Open(ctx, loc, shape.schema, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r := rand.New(rand.NewPCG(uint64(n), 18))
	const batch = 4096
	for i := 0; i < n; i += batch {
		b := pipeline.NewBatch(shape.schema, batch)
		for j := i; j < min(i+batch, n); j++ {
			b.Append(shape.row(r, j), pipeline.Origin{Object: "memory", Row: int64(j + 1)})
		}
		if err := s.Write(ctx, b); err != nil {
			t.Fatalf("Write rows %d to %d: %v", i+1, i+b.Len(), err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	elapsed := time.Since(t0)
	close(stop)
	wg.Wait()
	run := memoryRun{rows: n, peakHeap: peakHeap, peakLive: peakLive, peakRSS: vmHWM(t), elapsed: elapsed}

	ra, err := blobio.NewReaderAt(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	pr, err := file.NewParquetReader(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		t.Fatalf("read back %s: %v", url, err)
	}
	defer pr.Close()
	if got := pr.NumRows(); got != int64(n) {
		t.Fatalf("%s holds %d rows, want %d", url, got, n)
	}
	run.object = ra.Size()
	run.rowGroups = pr.NumRowGroups()
	run.footer = int64(pr.MetaData().Size())
	return run
}

// vmHWM returns this process's peak RSS since the last reset, in bytes.
func vmHWM(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", l, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
