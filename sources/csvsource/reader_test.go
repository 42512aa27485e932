package csvsource

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// rec is one record as the record reader saw it.
type rec struct {
	line   int64
	fields []string
	code   string // parse error code, "" for a good record
	raw    string
}

func (r rec) String() string {
	if r.code != "" {
		return fmt.Sprintf("%d:%s(%q)", r.line, r.code, r.raw)
	}
	return fmt.Sprintf("%d:%q", r.line, r.fields)
}

func readRecords(t testing.TB, in string, comma byte) []rec {
	t.Helper()
	return readRecordsSize(t, in, comma, readBufferSize)
}

// readRecordsSize is readRecords with a read buffer of size bytes.
func readRecordsSize(t testing.TB, in string, comma byte, size int) []rec {
	t.Helper()
	rr := newRecordReader(strings.NewReader(in), comma, '"', size)
	rr.begin()
	var out []rec
	for range len(in) + 2 {
		pe, err := rr.read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if pe != nil {
			out = append(out, rec{line: rr.start, code: pe.code, raw: rr.rawText()})
			continue
		}
		out = append(out, rec{line: rr.start, fields: slices.Clone(rr.fields)})
	}
	t.Fatalf("reader did not reach EOF on %q", in)
	return nil
}

func TestRecordReader(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		comma byte
		want  []rec
	}{
		{name: "empty", in: "", want: nil},
		{name: "simple", in: "a,b\n1,2\n", want: []rec{{line: 1, fields: []string{"a", "b"}}, {line: 2, fields: []string{"1", "2"}}}},
		{name: "no final newline", in: "a,b\n1,2", want: []rec{{line: 1, fields: []string{"a", "b"}}, {line: 2, fields: []string{"1", "2"}}}},
		{name: "crlf records", in: "a,b\r\n1,2\r\n", want: []rec{{line: 1, fields: []string{"a", "b"}}, {line: 2, fields: []string{"1", "2"}}}},
		{name: "cr before eof", in: "a,b\r", want: []rec{{line: 1, fields: []string{"a", "b"}}}},
		{name: "lone cr kept", in: "a\rb,c\n", want: []rec{{line: 1, fields: []string{"a\rb", "c"}}}},
		{name: "empty fields", in: ",,\n", want: []rec{{line: 1, fields: []string{"", "", ""}}}},
		{name: "quoted", in: `"a,b","c""d",""` + "\n", want: []rec{{line: 1, fields: []string{"a,b", `c"d`, ""}}}},
		{name: "crlf inside quotes kept", in: "\"x\r\ny\",z\r\nq,r\n", want: []rec{{line: 1, fields: []string{"x\r\ny", "z"}}, {line: 3, fields: []string{"q", "r"}}}},
		{name: "multi-line lines counted", in: "\"a\n\nb\",c\nd,e\n", want: []rec{{line: 1, fields: []string{"a\n\nb", "c"}}, {line: 4, fields: []string{"d", "e"}}}},
		{name: "blank lines skipped", in: "a\n\n\r\nb\n", want: []rec{{line: 1, fields: []string{"a"}}, {line: 4, fields: []string{"b"}}}},
		{name: "quoted field at eof", in: `a,"b"`, want: []rec{{line: 1, fields: []string{"a", "b"}}}},
		{name: "quoted then crlf", in: "\"a\"\r\n", want: []rec{{line: 1, fields: []string{"a"}}}},
		{name: "tab", in: "a\tb c\n", comma: '\t', want: []rec{{line: 1, fields: []string{"a", "b c"}}}},
		{name: "bare quote resyncs", in: "a,b\"c\nd,e\n", want: []rec{{line: 1, code: "bad_quote", raw: `a,b"c`}, {line: 2, fields: []string{"d", "e"}}}},
		{name: "text after quote resyncs", in: "\"a\nb\"x,c\nd\n", want: []rec{{line: 1, code: "bad_quote", raw: "\"a\nb\"x,c"}, {line: 3, fields: []string{"d"}}}},
		{name: "unterminated runs to eof", in: "a\n\"b,c\nd,e\n", want: []rec{{line: 1, fields: []string{"a"}}, {line: 2, code: "bad_quote", raw: "\"b,c\nd,e"}}},
		{name: "space before quote is bare", in: "a, \"b\"\n", want: []rec{{line: 1, code: "bad_quote", raw: `a, "b"`}}},
		{name: "invalid utf8 passes reader", in: "\xff,b\n", want: []rec{{line: 1, fields: []string{"\xff", "b"}}}},
		{name: "long line over buffer", in: strings.Repeat("x", 3*readBufferSize) + ",y\n", want: []rec{{line: 1, fields: []string{strings.Repeat("x", 3*readBufferSize), "y"}}}},
		{name: "cr only", in: "a,b\r1,2\r3,4", want: []rec{{line: 1, fields: []string{"a", "b"}}, {line: 2, fields: []string{"1", "2"}}, {line: 3, fields: []string{"3", "4"}}}},
		{name: "cr only final cr", in: "a\r1\r", want: []rec{{line: 1, fields: []string{"a"}}, {line: 2, fields: []string{"1"}}}},
		{name: "cr only quoted cr kept", in: "a,b\r\"x\ry\",2\r", want: []rec{{line: 1, fields: []string{"a", "b"}}, {line: 2, fields: []string{"x\ry", "2"}}}},
		{name: "cr only quoted lf kept", in: "a,b\r\"x\ny\",2\r", want: []rec{{line: 1, fields: []string{"a", "b"}}, {line: 2, fields: []string{"x\ny", "2"}}}},
		{name: "unquoted lf after cr means lf ends", in: "a\rb\nc\n", want: []rec{{line: 1, fields: []string{"a\rb"}}, {line: 2, fields: []string{"c"}}}},
		{name: "cr only quoted header", in: "\"a\rb\",c\r1,2\r", want: []rec{{line: 1, fields: []string{"a\rb", "c"}}, {line: 3, fields: []string{"1", "2"}}}},
		{name: "cr only blank lines", in: "a\r\rb\r", want: []rec{{line: 1, fields: []string{"a"}}, {line: 3, fields: []string{"b"}}}},
		{name: "cr only bad quote resyncs", in: "a,b\r1,x\"y\r3,4\r", want: []rec{{line: 1, fields: []string{"a", "b"}}, {line: 2, code: "bad_quote", raw: `1,x"y`}, {line: 3, fields: []string{"3", "4"}}}},
		{name: "cr only after bom", in: "\uFEFFa\r1\r", want: []rec{{line: 1, fields: []string{"a"}}, {line: 2, fields: []string{"1"}}}},
		{name: "lf later keeps lf ends", in: "a\rb\r\nc\n", want: []rec{{line: 1, fields: []string{"a\rb"}}, {line: 2, fields: []string{"c"}}}},
		{name: "long quoted over buffer", in: "\"" + strings.Repeat("q\n", readBufferSize) + "\",y\nz\n", want: []rec{{line: 1, fields: []string{strings.Repeat("q\n", readBufferSize), "y"}}, {line: readBufferSize + 2, fields: []string{"z"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			comma := tc.comma
			if comma == 0 {
				comma = ','
			}
			got := readRecords(t, tc.in, comma)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("read(%.60q) =\n  %v\nwant\n  %v", tc.in, short(got), short(tc.want))
			}
		})
	}
}

