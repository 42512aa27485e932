package salesforcetest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The REST sObject Collections resource (shared/docs/salesforce-rest-
// collections.md, "the collections contract"): create (POST), update
// (PATCH), upsert by external id (PATCH …/{SObject}/{Field}) and delete
// (DELETE ?ids=) of up to 200 records per request, with positional
// per-record results. Every row goes through the same validation and
// store as a Bulk API row (applyRowLocked): a JSON record is turned into
// the header and cells a Bulk upload of it would have, so both paths give
// the same records and the same error codes for the same input.

// Collection limits (collections contract §1.6).
const (
	// MaxCollectionRecords is the records (or ids) per create, update,
	// upsert or delete request.
	MaxCollectionRecords = 200
	// MaxCollectionChunks is the type chunks per create or update request.
	MaxCollectionChunks = 10
	// DefaultMaxCollectionBytes is the default largest collection request
	// body (Options is not extended: see CollectionFaults.MaxBodyBytes).
	DefaultMaxCollectionBytes = 50_000_000
)

// CollectionFaults are fault switches specific to the collections
// resource, set with Server.SetCollectionFaults. The general Faults
// (FailRate5xx, DropConnectionRate, RequestLimit*, TokenTTL/TokenMaxUses,
// LockErrorRate) apply to collection requests as to every /services/data
// call. The counters count down, one per collection request.
type CollectionFaults struct {
	// Fail5xxNext answers the next N collection requests 500 before any
	// row is processed (a replay is safe).
	Fail5xxNext int
	// CommitThen5xxNext processes the next N requests (the rows are
	// saved), then answers 500 UNKNOWN_EXCEPTION: the client cannot know
	// that the rows were written.
	CommitThen5xxNext int
	// CommitThenDropNext processes the next N requests, then closes the
	// connection without an answer.
	CommitThenDropNext int
	// CommitThenHoldNext processes the next N requests, then holds the
	// answer until the client goes away (its process was killed, or it
	// gave up) or HoldTimeout passes, and closes the connection without
	// an answer: a crash between the commit and the client recording it.
	// HeldCollectionRequests counts the requests being held.
	CommitThenHoldNext int
	// HoldTimeout bounds a CommitThenHoldNext hold (0 = 30 s).
	HoldTimeout time.Duration
	// Latency is added to every collection request before it is
	// processed: a real org spends tens to hundreds of milliseconds on a
	// request of 200 records (triggers, validation rules, sharing), the
	// emulator a few. A request over 20 s would count as long-running
	// (collections contract §1.6); the emulator does not model that.
	Latency time.Duration
	// AllOrNoneStatus400 answers an allOrNone rollback with 400 instead of
	// 200 (the array is the same; collections contract §6 item 4 switch).
	AllOrNoneStatus400 bool
	// MaxBodyBytes is the largest accepted request body; larger gets 413
	// REQUEST_TOO_LARGE (0 = DefaultMaxCollectionBytes).
	MaxBodyBytes int64
}

// SetCollectionFaults replaces the collection fault switches.
func (s *Server) SetCollectionFaults(f CollectionFaults) {
	s.mu.Lock()
	s.collFaults = f
	s.mu.Unlock()
}

// collectionRequest is the body of create, update and upsert.
type collectionRequest struct {
	AllOrNone *bool             `json:"allOrNone"`
	Records   []json.RawMessage `json:"records"`
}

// collRow is one record of a request, as a Bulk row: its object, the
// header and cells it would upload, or a row error found while converting.
type collRow struct {
	obj    *object
	header []string
	vals   []string
	err    string // an sf__Error-shaped row error ("CODE:msg:fields --")
}

// routeCollections serves /composite/sobjects[/{SObject}[/{Field}]]; segs
// are the path segments after "sobjects".
func (s *Server) routeCollections(w http.ResponseWriter, r *http.Request, version string, segs []string) {
	major := versionMajor(version)
	switch {
	case major < 42 || len(segs) == 2 && major < 46:
		s.writeNotFound(w, r)
	case len(segs) == 0 && r.Method == http.MethodPost:
		s.handleCollectionWrite(w, r, "insert", nil, "")
	case len(segs) == 0 && r.Method == http.MethodPatch:
		s.handleCollectionWrite(w, r, "update", nil, "")
	case len(segs) == 0 && r.Method == http.MethodDelete:
		s.handleCollectionDelete(w, r)
	case len(segs) == 0:
		s.writeMethodNotAllowed(w, r, "POST", "PATCH", "DELETE")
	case len(segs) == 2 && r.Method == http.MethodPatch:
		o := s.objects[strings.ToLower(segs[0])]
		if o == nil {
			s.writeNotFound(w, r)
			return
		}
		f := o.fields[strings.ToLower(segs[1])]
		if f == nil || !(f.ExternalID || f.IDLookup) {
			s.writeErr(w, r, http.StatusNotFound, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: "+segs[1])
			return
		}
		s.handleCollectionWrite(w, r, "upsert", o, f.Name)
	case len(segs) == 2:
		s.writeMethodNotAllowed(w, r, "PATCH")
	case len(segs) == 1 && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.handleCollectionRetrieve(w, r, version, segs[0])
	case len(segs) == 1:
		s.writeMethodNotAllowed(w, r, "GET", "POST")
	default:
		s.writeNotFound(w, r)
	}
}

// takeFault counts down *n and reports whether it was positive. s.mu must
// be held.
func takeFault(n *int) bool {
	if *n > 0 {
		*n--
		return true
	}
	return false
}

// takeCommitFaultsLocked draws the commit-then-fail switches of one
// request: answer 500, drop the connection, or hold the answer (for how
// long). s.mu must be held.
func (s *Server) takeCommitFaultsLocked() (commit5xx, commitDrop bool, hold time.Duration) {
	cf := &s.collFaults
	switch {
	case takeFault(&cf.CommitThen5xxNext):
		return true, false, 0
	case takeFault(&cf.CommitThenDropNext):
		return false, true, 0
	case takeFault(&cf.CommitThenHoldNext):
		return false, false, cmp.Or(cf.HoldTimeout, 30*time.Second)
	}
	return false, false, 0
}

// holdAnswer waits, after a request committed, until its client goes away
// or d passes (CommitThenHoldNext).
func (s *Server) holdAnswer(r *http.Request, d time.Duration) {
	s.held.Add(1)
	defer s.held.Add(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-s.ctx.Done():
	case <-t.C:
	}
}

// collectionLatency waits CollectionFaults.Latency (or until the client
// goes away or the server closes).
func (s *Server) collectionLatency(r *http.Request) {
	s.mu.Lock()
	d := s.collFaults.Latency
	s.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-s.ctx.Done():
	case <-t.C:
	}
}

// HeldCollectionRequests returns how many collection requests are being
// held after their commit (CollectionFaults.CommitThenHoldNext).
func (s *Server) HeldCollectionRequests() int { return int(s.held.Load()) }

// handleCollectionWrite serves create (insert), update and upsert. For
// upsert, obj and extID are the path's object and external id field.
func (s *Server) handleCollectionWrite(w http.ResponseWriter, r *http.Request, op string, upsertObj *object, extID string) {
	s.mu.Lock()
	limit := s.collFaults.MaxBodyBytes
	s.mu.Unlock()
	if limit <= 0 {
		limit = DefaultMaxCollectionBytes
	}
	body, tooLarge, err := readBody(r, limit)
	if err != nil {
		s.writeBodyErr(w, r, err)
		return
	}
	if tooLarge {
		s.writeErr(w, r, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE",
			fmt.Sprintf("The request body is larger than %d bytes", limit))
		return
	}
	var req collectionRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		s.writeErr(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize request body: "+err.Error())
		return
	}
	switch {
	case req.Records == nil:
		s.writeErr(w, r, http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required field 'records' is missing")
		return
	case len(req.Records) == 0:
		s.writeErr(w, r, http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "At least 1 record is required")
		return
	case len(req.Records) > MaxCollectionRecords:
		s.writeErr(w, r, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
		return
	}
	rows := make([]collRow, len(req.Records))
	chunks := 0
	for i, raw := range req.Records {
		rec, err := members(raw)
		if err != nil {
			s.writeErr(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", fmt.Sprintf("Cannot deserialize record %d: not a JSON object", i))
			return
		}
		typ := recordType(rec)
		if typ == "" {
			s.writeErr(w, r, http.StatusBadRequest, "INVALID_TYPE", "Must specify a type for each record")
			return
		}
		o := s.objects[strings.ToLower(typ)]
		if o == nil {
			s.writeErr(w, r, http.StatusBadRequest, "INVALID_TYPE", "sObject type '"+typ+"' is not supported.")
			return
		}
		if upsertObj != nil && o != upsertObj {
			s.writeErr(w, r, http.StatusBadRequest, "INVALID_TYPE",
				fmt.Sprintf("sObject type '%s' does not match the upsert's type '%s'", typ, upsertObj.desc.Name))
			return
		}
		if i == 0 || rows[i-1].obj != o {
			chunks++
		}
		rows[i] = s.collectionRow(o, rec)
	}
	if chunks > MaxCollectionChunks {
		s.writeErr(w, r, http.StatusBadRequest, "INVALID_BATCH_SIZE",
			"Cannot have more than 10 chunks in a single operation. Please rearrange the data to reduce chunking.")
		return
	}
	allOrNone := req.AllOrNone != nil && *req.AllOrNone
	updateOnly := op == "upsert" && strings.EqualFold(r.URL.Query().Get("updateOnly"), "true")

	s.collectionLatency(r)
	s.mu.Lock()
	cf := &s.collFaults
	if takeFault(&cf.Fail5xxNext) {
		s.mu.Unlock()
		s.writeErr(w, r, http.StatusInternalServerError, "UNKNOWN_EXCEPTION",
			"An unexpected error occurred (emulator fault injection, before processing)")
		return
	}
	commit5xx, commitDrop, hold := s.takeCommitFaultsLocked()
	status400 := cf.AllOrNoneStatus400
	var snap *storeSnapshot
	if allOrNone {
		snap = s.snapshotLocked(rows)
	}
	results := make([]rowResult, len(rows))
	dupKeys := duplicateKeys(rows, op, extID)
	for i := range rows {
		results[i] = s.applyCollectionRowLocked(&rows[i], i, op, extID, updateOnly, dupKeys)
	}
	failed := false
	for _, res := range results {
		failed = failed || res.err != ""
	}
	if allOrNone && failed {
		snap.restoreLocked()
	}
	s.notifyLocked()
	s.mu.Unlock()

	if hold > 0 {
		s.holdAnswer(r, hold)
		commitDrop = true
	}
	if commitDrop && dropConnection(w) {
		return
	}
	if commit5xx {
		s.writeErr(w, r, http.StatusInternalServerError, "UNKNOWN_EXCEPTION",
			"An unexpected error occurred (emulator fault injection, after processing)")
		return
	}
	out := make([]any, len(results))
	for i, res := range results {
		out[i] = collectionResult(res, op, allOrNone && failed)
	}
	status := http.StatusOK
	if allOrNone && failed && status400 {
		status = http.StatusBadRequest
	}
	s.writeJSONValue(w, r, status, out)
}

// member is one key and value of a JSON object.
type member struct {
	k string
	v json.RawMessage
}

// members decodes a JSON object's members in document order (a row's
// columns follow the record's keys, as a Bulk header would).
func members(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{k, v})
	}
	return out, nil
}

// recordType returns attributes.type of a JSON record, or "".
func recordType(rec []member) string {
	var attrs struct {
		Type string `json:"type"`
	}
	for _, m := range rec {
		if strings.EqualFold(m.k, "attributes") {
			_ = json.Unmarshal(m.v, &attrs)
		}
	}
	return attrs.Type
}

// collectionRow turns a JSON record into the header and cells of the Bulk
// row that means the same (collections contract §2.5): null → #N/A,
// numbers verbatim, booleans true/false, a nested object under a
// relationship name → a Rel.Field (or Type:Rel.Field) column. A key that
// cannot be a column becomes the row's error, as Salesforce answers it.
func (s *Server) collectionRow(o *object, rec []member) collRow {
	row := collRow{obj: o}
	for _, m := range rec {
		k, raw := m.k, m.v
		if strings.EqualFold(k, "attributes") {
			continue
		}
		bad := func(msg string) collRow {
			row.err = rowErr("INVALID_FIELD", msg)
			return row
		}
		if strings.ContainsAny(k, ".:") {
			return bad(fmt.Sprintf("No such column '%s' on sobject of type %s", k, o.desc.Name))
		}
		raw = bytes.TrimSpace(raw)
		switch {
		case len(raw) > 0 && raw[0] == '{':
			rel := o.rels[strings.ToLower(k)]
			if rel == nil {
				return bad(fmt.Sprintf("No such column '%s' on sobject of type %s", k, o.desc.Name))
			}
			ref, err := members(raw)
			if err != nil {
				return bad("Cannot deserialize the reference " + k)
			}
			typ := recordType(ref)
			var keyName, keyVal string
			n := 0
			for _, rm := range ref {
				rk, rv := rm.k, rm.v
				if strings.EqualFold(rk, "attributes") {
					continue
				}
				n++
				keyName = rk
				v, ok := jsonCell(rv)
				if !ok {
					return bad("Cannot deserialize the reference " + k)
				}
				keyVal = v
			}
			if n != 1 {
				return bad(fmt.Sprintf("The reference %s must name exactly one external id field", k))
			}
			h := rel.RelationshipName + "." + keyName
			if isPolymorphic(rel) {
				if typ == "" {
					return bad(fmt.Sprintf("The reference %s on the polymorphic field %s needs attributes.type", k, rel.Name))
				}
				h = typ + ":" + h
			}
			row.header = append(row.header, h)
			row.vals = append(row.vals, keyVal)
		default:
			v, ok := jsonCell(raw)
			if !ok {
				return bad(fmt.Sprintf("Cannot deserialize the value of %s", k))
			}
			row.header = append(row.header, k)
			row.vals = append(row.vals, v)
		}
	}
	return row
}

// jsonCell returns the Bulk CSV cell for a JSON scalar: null and "" →
// #N/A (both clear the field), strings as they are, numbers verbatim,
// booleans as true/false.
func jsonCell(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case 'n':
		return "#N/A", string(raw) == "null"
	case 't', 'f':
		return string(raw), string(raw) == "true" || string(raw) == "false"
	case '"':
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", false
		}
		if v == "" {
			return "#N/A", true
		}
		return v, true
	case '{', '[':
		return "", false
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false
	}
	return n.String(), true
}

