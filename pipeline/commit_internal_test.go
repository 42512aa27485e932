package pipeline

import (
	"math"
	"testing"
	"time"
)

// TestCommitLogRoundTrip: rows recorded for a sink's commit read back with
// the same values, types and origins, whatever the edge values, through the
// spool file and (after a spool error) memory.
func TestCommitLogRoundTrip(t *testing.T) {
	zone := time.FixedZone("x", -(3*3600 + 30*60))
	schema := MustSchema(Field{Name: "v", Type: TypeAny}, Field{Name: "w", Type: TypeAny})
	values := []any{nil, "", "plain", "nul\x00 and \xff bytes", "日本語",
		int64(0), int64(math.MinInt64), int64(math.MaxInt64),
		0.0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), 1e-320, math.MaxFloat64,
		true, false,
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 13, 45, 10, 123456789, zone),
		time.Time{}, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}
	b := NewBatch(schema, 0)
	for i, v := range values {
		b.Append(Row{v, int64(i)}, Origin{Object: "s3://b/k.csv", Line: int64(i) << 40, Row: int64(i)})
	}
	b.Append(Row{math.NaN(), int64(-1)}, Origin{})
	for _, mem := range []bool{false, true} {
		l := newCommitLog(nil, schema)
		if mem {
			l.err = errTest // as after a spool write error
		}
		if kept := l.add(b, map[int]bool{3: true}); kept != mem {
			// The engine recycles a batch's rows only when they were not kept.
			t.Errorf("mem=%v: add reported kept %v", mem, kept)
		}
		var got []Row
		var origins []Origin
		if err := l.each(4, schema, func(c *Batch) {
			if c.Len() > 4 {
				t.Errorf("batch of %d rows, want ≤ 4", c.Len())
			}
			got = append(got, c.rows...)
			origins = append(origins, c.origins...)
		}); err != nil {
			t.Fatal(err)
		}
		l.close()
		if len(got) != b.Len()-1 || l.total() != int64(b.Len()-1) {
			t.Fatalf("mem=%v: read %d rows (total %d), want %d", mem, len(got), l.total(), b.Len()-1)
		}
		for k, j := 0, 0; j < b.Len(); j++ {
			if j == 3 {
				continue // failed in the sink: not recorded
			}
			want, w := b.rows[j][0], got[k][0]
			same := w == want
			switch x := want.(type) {
			case float64:
				y, ok := w.(float64)
				same = ok && (math.Float64bits(x) == math.Float64bits(y) || math.IsNaN(x) && math.IsNaN(y))
			case time.Time:
				y, ok := w.(time.Time)
				_, xo := x.Zone()
				_, yo := y.Zone()
				same = ok && x.Equal(y) && xo == yo
			}
			if !same || got[k][1] != b.rows[j][1] || origins[k] != b.origins[j] {
				t.Errorf("mem=%v row %d: got %#v %v, want %#v %v", mem, j, got[k], origins[k], b.rows[j], b.origins[j])
			}
			k++
		}
	}
}

var errTest = errorString("spool unavailable")

type errorString string

func (e errorString) Error() string { return string(e) }
