package parquetsource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// buildRecord builds a record from JSON rows (arrow's JSON reader), which
// covers every type including nulls and nested values.
func buildRecord(t testing.TB, sc *arrow.Schema, jsonRows string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(jsonRows))
	if err != nil {
		t.Fatalf("RecordFromJSON: %v", err)
	}
	t.Cleanup(rec.Release)
	return rec
}

// readAll opens opts and returns the schema and every batch.
func readAll(t *testing.T, opts *parquetsource.Options) (*pipeline.Schema, []*pipeline.Batch) {
	t.Helper()
	ctx := context.Background()
	src, err := parquetsource.Open(ctx, nil, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer src.Close()
	sch, err := src.Schema(ctx)
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	return sch, sourcetest.ReadAll(ctx, t, src)
}

func rowsOf(bs []*pipeline.Batch) []pipeline.Row {
	var out []pipeline.Row
	for _, b := range bs {
		for i := range b.Len() {
			out = append(out, b.Row(i))
		}
	}
	return out
}

func TestTypes(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "u8", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: "u16", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
		{Name: "u64", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "d32", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "d64", Type: arrow.FixedWidthTypes.Date64, Nullable: true},
		{Name: "ts_s", Type: &arrow.TimestampType{Unit: arrow.Second}, Nullable: true},
		{Name: "ts_ms_ny", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "America/New_York"}, Nullable: true},
		{Name: "ts_us_utc", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "ts_ns", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
		{Name: "dec256", Type: &arrow.Decimal256Type{Precision: 50, Scale: 3}, Nullable: true},
		{Name: "nul", Type: arrow.Null, Nullable: true},
		{Name: "dict", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
	}, nil)
	d32 := func(y int, m time.Month, d int) int32 {
		return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	}
	bld := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer bld.Release()
	// Row 1: ordinary values; row 2: extremes; row 3: all nulls.
	bld.Field(0).(*array.Int8Builder).AppendValues([]int8{-8, math.MaxInt8}, nil)
	bld.Field(1).(*array.Int16Builder).AppendValues([]int16{-16, math.MaxInt16}, nil)
	bld.Field(2).(*array.Int32Builder).AppendValues([]int32{-32, math.MinInt32}, nil)
	bld.Field(3).(*array.Int64Builder).AppendValues([]int64{-64, math.MaxInt64}, nil)
	bld.Field(4).(*array.Uint8Builder).AppendValues([]uint8{8, math.MaxUint8}, nil)
	bld.Field(5).(*array.Uint16Builder).AppendValues([]uint16{16, math.MaxUint16}, nil)
	bld.Field(6).(*array.Uint32Builder).AppendValues([]uint32{32, math.MaxUint32}, nil)
	bld.Field(7).(*array.Uint64Builder).AppendValues([]uint64{64, math.MaxInt64}, nil)
	bld.Field(8).(*array.Float32Builder).AppendValues([]float32{1.5, -0.25}, nil)
	bld.Field(9).(*array.Float64Builder).AppendValues([]float64{3.25, math.Inf(1)}, nil)
	bld.Field(10).(*array.StringBuilder).AppendValues([]string{"héllo", ""}, nil)
	bld.Field(11).(*array.LargeStringBuilder).AppendValues([]string{"large", "日本"}, nil)
	bld.Field(12).(*array.BinaryBuilder).AppendValues([][]byte{[]byte("bytes"), {}}, nil)
	bld.Field(13).(*array.BooleanBuilder).AppendValues([]bool{true, false}, nil)
	bld.Field(14).(*array.Date32Builder).AppendValues([]arrow.Date32{arrow.Date32(d32(2026, 3, 1)), arrow.Date32(d32(1969, 12, 31))}, nil)
	bld.Field(15).(*array.Date64Builder).AppendValues([]arrow.Date64{arrow.Date64(int64(d32(2026, 3, 1)) * 86400000), arrow.Date64(-86400000)}, nil)
	inst := time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)
	bld.Field(16).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(inst.Unix()), 0}, nil)
	bld.Field(17).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(inst.UnixMilli()), 0}, nil)
	bld.Field(18).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(inst.UnixMicro()), 0}, nil)
	bld.Field(19).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(inst.UnixNano()), -1}, nil)
	bld.Field(20).(*array.Decimal128Builder).AppendValues([]decimal128.Num{decimal128.FromI64(123450), decimal128.FromI64(-5)}, nil)
	big, _ := decimal256.FromString("12345678901234567890123456789012345678901234.567", 50, 3)
	bld.Field(21).(*array.Decimal256Builder).AppendValues([]decimal256.Num{decimal256.FromI64(1000), big}, nil)
	bld.Field(22).(*array.NullBuilder).AppendNulls(2)
	db := bld.Field(23).(*array.BinaryDictionaryBuilder)
	db.AppendString("red")
	db.AppendString("red")
	for _, fb := range bld.Fields() {
		fb.AppendNull()
	}
	rec := bld.NewRecordBatch()
	defer rec.Release()

	url := fmt.Sprintf("mem://parquet-types-%d/types.parquet", memBuckets.Add(1))
	write(context.Background(), t, url, encodeRecord(t, rec, 0))
	sch, batches := readAll(t, &parquetsource.Options{URL: url})

	wantTypes := map[string]pipeline.Type{
		"i8": pipeline.TypeInt, "u64": pipeline.TypeInt, "f32": pipeline.TypeFloat, "s": pipeline.TypeString,
		"ls": pipeline.TypeString, "bin": pipeline.TypeString, "b": pipeline.TypeBool, "d32": pipeline.TypeDate,
		"d64": pipeline.TypeDate, "ts_s": pipeline.TypeTimestamp, "ts_ms_ny": pipeline.TypeTimestamp,
		"dec": pipeline.TypeDecimal, "dec256": pipeline.TypeDecimal, "nul": pipeline.TypeString, "dict": pipeline.TypeString,
	}
	for name, want := range wantTypes {
		if got := sch.Field(sch.Index(name)).Type; got != want {
			t.Errorf("field %s: type %s, want %s", name, got, want)
		}
	}
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	want := []pipeline.Row{
		{int64(-8), int64(-16), int64(-32), int64(-64), int64(8), int64(16), int64(32), int64(64),
			1.5, 3.25, "héllo", "large", "bytes", true, day(2026, 3, 1), day(2026, 3, 1),
			inst.Truncate(time.Second), inst.Truncate(time.Millisecond).In(ny), inst.Truncate(time.Microsecond), inst,
			"1234.50", "1.000", nil, "red"},
		{int64(math.MaxInt8), int64(math.MaxInt16), int64(math.MinInt32), int64(math.MaxInt64), int64(255), int64(65535), int64(math.MaxUint32), int64(math.MaxInt64),
			-0.25, math.Inf(1), "", "日本", "", false, day(1969, 12, 31), day(1969, 12, 31),
			time.Unix(0, 0).UTC(), time.Unix(0, 0).In(ny), time.Unix(0, 0).UTC(), time.Unix(0, -1).UTC(),
			"-0.05", "12345678901234567890123456789012345678901234.567", nil, "red"},
		make(pipeline.Row, 24),
	}
	got := rowsOf(batches)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
	// Zones: a zoned column keeps its zone, others are UTC.
	if len(got) > 0 {
		if loc := got[0][sch.Index("ts_ms_ny")].(time.Time).Location().String(); loc != "America/New_York" {
			t.Errorf("ts_ms_ny location = %s, want America/New_York", loc)
		}
		for _, n := range []string{"ts_s", "ts_us_utc", "ts_ns", "d32", "d64"} {
			if loc := got[0][sch.Index(n)].(time.Time).Location(); loc != time.UTC {
				t.Errorf("%s location = %s, want UTC", n, loc)
			}
		}
	}
}