// duplicateKeys returns the keys (external id values for upsert, ids for
// update) that more than one row of the request carries: every row with
// such a key fails (collections contract §2.4, emulator default).
func duplicateKeys(rows []collRow, op, extID string) map[string]bool {
	if op != "upsert" && op != "update" {
		return nil
	}
	want := extID
	if op == "update" {
		want = "Id"
	}
	seen := make(map[string]int)
	for _, row := range rows {
		for i, h := range row.header {
			if strings.EqualFold(h, want) && row.vals[i] != "#N/A" {
				k := row.vals[i]
				if op == "update" {
					k = To18(k)
				}
				seen[k]++
			}
		}
	}
	dup := make(map[string]bool)
	for k, n := range seen {
		if n > 1 {
			dup[k] = true
		}
	}
	return dup
}

// applyCollectionRowLocked saves one row through applyRowLocked (the
// Bulk path's validation and store) and returns its outcome. s.mu must be
// held.
func (s *Server) applyCollectionRowLocked(row *collRow, i int, op, extID string, updateOnly bool, dup map[string]bool) rowResult {
	if row.err != "" {
		return rowResult{err: row.err, row: int32(i)}
	}
	for c, h := range row.header {
		switch {
		case op == "upsert" && strings.EqualFold(h, extID) && dup[row.vals[c]]:
			return rowResult{err: rowErr("DUPLICATE_VALUE", "Duplicate external id specified: "+row.vals[c], extID), row: int32(i)}
		case op == "update" && strings.EqualFold(h, "Id") && dup[To18(row.vals[c])]:
			return rowResult{err: rowErr("DUPLICATE_VALUE", "Duplicate id in list: "+row.vals[c], "Id"), row: int32(i)}
		}
	}
	j := &job{object: row.obj, operation: op, extID: extID}
	p, msg := s.planHeader(j, row.header)
	if msg != "" {
		// A header Bulk refuses for the whole job is one row's field error
		// here (collections contract §2.6: unknown field → INVALID_FIELD).
		text := msg
		if i := strings.LastIndex(msg, " : "); i >= 0 {
			text = msg[i+3:]
		}
		if strings.HasPrefix(msg, "InvalidBatch : Field name not found : ") {
			text = fmt.Sprintf("No such column '%s' on sobject of type %s", text, row.obj.desc.Name)
		}
		return rowResult{err: rowErr("INVALID_FIELD", text), row: int32(i)}
	}
	if updateOnly {
		// updateOnly: an unmatched key is not inserted.
		if p.extCol < 0 {
			return rowResult{err: fmt.Sprintf("MISSING_ARGUMENT:%s not specified:--", extID), row: int32(i)}
		}
		var buf [1]*record
		if v := row.vals[p.extCol]; len(s.storeLocked(row.obj).lookup(buf[:0], p.extField, v)) == 0 {
			return rowResult{err: rowErr("NOT_FOUND", fmt.Sprintf("No record found for %s: %s", extID, v)), row: int32(i)}
		}
	}
	res := s.applyRowLocked(j, p, rowVals{row.vals, i}, s.faults.LockErrorRate)
	if res.err != "" && (op == "insert" || op == "update") {
		res.rec = nil // no id on a failed create or update row (contract §2.1)
	}
	return res
}

