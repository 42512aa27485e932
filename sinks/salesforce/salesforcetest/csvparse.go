package salesforcetest

import (
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// table holds the rows of a parsed upload as offsets into one string:
// no pointers per row or value, so a million stored rows cost the garbage
// collector (and the parser's write barriers) nothing.
//
// A plain row (no quotes, as many values as the header) is stored as
// where it starts alone, 4 bytes, and split again when it is read: its
// values end at the delimiters and at the line ending, which is all a
// reader needs to find them. Storing every value's offsets cost 8 bytes
// per value, more than the row's own text. The other rows (quoted values,
// other widths, and every row of a table built by tableOf) are stored
// rows: their values' offsets are kept. Rows may have different lengths
// (encoding/csv allows it; validateUpload rejects it).
type table struct {
	text       string   // the upload (or, for parseCSV's rows, their values concatenated)
	more       string   // values that are not substrings of text (quotes unescaped)
	delim      byte     // the delimiter between the values of plain rows
	plainWidth int      // the number of values of every plain row
	locs       []uint32 // per row: a plain row's start in text, or isStored | its index in ends
	vals       []uint64 // per value of a stored row: start<<32 | end, in text, or in more with inMore set
	ends       []uint32 // per stored row: the index in vals after its last value
	// lfOnly is set by parseStrict when text holds no '"' and no '\r':
	// its line endings are all "\n", which validateUpload then need not
	// check with a scan of its own.
	lfOnly bool
}

const (
	// inMore marks a value offset that refers to table.more.
	inMore = 1 << 63
	// isStored marks an entry of table.rows that is a stored row.
	isStored = 1 << 31
)

// len returns the number of rows.
func (t *table) len() int { return len(t.locs) }

// storedRange returns the span in t.vals of the stored row whose entry
// in t.locs is e.
func (t *table) storedRange(e uint32) (int, int) {
	k := e &^ isStored
	lo := 0
	if k > 0 {
		lo = int(t.ends[k-1])
	}
	return lo, int(t.ends[k])
}

// line returns the text of plain row r, without its line ending.
func (t *table) line(r int) string { return toEOL(t.text[t.locs[r]:]) }

// toEOL returns s up to its first line ending ("\n" or "\r\n").
func toEOL(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
		if len(s) > 0 && s[len(s)-1] == '\r' {
			s = s[:len(s)-1]
		}
	}
	return s
}

// width returns the number of values of row r.
func (t *table) width(r int) int {
	if e := t.locs[r]; e&isStored != 0 {
		lo, hi := t.storedRange(e)
		return hi - lo
	}
	return t.plainWidth
}

// value returns value c of row r.
func (t *table) value(r, c int) string {
	e := t.locs[r]
	if e&isStored != 0 {
		lo, _ := t.storedRange(e)
		return t.at(lo + c)
	}
	// A plain row has t.plainWidth values and t.plainWidth-1 delimiters, so
	// skipping c of them stays on the row.
	s := t.text[e:]
	for ; c > 0; c-- {
		s = s[strings.IndexByte(s, t.delim)+1:]
	}
	end := len(s)
	for i := 0; i < len(s); i++ {
		if b := s[i]; b == t.delim || b == '\n' || b == '\r' {
			end = i
			break
		}
	}
	return s[:end]
}

// split appends the values of row r to dst and returns it: the hot loops
// split each row once, instead of finding its values one by one.
func (t *table) split(r int, dst []string) []string {
	e := t.locs[r]
	if e&isStored != 0 {
		lo, hi := t.storedRange(e)
		for i := lo; i < hi; i++ {
			dst = append(dst, t.at(i))
		}
		return dst
	}
	// A plain row has t.plainWidth-1 delimiters before its line ending:
	// only its last value needs a search for the line ending (finding the
	// line first would scan the row twice).
	s := t.text[e:]
	for c := 1; c < t.plainWidth; c++ {
		i := strings.IndexByte(s, t.delim)
		dst = append(dst, s[:i])
		s = s[i+1:]
	}
	return append(dst, toEOL(s))
}