func TestRowErrors(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int32},
		{Name: "big", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "raw", Type: arrow.BinaryTypes.Binary, Nullable: true},
	}, nil)
	rec := buildRecord(t, sc, `[
		{"id": 1, "big": 5, "raw": "b2s="},
		{"id": 2, "big": 18446744073709551615, "raw": "b2s="},
		{"id": 3, "big": null, "raw": "/w=="},
		{"id": 4, "big": 9223372036854775808, "raw": "/w=="}
	]`)
	url := fmt.Sprintf("mem://parquet-rowerr-%d/x/bad.parquet", memBuckets.Add(1))
	write(context.Background(), t, url, encodeRecord(t, rec, 0))
	_, batches := readAll(t, &parquetsource.Options{URL: url})
	if d := cmp.Diff([]pipeline.Row{{int64(1), int64(5), "ok"}}, rowsOf(batches)); d != "" {
		t.Errorf("good rows (-want +got):\n%s", d)
	}
	var drops []pipeline.Drop
	for _, b := range batches {
		drops = append(drops, b.Drops()...)
	}
	tests := []struct {
		row         int64
		code, field string
	}{
		{2, parquetsource.CodeOutOfRange, "big"},
		{3, parquetsource.CodeInvalidUTF8, "raw"},
		{4, parquetsource.CodeOutOfRange, "big"}, // first bad value of the row wins
	}
	if len(drops) != len(tests) {
		t.Fatalf("got %d drops, want %d", len(drops), len(tests))
	}
	for i, tc := range tests {
		d := drops[i]
		var re *pipeline.RowError
		if !errors.As(d.Err, &re) {
			t.Fatalf("drop %d: %T, want *pipeline.RowError", i, d.Err)
		}
		wantOrigin := pipeline.Origin{Object: url, Row: tc.row}
		if d.Origin != wantOrigin || re.Origin != wantOrigin || re.Code != tc.code || re.Field != tc.field {
			t.Errorf("drop %d = origin %v, code %q, field %q; want %v, %q, %q", i, re.Origin, re.Code, re.Field, wantOrigin, tc.code, tc.field)
		}
		if msg := re.Error(); !strings.Contains(msg, url+"#row=") {
			t.Errorf("drop %d: message %q does not name object and row", i, msg)
		}
		if d.Raw == "" || d.Row == nil {
			t.Errorf("drop %d: Raw %q, Row %v: want both set", i, d.Raw, d.Row)
		}
	}
}

