package salesforcetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// soqlQuery is the supported SOQL subset:
//
//	SELECT f1, Rel.f2, Rel.Rel2.f3 FROM Object [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n]
//
// where cond combines comparisons (= != <> < > <= >= against strings,
// numbers, true/false, null, date and datetime literals), LIKE, IN and
// NOT IN with AND, OR, NOT and parentheses. A field path follows up to
// five child-to-parent relationships; a missing parent gives an empty
// cell. Malformed SOQL, unknown objects and fields are a 400 at create
// (MALFORMED_QUERY, INVALID_TYPE, INVALID_FIELD), and so are the forms a
// Bulk API 2.0 query does not take (contract §6): GROUP BY, OFFSET,
// TYPEOF, function calls such as COUNT() (API_ERROR, emulator text) and
// parent-to-child subqueries (API_ERROR, Salesforce's observed text).
type soqlQuery struct {
	text    string
	fields  []string // as written
	object  *object
	cols    []queryCol
	where   *cond // nil: every record
	orderBy []orderKey
	limit   int // -1: no LIMIT
}

type queryCol struct {
	field  *FieldDescribe // on the queried object (the first reference field for Rel.f)
	hops   []relHop       // for Rel.f and Rel.Rel2.f: each relationship followed, in order
	tfield *FieldDescribe // on the last parent, for Rel.f
}

// relHop is one relationship of a field path: the reference field on the
// current object and the object it leads to.
type relHop struct {
	ref *FieldDescribe
	to  *object
}

// maxRelHops is how many relationships a field path may follow (SOQL
// allows five levels of child-to-parent relationships).
const maxRelHops = 5

type soqlError struct{ code, msg string }

func (e *soqlError) Error() string { return e.msg }

// tokenizeSOQL splits a query into identifiers, commas, operators and
// quoted strings (kept with their quotes).
func tokenizeSOQL(q string) ([]string, error) {
	var toks []string
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ',':
			toks = append(toks, ",")
			i++
		case c == '=':
			toks = append(toks, "=")
			i++
		case c == '!' && i+1 < len(q) && q[i+1] == '=':
			toks = append(toks, "!=")
			i += 2
		case c == '<' && i+1 < len(q) && q[i+1] == '>':
			toks = append(toks, "!=")
			i += 2
		case (c == '<' || c == '>') && i+1 < len(q) && q[i+1] == '=':
			toks = append(toks, q[i:i+2])
			i += 2
		case c == '<' || c == '>' || c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '\'':
			var b strings.Builder
			b.WriteByte('\'')
			i++
			closed := false
			for i < len(q) {
				if q[i] == '\\' && i+1 < len(q) {
					b.WriteByte(q[i+1])
					i += 2
					continue
				}
				if q[i] == '\'' {
					closed = true
					i++
					break
				}
				b.WriteByte(q[i])
				i++
			}
			if !closed {
				return nil, &soqlError{"MALFORMED_QUERY", "unexpected end of query: unterminated string"}
			}
			toks = append(toks, b.String())
		default:
			j := i
			for j < len(q) && (unicode.IsLetter(rune(q[j])) || unicode.IsDigit(rune(q[j])) || strings.IndexByte("_.:-+", q[j]) >= 0) {
				j++
			}
			if j == i {
				return nil, &soqlError{"MALFORMED_QUERY", fmt.Sprintf("unexpected token: '%c'", c)}
			}
			toks = append(toks, q[i:j])
			i = j
		}
	}
	return toks, nil
}

