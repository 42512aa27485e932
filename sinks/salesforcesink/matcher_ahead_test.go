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

// TestDistinctColumn checks the hash set of distinctColumn against a
// plain map of the cells, on columns with and without repeated cells,
// empty cells and a repeat of the last row.
func TestDistinctColumn(t *testing.T) {
	const n = 5000
	cells := matchCells(n)
	cells[n-1] = append([]string(nil), cells[n-1]...)
	cells[n-1][3] = cells[0][3] // column 3 repeats at the end only
	cells[7] = append([]string(nil), cells[7]...)
	cells[7][1] = ""
	s, st, c := newMatchState(cells, false)
	m := newMatcher(s, st, c)
	for k := range matchSchema.Len() {
		seen := map[string]bool{}
		want := true
		for _, row := range cells {
			if seen[row[k]] {
				want = false
			}
			seen[row[k]] = true
		}
		if got := m.distinctColumn(k); got != want {
			t.Errorf("column %d: distinct %v, want %v", k, got, want)
		}
	}
	if !m.distinctColumn(0) || m.distinctColumn(2) || m.distinctColumn(3) {
		t.Error("the test's columns do not cover both answers")
	}
}
