package salesforcetest

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

func url2Values(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// resultWriter builds a result CSV: header names unquoted (as uploaded),
// "sf__" names and every value quoted, the job's delimiter and line
// ending, no terminator after the last row (contract §4.1). It appends to
// one []byte that handleResults presizes (sizeHint), so a large result is
// built without regrowing.
type resultWriter struct {
	buf   []byte
	delim byte
	eol   string
	rows  int
}

func newResultWriter(j *job, sizeHint int) *resultWriter {
	rw := &resultWriter{buf: getBuf(sizeHint), delim: byte(delimiters[j.delimiter]), eol: "\n"}
	if j.lineEnding == "CRLF" {
		rw.eol = "\r\n"
	}
	return rw
}

// resultSize estimates the bytes of a result row: the values quoted and
// delimited, plus the line ending (escaped quotes are not counted; the
// buffer grows for them).
func resultSize(vals ...[]string) int {
	n := 2
	for _, vs := range vals {
		for _, v := range vs {
			n += len(v) + 3
		}
	}
	return n
}

// rowSize is resultSize for row r of t.
func rowSize(t *table, r int) int {
	e := t.locs[r]
	if e&isStored == 0 {
		// The line holds the values and a delimiter between each two.
		return 2 + 3*t.plainWidth + len(t.line(r)) - (t.plainWidth - 1)
	}
	lo, hi := t.storedRange(e)
	n := 2 + 3*(hi-lo)
	for i := lo; i < hi; i++ {
		v := t.vals[i] &^ inMore
		n += int(uint32(v) - uint32(v>>32))
	}
	return n
}

// rowsSize is resultSize for rows [from, to) of t: for plain rows, from
// the length of their text (line endings included: an estimate).
func rowsSize(t *table, from, to int) int {
	n := 0
	for r := from; r < to; r++ {
		if t.locs[r]&isStored != 0 {
			n += rowSize(t, r)
			continue
		}
		// A run of plain rows: their text is consecutive.
		start := r
		for r+1 < to && t.locs[r+1]&isStored == 0 {
			r++
		}
		k := r + 1 - start
		n += k*(2+3*t.plainWidth-(t.plainWidth-1)) + int(t.locs[r]) + len(t.line(r)) - int(t.locs[start])
	}
	return n
}

// okRow writes a successful result row: the id ids holds, created
// ("true" or "false"), then row r of t. Ids and created hold no quotes,
// nor do the values of a plain row: they are written between quotes as
// they are, the row's text a value at a time.
func (rw *resultWriter) okRow(ids *idGen, created string, t *table, r int) {
	e := t.locs[r]
	if e&isStored != 0 {
		var id [18]byte
		rw.tableRow(string(ids.appendID(id[:0])), created, t, r)
		return
	}
	d := rw.delim
	b := append(rw.buf, rw.eol...)
	b = append(b, '"')
	b = ids.appendID(b)
	b = append(b, '"', d, '"')
	b = append(b, created...)
	b = append(b, '"', d, '"')
	// A plain row has t.plainWidth-1 delimiters before its line ending.
	s := t.text[e:]
	for c := 1; c < t.plainWidth; c++ {
		i := strings.IndexByte(s, t.delim)
		b = append(b, s[:i]...)
		b = append(b, '"', d, '"')
		s = s[i+1:]
	}
	b = append(b, toEOL(s)...)
	rw.buf = append(b, '"')
	rw.rows++
}

// tableRow writes a result row: id, status or error, then row r of t.
func (rw *resultWriter) tableRow(id, status string, t *table, r int) {
	rw.buf = append(rw.buf, rw.eol...)
	rw.quoted(id)
	rw.buf = append(rw.buf, rw.delim)
	rw.quoted(status)
	if t.locs[r]&isStored == 0 {
		// A plain row's values hold no quotes: each is written as is
		// between quotes, so the line is copied a run at a time.
		s := t.line(r)
		rw.buf = append(rw.buf, rw.delim, '"')
		for c := 1; c < t.plainWidth; c++ {
			i := strings.IndexByte(s, t.delim)
			rw.buf = append(rw.buf, s[:i]...)
			rw.buf = append(rw.buf, '"', rw.delim, '"')
			s = s[i+1:]
		}
		rw.buf = append(rw.buf, s...)
		rw.buf = append(rw.buf, '"')
	} else {
		lo, hi := t.storedRange(t.locs[r])
		for i := lo; i < hi; i++ {
			rw.buf = append(rw.buf, rw.delim)
			rw.quoted(t.at(i))
		}
	}
	rw.rows++
}

func (rw *resultWriter) quoted(v string) {
	rw.buf = append(rw.buf, '"')
	for {
		i := strings.IndexByte(v, '"')
		if i < 0 {
			break
		}
		rw.buf = append(rw.buf, v[:i+1]...)
		rw.buf = append(rw.buf, '"')
		v = v[i+1:]
	}
	rw.buf = append(rw.buf, v...)
	rw.buf = append(rw.buf, '"')
}

// bare writes a header name, quoting it only when it must be quoted.
func (rw *resultWriter) bare(v string) {
	if strings.ContainsAny(v, "\"\r\n"+string(rw.delim)) {
		rw.quoted(v)
		return
	}
	rw.buf = append(rw.buf, v...)
}

func (rw *resultWriter) header(sf []string, names []string) {
	n := 0
	for _, s := range sf {
		if n > 0 {
			rw.buf = append(rw.buf, rw.delim)
		}
		rw.quoted(s)
		n++
	}
	for _, s := range names {
		if n > 0 {
			rw.buf = append(rw.buf, rw.delim)
		}
		rw.bare(s)
		n++
	}
}

// row writes one row of plain values (unprocessed records, query results).
func (rw *resultWriter) row(vals []string) {
	rw.buf = append(rw.buf, rw.eol...)
	for i, v := range vals {
		if i > 0 {
			rw.buf = append(rw.buf, rw.delim)
		}
		rw.quoted(v)
	}
	rw.rows++
}

func (s *Server) handleResults(w http.ResponseWriter, r *http.Request, id, kind string) {
	s.mu.Lock()
	j := s.jobLocked(id)
	if j == nil || j.query {
		s.mu.Unlock()
		s.writeNotFound(w, r)
		return
	}
	if !isTerminal(j.state) {
		st := j.state
		s.mu.Unlock()
		s.writeJobNotComplete(w, r, st)
		return
	}
	// Size the buffer from the rows first: one pass over lengths is much
	// cheaper than regrowing (and copying) a buffer of many megabytes.
	size := resultSize([]string{"sf__Id", "sf__Created"}, j.header)
	switch kind {
	case "successfulresults":
		for _, run := range j.success.runs {
			size += rowsSize(j.rows, int(run.row), int(run.row+run.len)) + int(run.len)*(18+5+6)
		}
	case "failedresults":
		for i := range j.failures {
			size += rowSize(j.rows, int(j.failures[i].row)) + 18 + len(j.failures[i].err) + 6
		}
	default:
		for _, vals := range j.unprocessed {
			size += resultSize(vals)
		}
	}
	rw := newResultWriter(j, size)
	switch kind {
	case "successfulresults":
		rw.header([]string{"sf__Id", "sf__Created"}, j.header)
		// ids is seeked from one counter to the next: in natural order
		// an insert job's are consecutive, one increment each.
		var ids idGen
		write := func(res okResult) {
			created := "false"
			if res.created {
				created = "true"
			}
			if res.named {
				rw.tableRow(j.object.store.named[res.n], created, j.rows, int(res.row))
				return
			}
			ids.seek(j.object.prefix, res.n)
			rw.okRow(&ids, created, j.rows, int(res.row))
		}
		if s.opts.ShuffleResults {
			for i := range s.orderLocked(j.success.n) {
				write(j.success.at(i))
			}
			break
		}
		for _, run := range j.success.runs {
			for d := range run.len {
				write(okResult{run.n + uint64(d), run.row + d, run.created, run.named})
			}
		}
	case "failedresults":
		rw.header([]string{"sf__Id", "sf__Error"}, j.header)
		for i := range s.orderLocked(len(j.failures)) {
			res := &j.failures[i]
			rw.tableRow(res.id(), res.err, j.rows, int(res.row))
		}
	default:
		rw.header(nil, j.header)
		for i := range s.orderLocked(len(j.unprocessed)) {
			rw.row(j.unprocessed[i])
		}
	}
	dup := s.faults.DuplicateResultRow && kind == "successfulresults" && rw.rows > 0
	omit := s.faults.OmitIDEcho && kind != "unprocessedrecords" && j.operation != "insert" && j.operation != "upsert"
	s.mu.Unlock()
	body := rw.buf
	if rw.rows == 0 && s.opts.EmptyResultsZeroBytes {
		body = nil
	}
	if dup || omit {
		var err error
		if body, err = faultResults(body, rw.delim, rw.eol == "\r\n", dup, omit); err != nil {
			s.writeErr(w, r, http.StatusInternalServerError, "UNKNOWN_EXCEPTION", err.Error())
			return
		}
	}
	s.writeBody(w, r, http.StatusOK, csvContentType, body)
	putBuf(rw.buf)
}

// orderLocked returns the row order of a result file: natural, or a seeded
// shuffle with Options.ShuffleResults. The natural order is counted, not
// stored (a million results made an 8 MB list to walk once). s.mu must
// be held, and the shuffle is drawn when orderLocked is called.
func (s *Server) orderLocked(n int) iter.Seq[int] {
	if !s.opts.ShuffleResults {
		return func(yield func(int) bool) {
			for i := range n {
				if !yield(i) {
					return
				}
			}
		}
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	s.rng.Shuffle(n, func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
	return slices.Values(idx)
}

// writeJobNotComplete answers an early results request (contract §2.9, §6).
func (s *Server) writeJobNotComplete(w http.ResponseWriter, r *http.Request, state string) {
	status := map[string]string{
		StateOpen: "OPEN", StateUploadComplete: "UPLOAD_COMPLETE", StateInProgress: "IN_PROGRESS",
		StateFailed: "FAILED", StateAborted: "ABORTED", StateJobComplete: "JOB_COMPLETE",
	}[state]
	s.writeErr(w, r, http.StatusPreconditionFailed, "JOB_NOT_COMPLETE",
		fmt.Sprintf("can only download query results of successfully completed bulk job with status: JOB_COMPLETE. Current status: %s", status))
}

// faultResults rewrites a result file for the DuplicateResultRow (its first
// row twice) and OmitIDEcho (no echoed Id column) faults.
func faultResults(body []byte, delim byte, crlf, dup, omit bool) ([]byte, error) {
	cr := csv.NewReader(bytes.NewReader(body))
	cr.Comma = rune(delim)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil || len(recs) == 0 {
		return body, err
	}
	if omit {
		if k := slices.IndexFunc(recs[0], func(n string) bool { return strings.EqualFold(n, "Id") }); k >= 0 {
			for i := range recs {
				recs[i] = slices.Delete(recs[i], k, k+1)
			}
		}
	}
	if dup && len(recs) > 1 {
		recs = slices.Insert(recs, 2, recs[1])
	}
	var out bytes.Buffer
	cw := csv.NewWriter(&out)
	cw.Comma, cw.UseCRLF = rune(delim), crlf
	if err := cw.WriteAll(recs); err != nil {
		return body, err
	}
	return out.Bytes(), nil
}