func (s *Server) parseSOQL(q string) (*soqlQuery, error) {
	toks, err := tokenizeSOQL(q)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return &soqlError{"MALFORMED_QUERY", fmt.Sprintf(format, args...)}
	}
	if len(toks) < 4 || !strings.EqualFold(toks[0], "SELECT") {
		return nil, bad("unexpected token: '%s'", firstOr(toks, ""))
	}
	sq := &soqlQuery{text: q, limit: -1}
	i := 1
	for {
		if i >= len(toks) {
			return nil, bad("unexpected end of query")
		}
		if err := unsupportedSelect(toks, i); err != nil {
			return nil, err
		}
		sq.fields = append(sq.fields, toks[i])
		i++
		if i < len(toks) && toks[i] == "," {
			i++
			continue
		}
		break
	}
	if i >= len(toks) || !strings.EqualFold(toks[i], "FROM") || i+1 >= len(toks) {
		return nil, bad("unexpected token: '%s'", firstOr(toks[min(i, len(toks)):], "<EOF>"))
	}
	objName := toks[i+1]
	sq.object = s.objects[strings.ToLower(objName)]
	if sq.object == nil {
		return nil, &soqlError{"INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported.", objName)}
	}
	i += 2
	for _, f := range sq.fields {
		c, err := s.resolveQueryCol(sq.object, f)
		if err != nil {
			return nil, err
		}
		sq.cols = append(sq.cols, c)
	}
	p := &whereParser{s: s, obj: sq.object, toks: toks, i: i}
	if p.is("WHERE") {
		p.i++
		if sq.where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.is("ORDER") {
		p.i++
		if !p.is("BY") {
			return nil, p.unexpected()
		}
		p.i++
		if sq.orderBy, err = p.orderBy(); err != nil {
			return nil, err
		}
	}
	i = p.i
	if i < len(toks) && strings.EqualFold(toks[i], "LIMIT") {
		if i+1 >= len(toks) {
			return nil, bad("unexpected end of query")
		}
		n, err := strconv.Atoi(toks[i+1])
		if err != nil || n < 0 {
			return nil, bad("unexpected token: '%s'", toks[i+1])
		}
		sq.limit = n
		i += 2
	}
	if i < len(toks) {
		if kw := strings.ToUpper(toks[i]); kw == "GROUP" || kw == "OFFSET" {
			return nil, notSupported(kw)
		}
		return nil, bad("unexpected token: '%s'", toks[i])
	}
	return sq, nil
}

// unsupportedSelect refuses the SELECT-list forms a Bulk API 2.0 query
// does not take (contract §6): a parent-to-child subquery (Salesforce's
// text, observed), an aggregate or other function call, TYPEOF.
func unsupportedSelect(toks []string, i int) error {
	switch {
	case toks[i] == "(":
		return &soqlError{"API_ERROR", "Aggregate Relationships not supported in Bulk V2 Query with CSV content type."}
	case strings.EqualFold(toks[i], "TYPEOF"):
		return notSupported("TYPEOF")
	case i+1 < len(toks) && toks[i+1] == "(":
		return notSupported(strings.ToUpper(toks[i]) + "()")
	}
	return nil
}

// notSupported is the emulator's 400 for SOQL that Bulk API 2.0 queries
// do not support (the text is the emulator's; Salesforce's is unconfirmed).
func notSupported(what string) error {
	return &soqlError{"API_ERROR", what + " is not supported by Bulk API 2.0 query jobs (GROUP BY, OFFSET, TYPEOF, " +
		"aggregate and other functions, parent-to-child subqueries)"}
}

func (s *Server) resolveQueryCol(o *object, name string) (queryCol, error) {
	noCol := &soqlError{"INVALID_FIELD", fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", name, o.desc.Name)}
	path := strings.Split(name, ".")
	if len(path) == 1 {
		f := o.fields[strings.ToLower(name)]
		if f == nil {
			return queryCol{}, noCol
		}
		return queryCol{field: f}, nil
	}
	if len(path)-1 > maxRelHops {
		return queryCol{}, &soqlError{"MALFORMED_QUERY", fmt.Sprintf("%s: SOQL allows at most %d levels of relationships", name, maxRelHops)}
	}
	var c queryCol
	cur := o
	for _, rel := range path[:len(path)-1] {
		f := cur.rels[strings.ToLower(rel)]
		if f == nil || len(f.ReferenceTo) == 0 {
			if cur != o {
				return queryCol{}, &soqlError{"INVALID_FIELD", fmt.Sprintf("Didn't understand relationship '%s' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.", rel)}
			}
			return queryCol{}, noCol
		}
		target := s.objects[strings.ToLower(f.ReferenceTo[0])]
		if target == nil {
			return queryCol{}, noCol
		}
		if c.field == nil {
			c.field = f
		}
		c.hops = append(c.hops, relHop{ref: f, to: target})
		cur = target
	}
	if c.tfield = cur.fields[strings.ToLower(path[len(path)-1])]; c.tfield == nil {
		return queryCol{}, noCol
	}
	return c, nil
}

// valueLocked returns the value of c on rec ("" for null, as for a field
// of a parent that is not set). s.mu must be held.
func (s *Server) valueLocked(c queryCol, rec *record) (string, bool) {
	get := func(f *FieldDescribe, r *record) (string, bool) {
		if strings.EqualFold(f.Name, "Id") {
			return r.id(), true
		}
		if strings.EqualFold(f.Name, "IsDeleted") {
			return strconv.FormatBool(r.deleted), true
		}
		if strings.EqualFold(f.Name, "SystemModstamp") {
			return time.UnixMilli(r.mod).UTC().Format("2006-01-02T15:04:05.000Z"), true
		}
		return r.get(f)
	}
	if c.hops == nil {
		return get(c.field, rec)
	}
	for _, h := range c.hops {
		pid, ok := rec.get(h.ref)
		if !ok {
			return "", false
		}
		id15, _ := normalizeID(pid)
		if rec = s.storeLocked(h.to).find(id15); rec == nil {
			return "", false
		}
	}
	return get(c.tfield, rec)
}

func (s *Server) routeQuery(w http.ResponseWriter, r *http.Request, version string, segs []string) {
	if versionMajor(version) < 47 {
		s.writeNotFound(w, r)
		return
	}
	switch len(segs) {
	case 0:
		switch r.Method {
		case http.MethodPost:
			s.handleCreateQuery(w, r, version)
		case http.MethodGet, http.MethodHead:
			s.handleListJobs(w, r, version, true)
		default:
			s.writeMethodNotAllowed(w, r, "GET", "HEAD", "POST")
		}
		return
	case 1:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.handleGetJob(w, r, segs[0], true)
		case http.MethodPatch:
			s.handlePatchJob(w, r, segs[0], true)
		case http.MethodDelete:
			s.handleDeleteJob(w, r, segs[0], true)
		default:
			s.writeMethodNotAllowed(w, r, "GET", "HEAD", "PATCH", "DELETE")
		}
		return
	case 2:
		if segs[1] == "resultPages" && versionMajor(version) >= 58 {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.writeMethodNotAllowed(w, r, "GET", "HEAD")
				return
			}
			s.handleResultPages(w, r, version, segs[0])
			return
		}
		if segs[1] == "results" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.writeMethodNotAllowed(w, r, "GET", "HEAD")
				return
			}
			s.handleQueryResults(w, r, version, segs[0])
			return
		}
	}
	s.writeNotFound(w, r)
}

