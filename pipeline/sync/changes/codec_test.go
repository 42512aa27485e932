package changes

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/bulkflow/bulkflow/pipeline"
)

// sameValue reports whether b is an exact round trip of a: same Go type,
// same bits for floats, same instant, zone name, offset and UTC-ness for
// times.
func sameValue(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch x := a.(type) {
	case float64:
		return math.Float64bits(x) == math.Float64bits(b.(float64))
	case time.Time:
		y := b.(time.Time)
		xn, xo := x.Zone()
		yn, yo := y.Zone()
		return x.Equal(y) && xn == yn && xo == yo &&
			(x.Location() == time.UTC) == (y.Location() == time.UTC) &&
			string(pipeline.AppendText(nil, x)) == string(pipeline.AppendText(nil, y))
	case []byte:
		return bytes.Equal(x, b.([]byte))
	default:
		return a == b
	}
}

func roundTrip(t *testing.T, row pipeline.Row, o pipeline.Origin) {
	t.Helper()
	var objs objectTable
	objs.number("another file") // numbers other than 0 come back too
	enc, err := appendRow(nil, row, o, &objs)
	if err != nil {
		t.Fatalf("encode %#v: %v", row, err)
	}
	dec := rowDecoder{objs: &objs}
	got, gotO, err := dec.decode(enc)
	if err != nil {
		t.Fatalf("decode %#v: %v", row, err)
	}
	if gotO != o {
		t.Errorf("origin %+v came back as %+v", o, gotO)
	}
	if len(got) != len(row) {
		t.Fatalf("%d values came back as %d", len(row), len(got))
	}
	for i := range row {
		if !sameValue(row[i], got[i]) {
			t.Errorf("value %d: %#v (%T) came back as %#v (%T)", i, row[i], row[i], got[i], got[i])
		}
	}
}

func TestRowCodecRoundTrip(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600) // no tzdata on this machine
	}
	ts := time.Date(2024, 3, 10, 1, 59, 59, 999999999, time.UTC)
	tests := []struct {
		name string
		row  pipeline.Row
		o    pipeline.Origin
	}{
		{"empty row", pipeline.Row{}, pipeline.Origin{}},
		{"nil", pipeline.Row{nil, nil}, pipeline.Origin{Object: "a.csv", Line: 2, Row: 1}},
		{"strings", pipeline.Row{"", "plain", "nul\x00byte", "line\nbreak\r\n", "bad utf8 \xff\xfe", "日本語"}, pipeline.Origin{Object: "s3://b/k.csv", Line: 1 << 40, Row: -1}},
		{"ints", pipeline.Row{int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), 42, math.MinInt}, pipeline.Origin{}},
		{"floats", pipeline.Row{0.0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64, 0.1}, pipeline.Origin{}},
		{"bools", pipeline.Row{true, false}, pipeline.Origin{}},
		{"decimal", pipeline.Row{"1234.50", "-0.000"}, pipeline.Origin{}},
		{"dates and times", pipeline.Row{
			time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), // TypeDate
			ts,
			ts.In(ny),
			ts.Add(2 * time.Hour).In(ny), // after the DST change
			ts.In(time.FixedZone("", 5*3600+30*60)),
			ts.In(time.FixedZone("UTC", 0)), // not time.UTC: must stay a non-UTC zone
			time.Time{},
			time.Date(-300, 1, 1, 0, 0, 0, 1, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("X", -14*3600)),
			time.Now(), // monotonic reading, local zone
		}, pipeline.Origin{}},
		{"bytes", pipeline.Row{[]byte("raw\x00"), []byte{}}, pipeline.Origin{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { roundTrip(t, tt.row, tt.o) })
	}
}

func TestRowCodecRejects(t *testing.T) {
	var objs objectTable
	if _, err := appendRow(nil, pipeline.Row{struct{}{}}, pipeline.Origin{}, &objs); err == nil {
		t.Error("encoding a struct value succeeded")
	}
	enc, _ := appendRow(nil, pipeline.Row{"abc", int64(5), time.Now()}, pipeline.Origin{Object: "x"}, &objs)
	dec := rowDecoder{objs: &objs}
	for i := range len(enc) {
		if _, _, err := dec.decode(enc[:i]); err == nil {
			t.Errorf("decoding %d of %d bytes succeeded", i, len(enc))
		}
	}
	if _, _, err := dec.decode(append(enc, 0)); err == nil {
		t.Error("decoding with a trailing byte succeeded")
	}
	if _, _, err := (&rowDecoder{objs: &objectTable{}}).decode(enc); err == nil {
		t.Error("decoding an object number not in the table succeeded")
	}
}

func TestRowHash(t *testing.T) {
	hash := func(r pipeline.Row) uint64 {
		c, _ := appendCanonical(nil, r, nil)
		return rowHash(c)
	}
	differ := [][2]pipeline.Row{
		{{"a", "bc"}, {"ab", "c"}},
		{{nil, "x"}, {"", "x"}},
		{{"a", nil}, {"a", ""}},
		{{"\x01a"}, {nil, "a"}},
		{{"x", int64(1)}, {"x", int64(2)}},
		{{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, {time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))}},
	}
	for _, p := range differ {
		if hash(p[0]) == hash(p[1]) {
			t.Errorf("hash(%#v) == hash(%#v)", p[0], p[1])
		}
	}
	// Equal text, equal hash: what is sent is the text.
	if hash(pipeline.Row{"1", "true"}) != hash(pipeline.Row{int64(1), true}) {
		t.Error("rows with the same text hash differently")
	}
	if rowHash(nil) == unsynced {
		t.Error("a row hash is the reserved unsynced value")
	}
}

