package parquetsource_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// encodeRecord writes one record batch as a Parquet file, with the Arrow
// schema stored (so time zones survive) and at most rowGroup rows per row
// group (0: the writer's default).
func encodeRecord(tb testing.TB, rec arrow.RecordBatch, rowGroup int64) []byte {
	tb.Helper()
	var buf bytes.Buffer
	opts := []parquet.WriterProperty{}
	if rowGroup > 0 {
		opts = append(opts, parquet.WithMaxRowGroupLength(rowGroup))
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), &buf, parquet.NewWriterProperties(opts...), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		tb.Fatalf("NewFileWriter: %v", err)
	}
	if err := w.Write(rec); err != nil {
		tb.Fatalf("write parquet: %v", err)
	}
	if err := w.Close(); err != nil {
		tb.Fatalf("close parquet writer: %v", err)
	}
	return buf.Bytes()
}

// encodeFixture writes a fixture as a Parquet file of string columns.
func encodeFixture(tb testing.TB, f sourcetest.Fixture) []byte {
	tb.Helper()
	fields := make([]arrow.Field, len(f.Header))
	cols := make([]arrow.Array, len(f.Header))
	for j, h := range f.Header {
		fields[j] = arrow.Field{Name: h, Type: arrow.BinaryTypes.String}
		b := array.NewStringBuilder(memory.DefaultAllocator)
		for _, r := range f.Rows {
			b.Append(r[j])
		}
		cols[j] = b.NewArray()
		defer cols[j].Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(f.Rows)))
	defer rec.Release()
	return encodeRecord(tb, rec, 0)
}

func write(ctx context.Context, tb testing.TB, url string, data []byte) {
	tb.Helper()
	loc, err := blobio.Parse("", url)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	if err := blobio.WriteAll(ctx, loc, data); err != nil {
		tb.Fatalf("write %s: %v", url, err)
	}
}

// harness writes fixtures as Parquet objects under base (a URL prefix ending
// in "/") and reads them back through a glob.
type harness struct {
	base  string
	query string // URL parameters of the bucket (cloud stores)
	last  string // prefix of the last MakeSource/BadRow call
	n     int
}

var memBuckets atomic.Int64

func fileHarness(tb testing.TB) sourcetest.Harness {
	return &harness{base: "file://" + tb.TempDir() + "/"}
}

func memHarness(tb testing.TB) sourcetest.Harness {
	return &harness{base: fmt.Sprintf("mem://parquetsource-test-%d/", memBuckets.Add(1))}
}

func (h *harness) prefix() string {
	h.n++
	h.last = fmt.Sprintf("%ss%d/", h.base, h.n)
	return h.last
}

func (h *harness) MakeSource(ctx context.Context, tb testing.TB, objects []sourcetest.Fixture) (pipeline.Source, error) {
	return h.MakeSourceEnv(ctx, tb, nil, objects)
}

func (h *harness) MakeSourceEnv(ctx context.Context, tb testing.TB, env *pipeline.Env, objects []sourcetest.Fixture) (pipeline.Source, error) {
	p := h.prefix()
	for _, f := range objects {
		write(ctx, tb, p+f.Name+".parquet"+h.query, encodeFixture(tb, f))
	}
	return parquetsource.Open(ctx, env, &parquetsource.Options{URL: p + "*.parquet" + h.query})
}

var _ sourcetest.EnvHarness = (*harness)(nil)

func (h *harness) WantOrigin(objects []sourcetest.Fixture, obj, row int) pipeline.Origin {
	return pipeline.Origin{Object: h.last + objects[obj].Name + ".parquet", Row: int64(row + 1)}
}

// BadRow writes binary columns holding invalid UTF-8 in some rows.
func (h *harness) BadRow(ctx context.Context, tb testing.TB) (sourcetest.BadRowCase, bool) {
	p := h.prefix()
	ids := []string{"1", "2", "3", "4", "5", "6"}
	names := []string{"ok", "bad\xff", "fine", "\xc3", "also fine", "x\xfe\xfe"}
	fields := []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.Binary}, {Name: "name", Type: arrow.BinaryTypes.Binary}}
	var cols []arrow.Array
	for _, vals := range [][]string{ids, names} {
		b := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
		for _, v := range vals {
			b.Append([]byte(v))
		}
		cols = append(cols, b.NewArray())
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(ids)))
	write(ctx, tb, p+"bad.parquet"+h.query, encodeRecord(tb, rec, 0))
	rec.Release()
	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: p + "bad.parquet" + h.query})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	obj := p + "bad.parquet"
	return sourcetest.BadRowCase{
		Source:  src,
		Records: 6,
		Rows:    [][]string{{"1", "ok"}, {"3", "fine"}, {"5", "also fine"}},
		Bad:     []pipeline.Origin{{Object: obj, Row: 2}, {Object: obj, Row: 4}, {Object: obj, Row: 6}},
	}, true
}

func (h *harness) Unimplementable() []string { return nil }

// TestConformance runs the source suite on every storage kind: file://,
// mem://, and S3, GCS and Azure test servers (see blobtest).
func TestConformance(t *testing.T) {
	for _, st := range blobtest.Stores {
		t.Run(st.Name, func(t *testing.T) {
			sourcetest.RunConformance(t, func(tb testing.TB) sourcetest.Harness {
				b := st.NewBucket(tb)
				return &harness{base: b.Prefix, query: b.Query}
			})
		})
	}
}

func BenchmarkConformance(b *testing.B) {
	b.Run("file", func(b *testing.B) { sourcetest.RunBenchmarks(b, fileHarness) })
	b.Run("mem", func(b *testing.B) { sourcetest.RunBenchmarks(b, memHarness) })
}
