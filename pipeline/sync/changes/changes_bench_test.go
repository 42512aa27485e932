package changes

import (
	"bufio"
	"context"
	"encoding/csv"
	"flag"
	"io"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

var benchKeys = flag.Int("changes.keys", 200000, "number of keys in BenchmarkDiff")

var benchSchema = pipeline.MustSchema(
	pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString},
	pipeline.Field{Name: "Name", Type: pipeline.TypeString},
	pipeline.Field{Name: "Amount", Type: pipeline.TypeDecimal},
	pipeline.Field{Name: "Quantity", Type: pipeline.TypeInt},
	pipeline.Field{Name: "Active", Type: pipeline.TypeBool},
	pipeline.Field{Name: "Updated", Type: pipeline.TypeTimestamp},
)

// benchRow fills row with the i'th of n rows, in a scrambled key order, or
// with sorted in key order (keys zero-padded); changed alters the Amount of
// every 100th key.
func benchRow(row pipeline.Row, buf []byte, i, n int, changed, sorted bool) []byte {
	k := int((uint64(i) * 2654435761) % uint64(n)) // a permutation when n is not a multiple of the prime
	buf = append(buf[:0], "EXT-"...)
	if sorted {
		k = i
		for p := 100000000; p > 1 && k < p; p /= 10 {
			buf = append(buf, '0')
		}
	}
	buf = strconv.AppendInt(buf, int64(k), 10)
	row[0] = string(buf)
	buf = append(buf[:0], "Account number "...)
	buf = strconv.AppendInt(buf, int64(k), 10)
	row[1] = string(buf)
	amount := int64(k%100000) * 7
	if changed && k%100 == 0 {
		amount++
	}
	buf = strconv.AppendInt(buf[:0], amount, 10)
	buf = append(buf, ".50"...)
	row[2] = string(buf)
	row[3] = int64(k % 1000)
	row[4] = k%3 == 0
	row[5] = time.Unix(1700000000+int64(k), 0).UTC()
	return buf
}

// peakHeap samples the live heap every 10ms until stopped.
type peakHeap struct {
	stop chan struct{}
	done sync.WaitGroup
	max  uint64
}

func startPeakHeap() *peakHeap {
	runtime.GC()
	p := &peakHeap{stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			p.max = max(p.max, s[0].Value.Uint64())
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakHeap) report(b *testing.B) {
	close(p.stop)
	p.done.Wait()
	b.ReportMetric(float64(p.max)/(1<<20), "peak-heap-MiB")
}

// benchRun adds the n rows of one run (in key order when sorted), diffs
// them against old (unchanged rows not decoded, and the diff done as rows
// are added, as in a sync), reports every sent key as loaded, and commits
// to w.
func benchRun(b *testing.B, dir string, n int, changed, sorted bool, old *Manifest, w io.Writer) Counts {
	ctx := context.Background()
	d, err := NewDiffer(benchSchema, "External_Id__c", Options{Dir: dir, LazyUnchanged: true}) // as the syncer does
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if err := d.Expect(ctx, old); err != nil {
		b.Fatal(err)
	}
	row := make(pipeline.Row, benchSchema.Len())
	var buf []byte
	for i := range n {
		buf = benchRow(row, buf, i, n, changed, sorted)
		if err := d.Add(row, pipeline.Origin{Object: "bench.csv", Line: int64(i + 2), Row: int64(i + 1)}); err != nil {
			b.Fatal(err)
		}
	}
	c, err := d.Diff(ctx, old, func(op Op, key string, _ pipeline.Row, _ pipeline.Origin, _ string) error {
		if op == OpUnchanged {
			return nil
		}
		return d.Outcome(key, op, true, "")
	}, func(string, pipeline.Row, pipeline.Origin) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.Commit(ctx, old, w, true); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkDiff measures a run with 1 % changed rows against the cost of
// sending every row (encoding it as CSV). Run with
//
//	go test -run '^$' -bench Diff -benchtime 1x ./pipeline/sync/changes/ -args -changes.keys 10000000
func BenchmarkDiff(b *testing.B) {
	n := *benchKeys
	if n%2654435761 == 0 {
		b.Fatalf("-changes.keys must not be a multiple of 2654435761")
	}
	ctx := context.Background()
	dir := b.TempDir()
	for _, sorted := range []bool{false, true} {
		name := "diff-1pct"
		if sorted {
			name = "diff-1pct-sorted" // the diff done as rows are added (Differ.Expect)
		}
		// Run 1 writes the manifest.
		loc, err := blobio.Parse("", filepath.Join(dir, name+".bfm"))
		if err != nil {
			b.Fatal(err)
		}
		w, err := blobio.NewWriter(ctx, loc)
		if err != nil {
			b.Fatal(err)
		}
		if c := benchRun(b, dir, n, false, sorted, nil, w); c.New != int64(n) {
			b.Fatalf("run 1: %+v, want %d new", c, n)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		old, err := OpenManifest(ctx, loc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			p := startPeakHeap()
			var c Counts
			for b.Loop() {
				c = benchRun(b, dir, n, true, sorted, old, io.Discard)
			}
			p.report(b)
			if want := int64((n + 99) / 100); c.Changed != want || c.New != 0 || c.Missing != 0 {
				b.Fatalf("run 2: %+v, want %d changed", c, want)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	b.Run("full-resend", func(b *testing.B) {
		p := startPeakHeap()
		for b.Loop() {
			bw := bufio.NewWriterSize(io.Discard, ioBuf)
			cw := csv.NewWriter(bw)
			row := make(pipeline.Row, benchSchema.Len())
			rec := make([]string, benchSchema.Len())
			var buf []byte
			for i := range n {
				buf = benchRow(row, buf, i, n, true, false)
				for j, v := range row {
					rec[j] = pipeline.Text(v)
				}
				if err := cw.Write(rec); err != nil {
					b.Fatal(err)
				}
			}
			cw.Flush()
			if err := cw.Error(); err != nil {
				b.Fatal(err)
			}
		}
		p.report(b)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