// nestedFile writes a file with a struct, a list and a map column.
func nestedFile(t *testing.T) string {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "address", Type: arrow.StructOf(
			arrow.Field{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "geo", Type: arrow.StructOf(
				arrow.Field{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
			), Nullable: true},
		), Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "attrs", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
	}, nil)
	rec := buildRecord(t, sc, `[
		{"id": 1, "address": {"city": "Oslo", "geo": {"lat": 59.9}}, "tags": ["a", "b"], "attrs": [{"key": "x", "value": 1}, {"key": "y", "value": 2}]},
		{"id": 2, "address": null, "tags": [], "attrs": null},
		{"id": 3, "address": {"city": null, "geo": null}, "tags": null, "attrs": []}
	]`)
	url := fmt.Sprintf("mem://parquet-nested-%d/n.parquet", memBuckets.Add(1))
	write(context.Background(), t, url, encodeRecord(t, rec, 0))
	return url
}

func TestNested(t *testing.T) {
	url := nestedFile(t)
	ctx := context.Background()
	t.Run("rejected without flatten", func(t *testing.T) {
		src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		_, err = src.Schema(ctx)
		for _, want := range []string{url, `"address"`, "struct", "flatten: true", "columns"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Schema error = %v, want it to mention %s", err, want)
			}
		}
		if _, rerr := src.Read(ctx); rerr == nil || rerr == io.EOF {
			t.Errorf("Read after a failed Schema = %v, want the error", rerr)
		}
	})
	t.Run("excluded with columns", func(t *testing.T) {
		sch, bs := readAll(t, &parquetsource.Options{URL: url, Columns: []string{"id"}})
		if got := sch.Names(); !slices.Equal(got, []string{"id"}) {
			t.Errorf("schema %v", got)
		}
		if d := cmp.Diff([]pipeline.Row{{int64(1)}, {int64(2)}, {int64(3)}}, rowsOf(bs)); d != "" {
			t.Errorf("rows (-want +got):\n%s", d)
		}
	})
	t.Run("flatten", func(t *testing.T) {
		sch, bs := readAll(t, &parquetsource.Options{URL: url, Flatten: true})
		want := "id:int, address.city:string, address.geo.lat:float, tags:string, attrs:string"
		if sch.String() != want {
			t.Errorf("schema = %s, want %s", sch, want)
		}
		wantRows := []pipeline.Row{
			{int64(1), "Oslo", 59.9, `["a","b"]`, `{"x":1,"y":2}`},
			{int64(2), nil, nil, `[]`, nil},
			{int64(3), nil, nil, nil, `{}`},
		}
		if d := cmp.Diff(wantRows, rowsOf(bs)); d != "" {
			t.Errorf("rows (-want +got):\n%s", d)
		}
	})
	t.Run("flatten with struct and field columns", func(t *testing.T) {
		sch, bs := readAll(t, &parquetsource.Options{URL: url, Flatten: true, Columns: []string{"tags", "address.geo", "id"}})
		if want := "tags:string, address.geo.lat:float, id:int"; sch.String() != want {
			t.Errorf("schema = %s, want %s", sch, want)
		}
		if n := len(rowsOf(bs)); n != 3 {
			t.Errorf("%d rows, want 3", n)
		}
	})
}

