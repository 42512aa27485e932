package parquetsink_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
	"github.com/bulkflow/bulkflow/sinks/parquetsink"
	"github.com/bulkflow/bulkflow/sinks/sinktest"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

var update = flag.Bool("update", false, "rewrite golden files")

// readBack reads every row of the object at url through the parquet
// source; drops fail the test.
func readBack(tb testing.TB, url string) (*pipeline.Schema, []pipeline.Row) {
	tb.Helper()
	ctx := context.Background()
	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: url})
	if err != nil {
		tb.Fatalf("open source: %v", err)
	}
	defer src.Close()
	sch, err := src.Schema(ctx)
	if err != nil {
		tb.Fatalf("source schema: %v", err)
	}
	var rows []pipeline.Row
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("source read: %v", err)
		}
		for _, d := range b.Drops() {
			tb.Errorf("source dropped row %v: %v", d.Origin, d.Err)
		}
		for i := range b.Len() {
			rows = append(rows, b.Row(i))
		}
	}
	return sch, rows
}

// harness runs the sink suite on Parquet objects in a bucket, reading them
// back through the parquet source.
type harness struct {
	bucket blobtest.Bucket
	n      int
	url    string
}

func (h *harness) MakeSink(ctx context.Context, schema *pipeline.Schema) (pipeline.Sink, error) {
	h.n++
	h.url = h.bucket.URL(fmt.Sprintf("out-%d.parquet", h.n))
	loc, err := blobio.Parse("", h.url)
	if err != nil {
		return nil, err
	}
	return parquetsink.Open(ctx, loc, schema, nil)
}

func (h *harness) ReadBack(ctx context.Context) ([]map[string]string, error) {
	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: h.url})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	sch, err := src.Schema(ctx)
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b.Drops()) > 0 {
			return nil, fmt.Errorf("%s: the source dropped %d rows: %v", h.url, len(b.Drops()), b.Drops()[0].Err)
		}
		for i := range b.Len() {
			m := map[string]string{}
			for j, v := range b.Row(i) {
				m[sch.Field(j).Name] = pipeline.Text(v)
			}
			out = append(out, m)
		}
	}
}

// RejectedName is a name that is not UTF-8: Parquet strings must be, so
// the sink dead-letters the row (invalid_utf8).
func (h *harness) RejectedName() (string, bool) { return "bad \xff\xfe name", true }
func (h *harness) Unimplementable() []string    { return nil }

// TestConformance runs the sink suite on every blob store (file, mem, and
// S3, GCS and Azure test servers when running; see blobtest).
func TestConformance(t *testing.T) {
	for _, st := range blobtest.Stores {
		t.Run(st.Name, func(t *testing.T) {
			sinktest.RunConformance(t, func(t *testing.T) sinktest.Harness {
				return &harness{bucket: st.NewBucket(t)}
			})
		})
	}
}

// all is a schema with every type.
var all = pipeline.MustSchema(
	pipeline.Field{Name: "id", Type: pipeline.TypeInt},
	pipeline.Field{Name: "name", Type: pipeline.TypeString},
	pipeline.Field{Name: "score", Type: pipeline.TypeFloat},
	pipeline.Field{Name: "active", Type: pipeline.TypeBool},
	pipeline.Field{Name: "day", Type: pipeline.TypeDate},
	pipeline.Field{Name: "at", Type: pipeline.TypeTimestamp},
	pipeline.Field{Name: "amount", Type: pipeline.TypeDecimal},
	pipeline.Field{Name: "big", Type: pipeline.TypeDecimal},
	pipeline.Field{Name: "plain", Type: pipeline.TypeDecimal},
)

// allOptions declares amount decimal(18,2) (decimal128) and big
// decimal(60,10) (decimal256); plain is the default (38,9).
func allOptions(url string) *parquetsink.Options {
	return &parquetsink.Options{URL: url, Decimals: map[string]string{"amount": "18,2", "big": "60,10"}}
}

