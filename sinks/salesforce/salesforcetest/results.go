package salesforcetest

import (
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
		for i := range j.success {
			size += rowSize(j.rows, int(j.success[i].row)) + 18 + 5 + 6
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
		var id [18]byte
		for i := range s.orderLocked(len(j.success)) {
			res := &j.success[i]
			created := "false"
			if res.created {
				created = "true"
			}
			ids.seek(j.object.prefix, res.n)
			rw.tableRow(string(ids.appendID(id[:0])), created, j.rows, int(res.row))
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
	s.mu.Unlock()
	body := rw.buf
	if rw.rows == 0 && s.opts.EmptyResultsZeroBytes {
		body = nil
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
