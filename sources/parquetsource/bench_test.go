package parquetsource_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// benchSchema is a typical warehouse export: 14 columns of mixed types.
var benchSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "email", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "city", Type: arrow.BinaryTypes.String},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "employees", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "rating", Type: arrow.PrimitiveTypes.Int32},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "ratio", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "active", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "founded", Type: arrow.FixedWidthTypes.Date32},
	{Name: "updated_at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "revenue", Type: &arrow.Decimal128Type{Precision: 14, Scale: 2}, Nullable: true},
	{Name: "owner_id", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// writeBenchFile writes rows rows of benchSchema to path, snappy-compressed,
// in row groups of 128Ki rows, generating 64Ki rows at a time.
func writeBenchFile(tb testing.TB, path string, rows int) {
	writeBenchFileGroups(tb, path, rows, 128<<10)
}

// writeBenchFileGroups is writeBenchFile with row groups of rowGroup rows.
// Row i has id i and updated_at 2026-01-01 + i seconds: both sorted.
func writeBenchFileGroups(tb testing.TB, path string, rows int, rowGroup int64) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(rowGroup))
	w, err := pqarrow.NewFileWriter(benchSchema, f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		tb.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, benchSchema)
	defer b.Release()
	cities := []string{"Oslo", "Lisbon", "Osaka", "Denver", "Nairobi", "Lima"}
	statuses := []string{"new", "active", "churned"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for start := 0; start < rows; start += 64 << 10 {
		for i := start; i < min(rows, start+64<<10); i++ {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("Account %d Ltd", i))
			if i%10 == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("contact%d@example.com", i))
			}
			b.Field(3).(*array.StringBuilder).Append(cities[i%len(cities)])
			b.Field(4).(*array.StringBuilder).Append(statuses[i%len(statuses)])
			if i%7 == 0 {
				b.Field(5).AppendNull()
			} else {
				b.Field(5).(*array.Int32Builder).Append(int32(i % 50000))
			}
			b.Field(6).(*array.Int32Builder).Append(int32(i % 5))
			b.Field(7).(*array.Float64Builder).Append(float64(i) * 0.37)
			if i%5 == 0 {
				b.Field(8).AppendNull()
			} else {
				b.Field(8).(*array.Float64Builder).Append(1 / float64(i+1))
			}
			b.Field(9).(*array.BooleanBuilder).Append(i%2 == 0)
			b.Field(10).(*array.Date32Builder).Append(arrow.Date32(10000 + i%9000))
			b.Field(11).(*array.TimestampBuilder).Append(arrow.Timestamp(base.Add(time.Duration(i) * time.Second).UnixMicro()))
			if i%9 == 0 {
				b.Field(12).AppendNull()
			} else {
				b.Field(12).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(i) * 12345))
			}
			b.Field(13).(*array.Int64Builder).Append(int64(i % 1000))
		}
		rec := b.NewRecordBatch()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRead reads a generated 1,000,000-row, 14-column file (snappy,
// 128Ki-row groups) end to end through the source, reporting rows/s and the
// largest live heap seen while reading.
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 3x ./sources/parquetsource/
func BenchmarkRead(b *testing.B) {
	const rows = 1_000_000
	path := filepath.Join(b.TempDir(), "bench.parquet")
	writeBenchFile(b, path, rows)
	benchReadFile(b, path, rows)
}

// BenchmarkReadChecksums is BenchmarkRead with page checksum checks on and
// off. arrow-go writes no page CRCs, so "on" measures what every file
// pays (following each column chunk and parsing its page headers);
// hashing the pages of a file that has CRCs adds CRC-32 over its bytes.
//
//	go test -run '^$' -bench BenchmarkReadChecksums -benchtime 3x ./sources/parquetsource/
func BenchmarkReadChecksums(b *testing.B) {
	const rows = 1_000_000
	path := filepath.Join(b.TempDir(), "bench.parquet")
	writeBenchFile(b, path, rows)
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("checksums=%v", on), func(b *testing.B) {
			defer parquetsource.SetPageChecksums(parquetsource.SetPageChecksums(on))
			benchReadFile(b, path, rows)
		})
	}
}

