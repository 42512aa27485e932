package salesforcesink

import (
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"strings"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// matcher correlates result rows with batch indices: by the exact echoed
// cells first, then by the record's identifying column (Id or the external
// id). Rows with identical cells are matched in upload order.
type matcher struct {
	s         *Sink
	st        *batchState
	c         *chunk
	names     []string
	byKey     map[string]*cellIndex // column-set signature → index of the echoed cells
	byID      *cellIndex            // index of the identifying column (s.idCol)
	bySFID    map[string][]int      // 15-character uploaded Id → unused rows, in upload order
	used      []bool                // by batch index
	unmatched int
	echoed    int // results matched by ReadEcho (for tests)
	seed      maphash.Seed
	first     int // no row before position first of c.rows is unused
	// next is the position in c.rows after the row the last in-order
	// match took: after a gap (rows whose results are in another file,
	// such as rejected rows while the successful results are read), the
	// next result is usually a few rows on (see ahead).
	next int
	// distinct caches, per column-set signature, whether the chunk's rows
	// all differ in those columns (see ahead).
	distinct map[string]bool
}

func newMatcher(s *Sink, st *batchState, c *chunk) *matcher {
	return &matcher{s: s, st: st, c: c, names: s.schema.Names(), byKey: map[string]*cellIndex{},
		used: make([]bool, len(st.ok)), seed: maphash.MakeSeed()}
}

// cellsHash hashes the cells at cols, each hashed on its own and mixed in
// order, so that ("a","bc") and ("ab","c") differ. Matches are confirmed
// with sameCells: a hash collision can never pair a result with the wrong
// row.
func (m *matcher) cellsHash(cells []string, cols []int) uint64 {
	h := uint64(len(cols))
	for _, c := range cols {
		h = (h ^ maphash.String(m.seed, cells[c])) * 0x9e3779b97f4a7c15
		h ^= h >> 32
	}
	return h
}

func sameCells(a, b []string, cols []int) bool {
	for _, c := range cols {
		if a[c] != b[c] {
			return false
		}
	}
	return true
}

// echoes reports whether a result row's values echo the cells: values[theirs[p]]
// is cells[mine[p]].
func echoes(cells, values []string, mine, theirs []int) bool {
	for p, k := range mine {
		if cells[k] != values[theirs[p]] {
			return false
		}
	}
	return true
}

// read streams one result file, calling each with the matched batch index
// (-1 when no row matched). The row passed to each is valid only until each
// returns.
func (m *matcher) read(r io.Reader, each func(i int, row *salesforce.ResultRow)) error {
	rr := salesforce.NewResultReader(r, m.s.delim)
	cols, err := rr.Columns()
	if err != nil {
		return err
	}
	// Map echoed columns to schema columns (case-insensitively).
	var mine, theirs []int
	for j, name := range cols {
		for k, n := range m.names {
			if strings.EqualFold(n, name) {
				mine, theirs = append(mine, k), append(theirs, j)
				break
			}
		}
	}
	sig := fmt.Sprint(mine)
	idx := m.byKey[sig] // built on the first row the in-order path misses
	idPos := -1
	if m.s.idCol >= 0 {
		for p, k := range mine {
			if k == m.s.idCol {
				idPos = theirs[p]
			}
		}
	}
	// For update, delete and hardDelete the uploaded Id is sf__Id by
	// definition: the fallback when the results do not echo Id.
	bySFID := idPos < 0 && m.s.idCol >= 0 && isIDOperation(m.s.op)
	vals := make([]string, len(m.names))
	// distinct is allDistinct's answer for these columns once ahead asked
	// it: the row after the last match is then tried first (see below).
	distinct := m.distinct[sig]
	// With every result column a schema column, the row the in-order
	// checks below try first is compared with the result as it is read
	// (ReadEcho), when its cells need no quotes: nearly every row of a
	// result file, read in one pass instead of split into fields and
	// compared again (issue 23). echoed are its cells in result order.
	var echoed []string
	byEcho := m.st.plain != nil && len(mine) > 0 && len(mine) == len(cols)
	inOrder := true // mine is 0, 1, 2...: echoed is a part of the cells
	for p, k := range mine {
		inOrder = inOrder && k == p
	}
	if byEcho && !inOrder {
		echoed = make([]string, len(mine))
	}
	for {
		if len(mine) > 0 {
			for m.first < len(m.c.rows) && m.used[m.c.rows[m.first]] {
				m.first++
			}
		}
		// next is the row the in-order checks try first, or -1.
		next := -1
		if distinct && m.first < m.next && m.next < len(m.c.rows) && !m.used[m.c.rows[m.next]] {
			next = m.next
		} else if m.first < len(m.c.rows) {
			next = m.first
		}
		var row *salesforce.ResultRow
		var err error
		hit := false
		if byEcho && next >= 0 && m.st.plain[m.c.rows[next]] {
			cells := m.st.cells[m.c.rows[next]]
			if inOrder {
				echoed = cells[:len(mine)]
			} else {
				for p, k := range mine {
					echoed[p] = cells[k]
				}
			}
			row, hit, err = rr.ReadEcho(echoed)
		} else {
			row, err = rr.Read()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		i := -1
		if hit {
			i = m.c.rows[next]
			m.next = next + 1
			m.echoed++
		} else if len(mine) > 0 {
			// Results usually come in upload order: when the first unused
			// row has the cells, it is the row take would return.
			if next >= 0 && next != m.first && echoes(m.st.cells[m.c.rows[next]], row.Values, mine, theirs) {
				// After a gap the next result is usually the row after the
				// last match, and with rows that all differ the one unused
				// row that echoes it is the row take would return.
				i = m.c.rows[next]
				m.next = next + 1
			} else if m.first < len(m.c.rows) && echoes(m.st.cells[m.c.rows[m.first]], row.Values, mine, theirs) {
				i = m.c.rows[m.first]
				m.next = m.first + 1
			} else if p := m.ahead(sig, row.Values, mine, theirs); p >= 0 {
				i = m.c.rows[p]
				m.next = p + 1
				distinct = true // ahead answers only then
			} else {
				for p, k := range mine {
					vals[k] = row.Values[theirs[p]]
				}
				if idx == nil {
					idx = m.index(mine)
					m.byKey[sig] = idx
				}
				i = m.take(idx, m.cellsHash(vals, mine), vals, mine)
			}
		}
		if i < 0 && idPos >= 0 && row.Values[idPos] != "" {
			// vals holds the row's cells: idPos is one of theirs, and the
			// in-order path missed.
			i = m.takeID(vals)
		}
		if i < 0 && bySFID && row.ID != "" {
			i = m.takeSFID(row.ID)
		}
		if i < 0 {
			m.unmatched++
		} else {
			m.used[i] = true
		}
		each(i, row)
	}
}

// aheadRows is how many unused rows after the last in-order match ahead
// tries before the hash index.
const aheadRows = 8

// ahead returns the position of the first of the next aheadRows unused
// rows from m.next whose cells the result's values echo, or -1. Results
// come in upload order, but a file of successful results skips the
// rejected rows (and the failed results skip the loaded ones): without
// ahead, every result after the first gap missed the in-order check and
// was hashed, and the chunk's hash index built (issue 23: with 4.5 % of
// rows rejected, the matcher's time doubled). A row found ahead is the
// one take would return only if no unused row before it has the same
// cells: ahead answers only when the chunk's rows all differ in the
// echoed columns, where a row that echoes the result is the only one.
func (m *matcher) ahead(sig string, values []string, mine, theirs []int) int {
	rows := m.c.rows
	p := max(m.next, m.first)
	if p >= len(rows) || !m.allDistinct(sig, mine) {
		return -1
	}
	for tried := 0; p < len(rows) && tried < aheadRows; p++ {
		if m.used[rows[p]] {
			continue
		}
		if echoes(m.st.cells[rows[p]], values, mine, theirs) {
			return p
		}
		tried++
	}
	return -1
}

// allDistinct reports whether no two rows of the chunk have the same
// cells at cols: true when one of the first few columns holds a different
// value in every row (usually the first, an external id), false when none
// is found (ahead then leaves the rows to the hash index). The answer is
// cached per column-set signature.
func (m *matcher) allDistinct(sig string, cols []int) bool {
	if d, ok := m.distinct[sig]; ok {
		return d
	}
	if m.distinct == nil {
		m.distinct = map[string]bool{}
	}
	d := false
	for _, k := range cols[:min(len(cols), 3)] {
		if d = m.distinctColumn(k); d {
			break
		}
	}
	m.distinct[sig] = d
	return d
}

// distinctColumn reports whether the chunk's rows all hold a different
// cell at column k. It is a set of the cells' hashes (open addressing,
// linear probing, rows by position), where equal hashes are compared as
// strings: a map[string]struct{} of a 10,000-row chunk was a fifth of the
// time of reading its results (issue 23), mostly hashing twice and
// growing; this hashes each cell once, in one allocation.
func (m *matcher) distinctColumn(k int) bool {
	rows := m.c.rows
	size := 1 << bits.Len(uint(2*len(rows))) // a power of two, at least twice the rows
	mask := uint64(size - 1)
	slots := make([]int32, size) // position in rows + 1; 0 is empty
	hashes := make([]uint64, len(rows))
	for p, i := range rows {
		v := m.st.cells[i][k]
		h := maphash.String(m.seed, v)
		hashes[p] = h
		for j := h & mask; ; j = (j + 1) & mask {
			q := slots[j]
			if q == 0 {
				slots[j] = int32(p + 1)
				break
			}
			if hashes[q-1] == h && m.st.cells[rows[q-1]][k] == v {
				return false
			}
		}
	}
	return true
}

// cellIndex finds the rows of a chunk by the hash of some of their cells:
// the rows with one hash form a chain in upload order, as positions in
// chunk.rows (no allocation per row).
type cellIndex struct {
	head map[uint64]int32 // hash → first position not known to be used, or -1
	next []int32          // position → next position with the same hash, or -1
}

// index hashes the cells at cols of every row of the chunk.
func (m *matcher) index(cols []int) *cellIndex {
	rows := m.c.rows
	idx := &cellIndex{head: make(map[uint64]int32, len(rows)), next: make([]int32, len(rows))}
	for p := len(rows) - 1; p >= 0; p-- { // backwards: chains come out in upload order
		h := m.cellsHash(m.st.cells[rows[p]], cols)
		n, ok := idx.head[h]
		if !ok {
			n = -1
		}
		idx.next[p] = n
		idx.head[h] = int32(p)
	}
	return idx
}

// take returns the first unused row of the chain whose cells equal vals
// (identical rows are matched in upload order), or -1.
func (m *matcher) take(idx *cellIndex, h uint64, vals []string, mine []int) int {
	p, ok := idx.head[h]
	if !ok {
		return -1
	}
	rows := m.c.rows
	for p >= 0 && m.used[rows[p]] {
		p = idx.next[p] // drop the used head: repeated identical rows stay O(1)
	}
	idx.head[h] = p
	for ; p >= 0; p = idx.next[p] {
		if i := rows[p]; !m.used[i] && sameCells(m.st.cells[i], vals, mine) {
			return i
		}
	}
	return -1
}

// takeID returns the first unused row whose identifying column (s.idCol)
// is vals[s.idCol], or -1. Like take, it keeps no string of vals: those of
// a result row alias the reader's buffer.
func (m *matcher) takeID(vals []string) int {
	cols := []int{m.s.idCol}
	if m.byID == nil {
		m.byID = m.index(cols)
	}
	return m.take(m.byID, m.cellsHash(vals, cols), vals, cols)
}

// isIDOperation reports whether the operation's records are named by the
// uploaded Id (so sf__Id of a result row is that Id).
func isIDOperation(op salesforce.Operation) bool {
	return op == salesforce.OpUpdate || op == salesforce.OpDelete || op == salesforce.OpHardDelete
}

// id15 returns the case-sensitive 15-character form of a Salesforce id
// (an 18-character id is the 15-character one plus a checksum suffix).
func id15(id string) string {
	if len(id) == 18 {
		return id[:15]
	}
	return id
}

// takeSFID returns the first unused row whose uploaded Id is the result
// row's sf__Id (compared in 15-character form), or -1.
func (m *matcher) takeSFID(sfID string) int {
	if m.bySFID == nil {
		m.bySFID = make(map[string][]int, len(m.c.rows))
		for _, i := range m.c.rows {
			k := id15(m.st.cells[i][m.s.idCol])
			m.bySFID[k] = append(m.bySFID[k], i)
		}
	}
	k := id15(sfID)
	q := m.bySFID[k]
	for len(q) > 0 && m.used[q[0]] {
		q = q[1:]
	}
	m.bySFID[k] = q
	if len(q) == 0 {
		return -1
	}
	return q[0]
}