// writeRows writes rows through the registered "parquet" sink and returns
// its Write error (nil or *pipeline.RowErrors).
func writeRows(tb testing.TB, env *pipeline.Env, o *parquetsink.Options, sch *pipeline.Schema, rows []pipeline.Row) error {
	tb.Helper()
	ctx := context.Background()
	s, err := pipeline.DefaultRegistry().OpenSink(ctx, env, "parquet", o, sch)
	if err != nil {
		tb.Fatalf("OpenSink: %v", err)
	}
	var werr error
	for i := 0; i < len(rows); i += 1000 {
		b := pipeline.NewBatch(sch, 1000)
		for j, r := range rows[i:min(i+1000, len(rows))] {
			b.Append(r, pipeline.Origin{Object: "test", Row: int64(i + j + 1)})
		}
		if err := s.Write(ctx, b); err != nil {
			var re *pipeline.RowErrors
			if !errors.As(err, &re) {
				tb.Fatalf("Write: %v", err)
			}
			werr = err
		}
	}
	if err := s.Close(ctx); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	return werr
}

// Edge values of each type.
var (
	edgeStrings = []string{"", " ", "plain", "ünïcödé 日本語 ✓ 🙂", "a,b;\"c\"\n\r\td", "\x00nul", strings.Repeat("long ", 300)}
	edgeFloats  = []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, -1.5, 1e-300, 0.1}
	edgeInts    = []int64{0, -1, 1, math.MaxInt64, math.MinInt64}
	edgeDays    = []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(1600, 3, 1, 0, 0, 0, 0, time.UTC),
	}
	paris     = time.FixedZone("CET", 3600)
	edgeTimes = []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), // midnight
		time.Date(2026, 12, 5, 0, 0, 0, 0, paris),    // midnight elsewhere
		time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(1900, 6, 1, 12, 30, 0, 1000, time.UTC),
	}
	edgeAmounts = []string{"0", "-0", "0.00", "-0.01", "12.5", "12.50", "+7", ".25", "5.", "9999999999999999.99", "-9999999999999999.99", "1.5000"}
	edgeBig     = []string{"0", "12345678901234567890123456789012345678901234567890.1234567890", "-99999999999999999999999999999999999999999999999999.9999999999", "1"}
	edgePlain   = []string{"0", "12345678901234567890123456789.123456789", "-0.000000001", "42"}
)

// randomRow returns a row of all, each value an edge value, a random value
// or (one time in eight) null.
func randomRow(r *rand.Rand, id int64) pipeline.Row {
	pick := func(gen func() any) any {
		if r.IntN(8) == 0 {
			return nil
		}
		return gen()
	}
	return pipeline.Row{
		pick(func() any {
			if r.IntN(2) == 0 {
				return edgeInts[r.IntN(len(edgeInts))]
			}
			return r.Int64() - r.Int64()
		}),
		pick(func() any {
			if r.IntN(2) == 0 {
				return edgeStrings[r.IntN(len(edgeStrings))]
			}
			b := make([]rune, r.IntN(20))
			for i := range b {
				b[i] = rune(r.IntN(0x2FFF) + 1)
			}
			return string(b)
		}),
		pick(func() any {
			if r.IntN(2) == 0 {
				return edgeFloats[r.IntN(len(edgeFloats))]
			}
			return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
		}),
		pick(func() any { return r.IntN(2) == 0 }),
		pick(func() any {
			if r.IntN(2) == 0 {
				return edgeDays[r.IntN(len(edgeDays))]
			}
			return time.Date(1+r.IntN(9999), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(365))
		}),
		pick(func() any {
			if r.IntN(2) == 0 {
				return edgeTimes[r.IntN(len(edgeTimes))]
			}
			return time.UnixMicro(r.Int64N(253402300799000000+62135596800000000) - 62135596800000000).In(paris)
		}),
		pick(func() any {
			if r.IntN(2) == 0 {
				return edgeAmounts[r.IntN(len(edgeAmounts))]
			}
			return fmt.Sprintf("%d.%02d", r.Int64N(1e15)-5e14, r.IntN(100))
		}),
		pick(func() any {
			if r.IntN(2) == 0 {
				return edgeBig[r.IntN(len(edgeBig))]
			}
			return fmt.Sprintf("-%d%d.%d", r.Int64(), r.Int64(), r.IntN(1e9))
		}),
		pick(func() any { return edgePlain[r.IntN(len(edgePlain))] }),
	}
}