func short(rs []rec) string {
	s := fmt.Sprint(rs)
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// referenceRecords reads in with encoding/csv, reporting ok=false on error.
func referenceRecords(in string) ([][]string, bool) {
	r := csv.NewReader(strings.NewReader(in))
	r.FieldsPerRecord = -1
	var out [][]string
	for {
		f, err := r.Read()
		if err == io.EOF {
			return out, true
		}
		if err != nil {
			return nil, false
		}
		out = append(out, f)
	}
}

// FuzzAgainstEncodingCSV checks the reader agrees with encoding/csv on input
// both must read the same way: no CR (encoding/csv rewrites CRLF) and input
// encoding/csv accepts. The same input with every "\n" turned into "\r"
// (classic Mac OS line ends) must read the same too, with "\r" in place of
// "\n" inside fields.
func FuzzAgainstEncodingCSV(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", `"a""b",c` + "\n", "\"x\ny\",z", "a\n\nb\n", ",,\n", `"",""`, "a,\"b\nc\"\n\n", "\"\"\"\",x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.ContainsRune(in, '\r') {
			return
		}
		want, ok := referenceRecords(in)
		compareReference(t, in, readRecords(t, in, ','), want, ok, "")
		cr := strings.ReplaceAll(in, "\n", "\r")
		compareReference(t, cr, readRecords(t, cr, ','), want, ok, "\r")
	})
}