func TestProjection(t *testing.T) {
	f := sourcetest.Generated("proj", 50, 6) // col_000 .. col_005
	url := fmt.Sprintf("mem://parquet-proj-%d/p.parquet", memBuckets.Add(1))
	write(context.Background(), t, url, encodeFixture(t, f))
	ctx := context.Background()
	tests := []struct {
		name    string
		columns []string
		project []string
		early   bool // Project before Schema
		want    []string
		wantErr string
	}{
		{name: "columns in given order", columns: []string{"col_004", "col_001"}, want: []string{"col_004", "col_001"}},
		{name: "project after schema", project: []string{"col_005", "col_002"}, want: []string{"col_002", "col_005"}},
		{name: "project before schema", project: []string{"col_003"}, early: true, want: []string{"col_003"}},
		{name: "project within columns", columns: []string{"col_004", "col_001", "col_000"}, project: []string{"col_000", "col_004"}, want: []string{"col_004", "col_000"}},
		{name: "unknown column", columns: []string{"nope"}, wantErr: `"nope" is not a column of the file`},
		{name: "project unknown", project: []string{"col_001", "zzz"}, wantErr: `"zzz" is not a column of the source`},
		{name: "project outside columns", columns: []string{"col_001"}, project: []string{"col_002"}, early: true, wantErr: `"col_002" is not a column`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: url, Columns: tc.columns})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if tc.project != nil && tc.early {
				err = src.Project(tc.project)
			}
			var sch *pipeline.Schema
			if err == nil {
				sch, err = src.Schema(ctx)
			}
			if err == nil && tc.project != nil && !tc.early {
				err = src.Project(tc.project)
				sch, _ = src.Schema(ctx)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sch.Names(), tc.want) {
				t.Fatalf("schema %v, want %v", sch.Names(), tc.want)
			}
			rows := rowsOf(sourcetest.ReadAll(ctx, t, src))
			if len(rows) != len(f.Rows) {
				t.Fatalf("%d rows, want %d", len(rows), len(f.Rows))
			}
			for i, r := range rows {
				for j, name := range tc.want {
					var k int
					fmt.Sscanf(name, "col_%d", &k)
					if r[j] != f.Rows[i][k] {
						t.Fatalf("row %d %s = %v, want %q", i+1, name, r[j], f.Rows[i][k])
					}
				}
			}
			if err := src.Project([]string{tc.want[0]}); err == nil {
				t.Errorf("Project after Read succeeded, want an error")
			}
		})
	}
}

func TestRowGroupsBounded(t *testing.T) {
	const n, rowGroup, batch = 10_000, 3_000, 700
	sc := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}, {Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	for i := range n {
		ib.Append(int64(i))
		sb.Append(fmt.Sprint("v", i))
	}
	cols := []arrow.Array{ib.NewArray(), sb.NewArray()}
	rec := array.NewRecordBatch(sc, cols, n)
	defer rec.Release()
	url := fmt.Sprintf("file://%s/rg.parquet", t.TempDir())
	write(context.Background(), t, url, encodeRecord(t, rec, rowGroup))
	_, batches := readAll(t, &parquetsource.Options{URL: url, BatchSize: batch})
	var sizes []int
	next := int64(0)
	for _, b := range batches {
		sizes = append(sizes, b.Len())
		for i := range b.Len() {
			if b.Row(i)[0] != next || b.Row(i)[1] != fmt.Sprint("v", next) {
				t.Fatalf("row %d = %v", next+1, b.Row(i))
			}
			if o := b.Origin(i); o.Row != next+1 || o.Object != url {
				t.Fatalf("origin %+v, want row %d of %s", o, next+1, url)
			}
			next++
		}
	}
	// Batches never span row groups: 3000 = 4×700 + 200; the last group is 1000.
	want := []int{700, 700, 700, 700, 200, 700, 700, 700, 700, 200, 700, 700, 700, 700, 200, 700, 300}
	if !slices.Equal(sizes, want) {
		t.Errorf("batch sizes = %v, want %v", sizes, want)
	}
}