// sameValue reports whether got (read back) is want (written) for a
// column of type t: floats bit for bit (NaN as NaN), times as the same
// instant (dates as the same day), decimals as the same number.
func sameValue(t pipeline.Type, want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	switch t {
	case pipeline.TypeFloat:
		w, g := want.(float64), got.(float64)
		if math.IsNaN(w) {
			return math.IsNaN(g)
		}
		return math.Float64bits(w) == math.Float64bits(g)
	case pipeline.TypeTimestamp:
		return want.(time.Time).Equal(got.(time.Time)) && got.(time.Time).Location() == time.UTC
	case pipeline.TypeDate:
		return want.(time.Time).Equal(got.(time.Time))
	case pipeline.TypeDecimal:
		w, ok1 := new(big.Rat).SetString(want.(string))
		g, ok2 := new(big.Rat).SetString(got.(string))
		return ok1 && ok2 && w.Cmp(g) == 0
	}
	return want == got
}

// TestRoundTripProperty writes random rows of every type, with edge values
// (nulls, empty strings, Unicode, far dates, midnight timestamps, ±0, NaN,
// ±Inf, 50-digit decimals), in small row groups, and reads them back
// through the parquet source value for value; the last seed writes
// nanosecond timestamps over their whole range.
func TestRoundTripProperty(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		unit := "us"
		if seed == 4 {
			unit = "ns"
		}
		t.Run(fmt.Sprint(seed, unit), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			rows := make([]pipeline.Row, 5000)
			for i := range rows {
				rows[i] = randomRow(r, int64(i))
				if unit == "ns" && rows[i][5] != nil { // every nanosecond digit, 1677..2262
					ns := []time.Time{time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64), time.Unix(0, r.Int64()-r.Int64())}
					rows[i][5] = ns[r.IntN(len(ns))].In(paris)
				}
			}
			dir := t.TempDir()
			o := allOptions("out.parquet")
			o.RowGroupRows = 1500
			o.TimestampUnit = unit
			if err := writeRows(t, &pipeline.Env{BaseDir: dir}, o, all, rows); err != nil {
				t.Fatalf("Write: %v", err)
			}
			sch, got := readBack(t, filepath.Join(dir, "out.parquet"))
			if !sch.Equal(all) {
				t.Errorf("schema read back %s, want %s", sch, all)
			}
			if len(got) != len(rows) {
				t.Fatalf("%d rows read back, want %d", len(got), len(rows))
			}
			bad := 0
			for i := range rows {
				for j, f := range all.Fields() {
					if !sameValue(f.Type, rows[i][j], got[i][j]) && bad < 10 {
						bad++
						t.Errorf("row %d %s: read %#v, wrote %#v", i, f.Name, got[i][j], rows[i][j])
					}
				}
			}
			// Decimals come back at the column's scale.
			for i := range got {
				if v, ok := got[i][6].(string); ok && !strings.Contains(v, ".") || ok && len(v)-strings.Index(v, ".")-1 != 2 {
					t.Fatalf("row %d amount %q: want 2 decimal places", i, v)
				}
			}
		})
	}
}

