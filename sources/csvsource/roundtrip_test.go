package csvsource

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/filesink"
)

// roundTripTypes are the declared types a CSV source column can have, in
// the order of the round-trip file's columns.
var roundTripTypes = []pipeline.Type{
	pipeline.TypeInt, pipeline.TypeFloat, pipeline.TypeBool, pipeline.TypeDate,
	pipeline.TypeTimestamp, pipeline.TypeDecimal, pipeline.TypeString,
}

// roundTripEdges are the edge values of each type; nil (null) is added to
// every type by the test.
func roundTripEdges() map[pipeline.Type][]any {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	return map[pipeline.Type][]any{
		pipeline.TypeInt: {int64(0), int64(-1), int64(1), int64(math.MaxInt64), int64(math.MinInt64)},
		pipeline.TypeFloat: {0.0, math.Copysign(0, -1), 0.1, -2.5, 1e21, 1e-7, math.MaxFloat64, -math.MaxFloat64,
			math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), float64(1 << 53), 123456789.123456789},
		pipeline.TypeBool: {true, false},
		pipeline.TypeDate: {utc(2020, 1, 1, 0, 0, 0, 0), utc(1, 1, 1, 0, 0, 0, 0), utc(9999, 12, 31, 0, 0, 0, 0),
			utc(2024, 2, 29, 0, 0, 0, 0), utc(1970, 1, 1, 0, 0, 0, 0)},
		pipeline.TypeTimestamp: {
			utc(2020, 1, 1, 0, 0, 0, 0), // midnight UTC: issue 14 item 2
			utc(2020, 1, 1, 13, 45, 10, 0),
			utc(2020, 1, 1, 0, 0, 0, 1),
			utc(2020, 1, 1, 0, 0, 0, 500_000_000),
			utc(2016, 12, 31, 23, 59, 59, 999_999_999), // the second before a leap second
			utc(1, 1, 1, 0, 0, 0, 0),
			utc(9999, 12, 31, 23, 59, 59, 999_999_999),
			utc(1969, 12, 31, 23, 59, 59, 123_000_000),
			time.Date(2020, 1, 1, 5, 30, 0, 0, time.FixedZone("IST", 5*3600+1800)), // midnight UTC in another zone
			time.Date(2020, 6, 1, 23, 0, 0, 7, time.FixedZone("", -7*3600)),
		},
		pipeline.TypeDecimal: {"0", "-0.00", "+1", ".5", "1234.50", "-1",
			"123456789012345678901234567890123456789012345678901234567890.000000000000000000000000000000000000000001"},
		pipeline.TypeString: {"a", " ", "  leading", "trailing  ", " both ", `"`, `say "hi"`, `""`, "a,b", ",",
			"line\nbreak", "cr\ronly", "crlf\r\nend", "\n", "\r", "NULL", "null", "ünïcode ✓", "tab\there", "'single'",
			"2020-01-01", "-0", "NaN", "\"\n,\r "},
	}
}