// collectionResult is one element of a write's answer (collections
// contract §2.1): id on success (and, for delete, on every row whose id
// was well formed), success, errors, and created for upsert.
func collectionResult(res rowResult, op string, rolledBack bool) obj {
	errs := []any{}
	ok := res.err == ""
	if !ok {
		e := parseRowErr(res.err)
		errs = append(errs, obj{{"statusCode", e.code}, {"message", e.msg}, {"fields", e.fields}})
	} else if rolledBack {
		ok = false
		errs = append(errs, obj{{"statusCode", "ALL_OR_NONE_OPERATION_ROLLED_BACK"},
			{"message", "Record rolled back because not all records were valid and the request was using AllOrNone header"},
			{"fields", []string{}}})
	}
	out := obj{}
	if id := res.id(); id != "" && (ok || op == "delete") {
		out = append(out, kv{"id", id})
	}
	out = append(out, kv{"success", ok}, kv{"errors", errs})
	if op == "upsert" {
		out = append(out, kv{"created", res.created || res.rec == nil})
	}
	return out
}

// rowErrParts is an sf__Error split into its parts.
type rowErrParts struct {
	code, msg string
	fields    []string
}

// parseRowErr splits "CODE:message:f1,f2 --" (rowErr's form).
func parseRowErr(e string) rowErrParts {
	code, rest, _ := strings.Cut(e, ":")
	rest = strings.TrimSuffix(strings.TrimSuffix(rest, "--"), " ")
	out := rowErrParts{code: code, fields: []string{}}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		out.msg = rest
		return out
	}
	out.msg = rest[:i]
	if f := strings.TrimSpace(rest[i+1:]); f != "" {
		out.fields = strings.Split(f, ",")
	}
	return out
}