// TestDeadLetters: rows with a value their column cannot hold come back in
// a *pipeline.RowErrors with the row's index, code and column; the other
// rows are written.
func TestDeadLetters(t *testing.T) {
	ok := func(id int64) pipeline.Row {
		return pipeline.Row{id, "x", 1.0, true, edgeDays[0], edgeTimes[0], "1.25", "1", "1"}
	}
	with := func(id int64, col int, v any) pipeline.Row {
		r := ok(id)
		r[col] = v
		return r
	}
	tests := []struct {
		name string
		row  pipeline.Row
		code string
		msg  string
	}{
		{"scale", with(1, 6, "1.234"), "out_of_range", "3 decimal places; the column is decimal(18,2)"},
		{"precision", with(2, 6, "12345678901234567.5"), "out_of_range", "17 digits before the point; the column is decimal(18,2), which holds 16"},
		{"not a decimal", with(3, 6, "1e5"), "bad_value", `"1e5" is not a decimal`},
		{"default scale", with(4, 8, "0.0000000001"), "out_of_range", "decimal(38,9)"},
		{"decimal256 precision", with(5, 7, strings.Repeat("9", 51)+".5"), "out_of_range", "decimal(60,10)"},
		{"sub-microsecond", with(6, 5, time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)), "out_of_range", "below the microsecond"},
		{"utf8", with(7, 1, "\xc3\x28"), "invalid_utf8", "not valid UTF-8"},
		{"go type", with(8, 0, "12"), "bad_value", "declared int but the value is a Go string"},
	}
	rows := []pipeline.Row{ok(100)}
	for _, tc := range tests {
		rows = append(rows, tc.row)
	}
	rows = append(rows, ok(101), with(102, 6, "1.2500"))
	dir := t.TempDir()
	err := writeRows(t, &pipeline.Env{BaseDir: dir}, allOptions("out.parquet"), all, rows)
	var re *pipeline.RowErrors
	if !errors.As(err, &re) {
		t.Fatalf("Write = %v, want *pipeline.RowErrors", err)
	}
	if len(re.Failures) != len(tests) {
		t.Errorf("%d rows failed, want %d: %v", len(re.Failures), len(tests), re)
	}
	for k, f := range re.Failures {
		if k >= len(tests) {
			break
		}
		tc := tests[k]
		var rerr *pipeline.RowError
		if f.Index != k+1 || !errors.As(f.Err, &rerr) || rerr.Code != tc.code || !strings.Contains(rerr.Error(), tc.msg) || rerr.Field != all.Field(firstDiff(ok(0), tc.row)).Name {
			t.Errorf("%s: failure %d %v (code %v), want index %d code %s containing %q", tc.name, f.Index, f.Err, rerr, k+1, tc.code, tc.msg)
		}
	}
	_, got := readBack(t, filepath.Join(dir, "out.parquet"))
	var ids []int64
	for _, r := range got {
		ids = append(ids, r[0].(int64))
	}
	if fmt.Sprint(ids) != "[100 101 102]" {
		t.Errorf("rows written %v, want [100 101 102]", ids)
	}
}

func firstDiff(a, b pipeline.Row) int {
	for i := range a {
		if i > 0 && fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
			return i
		}
	}
	return 0
}

// TestSchemaGolden pins the file's Arrow schema (as stored and read back by
// pqarrow) for a schema of every type, with the default and declared
// decimals and both timestamp units.
func TestSchemaGolden(t *testing.T) {
	var b strings.Builder
	for _, unit := range []string{"us", "ns"} {
		dir := t.TempDir()
		o := allOptions("out.parquet")
		o.TimestampUnit = unit
		if err := writeRows(t, &pipeline.Env{BaseDir: dir}, o, all, nil); err != nil {
			t.Fatal(err)
		}
		f, err := file.OpenParquetFile(filepath.Join(dir, "out.parquet"), false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		as, err := fr.Schema()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "timestamp_unit: %s\n%s\n\nparquet:\n", unit, as)
		b.WriteString(f.MetaData().Schema.String())
		b.WriteString("\n")
		f.Close()
	}
	golden := filepath.Join("testdata", "schema.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("schema changed (run with -update if on purpose):\n%s\nwant:\n%s", b.String(), want)
	}
}