// at returns t.vals[i] as a string.
func (t *table) at(i int) string {
	v := t.vals[i]
	src := t.text
	if v&inMore != 0 {
		src, v = t.more, v&^inMore
	}
	return src[v>>32 : uint32(v)]
}

// rows returns rows [from, len) as slices (for the rare paths that keep
// rows: aborts, quota and header failures, unprocessed records).
func (t *table) rows(from int) [][]string {
	if t == nil || from >= t.len() {
		return nil
	}
	out := make([][]string, 0, t.len()-from)
	for r := from; r < t.len(); r++ {
		out = append(out, t.split(r, make([]string, 0, t.width(r))))
	}
	return out
}

// tableOf packs rows (from parseCSV) into a table of stored rows.
func tableOf(rows [][]string) *table {
	var b strings.Builder
	t := &table{}
	for _, row := range rows {
		for _, v := range row {
			t.vals = append(t.vals, uint64(b.Len())<<32|uint64(b.Len()+len(v)))
			b.WriteString(v)
		}
		t.locs = append(t.locs, isStored|uint32(len(t.ends)))
		t.ends = append(t.ends, uint32(len(t.vals)))
	}
	t.text = b.String()
	return t
}

// parseUpload splits upload data into the header and rows exactly as
// parseCSV (encoding/csv) does, but in one pass with a few allocations per
// upload instead of two per row, into a table whose text is data itself.
//
// data must never be modified afterwards: the values (kept by records and
// results) alias it. Uploads are stored once and only read, so this saves
// copying every upload.
//
// The fast path handles the strict, common shape of CSV: records ending
// in "\n" or "\r\n" (the last one may end at EOF), unquoted values without
// quotes or carriage returns, and quoted values without carriage returns.
// Anything else (blank lines, bare or stray quotes, lone "\r", an
// unterminated quote) makes it fall back to parseCSV, so that every corner
// case and every error message stays encoding/csv's.
func parseUpload(data []byte, delim rune) ([]string, *table, error) {
	if len(data) > 0 && len(data) < 1<<32 && delim < 0x80 {
		if header, t, ok := parseStrict(unsafe.String(&data[0], len(data)), byte(delim)); ok {
			return header, t, nil
		}
	}
	header, rows, err := parseCSV(data, delim)
	return header, tableOf(rows), err
}