func FuzzRowCodec(f *testing.F) {
	f.Add("key", int64(1), uint64(0x7ff8000000000001), true, int64(1700000000), uint32(5), int32(3600), "CET", false, []byte{})
	f.Add("", int64(math.MinInt64), uint64(1<<63), false, int64(-62135596800), uint32(0), int32(0), "", true, []byte{1, 3, 0, 0, 1, 0})
	f.Add("\x00\xff\n", int64(-7), uint64(0), true, int64(math.MaxInt64), uint32(999999999), int32(-50400), "\xff", false, []byte("\x00\x00\x00\x01\x07"))
	f.Fuzz(func(t *testing.T, s string, i int64, fbits uint64, b bool, sec int64, nsec uint32, off int32, zone string, null bool, raw []byte) {
		tm := time.Unix(sec, int64(nsec%1e9))
		if off == 0 && zone == "" {
			tm = tm.UTC()
		} else {
			tm = tm.In(time.FixedZone(zone, int(off)))
		}
		row := pipeline.Row{s, i, math.Float64frombits(fbits), b, tm, []byte(s), int(i)}
		if null {
			row[int(uint64(i)%uint64(len(row)))] = nil
		}
		roundTrip(t, row, pipeline.Origin{Object: zone, Line: i, Row: sec})
		// The hash made from the encoding is the canonical text's.
		var d xxhash.Digest
		_, h, _, err := appendRowHash(nil, row, pipeline.Origin{}, &objectTable{}, &d, nil)
		c, _ := appendCanonical(nil, row, nil)
		if err != nil || h != rowHash(c) {
			t.Errorf("appendRowHash(%#v) = %#x, %v; want %#x", row, h, err, rowHash(c))
		}
		// Arbitrary bytes must decode or fail, never panic.
		dec := rowDecoder{objs: &objectTable{names: []string{"a"}}}
		dec.decode(raw)
	})
}

// TestRowHashStable pins the hash of a row with every kind of value: a
// manifest written by an earlier build must hash unchanged rows the same,
// or the next run resends every row.
func TestRowHashStable(t *testing.T) {
	row := pipeline.Row{"EXT-1", "Ada Lovelace", nil, "", int64(42), 2.5, true,
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 13, 4, 5, 6000, time.UTC), []byte("b")}
	c, _ := appendCanonical(nil, row, nil)
	if got, want := rowHash(c), uint64(0xd3cd546c2d6ff7fd); got != want {
		t.Errorf("row hash %#x, want %#x (the hash of earlier builds' manifests)", got, want)
	}
}

// TestAppendRowHash checks that appendRowHash writes what appendRow does
// and hashes what rowHash(appendCanonical) does, for rows of strings (one
// run), mixed rows (runs cut by values of other types, first and last
// included), every type of value, and long texts (uvarint lengths of
// several bytes, in the runs and in the canonical text of a value).
func TestAppendRowHash(t *testing.T) {
	long := strings.Repeat("x", 300)
	ts := time.Date(2024, 2, 29, 13, 4, 5, 6000, time.FixedZone("CET", 3600))
	rows := []pipeline.Row{
		{},
		{"EXT-1", "Ada", "Lovelace", "", nil},
		{"EXT-2", "Ada", true, "Gold", "Open"},
		{true, "a", nil, int64(-5), "b", 2.5},
		{nil},
		{int64(1), int(2), 3.25, false, true, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), ts, []byte("raw"), []byte(long), nil},
		{long, []byte(long + long), long},
		{"é", "\x00", "\x01\x05"},
	}
	var objs, objs2 objectTable
	var d xxhash.Digest
	var scratch []byte
	for i, row := range rows {
		origin := pipeline.Origin{Object: fmt.Sprint("obj", i%2), Line: int64(i), Row: int64(i * 3)}
		got, h, sc, err := appendRowHash([]byte("prefix"), row, origin, &objs, &d, scratch)
		scratch = sc
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		want, err := appendRow([]byte("prefix"), row, origin, &objs2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("row %d: encoding %x, want %x", i, got, want)
		}
		c, _ := appendCanonical(nil, row, nil)
		if wantH := rowHash(c); h != wantH {
			t.Errorf("row %d %#v: hash %#x, want %#x", i, row, h, wantH)
		}
	}
	if _, _, _, err := appendRowHash(nil, pipeline.Row{"a", struct{}{}}, pipeline.Origin{}, &objs, &d, nil); err == nil {
		t.Error("a struct value was encoded")
	}
}

// BenchmarkAppendRowHash encodes and hashes a row shaped like bench
// sync-diff's: 15 short strings, what a sync's Add does per row.
func BenchmarkAppendRowHash(b *testing.B) {
	row := pipeline.Row{"1000001", "Barbara", "Ritchie", "barbara.ritchie1@example.com", "+1-926-555-8873",
		"Ritchie GmbH", "Stockholm", "7985.34", "Barbara Ritchie", "SE", "2017-06-10", "2013-09-01T02:37:03.000Z",
		"false", "Bronze", "Open"}
	origin := pipeline.Origin{Object: "accounts.csv", Line: 2, Row: 1}
	var objs objectTable
	var d xxhash.Digest
	var dst, scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, _, scratch, err = appendRowHash(dst[:0], row, origin, &objs, &d, scratch)
		if err != nil {
			b.Fatal(err)
		}
	}
}