// benchReadFile reads the Parquet file at path end to end through the
// source with the default batch size, once per iteration, and reports
// rows/s and the largest live heap seen while reading. want, unless
// negative, is the number of rows the file must hold.
func benchReadFile(b *testing.B, path string, want int) {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	ctx := context.Background()
	b.ReportAllocs()
	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	n := 0
	for b.Loop() {
		src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: path})
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		for batches := 1; ; batches++ {
			batch, err := src.Read(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += batch.Len()
			if batches%64 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
		src.Close()
		if want >= 0 && n != want {
			b.Fatalf("read %d rows, want %d", n, want)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// BenchmarkParquetIncremental reads a generated 1,000,000-row, 14-column
// file (snappy, 64Ki-row groups, sorted by updated_at) twice: "full" reads
// every row, as an incremental run must without pushdown (the engine then
// filters), and "pushdown" reads after PushCursor("updated_at", the value
// at 99 % of the rows), skipping the row groups entirely at or below it.
// "pushdown" reports its time as a fraction of "full"'s (x-of-full) from
// the same run.
//
//	go test -run '^$' -bench BenchmarkParquetIncremental -benchtime 5x ./sources/parquetsource/
func BenchmarkParquetIncremental(b *testing.B) {
	const (
		rows     = 1_000_000
		rowGroup = 64 << 10
		at       = rows * 99 / 100 // the watermark is row at's updated_at
	)
	path := filepath.Join(b.TempDir(), "incremental.parquet")
	writeBenchFileGroups(b, path, rows, rowGroup)
	watermark := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(at * time.Second)
	wantSkipped := int64(at / rowGroup) // whole groups at or below the watermark
	ctx := context.Background()

	read := func(b *testing.B, push bool) (n int, skippedRGs int64) {
		src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: path})
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		if _, err := src.Schema(ctx); err != nil {
			b.Fatal(err)
		}
		if push {
			src.PushCursor("updated_at", watermark)
		}
		for {
			batch, err := src.Read(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += batch.Len()
		}
		skippedRGs, _ = src.Skipped()
		return n, skippedRGs
	}

	var fullNs float64
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, _ := read(b, false); n != rows {
				b.Fatalf("read %d rows, want %d", n, rows)
			}
		}
		fullNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("pushdown", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			var skipped int64
			n, skipped = read(b, true)
			if skipped != wantSkipped || n != rows-int(wantSkipped)*rowGroup {
				b.Fatalf("read %d rows, skipped %d row groups; want %d, %d", n, skipped, rows-int(wantSkipped)*rowGroup, wantSkipped)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(n), "rows-read")
		if fullNs > 0 {
			b.ReportMetric(ns/fullNs, "x-of-full")
			b.Logf("pushdown %.1f ms/op, full %.1f ms/op: %.3f of the full read (%.1fx faster), %d of %d rows read",
				ns/1e6, fullNs/1e6, ns/fullNs, fullNs/ns, n, rows)
		}
	})
}

// BenchmarkCheckFooters measures Schema on a glob of 10,000 small local
// Parquet objects: one footer check per object (see package objsource).
//
//	go test -run '^$' -bench BenchmarkCheckFooters -benchtime 3x ./sources/parquetsource/
func BenchmarkCheckFooters(b *testing.B) {
	dir := b.TempDir()
	data := encodeFixture(b, sourcetest.Simple("x"))
	for i := range 10000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%05d.parquet", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	for b.Loop() {
		src, err := parquetsource.Open(ctx, &pipeline.Env{BaseDir: dir}, &parquetsource.Options{URL: "part-*.parquet"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := src.Schema(ctx); err != nil {
			b.Fatal(err)
		}
		src.Close()
	}
}
