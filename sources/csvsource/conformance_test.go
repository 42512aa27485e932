package csvsource_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
	"github.com/bulkflow/bulkflow/sources/csvsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// harness writes fixtures as CSV objects under base (a URL prefix ending in
// "/") and reads them back through a glob.
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
	return &harness{base: fmt.Sprintf("mem://csvsource-test-%d/", memBuckets.Add(1))}
}

// encode writes a fixture as CSV with "\n" line ends (cells byte-exact).
func encode(tb testing.TB, f sourcetest.Fixture) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(f.Header)
	w.WriteAll(f.Rows)
	if err := w.Error(); err != nil {
		tb.Fatalf("encode %s: %v", f.Name, err)
	}
	return buf.Bytes()
}

func (h *harness) prefix() string {
	h.n++
	h.last = fmt.Sprintf("%ss%d/", h.base, h.n)
	return h.last
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

func (h *harness) MakeSource(ctx context.Context, tb testing.TB, objects []sourcetest.Fixture) (pipeline.Source, error) {
	return h.MakeSourceEnv(ctx, tb, nil, objects)
}

func (h *harness) MakeSourceEnv(ctx context.Context, tb testing.TB, env *pipeline.Env, objects []sourcetest.Fixture) (pipeline.Source, error) {
	p := h.prefix()
	for _, f := range objects {
		write(ctx, tb, p+f.Name+".csv"+h.query, encode(tb, f))
	}
	return csvsource.Open(ctx, env, &csvsource.Options{URL: p + "*.csv" + h.query})
}

var _ sourcetest.EnvHarness = (*harness)(nil)

func (h *harness) WantOrigin(objects []sourcetest.Fixture, obj, row int) pipeline.Origin {
	f := objects[obj]
	line := int64(2)
	for _, r := range f.Rows[:row] {
		line++
		for _, c := range r {
			line += int64(strings.Count(c, "\n"))
		}
	}
	return pipeline.Origin{Object: h.last + f.Name + ".csv", Line: line, Row: int64(row + 1)}
}

func (h *harness) BadRow(ctx context.Context, tb testing.TB) (sourcetest.BadRowCase, bool) {
	p := h.prefix()
	const data = "id,name,amount\n" + // 1
		"1,ok,5\n" + // 2: row 1
		"2,\"bad\"x,5\n" + // 3: row 2, text after closing quote
		"3,too,many,fields\n" + // 4: row 3, field count
		"4,\"multi\nline\",6\n" + // 5-6: row 4
		"5,bad\xff,7\n" + // 7: row 5, invalid UTF-8
		"6,\"a\"\"b\",9\r\n" + // 8: row 6
		"7,ab\"c,1\n" + // 9: row 7, bare quote
		"8,\"unterminated,8\n" + // 10: row 8, runs to the end
		"9,x,y\n"
	write(ctx, tb, p+"bad.csv"+h.query, []byte(data))
	src, err := csvsource.Open(ctx, nil, &csvsource.Options{URL: p + "bad.csv" + h.query})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	obj := p + "bad.csv"
	return sourcetest.BadRowCase{
		Source:  src,
		Records: 8,
		Rows:    [][]string{{"1", "ok", "5"}, {"4", "multi\nline", "6"}, {"6", `a"b`, "9"}},
		Bad: []pipeline.Origin{
			{Object: obj, Line: 3, Row: 2},
			{Object: obj, Line: 4, Row: 3},
			{Object: obj, Line: 7, Row: 5},
			{Object: obj, Line: 9, Row: 7},
			{Object: obj, Line: 10, Row: 8},
		},
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