// TestSchemaMismatch: the footer of every object a glob matches is checked
// by Schema (which validate and run both call), so an object whose columns
// differ from the first's is refused before any row is read, naming both
// objects and the first differing column.
func TestSchemaMismatch(t *testing.T) {
	p := fmt.Sprintf("mem://parquet-mismatch-%d/", memBuckets.Add(1))
	ctx := context.Background()
	write(ctx, t, p+"a.parquet", encodeFixture(t, sourcetest.Simple("a")))
	write(ctx, t, p+"b.parquet", encodeFixture(t, sourcetest.Simple("b")))
	other := sourcetest.Simple("c")
	other.Header[2] = "Total"
	write(ctx, t, p+"c.parquet", encodeFixture(t, other))
	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: p + "*.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, serr := src.Schema(ctx)
	if serr == nil {
		t.Fatal("Schema succeeded, want the third object refused")
	}
	for _, want := range []string{p + "c.parquet: columns differ", p + "a.parquet", `column 3 is Total`, "narrow the URL"} {
		if !strings.Contains(serr.Error(), want) {
			t.Errorf("error %q does not mention %q", serr, want)
		}
	}
	b, rerr := src.Read(ctx)
	if b != nil || rerr == nil || rerr.Error() != serr.Error() {
		t.Errorf("Read = %v, %v; want no batch and Schema's error again", b, rerr)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	p := fmt.Sprintf("mem://parquet-openerr-%d/", memBuckets.Add(1))
	write(ctx, t, p+"junk.parquet", []byte("this is not parquet at all"))
	tests := []struct{ name, url, want string }{
		{"no match", p + "none-*.parquet", "no objects match"},
		{"missing", p + "missing.parquet", "no objects match"},
		{"not parquet", p + "junk.parquet", p + "junk.parquet: not a readable Parquet file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, err := src.Schema(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Schema error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    *parquetsource.Options
		wantErr string
	}{
		{"ok", &parquetsource.Options{URL: "x.parquet"}, ""},
		{"nil", nil, "url is not set"},
		{"no url", &parquetsource.Options{}, "url is required"},
		{"negative batch", &parquetsource.Options{URL: "x", BatchSize: -1}, "batch_size -1"},
		{"huge batch", &parquetsource.Options{URL: "x", BatchSize: 1 << 30}, "batch_size"},
		{"empty column", &parquetsource.Options{URL: "x", Columns: []string{""}}, "columns[0] is empty"},
		{"dup column", &parquetsource.Options{URL: "x", Columns: []string{"a", "a"}}, `"a" is listed twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	reg := pipeline.DefaultRegistry()
	spec, err := reg.Spec(pipeline.KindSource, "parquet")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := reg.NewOptions(pipeline.KindSource, "parquet")
	if err != nil {
		t.Fatal(err)
	}
	o := opts.(*parquetsource.Options)
	if o.BatchSize != parquetsource.DefaultBatchSize {
		t.Errorf("default batch_size = %d", o.BatchSize)
	}
	if err := yaml.UnmarshalWithOptions([]byte(spec.Example), o, yaml.Strict()); err != nil {
		t.Fatalf("Spec.Example does not decode: %v", err)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Spec.Example does not validate: %v", err)
	}
	// End to end through the registry.
	url := fmt.Sprintf("mem://parquet-reg-%d/r.parquet", memBuckets.Add(1))
	write(context.Background(), t, url, encodeFixture(t, sourcetest.Simple("r")))
	src, err := reg.OpenSource(context.Background(), &pipeline.Env{}, "parquet", &parquetsource.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if n := len(rowsOf(sourcetest.ReadAll(context.Background(), t, src))); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	if _, err := reg.OpenSource(context.Background(), nil, "parquet", struct{}{}); err == nil {
		t.Errorf("OpenSource with the wrong options type succeeded")
	}
}