// handleCollectionDelete serves DELETE ?ids=a,b&allOrNone=bool: soft
// deletes in the order of ids, mixed types allowed.
func (s *Server) handleCollectionDelete(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ids []string
	for _, v := range q["ids"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	switch {
	case len(ids) == 0:
		s.writeErr(w, r, http.StatusBadRequest, "MISSING_ARGUMENT", "ids parameter is required")
		return
	case len(ids) > MaxCollectionRecords:
		s.writeErr(w, r, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
		return
	}
	allOrNone := strings.EqualFold(q.Get("allOrNone"), "true")
	s.collectionLatency(r)
	s.mu.Lock()
	cf := &s.collFaults
	if takeFault(&cf.Fail5xxNext) {
		s.mu.Unlock()
		s.writeErr(w, r, http.StatusInternalServerError, "UNKNOWN_EXCEPTION",
			"An unexpected error occurred (emulator fault injection, before processing)")
		return
	}
	commit5xx, commitDrop, hold := s.takeCommitFaultsLocked()
	status400 := cf.AllOrNoneStatus400
	rows := make([]collRow, len(ids))
	for i, id := range ids {
		rows[i] = collRow{header: []string{"Id"}, vals: []string{id}}
		if id15, ok := normalizeID(id); ok {
			rows[i].obj = s.objectByPrefixLocked(id15[:3])
		}
		if rows[i].obj == nil {
			rows[i].err = rowErr("MALFORMED_ID", "malformed id "+id)
		}
	}
	var snap *storeSnapshot
	if allOrNone {
		snap = s.snapshotLocked(rows)
	}
	results := make([]rowResult, len(rows))
	seen := make(map[string]int)
	for _, row := range rows {
		if row.err == "" {
			seen[To18(row.vals[0])]++
		}
	}
	failed := false
	for i := range rows {
		if seen[To18(rows[i].vals[0])] > 1 {
			results[i] = rowResult{err: rowErr("DUPLICATE_VALUE", "Duplicate id in list: "+rows[i].vals[0], "Id"), row: int32(i)}
			if id15, ok := normalizeID(rows[i].vals[0]); ok && rows[i].obj != nil {
				results[i].rec = s.storeLocked(rows[i].obj).find(id15)
			}
		} else {
			results[i] = s.applyCollectionRowLocked(&rows[i], i, "delete", "", false, nil)
		}
		failed = failed || results[i].err != ""
	}
	if allOrNone && failed {
		snap.restoreLocked()
	}
	s.notifyLocked()
	s.mu.Unlock()
	if hold > 0 {
		s.holdAnswer(r, hold)
		commitDrop = true
	}
	if commitDrop && dropConnection(w) {
		return
	}
	if commit5xx {
		s.writeErr(w, r, http.StatusInternalServerError, "UNKNOWN_EXCEPTION",
			"An unexpected error occurred (emulator fault injection, after processing)")
		return
	}
	out := make([]any, len(results))
	for i, res := range results {
		out[i] = collectionResult(res, "delete", allOrNone && failed)
	}
	status := http.StatusOK
	if allOrNone && failed && status400 {
		status = http.StatusBadRequest
	}
	s.writeJSONValue(w, r, status, out)
}

// objectByPrefixLocked returns the object whose ids start with prefix.
func (s *Server) objectByPrefixLocked(prefix string) *object {
	for _, o := range s.objList {
		if o.prefix == prefix {
			return o
		}
	}
	return nil
}

// storeSnapshot is the state of the stores a request touches, taken
// before an allOrNone request so that a failure can roll it back.
type storeSnapshot struct {
	stores map[*objStore]map[*record]recState
}

type recState struct {
	vals    *recVals
	deleted bool
}

// snapshotLocked records every record of the objects rows touch (their
// values are copy on write, so the pointers are the snapshot).
func (s *Server) snapshotLocked(rows []collRow) *storeSnapshot {
	snap := &storeSnapshot{stores: make(map[*objStore]map[*record]recState)}
	for _, row := range rows {
		if row.obj == nil {
			continue
		}
		st := s.storeLocked(row.obj)
		if _, ok := snap.stores[st]; ok {
			continue
		}
		m := make(map[*record]recState)
		for rec := range st.order.all() {
			if !rec.removed {
				m[rec] = recState{rec.vals, rec.deleted}
			}
		}
		snap.stores[st] = m
	}
	return snap
}

// restoreLocked rolls the stores back: records added since are removed,
// changed ones get their values, deletion state and index entries back.
func (snap *storeSnapshot) restoreLocked() {
	for st, m := range snap.stores {
		var added []*record
		for rec := range st.order.all() {
			if rec.removed {
				continue
			}
			old, ok := m[rec]
			switch {
			case !ok:
				added = append(added, rec)
			case old.vals != rec.vals || old.deleted != rec.deleted:
				if !rec.deleted {
					for _, f := range st.indexed {
						st.unindex(f, rec)
					}
				}
				rec.vals, rec.deleted = old.vals, old.deleted
				if !rec.deleted {
					for _, f := range st.indexed {
						if v, ok := rec.get(f); ok && v != "" {
							if x := st.fieldIndex(f); x != nil {
								x.add(indexKey(f, v), rec)
							}
						}
					}
				}
			}
		}
		for _, rec := range added {
			st.hardDelete(rec)
		}
	}
}

// Retrieve limits (collections contract §1.5, §1.6).
const (
	maxRetrieveIDs = 2000  // POST body
	maxURIBytes    = 16384 // GET: a longer URI gets 414
)

// handleCollectionRetrieve serves GET /composite/sobjects/{SObject}?ids=&fields=
// and POST /composite/sobjects/{SObject} {"ids":[…],"fields":[…]}: one
// element per id, in order, null for unknown, malformed or deleted ids;
// canonical field names; a bad field fails the whole request.
func (s *Server) handleCollectionRetrieve(w http.ResponseWriter, r *http.Request, version, object string) {
	o := s.objects[strings.ToLower(object)]
	if o == nil {
		s.writeNotFound(w, r)
		return
	}
	var ids, fields []string
	if r.Method == http.MethodGet {
		if len(r.URL.RequestURI()) > maxURIBytes {
			s.writeBody(w, r, http.StatusRequestURITooLong, "text/html", []byte("<h1>414 Request-URI Too Long</h1>"))
			return
		}
		q := r.URL.Query()
		for _, v := range q["ids"] {
			ids = append(ids, strings.Split(v, ",")...)
		}
		for _, v := range q["fields"] {
			fields = append(fields, strings.Split(v, ",")...)
		}
	} else {
		body, _, err := readBody(r, DefaultMaxCollectionBytes)
		if err != nil {
			s.writeBodyErr(w, r, err)
			return
		}
		var req struct {
			IDs    []string `json:"ids"`
			Fields []string `json:"fields"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			s.writeErr(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", "Cannot deserialize request body: "+err.Error())
			return
		}
		ids, fields = req.IDs, req.Fields
		if len(ids) > maxRetrieveIDs {
			s.writeErr(w, r, http.StatusBadRequest, "EXCEEDED_ID_LIMIT", fmt.Sprintf("record limit reached. cannot submit more than %d records into this call", maxRetrieveIDs))
			return
		}
	}
	if len(ids) == 0 || len(fields) == 0 {
		s.writeErr(w, r, http.StatusBadRequest, "MISSING_ARGUMENT", "both ids and fields are required")
		return
	}
	fds := make([]*FieldDescribe, len(fields))
	for i, name := range fields {
		if fds[i] = o.fields[strings.ToLower(strings.TrimSpace(name))]; fds[i] == nil {
			s.writeErr(w, r, http.StatusBadRequest, "INVALID_FIELD",
				fmt.Sprintf("No such column '%s' on entity '%s'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.", name, o.desc.Name))
			return
		}
	}
	s.mu.Lock()
	st := s.storeLocked(o)
	out := make([]any, len(ids))
	for i, id := range ids {
		id15, ok := normalizeID(strings.TrimSpace(id))
		if !ok || id15[:3] != o.prefix {
			continue
		}
		rec := st.find(id15)
		if rec == nil || rec.deleted || rec.removed {
			continue
		}
		one := obj{{"attributes", obj{{"type", o.desc.Name}, {"url", "/services/data/v" + version + "/sobjects/" + o.desc.Name + "/" + rec.id()}}}}
		for _, f := range fds {
			if f.Name == "Id" {
				one = append(one, kv{"Id", rec.id()})
				continue
			}
			if v, set := rec.get(f); set {
				one = append(one, kv{f.Name, typedJSON(f, v)})
			} else {
				one = append(one, kv{f.Name, nil})
			}
		}
		out[i] = one
	}
	s.mu.Unlock()
	s.writeJSONValue(w, r, http.StatusOK, out)
}