// compareReference checks records got, read from in, against encoding/csv's
// reading want (ok: encoding/csv accepted the input). With eol "\r", in
// has "\r" where encoding/csv read "\n".
func compareReference(t *testing.T, in string, got []rec, want [][]string, ok bool, eol string) {
	t.Helper()
	if !ok {
		// encoding/csv rejected it: the reader must report at least
		// one bad record too, and never lose or invent input lines.
		for _, r := range got {
			if r.code != "" {
				return
			}
		}
		t.Fatalf("encoding/csv rejects %q, reader accepted it as %v", in, got)
	}
	var fields [][]string
	for _, r := range got {
		if r.code != "" {
			t.Fatalf("reader rejects %q (%v), encoding/csv reads %q", in, r, want)
		}
		if eol == "\r" {
			for i := range r.fields {
				r.fields[i] = strings.ReplaceAll(r.fields[i], "\r", "\n")
			}
		}
		fields = append(fields, r.fields)
	}
	if fmt.Sprintf("%q", fields) != fmt.Sprintf("%q", want) {
		t.Fatalf("read(%q) = %q, encoding/csv = %q", in, fields, want)
	}
}

// FuzzBufferSizes checks that the read buffer's size changes nothing: the
// fast path takes only lines whole in the buffer, and remembers how far
// it holds no quote across refills. Lines end with "\n" here (with tiny
// buffers, begin sees too little of the object to choose "\r").
func FuzzBufferSizes(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "aaaaaaaaaaaaaaaaaaaaaaaaa,b\n\"x\",y\nzzzzzzzzzzzzzzzz,\"q\"\"\n", "x,y\r\n\r\n\n1,\xff\n", "a,b\"c\n,,,,,,,,,,,,,,,,,,,,\n"} {
		f.Add(s)
	}
	f.Add(string(warehouseData(30)))
	f.Fuzz(func(t *testing.T, in string) {
		if strings.ContainsRune(in, '\r') && !strings.Contains(in, "\r\n") {
			return
		}
		want := readRecords(t, in, ',')
		for _, size := range []int{16, 17, 31, 64, 100} {
			if got := readRecordsSize(t, in, ',', size); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("buffer of %d bytes: read(%q) =\n  %v\nwant\n  %v", size, in, short(got), short(want))
			}
		}
	})
}

// FuzzSplitFields checks splitFields against strings.Split and
// utf8.ValidString on b[:n] of lines followed by more bytes or not, for
// several delimiters.
func FuzzSplitFields(f *testing.F) {
	f.Add("a,b,c", 0, byte(','))
	f.Add(strings.Repeat("x,", 40)+"ü,\xff", 3, byte(','))
	f.Add(",,\t\x00,\x00", 8, byte(0))
	f.Add(strings.Repeat("abcdefg\t", 9), 1, byte('\t'))
	f.Fuzz(func(t *testing.T, line string, extra int, comma byte) {
		if strings.Contains(line, `"`) || comma >= utf8.RuneSelf || comma == '"' {
			return // a delimiter is ASCII (see oneByte); quoted lines do not come here
		}
		b := []byte(line + strings.Repeat(",\xff", max(extra, 0)%9))
		spans, ascii := splitFields(nil, b, len(line), comma)
		var got []string
		for _, sp := range spans {
			got = append(got, string(b[sp.start:sp.end]))
		}
		if want := strings.Split(line, string(comma)); !slices.Equal(got, want) {
			t.Fatalf("splitFields(%q, %q) = %q, want %q", line, comma, got, want)
		}
		if want := !strings.ContainsFunc(line, func(r rune) bool { return r >= utf8.RuneSelf }); ascii != want {
			t.Fatalf("splitFields(%q): ascii %v, want %v", line, ascii, want)
		}
	})
}