// randomValue returns a random non-null value of type t.
func randomValue(r *rand.Rand, t pipeline.Type) any {
	switch t {
	case pipeline.TypeInt:
		return int64(r.Uint64())
	case pipeline.TypeFloat:
		if r.IntN(2) == 0 {
			return math.Float64frombits(r.Uint64()) // any bit pattern, NaNs and infinities included
		}
		return (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(40)-20))
	case pipeline.TypeBool:
		return r.IntN(2) == 0
	case pipeline.TypeDate:
		return time.Date(1+r.IntN(9999), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	case pipeline.TypeTimestamp:
		t := time.Date(1+r.IntN(9999), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
		switch r.IntN(4) {
		case 0: // whole seconds, midnight included
			if r.IntN(2) == 0 {
				t = t.Truncate(24 * time.Hour)
			}
		case 1:
			t = t.Add(time.Duration(r.IntN(1e9)))
		case 2:
			t = t.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		}
		if r.IntN(3) == 0 && t.Year() > 1 && t.Year() < 9999 {
			t = t.In(time.FixedZone("", (r.IntN(28)-14)*3600+r.IntN(2)*1800))
		}
		return t
	case pipeline.TypeDecimal:
		var b strings.Builder
		b.WriteString([]string{"", "-", "+"}[r.IntN(3)])
		for range 1 + r.IntN(40) {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		if r.IntN(2) == 0 {
			b.WriteByte('.')
			for range 1 + r.IntN(40) {
				b.WriteByte(byte('0' + r.IntN(10)))
			}
		}
		return b.String()
	case pipeline.TypeString:
		const alphabet = "ab ,;\"'\r\n\t\\xé✓0-."
		runes := []rune(alphabet)
		var b strings.Builder
		for range 1 + r.IntN(12) {
			b.WriteRune(runes[r.IntN(len(runes))])
		}
		return b.String()
	}
	panic(fmt.Sprintf("no generator for %s", t))
}

// sameValue reports whether got, read back as type t, is want: times are
// the same instant (a date also midnight UTC), floats the same bits or both
// NaN; with csv a null string reads back as "" (a CSV cell cannot tell
// them apart without null_values).
func sameValue(t pipeline.Type, want, got any, csv bool) bool {
	if want == nil && t == pipeline.TypeString && csv {
		want = ""
	}
	switch w := want.(type) {
	case nil:
		return got == nil
	case time.Time:
		g, ok := got.(time.Time)
		if !ok || !g.Equal(w) {
			return false
		}
		return t != pipeline.TypeDate || g.Location() == time.UTC && g.Truncate(24*time.Hour).Equal(g)
	case float64:
		g, ok := got.(float64)
		return ok && (math.Float64bits(g) == math.Float64bits(w) || math.IsNaN(g) && math.IsNaN(w))
	default:
		return got == want
	}
}

// roundTripColumns returns one column per round-trip type, row after row
// (edge values first, then n random ones from seed, then a null), padded
// with nulls: a table of len(roundTripTypes) columns.
func roundTripColumns(seed uint64, n int) [][]any {
	r := rand.New(rand.NewPCG(seed, 17))
	edges := roundTripEdges()
	cols := make([][]any, len(roundTripTypes))
	rows := 0
	for k, t := range roundTripTypes {
		cols[k] = append(cols[k], edges[t]...)
		for range n {
			cols[k] = append(cols[k], randomValue(r, t))
		}
		cols[k] = append(cols[k], nil)
		rows = max(rows, len(cols[k]))
	}
	for k := range cols {
		for len(cols[k]) < rows {
			cols[k] = append(cols[k], nil)
		}
	}
	return cols
}

// TestValueTextRoundTrip writes every type's edge values and 500 random
// values per type (fixed seed) as text with pipeline.AppendValue, parses
// each back with the CSV source's typed parse, and requires the same value.
func TestValueTextRoundTrip(t *testing.T) {
	cols := roundTripColumns(1, 500)
	for k, typ := range roundTripTypes {
		for _, v := range cols[k] {
			if v == nil {
				continue
			}
			text := string(pipeline.AppendValue(nil, typ, v))
			got, err := parseValue(typ, text)
			if err != nil {
				t.Errorf("%s %#v: written as %q, which does not parse back: %v", typ, v, text, err)
				continue
			}
			if !sameValue(typ, v, got, true) {
				t.Errorf("%s %#v: written as %q, read back as %#v", typ, v, text, got)
			}
			if typ == pipeline.TypeTimestamp && !strings.HasSuffix(text, "Z") {
				t.Errorf("timestamp %v written as %q, want RFC 3339 in UTC (Z)", v, text)
			}
		}
	}
}

// TestValueTextRefused lists texts the typed parse refuses on purpose, so a
// bad value is dead-lettered instead of read as something else.
func TestValueTextRefused(t *testing.T) {
	for _, c := range []struct {
		typ  pipeline.Type
		text string
	}{
		{pipeline.TypeTimestamp, "2016-12-31T23:59:60Z"}, // leap second: Go's time has none
		{pipeline.TypeTimestamp, "2020-01-01"},           // a date is not a timestamp
		{pipeline.TypeTimestamp, "10000-01-01T00:00:00Z"},
		{pipeline.TypeDate, "2020-01-01T00:00:00Z"}, // a timestamp is not a date
		{pipeline.TypeDate, "2021-02-29"},
		{pipeline.TypeInt, "9223372036854775808"},
		{pipeline.TypeFloat, "1e400"},
		{pipeline.TypeDecimal, "1e5"},
		{pipeline.TypeDecimal, "NaN"},
		{pipeline.TypeBool, "maybe"},
	} {
		if v, err := parseValue(c.typ, c.text); err == nil {
			t.Errorf("%s %q parsed as %#v, want an error", c.typ, c.text, v)
		}
	}
}

// TestFileRoundTrip writes the round-trip table through the text outputs
// (a CSV sink with either line ending, the dead-letter writer and a JSON
// Lines sink) to real files and reads it back with the same declared types:
// CSV through a CSV source, JSON Lines by parsing each JSON string with
// the CSV source's typed parse. Every value must come back the same.
func TestFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	cols := roundTripColumns(2, 200)
	fields := make([]pipeline.Field, len(roundTripTypes))
	var columns Columns
	for k, typ := range roundTripTypes {
		fields[k] = pipeline.Field{Name: "c_" + typ.String(), Type: typ}
		columns = append(columns, Column{Name: fields[k].Name, Type: typ.String()})
	}
	schema := pipeline.MustSchema(fields...)
	rows := len(cols[0])
	batch := pipeline.NewBatch(schema, rows)
	for i := range rows {
		row := make(pipeline.Row, len(cols))
		for k := range cols {
			row[k] = cols[k][i]
		}
		batch.Append(row, pipeline.Origin{Object: "gen", Row: int64(i + 1)})
	}
	type opener func(loc blobio.Location) (pipeline.Sink, error)
	for _, c := range []struct {
		name string
		open opener
	}{
		{"csv", func(loc blobio.Location) (pipeline.Sink, error) {
			return filesink.OpenCSV(ctx, loc, schema, nil)
		}},
		{"csv-crlf", func(loc blobio.Location) (pipeline.Sink, error) {
			return filesink.OpenCSV(ctx, loc, schema, &filesink.Options{LineEnding: "CRLF"})
		}},
		{"dead-letters", func(loc blobio.Location) (pipeline.Sink, error) {
			return filesink.DeadLetters(ctx, loc, schema)
		}},
		{"jsonl", func(loc blobio.Location) (pipeline.Sink, error) {
			return filesink.OpenJSONL(ctx, loc, schema)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			name := c.name + ".out"
			loc, err := blobio.Parse(dir, name)
			if err != nil {
				t.Fatal(err)
			}
			sink, err := c.open(loc)
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
			if err := sink.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var got []pipeline.Row
			if c.name == "jsonl" {
				got = readJSONL(t, filepath.Join(dir, name), schema)
			} else {
				got = readCSV(t, dir, name, columns)
			}
			if len(got) != rows {
				t.Fatalf("read %d rows back, wrote %d", len(got), rows)
			}
			for i := range rows {
				for k, typ := range roundTripTypes {
					if !sameValue(typ, cols[k][i], got[i][k], c.name != "jsonl") {
						t.Errorf("row %d %s: wrote %#v (%q), read back %#v", i+1, typ, cols[k][i],
							pipeline.AppendValue(nil, typ, cols[k][i]), got[i][k])
					}
				}
			}
		})
	}
}

// readCSV reads name in dir with a CSV source declaring columns, failing
// the test on any dead-lettered row.
func readCSV(t *testing.T, dir, name string, columns Columns) []pipeline.Row {
	t.Helper()
	ctx := context.Background()
	src, err := Open(ctx, &pipeline.Env{BaseDir: dir}, &Options{URL: name, Columns: columns})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var rows []pipeline.Row
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range b.Drops() {
			t.Errorf("row dead-lettered on read back: %v (raw %q)", d.Err, d.Raw)
		}
		for i := range b.Len() {
			rows = append(rows, append(pipeline.Row(nil), b.Row(i)...))
		}
	}
}

// readJSONL reads a JSON Lines file of schema: null is null, a JSON string
// is parsed with the field's type, a number or boolean from its JSON text.
func readJSONL(t *testing.T, path string, schema *pipeline.Schema) []pipeline.Row {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []pipeline.Row
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %d: %v", len(rows)+1, err)
		}
		row := make(pipeline.Row, schema.Len())
		for k, fl := range schema.Fields() {
			raw := obj[fl.Name]
			if raw == nil || string(raw) == "null" {
				continue
			}
			text := string(raw)
			var s string
			if json.Unmarshal(raw, &s) == nil {
				text = s
			}
			if text == "" && fl.Type == pipeline.TypeString {
				row[k] = ""
				continue
			}
			v, err := parseValue(fl.Type, text)
			if err != nil {
				t.Errorf("line %d %s: %v", len(rows)+1, fl.Name, err)
			}
			row[k] = v
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
