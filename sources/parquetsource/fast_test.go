package parquetsource_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// readAll reads every batch of the file at path, rendering each row and
// drop as text that shows every value's type and value exactly.
func readRendered(t *testing.T, path string, fast bool, opts parquetsource.Options) (out []string, fastRGs int64) {
	t.Helper()
	prev := parquetsource.SetFastPath(fast)
	defer parquetsource.SetFastPath(prev)
	ctx := context.Background()
	opts.URL = path
	src, err := parquetsource.Open(ctx, nil, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("batch %d rows %d drops", b.Len(), len(b.Drops())))
		for i := range b.Len() {
			out = append(out, fmt.Sprintf("%v %s", b.Origin(i), renderRow(b.Row(i))))
		}
		for _, d := range b.Drops() {
			re := d.Err.(*pipeline.RowError)
			out = append(out, fmt.Sprintf("drop %v %s raw=%q err=%v/%s/%s/%v", d.Origin, renderRow(d.Row), d.Raw, re.Origin, re.Code, re.Field, re.Err))
		}
	}
	return out, parquetsource.FastRowGroups(src)
}

func renderRow(r pipeline.Row) string {
	var b strings.Builder
	for _, v := range r {
		switch v := v.(type) {
		case time.Time:
			fmt.Fprintf(&b, "|time %s %s", v.Format(time.RFC3339Nano), v.Location())
		default:
			fmt.Fprintf(&b, "|%T %#v", v, v)
		}
	}
	return b.String()
}

// compareFast reads path with and without the fast path and wants the same
// batches, and wantFast row groups read on the fast path (-1: all).
func compareFast(t *testing.T, path string, opts parquetsource.Options, wantFast int64) {
	t.Helper()
	want, _ := readRendered(t, path, false, opts)
	got, fastRGs := readRendered(t, path, true, opts)
	if wantFast < 0 {
		r, err := file.OpenParquetFile(path, false)
		if err != nil {
			t.Fatal(err)
		}
		wantFast = int64(r.NumRowGroups())
		r.Close()
	}
	if fastRGs != wantFast {
		t.Fatalf("%d row groups were read on the fast path, want %d", fastRGs, wantFast)
	}
	if len(got) != len(want) {
		t.Fatalf("fast path: %d lines, pqarrow %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("line %d:\nfast:    %s\npqarrow: %s", i, got[i], want[i])
		}
	}
}

// TestFastPathSame: the fast path makes exactly the batches pqarrow and
// convert make, for dictionary and plain pages, V1 and V2 pages, nulls,
// invalid UTF-8, every type it handles, projections and batch sizes.
func TestFastPathSame(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "bench.parquet")
	writeBenchFileGroups(t, bench, 30_000, 8_000)
	t.Run("bench", func(t *testing.T) { compareFast(t, bench, parquetsource.Options{}, -1) })
	t.Run("bench batch 7777", func(t *testing.T) { compareFast(t, bench, parquetsource.Options{BatchSize: 7777}, -1) })
	t.Run("bench columns", func(t *testing.T) {
		compareFast(t, bench, parquetsource.Options{Columns: []string{"revenue", "email", "id"}, BatchSize: 999}, -1)
	})
	for _, tc := range []struct {
		name  string
		props []parquet.WriterProperty
	}{
		{"v1 dict snappy", []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Snappy)}},
		{"v2 dict", []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2)}},
		{"v1 plain", []parquet.WriterProperty{parquet.WithDictionaryDefault(false)}},
		{"v2 plain zstd", []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDictionaryDefault(false), parquet.WithCompression(compress.Codecs.Zstd)}},
		{"small pages", []parquet.WriterProperty{parquet.WithDataPageSize(512), parquet.WithDictionaryPageSizeLimit(700)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".parquet")
			writeTypesFile(t, path, 8_000, tc.props...)
			compareFast(t, path, parquetsource.Options{BatchSize: 1000}, -1)
			compareFast(t, path, parquetsource.Options{BatchSize: 3}, -1)
		})
	}
}

var typesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64},
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "lowbin", Type: arrow.BinaryTypes.Binary},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "ts_ms", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Europe/Paris"}, Nullable: true},
	{Name: "ts_ns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}},
	{Name: "ts_us", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 38, Scale: 4}, Nullable: true},
	{Name: "dec9", Type: &arrow.Decimal128Type{Precision: 9, Scale: 0}},
	{Name: "dec18", Type: &arrow.Decimal128Type{Precision: 18, Scale: 18}, Nullable: true},
}, nil)

// writeTypesFile writes rows rows of typesSchema, in row groups of 6000.
func writeTypesFile(tb testing.TB, path string, rows int, props ...parquet.WriterProperty) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	props = append([]parquet.WriterProperty{parquet.WithMaxRowGroupLength(6000)}, props...)
	w, err := pqarrow.NewFileWriter(typesSchema, f, parquet.NewWriterProperties(props...), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		tb.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, typesSchema)
	defer b.Release()
	for i := range rows {
		null := func(k int) bool { return i%k == 3 }
		if null(5) {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int32Builder).Append(int32(i*7919) - 1<<30)
		}
		b.Field(1).(*array.Int64Builder).Append(int64(i%100) - 50)
		if null(4) {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Float32Builder).Append(float32(i) / 3)
		}
		b.Field(3).(*array.Float64Builder).Append(float64(i) * -1.25e-3)
		if null(3) {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.BooleanBuilder).Append(i%7 < 3)
		}
		switch {
		case null(11):
			b.Field(5).AppendNull()
		case i%13 == 0:
			b.Field(5).(*array.StringBuilder).Append("")
		default:
			b.Field(5).(*array.StringBuilder).Append(fmt.Sprintf("value %d, \"quoted\"\nnext é", i%(1+i%500)))
		}
		switch {
		case null(17):
			b.Field(6).AppendNull()
		case i%97 == 1:
			b.Field(6).(*array.BinaryBuilder).Append([]byte{0xff, 'x', byte(i)})
		default:
			b.Field(6).(*array.BinaryBuilder).Append([]byte(fmt.Sprintf("bin-%d", i)))
		}
		if i%1000 == 500 {
			b.Field(7).(*array.BinaryBuilder).Append([]byte{0xc3})
		} else {
			b.Field(7).(*array.BinaryBuilder).Append([]byte(fmt.Sprintf("low%d", i%5)))
		}
		if null(9) {
			b.Field(8).AppendNull()
		} else {
			b.Field(8).(*array.Date32Builder).Append(arrow.Date32(i%30000 - 10000))
		}
		if null(6) {
			b.Field(9).AppendNull()
		} else {
			b.Field(9).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(i)*86_400_123 - 1e12))
		}
		b.Field(10).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(i)*1_000_000_007 + 123))
		b.Field(11).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(i%3000) * 1_000_003))
		if null(8) {
			b.Field(12).AppendNull()
		} else {
			v := decimal128.FromI64(int64(i) * 1234567)
			if i%3 == 0 {
				v = v.Negate()
			}
			if i%10 == 1 {
				v = v.Mul(decimal128.FromI64(1e15)).Mul(decimal128.FromI64(1e9))
			}
			b.Field(12).(*array.Decimal128Builder).Append(v)
		}
		b.Field(13).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(i%1000) - 500))
		if null(10) {
			b.Field(14).AppendNull()
		} else {
			b.Field(14).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(i) * 31415926535 % 999_999_999_999_999_999))
		}
		if (i+1)%4096 == 0 || i == rows-1 {
			rec := b.NewRecordBatch()
			err := w.Write(rec)
			rec.Release()
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestFastPathCorrupt: damaged page bytes make Read fail or return values,
// never panic.
func TestFastPathCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "types.parquet")
	writeTypesFile(t, path, 3000, parquet.WithDataPageSize(2048))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bad := filepath.Join(dir, "bad.parquet")
	body := len(good) - 4096 // leave the footer alone
	for k := range 300 {
		data := append([]byte(nil), good...)
		for m := range 1 + k%4 {
			off := 4 + (k*7919+m*104729)%(body-4)
			data[off] ^= byte(1 + (k+m)%255)
		}
		if err := os.WriteFile(bad, data, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: bad})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := src.Read(ctx); err != nil {
				break
			}
		}
		src.Close()
	}
}
