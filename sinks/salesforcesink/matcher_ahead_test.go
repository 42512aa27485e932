package salesforcesink

import (
	"bytes"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// TestMatcherAheadOverGaps reads a chunk's successful results, which skip
// the rejected rows, then its failed results, both in upload order (as
// Salesforce and the emulator write them). Every result must reach its
// own row; with distinct rows the in-order path and ahead take them all,
// without the hash index. With two identical rows, one rejected, the
// results go to the identical rows in upload order, as before ahead.
func TestMatcherAheadOverGaps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dup       bool // rows 10 and 11 identical, row 10 rejected
		wantIndex bool
	}{
		{"distinct rows", false, false},
		{"identical rows", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 3000
			cells := matchCells(n)
			rejected := func(i int) bool { return i%22 == 10 || i == 2999 || i == 0 }
			if tc.dup {
				cells[11] = cells[10]
			}
			var ok, bad []int
			for i := range n {
				if rejected(i) {
					bad = append(bad, i)
				} else {
					ok = append(ok, i)
				}
			}
			s, st, c := newMatchState(cells, true)
			m := newMatcher(s, st, c)
			got := map[int]int{} // batch index → row the result was written for
			read := func(data []byte, order []int) {
				k := 0
				if err := m.read(bytes.NewReader(data), func(i int, r *salesforce.ResultRow) {
					if i < 0 {
						t.Fatalf("line %d unmatched", r.Line)
					}
					got[i] = order[k]
					k++
				}); err != nil {
					t.Fatal(err)
				}
			}
			read(resultsOf(cells, ok), ok)
			read(resultsOf(cells, bad), bad)
			for i := range n {
				want := i
				if tc.dup && (i == 10 || i == 11) {
					want = 21 - i // the success (row 11's) went to row 10, the first unused identical row
				}
				if got[i] != want {
					t.Fatalf("row %d took the result of row %d, want %d", i, got[i], want)
				}
			}
			if m.unmatched != 0 || (len(m.byKey) > 0) != tc.wantIndex {
				t.Errorf("unmatched %d, hash indexes %d (want one: %v)", m.unmatched, len(m.byKey), tc.wantIndex)
			}
		})
	}
}