// FuzzRoundtrip writes records with encoding/csv (byte-exact, "\n" record
// ends or "\r\n") and checks the reader returns them exactly, with the right
// line numbers.
func FuzzRoundtrip(f *testing.F) {
	f.Add("a,b", "c\r\nd", "\"", false)
	f.Add("", "x", "\n\n", true)
	f.Add("ü", "\xff", " lead", false)
	f.Fuzz(func(t *testing.T, a, b, c string, crlf bool) {
		recs := [][]string{{a, b, c}, {c, a, b}, {"x", b, a}}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.UseCRLF = false
		w.WriteAll(recs)
		data := buf.String()
		if crlf {
			// Record ends only: rewrite the "\n" after each record.
			data = ""
			for _, r := range recs {
				var one bytes.Buffer
				w := csv.NewWriter(&one)
				w.Write(r)
				w.Flush()
				data += strings.TrimSuffix(one.String(), "\n") + "\r\n"
			}
		}
		got := readRecords(t, data, ',')
		// encoding/csv skips lines that are empty, so a record of one
		// empty field cannot round-trip; ours has three fields.
		if len(got) != len(recs) {
			t.Fatalf("read %q: %d records, want %d: %v", data, len(got), len(recs), got)
		}
		line := int64(1)
		for i, r := range got {
			if r.code != "" || !slices.Equal(r.fields, recs[i]) {
				t.Fatalf("record %d of %q = %v, want %q", i, data, r, recs[i])
			}
			if r.line != line {
				t.Fatalf("record %d of %q starts on line %d, want %d", i, data, r.line, line)
			}
			for _, f := range recs[i] {
				line += int64(strings.Count(f, "\n"))
			}
			line++
		}
	})
}

// benchData returns a generated CSV of n rows of 14 columns, with some
// quoted fields (commas, quotes, embedded newlines).
func benchData(n int) []byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	row := make([]string, 14)
	for j := range row {
		row[j] = fmt.Sprintf("Column%02d", j)
	}
	w.Write(row)
	for i := range n {
		row[0] = fmt.Sprintf("001%015d", i)
		row[1] = fmt.Sprintf("Account %d", rnd.IntN(1_000_000))
		row[2] = fmt.Sprintf("%d.%02d", rnd.IntN(100000), rnd.IntN(100))
		row[3] = "2024-05-17"
		row[4] = "2024-05-17T10:20:30Z"
		row[5] = []string{"true", "false"}[i%2]
		row[6] = fmt.Sprintf("%d Main Street, Springfield", rnd.IntN(999))
		row[7] = ""
		row[8] = []string{"Customer", "Partner", "Prospect"}[i%3]
		row[9] = fmt.Sprint(rnd.IntN(10000))
		row[10] = "user@example.com"
		row[11] = ""
		if i%50 == 0 {
			row[11] = "note with \"quotes\"\nand a second line"
		}
		row[12] = "Zürich"
		row[13] = fmt.Sprint(rnd.Float64())
		w.Write(row)
	}
	w.Flush()
	return buf.Bytes()
}

var benchRows = 1_000_000

var (
	benchOnce  sync.Once
	benchBytes []byte
)

// sharedBenchData returns benchData(benchRows), generated once per process.
func sharedBenchData() []byte {
	benchOnce.Do(func() { benchBytes = benchData(benchRows) })
	return benchBytes
}

// BenchmarkRead reads benchData with the record reader; compare with
// BenchmarkEncodingCSV (same data, same run).
func BenchmarkRead(b *testing.B) {
	data := sharedBenchData()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rr := newRecordReader(bytes.NewReader(data), ',', '"', readBufferSize)
		n := 0
		for {
			pe, err := rr.read()
			if err == io.EOF {
				break
			}
			if err != nil || pe != nil {
				b.Fatal(err, pe)
			}
			if rr.invalidUTF8Field() >= 0 {
				b.Fatal("invalid utf8")
			}
			n += len(rr.fields)
		}
		if n != 14*(benchRows+1) {
			b.Fatalf("read %d fields", n)
		}
	}
}

// BenchmarkEncodingCSV is the baseline for BenchmarkRead: encoding/csv with
// ReuseRecord on the same data.
func BenchmarkEncodingCSV(b *testing.B) {
	data := sharedBenchData()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := csv.NewReader(bytes.NewReader(data))
		r.ReuseRecord = true
		n := 0
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(rec)
		}
		if n != 14*(benchRows+1) {
			b.Fatalf("read %d fields", n)
		}
	}
}

// BenchmarkSource reads the same data through the whole source (mem://
// object, batches of rows of any) for comparison with BenchmarkRead.
func BenchmarkSource(b *testing.B) { benchSource(b, nil) }

// benchProject is about half of benchData's columns, spread over the record.
var benchProject = []string{"Column00", "Column02", "Column04", "Column06", "Column08", "Column10", "Column12"}

// BenchmarkReadProjected is BenchmarkSource with Project(benchProject): the
// cost of the parse alone for the other columns.
func BenchmarkReadProjected(b *testing.B) { benchSource(b, benchProject) }

