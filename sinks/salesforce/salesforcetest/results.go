package salesforcetest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
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
// ending, no terminator after the last row (contract §4.1).
type resultWriter struct {
	buf   bytes.Buffer
	delim byte
	eol   string
	rows  int
}

func newResultWriter(j *job) *resultWriter {
	rw := &resultWriter{delim: byte(delimiters[j.delimiter]), eol: "\n"}
	if j.lineEnding == "CRLF" {
		rw.eol = "\r\n"
	}
	return rw
}

func (rw *resultWriter) quoted(v string) {
	rw.buf.WriteByte('"')
	if strings.IndexByte(v, '"') < 0 {
		rw.buf.WriteString(v)
	} else {
		rw.buf.WriteString(strings.ReplaceAll(v, `"`, `""`))
	}
	rw.buf.WriteByte('"')
}

// bare writes a header name, quoting it only when it must be quoted.
func (rw *resultWriter) bare(v string) {
	if strings.ContainsAny(v, "\"\r\n"+string(rw.delim)) {
		rw.quoted(v)
		return
	}
	rw.buf.WriteString(v)
}

func (rw *resultWriter) header(sf []string, names []string) {
	n := 0
	for _, s := range sf {
		if n > 0 {
			rw.buf.WriteByte(rw.delim)
		}
		rw.quoted(s)
		n++
	}
	for _, s := range names {
		if n > 0 {
			rw.buf.WriteByte(rw.delim)
		}
		rw.bare(s)
		n++
	}
}

func (rw *resultWriter) row(vals ...[]string) {
	rw.buf.WriteString(rw.eol)
	n := 0
	for _, vs := range vals {
		for _, v := range vs {
			if n > 0 {
				rw.buf.WriteByte(rw.delim)
			}
			rw.quoted(v)
			n++
		}
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
	rw := newResultWriter(j)
	switch kind {
	case "successfulresults":
		rw.header([]string{"sf__Id", "sf__Created"}, j.header)
		for _, i := range s.orderLocked(len(j.success)) {
			res := j.success[i]
			created := "false"
			if res.created {
				created = "true"
			}
			rw.row([]string{res.id, created}, res.values)
		}
	case "failedresults":
		rw.header([]string{"sf__Id", "sf__Error"}, j.header)
		for _, i := range s.orderLocked(len(j.failures)) {
			res := j.failures[i]
			rw.row([]string{res.id, res.err}, res.values)
		}
	default:
		rw.header(nil, j.header)
		for _, i := range s.orderLocked(len(j.unprocessed)) {
			rw.row(j.unprocessed[i])
		}
	}
	s.mu.Unlock()
	body := rw.buf.Bytes()
	if rw.rows == 0 && s.opts.EmptyResultsZeroBytes {
		body = nil
	}
	s.writeBody(w, r, http.StatusOK, csvContentType, body)
}

// orderLocked returns the row order of a result file: natural, or a seeded
// shuffle with Options.ShuffleResults. s.mu must be held.
func (s *Server) orderLocked(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if s.opts.ShuffleResults {
		s.rng.Shuffle(n, func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
	}
	return idx
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
