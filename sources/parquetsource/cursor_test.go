package parquetsource_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// The cursor fixture: cursorRows rows in row groups of cursorGroup rows,
// every cursor column growing with the row index i.
const (
	cursorRows  = 20
	cursorGroup = 4
)

var cursorBase = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

var cursorSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "updated", Type: arrow.PrimitiveTypes.Int64, Nullable: true},                                   // 10*i
	{Name: "updated_n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},                                 // 10*i, null at row 5 (group 1)
	{Name: "updated_req", Type: arrow.PrimitiveTypes.Int64},                                               // 10*i, required column
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},                                      // 2^31 + i: unsigned statistics
	{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},                                       // i - 10: negative values
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},                                       // 1.5*i
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},                                     // 1.5*i
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},                                           // "k%03d"
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},                                       // base + i days
	{Name: "ts_us", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true}, // base + 10*i s
	{Name: "ts_s", Type: &arrow.TimestampType{Unit: arrow.Second}, Nullable: true},                        // stored as ms
	{Name: "ts_ns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "America/New_York"}, Nullable: true},
	{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
	{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

// cursorRecord builds rows [from, from+n) of the cursor fixture.
func cursorRecord(tb testing.TB, from, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, cursorSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		at := cursorBase.Add(time.Duration(10*i) * time.Second)
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Int64Builder).Append(int64(10 * i))
		if i == 5 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Int64Builder).Append(int64(10 * i))
		}
		b.Field(3).(*array.Int64Builder).Append(int64(10 * i))
		b.Field(4).(*array.Uint32Builder).Append(1<<31 + uint32(i))
		b.Field(5).(*array.Int32Builder).Append(int32(i - 10))
		b.Field(6).(*array.Float64Builder).Append(1.5 * float64(i))
		b.Field(7).(*array.Float32Builder).Append(1.5 * float32(i))
		b.Field(8).(*array.StringBuilder).Append(fmt.Sprintf("k%03d", i))
		b.Field(9).(*array.Date32Builder).Append(arrow.Date32FromTime(cursorBase.AddDate(0, 0, i)))
		b.Field(10).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		b.Field(11).(*array.TimestampBuilder).Append(arrow.Timestamp(at.Unix()))
		b.Field(12).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixNano()))
		b.Field(13).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(i) * 100))
		b.Field(14).(*array.BooleanBuilder).Append(i >= 10)
	}
	rec := b.NewRecordBatch()
	tb.Cleanup(rec.Release)
	return rec
}

// cursorFile returns the URL of a fresh cursor fixture object.
func cursorFile(t *testing.T) string {
	url := fmt.Sprintf("mem://parquet-cursor-%d/c.parquet", memBuckets.Add(1))
	write(context.Background(), t, url, encodeRecord(t, cursorRecord(t, 0, cursorRows), cursorGroup))
	return url
}

// logBuffer returns an Env logging to buf at Info and above.
func logEnv(buf *bytes.Buffer) *pipeline.Env {
	return &pipeline.Env{Logger: slog.New(slog.NewTextHandler(buf, nil))}
}

