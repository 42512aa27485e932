package salesforcesink

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// stringer is a value of a type the pipeline does not define, encoded
// through pipeline.Text.
type stringer string

func (s stringer) String() string { return string(s) }

// refRecord is the reference encoding of a row, written from contract
// §3 without the encoder's fast paths: each value's cellText, quoted (with
// quotes doubled) when it holds the delimiter, '"', CR or LF or starts or
// ends with a space or tab.
func refRecord(e *encoder, row pipeline.Row) (string, error) {
	var b strings.Builder
	for i, v := range row {
		if i > 0 {
			b.WriteByte(e.delim)
		}
		c, err := cellText(v, e.schema.Field(i).Type)
		if err != nil {
			return "", &pipeline.RowError{Code: "invalid_value", Field: e.schema.Field(i).Name, Err: err}
		}
		if strings.ContainsAny(c, string(e.delim)+"\"\r\n") || strings.HasPrefix(c, " ") || strings.HasPrefix(c, "\t") ||
			strings.HasSuffix(c, " ") || strings.HasSuffix(c, "\t") {
			c = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
		}
		b.WriteString(c)
	}
	b.WriteString(e.eol)
	return b.String(), nil
}

// TestEncoderMatchesReference checks the encoder's two paths (and their
// forms for a run of rows, appendRecordNext and recordNext) against
// refRecord, byte for byte and error for error: appendRecord (the plan
// sink's) and record(cells(row)) (the sink's, whose cells must also be the
// values' cellText), for every delimiter, both line endings and values of
// every kind: ones that need quoting (in the middle, at either end, past
// the eighth byte), blanks at the edges, CRs, non-ASCII text, dates,
// timestamps, non-finite floats, Stringers whose text needs quotes.
func TestEncoderMatchesReference(t *testing.T) {
	loc := time.FixedZone("X", -5*3600)
	values := []any{nil, "", "plain", "a,b", "a|b", "a;b", "a^b", "a`b", "a\tb", `q"q`, "l\nf", "c\r\nr", "lone\rcr", "\r",
		" lead", "trail ", "\tlead", "trail\t", " ", "eight by", "eight by,tes", "long text past the word,", "long text past the word\"",
		"Ünïcödé 名前, à", "日本語テキスト",
		int64(0), int64(-42), int64(math.MaxInt64), 7, true, false,
		0.0, -1.5, 1e21, 3.14159, math.NaN(), math.Inf(1),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 13, 4, 5, 123456789, loc),
		time.Date(2024, 2, 29, 0, 0, 0, 0, loc), time.Date(1, 1, 1, 0, 0, 0, 999999, time.UTC),
		[]byte("by,tes"), stringer("str|nger"), stringer(" edge"), struct{ A int }{1}}
	types := []pipeline.Type{pipeline.TypeString, pipeline.TypeInt, pipeline.TypeFloat, pipeline.TypeBool,
		pipeline.TypeDate, pipeline.TypeTimestamp, pipeline.TypeDecimal, pipeline.TypeAny}
	delims := []salesforce.ColumnDelimiter{salesforce.DelimiterComma, salesforce.DelimiterBackquote, salesforce.DelimiterCaret,
		salesforce.DelimiterPipe, salesforce.DelimiterSemicolon, salesforce.DelimiterTab}
	r := rand.New(rand.NewPCG(3, 4))
	for _, d := range delims {
		for _, le := range []salesforce.LineEnding{salesforce.LineEndingLF, salesforce.LineEndingCRLF} {
			backoff, recBackoff := 0, 0 // appendRecordNext's and recordNext's, across the rows of a layout
			for k := range 300 {
				n := 1 + r.IntN(20)
				fields := make([]pipeline.Field, n)
				row := make(pipeline.Row, n)
				for i := range n {
					fields[i] = pipeline.Field{Name: fmt.Sprintf("f%d", i), Type: types[r.IntN(len(types))]}
					row[i] = values[r.IntN(len(values))]
				}
				e := newEncoder(pipeline.MustSchema(fields...), d, le)
				want, wantErr := refRecord(e, row)
				prefix := []byte("prefix")

				got, gotErr := e.appendRecord(bytes.Clone(prefix), row)
				checkEncoded(t, "appendRecord", d, le, row, got, gotErr, "prefix"+want, wantErr)
				if k%3 == 0 {
					// Mostly rows that need no quotes, so that both of
					// appendRecordNext's paths run.
					for i, v := range row {
						if s, ok := v.(string); ok {
							row[i] = strings.Trim(strings.Map(func(r rune) rune {
								if strings.ContainsRune("\r\n\"\t"+string(e.delim), r) {
									return -1
								}
								return r
							}, s), " ")
						}
					}
					want, wantErr = refRecord(e, row)
				}
				got, gotErr = e.appendRecordNext(bytes.Clone(prefix), row, &backoff)
				checkEncoded(t, "appendRecordNext", d, le, row, got, gotErr, "prefix"+want, wantErr)
				if cells, err := e.cells(row, nil); err == nil {
					got = e.recordNext(bytes.Clone(prefix), cells, &recBackoff)
					checkEncoded(t, "recordNext", d, le, row, got, nil, "prefix"+want, wantErr)
				}

				cells, gotErr := e.cells(row, nil)
				got = prefix
				if gotErr == nil {
					for i, c := range cells {
						if w, _ := cellText(row[i], fields[i].Type); c != w {
							t.Fatalf("%s %s %#v: cell %d = %q, want %q", d, le, row, i, c, w)
						}
					}
					got = e.record(bytes.Clone(prefix), cells)
				}
				checkEncoded(t, "record(cells)", d, le, row, got, gotErr, "prefix"+want, wantErr)
			}
		}
	}
}

