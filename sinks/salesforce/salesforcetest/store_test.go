package salesforcetest

import (
	"testing"
	"time"
)

// TestRecordHolds checks update's fast path: holds is true only when the
// changes set exactly the record's values, in its order, and update then
// leaves the values as they are and only stamps the record.
func TestRecordHolds(t *testing.T) {
	// A record holding A (pos 1), B (pos 4) and C (pos 7).
	newRec := func() *record {
		return &record{vals: &recVals{vals: "AbbCcc", refs: []fieldRef{{1, 1}, {4, 3}, {7, 6}}}}
	}
	ch := func(pos uint32, v string) change { return change{pos: pos, v: v} }
	tests := []struct {
		name    string
		changes []change
		want    bool
	}{
		{"same values, same order", []change{ch(1, "A"), ch(4, "bb"), ch(7, "Ccc")}, true},
		{"one value differs", []change{ch(1, "A"), ch(4, "bB"), ch(7, "Ccc")}, false},
		{"a null", []change{ch(1, "A"), {pos: 4, null: true}, ch(7, "Ccc")}, false},
		{"a value the changes leave out", []change{ch(1, "A"), ch(4, "bb")}, false},
		{"a field the record lacks", []change{ch(1, "A"), ch(4, "bb"), ch(7, "Ccc"), ch(9, "D")}, false},
		{"another order", []change{ch(4, "bb"), ch(1, "A"), ch(7, "Ccc")}, false},
		{"a field twice", []change{ch(1, "A"), ch(4, "bb"), ch(4, "bb")}, false},
		{"values moved between fields", []change{ch(1, "bb"), ch(4, "A"), ch(7, "Ccc")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newRec().holds(tt.changes); got != tt.want {
				t.Errorf("holds = %v, want %v", got, tt.want)
			}
		})
	}

	rec := newRec()
	vals := rec.vals
	st := &objStore{now: func() time.Time { return time.UnixMilli(1234) }}
	st.update(rec, []change{ch(1, "A"), ch(4, "bb"), ch(7, "Ccc")})
	if rec.vals != vals {
		t.Error("an update to the same values rebuilt the record's values")
	}
	if rec.mod != 1234 {
		t.Errorf("SystemModstamp %d after an update to the same values, want 1234 (every write stamps)", rec.mod)
	}
}
