package salesforcesink

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// stringer is a value of a type the pipeline does not define, encoded
// through pipeline.Text.
type stringer string

func (s stringer) String() string { return string(s) }

// TestAppendRecordMatchesCells checks that appendRecord (the plan sink's
// encoder) writes exactly what record(cells(row)) (the real sink's) does,
// and fails the same way, for every delimiter, both line endings and
// values of every kind: ones that need quoting, CRs, dates, timestamps,
// non-finite floats.
func TestAppendRecordMatchesCells(t *testing.T) {
	loc := time.FixedZone("X", -5*3600)
	values := []any{nil, "", "plain", "a,b", "a|b", "a;b", "a^b", "a`b", "a\tb", `q"q`, "l\nf", "c\r\nr", "lone\rcr", "\r",
		int64(0), int64(-42), int64(math.MaxInt64), 7, true, false,
		0.0, -1.5, 1e21, 3.14159, math.NaN(), math.Inf(1),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 13, 4, 5, 123456789, loc),
		time.Date(2024, 2, 29, 0, 0, 0, 0, loc), []byte("by,tes"), stringer("str|nger"), struct{ A int }{1}}
	types := []pipeline.Type{pipeline.TypeString, pipeline.TypeInt, pipeline.TypeFloat, pipeline.TypeBool,
		pipeline.TypeDate, pipeline.TypeTimestamp, pipeline.TypeDecimal, pipeline.TypeAny}
	delims := []salesforce.ColumnDelimiter{salesforce.DelimiterComma, salesforce.DelimiterBackquote, salesforce.DelimiterCaret,
		salesforce.DelimiterPipe, salesforce.DelimiterSemicolon, salesforce.DelimiterTab}
	r := rand.New(rand.NewPCG(3, 4))
	for _, d := range delims {
		for _, le := range []salesforce.LineEnding{salesforce.LineEndingLF, salesforce.LineEndingCRLF} {
			for range 300 {
				n := 1 + r.IntN(6)
				fields := make([]pipeline.Field, n)
				row := make(pipeline.Row, n)
				for i := range n {
					fields[i] = pipeline.Field{Name: fmt.Sprintf("f%d", i), Type: types[r.IntN(len(types))]}
					row[i] = values[r.IntN(len(values))]
				}
				e := newEncoder(pipeline.MustSchema(fields...), d, le)
				prefix := []byte("prefix")
				got, gotErr := e.appendRecord(bytes.Clone(prefix), row)
				var want []byte
				cells, wantErr := e.cells(row, nil)
				if wantErr == nil {
					want = e.record(bytes.Clone(prefix), cells)
				} else {
					want = prefix
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s %s %#v:\n got %q\nwant %q", d, le, row, got, want)
				}
				var ge, we *pipeline.RowError
				if (gotErr == nil) != (wantErr == nil) || gotErr != nil && (!errors.As(gotErr, &ge) || !errors.As(wantErr, &we) ||
					ge.Code != we.Code || ge.Field != we.Field || ge.Err.Error() != we.Err.Error()) {
					t.Fatalf("%s %s %#v: error %v, want %v", d, le, row, gotErr, wantErr)
				}
			}
		}
	}
}