func benchSource(b *testing.B, project []string) {
	data := sharedBenchData()
	ctx := context.Background()
	loc, _ := blobio.Parse("", "mem://csvsource-bench/data.csv")
	if err := blobio.WriteAll(ctx, loc, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src, err := Open(ctx, nil, &Options{URL: loc.String()})
		if err != nil {
			b.Fatal(err)
		}
		if project != nil {
			if err := src.Project(project); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
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
		src.Close()
		if n != benchRows {
			b.Fatalf("read %d rows", n)
		}
	}
}

// TestProjectMatchesFull reads benchData (typed columns, quoted and
// multi-line fields, a bad value every so often) with and without a
// projection, in several batch sizes, and checks the projected rows and
// drops are the full ones' projected columns.
func TestProjectMatchesFull(t *testing.T) {
	data := benchData(3000)
	// Make Column09 (an int) bad in every third record: the full reading
	// drops those, a projection without Column09 does not.
	data = bytes.ReplaceAll(data, []byte("Partner,"), []byte("Partner,x"))
	ctx := context.Background()
	loc, _ := blobio.Parse("", "mem://csvsource-project-match/data.csv")
	if err := blobio.WriteAll(ctx, loc, data); err != nil {
		t.Fatal(err)
	}
	cols := Columns{{"Column02", "decimal"}, {"Column03", "date"}, {"Column04", "timestamp"}, {"Column05", "bool"}, {"Column09", "int"}, {"Column13", "float"}}
	read := func(batch int, project []string) (rows [][2]string, drops [][3]string) {
		src, err := Open(ctx, nil, &Options{URL: loc.String(), Columns: cols, BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if project != nil {
			if err := src.Project(project); err != nil {
				t.Fatal(err)
			}
		}
		sch, err := src.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := src.Read(ctx)
			if err == io.EOF {
				return rows, drops
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range b.Len() {
				rows = append(rows, [2]string{b.Origin(i).String(), rowText(sch, b.Row(i))})
			}
			for _, d := range b.Drops() {
				drops = append(drops, [3]string{fmt.Sprintf("%v %v", d.Origin, d.Err), rowText(sch, d.Row), d.Raw})
			}
		}
	}
	full, fullDrops := read(1024, nil)
	if len(fullDrops) == 0 {
		t.Fatal("no drops in the full reading")
	}
	for _, project := range [][]string{benchProject, {"Column13", "Column09", "Column01"}, {"Column05"}, {"Column09"}} {
		for _, batch := range []int{1, 7, 1024} {
			t.Run(fmt.Sprint(project, batch), func(t *testing.T) {
				var want [][2]string
				var wantDrops [][3]string
				wantBad := slices.Contains(project, "Column09")
				for _, r := range full {
					want = append(want, [2]string{r[0], projectText(r[1], project)})
				}
				for _, d := range fullDrops {
					if wantBad {
						wantDrops = append(wantDrops, [3]string{d[0], projectText(d[1], project), d[2]})
					}
				}
				got, gotDrops := read(batch, project)
				if !wantBad {
					// The records with a bad Column09 are rows now.
					if len(got) != len(full)+len(fullDrops) || len(gotDrops) != 0 {
						t.Fatalf("%d rows, %d drops; want %d rows", len(got), len(gotDrops), len(full)+len(fullDrops))
					}
					got = slices.DeleteFunc(got, func(r [2]string) bool {
						return slices.ContainsFunc(fullDrops, func(d [3]string) bool { return strings.HasPrefix(d[0], r[0]+" ") })
					})
				}
				if !slices.Equal(got, want) {
					t.Fatalf("rows differ: first %q, want %q", got[:1], want[:1])
				}
				if !slices.Equal(gotDrops, wantDrops) {
					t.Fatalf("drops differ:\n%q\nwant\n%q", gotDrops[:1], wantDrops[:1])
				}
			})
		}
	}
}

// rowText formats row as name=value pairs.
func rowText(sch *pipeline.Schema, row pipeline.Row) string {
	if row == nil {
		return "nil"
	}
	var b strings.Builder
	for j, v := range row {
		fmt.Fprintf(&b, "\x00%s=%T(%v)", sch.Field(j).Name, v, v)
	}
	return b.String()
}

// projectText keeps the name=value pairs of text (from rowText) whose name
// is in project.
func projectText(text string, project []string) string {
	var b strings.Builder
	for _, part := range strings.Split(text, "\x00") {
		name, _, ok := strings.Cut(part, "=")
		if ok && slices.Contains(project, name) {
			b.WriteString("\x00" + part)
		}
	}
	return b.String()
}