// parseStrict parses text as described at parseUpload; ok is false when
// text leaves that shape.
func parseStrict(text string, d byte) (header []string, t *table, ok bool) {
	t = &table{text: text, delim: d, lfOnly: true}
	var more []byte
	// Plain rows store their start in 31 bits (see table).
	plainOK := len(text) < isStored
	// stop marks the bytes that end or complicate an unquoted value.
	var stop [256]bool
	stop[d], stop['\n'], stop['\r'], stop['"'] = true, true, true, true
	var scratch *[]uint32 // t.locs while the rows are parsed
	i := 0
	for i < len(text) {
		if header != nil && plainOK {
			if n, crlf, ok := plainLine(text[i:], d, t.plainWidth); ok {
				t.locs = append(t.locs, uint32(i))
				i += n
				t.lfOnly = t.lfOnly && !crlf
				continue
			}
		}
		if text[i] == '\n' || text[i] == '\r' {
			return nil, nil, false // blank line (skipped by encoding/csv) or lone "\r"
		}
		rowStart, firstVal := i, len(t.vals)
		quoted := false
		for {
			// One value starting at i.
			var v uint64
			if i < len(text) && text[i] == '"' {
				lo, hi, esc, n, good := quotedValue(text[i:], d, &more)
				if !good {
					return nil, nil, false
				}
				if esc {
					v = inMore | uint64(lo)<<32 | uint64(hi)
				} else {
					v = uint64(i+lo)<<32 | uint64(i+hi)
				}
				i += n
				quoted = true
			} else {
				j := i
				for j < len(text) && !stop[text[j]] {
					j++
				}
				if j < len(text) && (text[j] == '"' || text[j] == '\r' && !(j+1 < len(text) && text[j+1] == '\n')) {
					return nil, nil, false
				}
				v = uint64(i)<<32 | uint64(j)
				i = j
			}
			t.vals = append(t.vals, v)
			// i is at a delimiter, a line ending or EOF.
			if i < len(text) && text[i] == d {
				i++
				continue
			}
			break
		}
		if i < len(text) && text[i] == '\r' {
			i++ // the "\r" of "\r\n" (checked above)
			t.lfOnly = false
		}
		if quoted {
			t.lfOnly = false
		}
		i++ // "\n", or past EOF
		if header == nil {
			// The header is kept as strings; the rows start afresh.
			t.locs = append(t.locs, isStored)
			t.ends = append(t.ends, uint32(len(t.vals)))
			t.more = string(more)
			header = t.rows(0)[0]
			t.plainWidth = len(header)
			scratch = locsScratch.Get().(*[]uint32)
			t.locs, t.vals, t.ends, more = (*scratch)[:0], t.vals[:0], nil, more[:0]
			continue
		}
		if plainOK && !quoted && len(t.vals)-firstVal == t.plainWidth {
			// A plain row: its values are found again by splitting it.
			t.vals = t.vals[:firstVal]
			t.locs = append(t.locs, uint32(rowStart))
			continue
		}
		t.ends = append(t.ends, uint32(len(t.vals)))
		t.locs = append(t.locs, isStored|uint32(len(t.ends)-1))
	}
	if header == nil {
		return nil, nil, false
	}
	// The rows were appended to a scratch list, not to one presized from
	// a count of the lines: that count was a scan of its own over the
	// whole upload, whose memory is not cached yet when it is parsed. A
	// table lives as long as its job: it keeps a copy of its size.
	*scratch = t.locs[:0]
	t.locs = slices.Clone(t.locs)
	locsScratch.Put(scratch)
	t.more = string(more)
	return header, t, true
}

// locsScratch holds the lists parseStrict appends rows to (*[]uint32).
var locsScratch = sync.Pool{New: func() any { return new([]uint32) }}

// plainLine reports whether s starts with a row that parseStrict makes a
// plain row of width values: a non-empty line without quotes, and without
// carriage returns but its line ending's, holding width-1 delimiters d.
// n is its length with its line ending, crlf whether that is "\r\n".
// It finds such a row with a few vectorized scans of its line, where
// parseStrict's loop looks at each byte in turn.
func plainLine(s string, d byte, width int) (n int, crlf, ok bool) {
	line := s
	n = len(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		line, n = s[:i], i+1
		if line != "" && line[len(line)-1] == '\r' {
			line, crlf = line[:len(line)-1], true
		}
	}
	if line == "" || strings.IndexByte(line, '"') >= 0 || strings.IndexByte(line, '\r') >= 0 ||
		strings.Count(line, string(rune(d))) != width-1 {
		return 0, false, false
	}
	return n, crlf, true
}

// quotedValue decodes the quoted value at the start of s (s[0] == '"').
// Without escaped quotes the value is s[lo:hi]; with them (esc) it was
// appended to *more, at [lo:hi]. n is the bytes consumed, up to (not
// including) the delimiter or line ending that follows the closing quote.
// good is false unless the value was well formed and free of carriage
// returns.
func quotedValue(s string, d byte, more *[]byte) (lo, hi int, esc bool, n int, good bool) {
	i := 1
	start := len(*more)
	for {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return 0, 0, false, 0, false // unterminated
		}
		seg := s[i : i+j]
		if strings.IndexByte(seg, '\r') >= 0 {
			return 0, 0, false, 0, false // encoding/csv rewrites "\r\n" inside quotes
		}
		i += j + 1
		if i < len(s) && s[i] == '"' {
			*more = append(*more, seg...)
			*more = append(*more, '"')
			esc = true
			i++
			continue
		}
		if i < len(s) && s[i] != d && s[i] != '\n' && !(s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n') {
			return 0, 0, false, 0, false // stray character after the closing quote
		}
		if !esc {
			return 1, i - 1, false, i, true
		}
		*more = append(*more, seg...)
		return start, len(*more), true, i, true
	}
}