func checkEncoded(t *testing.T, path string, d salesforce.ColumnDelimiter, le salesforce.LineEnding, row pipeline.Row, got []byte, gotErr error, want string, wantErr error) {
	t.Helper()
	if wantErr != nil {
		want = "prefix"
	}
	if string(got) != want {
		t.Fatalf("%s %s %s %#v:\n got %q\nwant %q", path, d, le, row, got, want)
	}
	var ge, we *pipeline.RowError
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && (!errors.As(gotErr, &ge) || !errors.As(wantErr, &we) ||
		ge.Code != we.Code || ge.Field != we.Field || ge.Err.Error() != we.Err.Error()) {
		t.Fatalf("%s %s %s %#v: error %v, want %v", path, d, le, row, gotErr, wantErr)
	}
}

// TestAppendDates checks the hand-written date and timestamp formatting
// against time.Format with the layouts, over random instants in several
// zones (milliseconds truncated, not rounded), the first and last
// instants of years 1 to 9999, and years outside that range (which fall
// back to time.Format).
func TestAppendDates(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("W", -11*3600-30*60), time.FixedZone("E", 14*3600)}
	r := rand.New(rand.NewPCG(5, 6))
	var times []time.Time
	for range 20000 {
		times = append(times, time.Unix(r.Int64N(253402300800+62135596800)-62135596800, r.Int64N(1e9)).In(zones[r.IntN(len(zones))]))
	}
	for _, y := range []int{-1, 0, 1, 9999, 10000, 12345} {
		times = append(times, time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 23, 59, 59, 999999999, time.UTC))
	}
	for _, ts := range times {
		if got, want := string(appendDate([]byte("x"), ts)), "x"+ts.Format(dateLayout); got != want {
			t.Fatalf("appendDate(%v) = %q, want %q", ts, got, want)
		}
		if got, want := string(appendDateTime([]byte("x"), ts)), "x"+ts.UTC().Format(dateTimeLayout); got != want {
			t.Fatalf("appendDateTime(%v) = %q, want %q", ts, got, want)
		}
	}
}

// FuzzEncoderMatchesReference is TestEncoderMatchesReference over
// arbitrary text: data holds rows separated by 0x1e, cells by 0x1f (the
// first row sets the width; the others are cut or padded to it, a padded
// cell being null), every field a string. Each row goes through every
// path, and the rows in turn through appendRecordNext and recordNext, so
// their look-ahead after a quoted row runs over fuzzed data too.
func FuzzEncoderMatchesReference(f *testing.F) {
	f.Add([]byte("a\x1fb\x1fc\x1ed\x1f\"e\"\x1ff"), uint8(0), false)
	f.Add([]byte(" lead\x1ftrail \x1fx\r\ny\x1e\x1f\x1f"), uint8(5), true)
	f.Add([]byte("\xff\xfe\x1f,;|^`\t\x1e\"\"\x1fa\rb"), uint8(3), false)
	f.Add([]byte(strings.Repeat("plain\x1ftext\x1e", 40)+"q\"uote\x1fx"), uint8(1), true)
	delims := []salesforce.ColumnDelimiter{salesforce.DelimiterComma, salesforce.DelimiterBackquote, salesforce.DelimiterCaret,
		salesforce.DelimiterPipe, salesforce.DelimiterSemicolon, salesforce.DelimiterTab}
	f.Fuzz(func(t *testing.T, data []byte, delim uint8, crlf bool) {
		d := delims[int(delim)%len(delims)]
		le := salesforce.LineEndingLF
		if crlf {
			le = salesforce.LineEndingCRLF
		}
		lines := bytes.Split(data, []byte{0x1e})
		width := len(bytes.Split(lines[0], []byte{0x1f}))
		if width > 64 {
			t.Skip()
		}
		fields := make([]pipeline.Field, width)
		for i := range fields {
			fields[i] = pipeline.Field{Name: fmt.Sprintf("f%d", i), Type: pipeline.TypeString}
		}
		e := newEncoder(pipeline.MustSchema(fields...), d, le)
		backoff, recBackoff := 0, 0
		for _, line := range lines {
			cells := bytes.Split(line, []byte{0x1f})
			row := make(pipeline.Row, width)
			for i := range row {
				if i < len(cells) {
					row[i] = string(cells[i])
				}
			}
			want, wantErr := refRecord(e, row)
			got, gotErr := e.appendRecord([]byte("prefix"), row)
			checkEncoded(t, "appendRecord", d, le, row, got, gotErr, "prefix"+want, wantErr)
			got, gotErr = e.appendRecordNext([]byte("prefix"), row, &backoff)
			checkEncoded(t, "appendRecordNext", d, le, row, got, gotErr, "prefix"+want, wantErr)
			cs, gotErr := e.cells(row, nil)
			got = []byte("prefix")
			if gotErr == nil {
				got = e.recordNext([]byte("prefix"), cs, &recBackoff)
				checkEncoded(t, "recordNext", d, le, row, got, nil, "prefix"+want, wantErr)
				got = e.record([]byte("prefix"), cs)
			}
			checkEncoded(t, "record(cells)", d, le, row, got, gotErr, "prefix"+want, wantErr)
		}
	})
}