func (s *Server) handleCreateQuery(w http.ResponseWriter, r *http.Request, version string) {
	body, _, err := readBody(r, 1<<20)
	if err != nil {
		s.writeBodyErr(w, r, err)
		return
	}
	var req struct {
		Operation       *string `json:"operation"`
		Query           string  `json:"query"`
		ContentType     *string `json:"contentType"`
		ColumnDelimiter *string `json:"columnDelimiter"`
		LineEnding      *string `json:"lineEnding"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeErr(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", jsonErrorText(err))
		return
	}
	invalid := func(v, prop string) {
		s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", fmt.Sprintf("Invalid value: '%s' supplied for property: '%s'", v, prop))
	}
	op := str(req.Operation)
	if op != "query" && op != "queryAll" {
		invalid(op, "operation")
		return
	}
	if req.ContentType != nil && *req.ContentType != "CSV" {
		invalid(*req.ContentType, "contentType")
		return
	}
	le, delim := "LF", "COMMA"
	if req.LineEnding != nil {
		if le = *req.LineEnding; le != "LF" && le != "CRLF" {
			invalid(le, "lineEnding")
			return
		}
	}
	if req.ColumnDelimiter != nil {
		if delim = *req.ColumnDelimiter; delimiters[delim] == 0 {
			invalid(delim, "columnDelimiter")
			return
		}
	}
	sq, err := s.parseSOQL(req.Query)
	if err != nil {
		se := err.(*soqlError)
		s.writeErr(w, r, http.StatusBadRequest, se.code, se.msg)
		return
	}
	j := &job{query: true, object: sq.object, operation: op, lineEnding: le, delimiter: delim, soql: sq,
		state: StateUploadComplete}
	s.mu.Lock()
	s.registerJobLocked(j, version)
	resp := j.headJSON()
	resp = append(resp, kv{"lineEnding", le}, kv{"columnDelimiter", delim})
	s.startJobLocked(j)
	s.mu.Unlock()
	s.writeJSONValue(w, r, http.StatusOK, resp)
}

// runQuery evaluates a query job against the store.
func (s *Server) runQuery(j *job, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.state != StateInProgress {
		return
	}
	sq := j.soql
	st := s.storeLocked(sq.object)
	var recs []*record
	for rec := range st.order.all() {
		if rec.removed || rec.deleted && j.operation != "queryAll" {
			continue
		}
		if sq.where != nil && !s.matchLocked(sq.where, rec) {
			continue
		}
		if sq.orderBy == nil && sq.limit >= 0 && len(recs) >= sq.limit {
			break
		}
		recs = append(recs, rec)
	}
	if n := s.faults.FailJobAfterRows; n > 0 && int64(len(recs)) > n {
		// A failed query job has no errorMessage (contract §6).
		j.processed = n
		j.state = StateFailed
		s.finishLocked(j, start)
		return
	}
	if sq.orderBy != nil {
		s.sortLocked(recs, sq.orderBy)
		if sq.limit >= 0 && len(recs) > sq.limit {
			recs = recs[:sq.limit]
		}
	}
	rows := make([][]string, len(recs))
	for k, rec := range recs {
		row := make([]string, len(sq.cols))
		for i, c := range sq.cols {
			row[i], _ = s.valueLocked(c, rec)
		}
		rows[k] = row
	}
	j.queryHeader = sq.fields
	j.queryRows = rows
	j.processed = int64(len(rows))
	j.state = StateJobComplete
	s.finishLocked(j, start)
}

func (s *Server) handleQueryResults(w http.ResponseWriter, r *http.Request, version, id string) {
	q := r.URL.Query()
	s.mu.Lock()
	j := s.jobLocked(id)
	if j == nil || !j.query {
		s.mu.Unlock()
		s.writeNotFound(w, r)
		return
	}
	if j.state != StateJobComplete {
		st := j.state
		s.mu.Unlock()
		s.writeJobNotComplete(w, r, st)
		return
	}
	if j.apiVersion != version {
		v := j.apiVersion
		s.mu.Unlock()
		s.writeErr(w, r, http.StatusConflict, "API_ERROR", "Results must be requested with API version "+v)
		return
	}
	offset := 0
	if loc := q.Get("locator"); loc != "" {
		b, err := base64.RawStdEncoding.DecodeString(loc)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 || n > len(j.queryRows) {
			s.mu.Unlock()
			s.writeErr(w, r, http.StatusBadRequest, "INVALIDLOCATOR", "Invalid locator: "+loc)
			return
		}
		offset = n
	}
	max := s.opts.QueryPageSize
	if m := q.Get("maxRecords"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n <= 0 {
			s.mu.Unlock()
			s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", fmt.Sprintf("Invalid value: '%s' supplied for parameter: 'maxRecords'", m))
			return
		}
		max = n
	}
	end := min(offset+max, len(j.queryRows))
	size := resultSize(j.queryHeader)
	for _, row := range j.queryRows[offset:end] {
		size += resultSize(row)
	}
	rw := newResultWriter(j, size)
	for i, h := range j.queryHeader {
		if i > 0 {
			rw.buf = append(rw.buf, rw.delim)
		}
		rw.quoted(h)
	}
	for _, row := range j.queryRows[offset:end] {
		rw.row(row)
	}
	rw.buf = append(rw.buf, rw.eol...)
	locator := "null"
	if end < len(j.queryRows) {
		locator = base64.RawStdEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	s.mu.Unlock()
	w.Header().Set("Sforce-Locator", locator)
	w.Header().Set("Sforce-NumberOfRecords", strconv.Itoa(end-offset))
	s.writeBody(w, r, http.StatusOK, csvContentType, rw.buf)
	putBuf(rw.buf)
}

// handleResultPages serves GET /jobs/query/{id}/resultPages (API >= 58.0):
// up to 5 result URLs per page, each covering QueryPageSize rows.
func (s *Server) handleResultPages(w http.ResponseWriter, r *http.Request, version, id string) {
	s.mu.Lock()
	j := s.jobLocked(id)
	if j == nil || !j.query {
		s.mu.Unlock()
		s.writeNotFound(w, r)
		return
	}
	if j.state != StateJobComplete {
		st := j.state
		s.mu.Unlock()
		s.writeJobNotComplete(w, r, st)
		return
	}
	total := len(j.queryRows)
	s.mu.Unlock()
	size := s.opts.QueryPageSize
	start := 0
	if p := r.URL.Query().Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			s.writeErr(w, r, http.StatusBadRequest, "INVALIDLOCATOR", "Invalid page: "+p)
			return
		}
		start = n
	}
	base := "/services/data/v" + version + "/jobs/query/" + j.id
	var pages []any
	off := start * size
	for len(pages) < 5 && (off < total || off == 0 && len(pages) == 0) {
		u := base + "/results?maxRecords=" + strconv.Itoa(size)
		if off > 0 {
			u += "&locator=" + base64.RawStdEncoding.EncodeToString([]byte(strconv.Itoa(off)))
		}
		pages = append(pages, obj{{"resultUrl", u}})
		off += size
	}
	var next any
	done := off >= total
	if !done {
		next = base + "/resultPages?page=" + strconv.Itoa(off/size)
	}
	s.writeJSONValue(w, r, http.StatusOK, obj{{"resultPages", pages}, {"nextRecordsUrl", next}, {"done", done}})
}