// readIDs reads src to the end and returns the id column, checking every
// row's origin is its 1-based position in the object.
func readIDs(t *testing.T, src *parquetsource.Source) []int64 {
	t.Helper()
	var ids []int64
	for _, b := range sourcetest.ReadAll(context.Background(), t, src) {
		idx := b.Schema().Index("id")
		for i := range b.Len() {
			id := b.Row(i)[idx].(int64)
			if o := b.Origin(i); o.Row != id+1 {
				t.Errorf("row id %d: origin row %d, want %d", id, o.Row, id+1)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

func idsFrom(from, to int) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, int64(i))
	}
	return out
}

func TestPushCursor(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	at := func(i int) time.Time { return cursorBase.Add(time.Duration(10*i) * time.Second) }
	tests := []struct {
		name    string
		field   string
		after   any
		project []string // Project before reading
		early   bool     // PushCursor before Schema
		wantRGs int64    // leading row groups skipped
	}{
		// Row group g holds rows 4g..4g+3, updated 40g..40g+30.
		{name: "int in a row group", field: "updated", after: int64(95), wantRGs: 2},
		{name: "int at a row group's max", field: "updated", after: int64(70), wantRGs: 2},
		{name: "int just below a row group's max", field: "updated", after: int64(69), wantRGs: 1},
		{name: "int below everything", field: "updated", after: int64(-1), wantRGs: 0},
		{name: "int above everything", field: "updated", after: int64(1000), wantRGs: 5},
		{name: "int, pushed before Schema", field: "updated", after: int64(95), early: true, wantRGs: 2},
		{name: "int, cursor projected away", field: "updated", after: int64(95), project: []string{"id"}, wantRGs: 2},
		{name: "required int column", field: "updated_req", after: int64(135), wantRGs: 3},
		{name: "null cursor keeps its row group", field: "updated_n", after: int64(95), wantRGs: 1},
		{name: "uint32 above 2^31", field: "u32", after: int64(1<<31 + 7), wantRGs: 2},
		{name: "uint32 below all", field: "u32", after: int64(1 << 30), wantRGs: 0},
		{name: "negative int32", field: "i32", after: int64(-4), wantRGs: 1},
		{name: "float64", field: "f", after: 10.5, wantRGs: 2},
		{name: "float32", field: "f32", after: 10.5, wantRGs: 2},
		{name: "string", field: "s", after: "k011", wantRGs: 3},
		{name: "string prefix of the max", field: "s", after: "k01", wantRGs: 2},
		{name: "date", field: "d", after: cursorBase.AddDate(0, 0, 8), wantRGs: 2},
		{name: "timestamp us", field: "ts_us", after: at(8), wantRGs: 2},
		{name: "timestamp us, a nanosecond short", field: "ts_us", after: at(7).Add(-time.Nanosecond), wantRGs: 1},
		{name: "timestamp s stored as ms", field: "ts_s", after: at(7), wantRGs: 2},
		{name: "timestamp ns, other zone", field: "ts_ns", after: at(11).In(ny), wantRGs: 3},
		{name: "unknown field ignored", field: "nope", after: int64(1000), wantRGs: 0},
		{name: "watermark of another type ignored", field: "updated", after: "95", wantRGs: 0},
		{name: "int watermark on a float column ignored", field: "f", after: int64(1000), wantRGs: 0},
		{name: "nil watermark ignored", field: "updated", after: nil, wantRGs: 0},
		{name: "decimal ignored", field: "dec", after: "1000", wantRGs: 0},
		{name: "bool ignored", field: "flag", after: true, wantRGs: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := cursorFile(t)
			ctx := context.Background()
			var logs bytes.Buffer
			src, err := parquetsource.Open(ctx, logEnv(&logs), &parquetsource.Options{URL: url, BatchSize: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if tc.early {
				src.PushCursor(tc.field, tc.after)
			}
			if _, err := src.Schema(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.project != nil {
				if err := src.Project(tc.project); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.early {
				src.PushCursor(tc.field, tc.after)
			}
			got := readIDs(t, src)
			// Exactly the rows of the row groups not skipped, every row with
			// a cursor > the watermark (or null) among them.
			if want := idsFrom(int(tc.wantRGs)*cursorGroup, cursorRows); !slices.Equal(got, want) {
				t.Errorf("ids = %v, want %v", got, want)
			}
			rgs, rows := src.Skipped()
			if rgs != tc.wantRGs || rows != tc.wantRGs*cursorGroup {
				t.Errorf("Skipped() = %d row groups, %d rows; want %d, %d", rgs, rows, tc.wantRGs, tc.wantRGs*cursorGroup)
			}
			msg := fmt.Sprintf("parquet: skipped %d row groups (%d rows) at or below the watermark", rgs, rows)
			n := strings.Count(logs.String(), "msg=\"parquet: skipped")
			switch {
			case tc.wantRGs > 0 && (n != 1 || !strings.Contains(logs.String(), msg)):
				t.Errorf("log has %d skip messages, want one %q:\n%s", n, msg, logs.String())
			case tc.wantRGs == 0 && n > 1:
				t.Errorf("log has %d skip messages, want at most one:\n%s", n, logs.String())
			}
		})
	}
}

// TestPushCursorObjects checks skipping over several objects: each is
// judged by its own row groups, totals add up, and each is logged once.
func TestPushCursorObjects(t *testing.T) {
	p := fmt.Sprintf("mem://parquet-cursor-objs-%d/", memBuckets.Add(1))
	ctx := context.Background()
	// a: rows 0..19, b: rows 20..39 (ids continue, row numbers restart).
	write(ctx, t, p+"a.parquet", encodeRecord(t, cursorRecord(t, 0, cursorRows), cursorGroup))
	write(ctx, t, p+"b.parquet", encodeRecord(t, cursorRecord(t, cursorRows, cursorRows), cursorGroup))
	var logs bytes.Buffer
	src, err := parquetsource.Open(ctx, logEnv(&logs), &parquetsource.Options{URL: p + "*.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	src.PushCursor("updated", int64(275))
	var ids []int64
	for _, b := range sourcetest.ReadAll(ctx, t, src) {
		for i := range b.Len() {
			ids = append(ids, b.Row(i)[0].(int64))
		}
	}
	// All of a; of b (updated 200..390), the groups 200..230 and 240..270.
	if want := idsFrom(28, 40); !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	if rgs, rows := src.Skipped(); rgs != 7 || rows != 28 {
		t.Errorf("Skipped() = %d, %d; want 7, 28", rgs, rows)
	}
	re := regexp.MustCompile(`msg="parquet: skipped (\d+) row groups \((\d+) rows\) at or below the watermark" object=(\S+)`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(logs.String(), -1) {
		got = append(got, m[1]+"/"+m[2]+" "+m[3])
	}
	if want := []string{"5/20 " + p + "a.parquet", "2/8 " + p + "b.parquet"}; !slices.Equal(got, want) {
		t.Errorf("skip logs = %q, want %q\n%s", got, want, logs.String())
	}
}

// TestPushCursorNoStatistics checks that row groups without usable
// statistics are read: statistics turned off, and INT96 timestamps (whose
// statistics have no defined order).
func TestPushCursorNoStatistics(t *testing.T) {
	at := cursorBase.Add(1000 * time.Hour)
	tests := []struct {
		name  string
		props []parquet.WriterProperty
		arrow []pqarrow.WriterOption
		field string
		after any
	}{
		{"statistics disabled", []parquet.WriterProperty{parquet.WithStats(false)}, nil, "updated", int64(1000)},
		{"int96 timestamps", nil, []pqarrow.WriterOption{pqarrow.WithDeprecatedInt96Timestamps(true)}, "ts_ns", at}, // only ns become INT96
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			props := parquet.NewWriterProperties(append(tc.props, parquet.WithMaxRowGroupLength(cursorGroup))...)
			w, err := pqarrow.NewFileWriter(cursorSchema, &buf, props, pqarrow.NewArrowWriterProperties(append(tc.arrow, pqarrow.WithStoreSchema())...))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(cursorRecord(t, 0, cursorRows)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			url := fmt.Sprintf("mem://parquet-cursor-nostats-%d/c.parquet", memBuckets.Add(1))
			write(context.Background(), t, url, buf.Bytes())
			src, err := parquetsource.Open(context.Background(), nil, &parquetsource.Options{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, err := src.Schema(context.Background()); err != nil {
				t.Fatal(err)
			}
			src.PushCursor(tc.field, tc.after)
			if got := readIDs(t, src); !slices.Equal(got, idsFrom(0, cursorRows)) {
				t.Errorf("ids = %v, want all", got)
			}
			if rgs, rows := src.Skipped(); rgs != 0 || rows != 0 {
				t.Errorf("Skipped() = %d, %d; want 0, 0", rgs, rows)
			}
		})
	}
}

// TestPushCursorFlattened checks a flattened struct field is not used to
// skip (a null parent's nulls are not reliably in the leaf's null count).
func TestPushCursorFlattened(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "meta", Type: arrow.StructOf(arrow.Field{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true}), Nullable: true},
	}, nil)
	rec := buildRecord(t, sc, `[{"id": 0, "meta": {"v": 1}}, {"id": 1, "meta": null}, {"id": 2, "meta": {"v": 3}}]`)
	url := fmt.Sprintf("mem://parquet-cursor-flat-%d/c.parquet", memBuckets.Add(1))
	write(context.Background(), t, url, encodeRecord(t, rec, 0))
	src, err := parquetsource.Open(context.Background(), nil, &parquetsource.Options{URL: url, Flatten: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.PushCursor("meta.v", int64(100))
	if got := readIDs(t, src); !slices.Equal(got, idsFrom(0, 3)) {
		t.Errorf("ids = %v, want all", got)
	}
}

// TestShardWithCursor checks sharding, projection and the cursor combine: a
// shard skips row groups of the objects it reads only.
func TestShardWithCursor(t *testing.T) {
	p := fmt.Sprintf("mem://parquet-shard-cursor-%d/", memBuckets.Add(1))
	ctx := context.Background()
	// part-k holds ids 20k..20k+19, updated 10*id.
	for k := range 3 {
		write(ctx, t, fmt.Sprintf("%spart-%d.parquet", p, k), encodeRecord(t, cursorRecord(t, k*cursorRows, cursorRows), cursorGroup))
	}
	// After 215: all of part-0 is at or below it; part-1's first group
	// (200..230) is not.
	tests := []struct {
		shard   pipeline.Shard
		wantIDs []int64
		wantRGs int64
	}{
		{pipeline.Shard{}, idsFrom(20, 60), 5},
		{pipeline.Shard{Index: 0, Count: 2}, idsFrom(40, 60), 5},
		{pipeline.Shard{Index: 1, Count: 2}, idsFrom(20, 40), 0},
		{pipeline.Shard{Index: 1, Count: 3}, idsFrom(20, 40), 0},
		{pipeline.Shard{Index: 2, Count: 3}, idsFrom(40, 60), 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("shard %d of %d", tc.shard.Index, tc.shard.Count), func(t *testing.T) {
			src, err := parquetsource.Open(ctx, &pipeline.Env{Shard: tc.shard}, &parquetsource.Options{URL: p + "*.parquet"})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, err := src.Schema(ctx); err != nil {
				t.Fatal(err)
			}
			// Project works whether or not this shard reads the first
			// object, whose footer gave the schema.
			if err := src.Project([]string{"updated", "id"}); err != nil {
				t.Fatal(err)
			}
			src.PushCursor("updated", int64(215))
			var ids []int64
			for _, b := range sourcetest.ReadAll(ctx, t, src) {
				for i := range b.Len() {
					ids = append(ids, b.Row(i)[0].(int64))
				}
			}
			if !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tc.wantIDs)
			}
			if rgs, _ := src.Skipped(); rgs != tc.wantRGs {
				t.Errorf("skipped %d row groups, want %d", rgs, tc.wantRGs)
			}
		})
	}
}

func TestShardIndexOutOfRange(t *testing.T) {
	for _, sh := range []pipeline.Shard{{Index: 2, Count: 2}, {Index: -1, Count: 3}} {
		_, err := parquetsource.Open(context.Background(), &pipeline.Env{Shard: sh}, &parquetsource.Options{URL: "x.parquet"})
		if err == nil || !strings.Contains(err.Error(), "shard") {
			t.Errorf("Open with shard %+v: error %v, want one naming the shard", sh, err)
		}
	}
}
