package salesforcetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Job states (contract §2.10).
const (
	StateOpen           = "Open"
	StateUploadComplete = "UploadComplete"
	StateInProgress     = "InProgress"
	StateJobComplete    = "JobComplete"
	StateFailed         = "Failed"
	StateAborted        = "Aborted"
)

func isStateName(s string) bool {
	switch s {
	case StateOpen, StateUploadComplete, StateInProgress, StateJobComplete, StateFailed, StateAborted:
		return true
	}
	return false
}

func isTerminal(s string) bool {
	return s == StateJobComplete || s == StateFailed || s == StateAborted
}

var delimiters = map[string]rune{
	"COMMA": ',', "BACKQUOTE": '`', "CARET": '^', "PIPE": '|', "SEMICOLON": ';', "TAB": '\t',
}

// job is an ingest or query job. Fields are guarded by Server.mu, except
// data, which is immutable once the job left Open.
type job struct {
	id, id15     string
	query        bool
	object       *object
	operation    string
	extID        string
	lineEnding   string
	delimiter    string
	assignRuleID string
	apiVersion   string
	createdBy    string
	created      time.Time
	modstamp     time.Time
	state        string
	errorMessage string
	processed    int64
	failed       int64
	retries      int
	totalMS      int64
	activeMS     int64

	data          []byte
	uploads       int
	secondPending bool // a second PUT was accepted (SecondUploadFailsAtClose)
	tooLarge      bool

	header      []string // uploaded header, as uploaded
	success     okList
	failures    []rowResult
	unprocessed [][]string
	rows        *table // parsed rows while processing
	next        int    // index of the next row to process
	batchEnd    int    // end of the internal batch being processed
	settled     bool   // unprocessed rows were recorded by an abort

	// query jobs
	soql        *soqlQuery
	queryHeader []string
	queryRows   [][]string
}

// okResult is a successful row of job.rows (kept apart from rowResult,
// whose error string would add 16 bytes to every one of a million rows).
// Its record is of the job's object, so the counter of the record's id
// is enough to write the id: no pointer, and no id string per row.
type okResult struct {
	n       uint64 // the counter of the record's id (see idGen), or with named its index in the store's named
	row     int32
	created bool
	named   bool // the record's id was given (record.named)
}

// okList holds a job's successful rows in order, as runs: a row that
// follows the last one (the next row, with the next id counter and the
// same created) extends its run. An insert job's successes are a few runs
// (one without failures), where a list of okResults held 16 bytes for each
// of a million rows.
type okList struct {
	runs []okRun
	n    int // rows
}

// okRun is a run of successful rows: len rows from row, whose records'
// id counters count up from n.
type okRun struct {
	n       uint64
	row     int32
	len     int32
	first   int32 // the index in the okList of the run's first row
	created bool
	named   bool // a run of one row whose n is an index in the store's named
}

// add appends a successful row.
func (l *okList) add(res okResult) {
	if k := len(l.runs) - 1; k >= 0 {
		if r := &l.runs[k]; !r.named && !res.named && r.created == res.created && r.row+r.len == res.row && r.n+uint64(r.len) == res.n {
			r.len++
			l.n++
			return
		}
	}
	l.runs = append(l.runs, okRun{n: res.n, row: res.row, len: 1, first: int32(l.n), created: res.created, named: res.named})
	l.n++
}

// at returns the successful row number i (i < l.n).
func (l *okList) at(i int) okResult {
	k := sort.Search(len(l.runs), func(k int) bool { return int(l.runs[k].first) > i }) - 1
	r := &l.runs[k]
	d := int32(i) - r.first
	return okResult{r.n + uint64(d), r.row + d, r.created, r.named}
}

// rowResult is the outcome of one row; its values are row of job.rows.
type rowResult struct {
	rec     *record // the record the row found or made (its id is the result's), or nil
	err     string
	row     int32
	created bool
}

// id returns the result's sf__Id ("" without a record).
func (r *rowResult) id() string {
	if r.rec == nil {
		return ""
	}
	return r.rec.id()
}

// JobInfo is a snapshot of an emulated job, for tests.
type JobInfo struct {
	ID                     string // 18 characters
	Query                  bool   // a query job (else ingest)
	Object                 string
	Operation              string
	ExternalIDFieldName    string
	State                  string
	ErrorMessage           string
	APIVersion             string // "62.0"
	LineEnding             string
	ColumnDelimiter        string
	CreatedDate            time.Time
	SystemModstamp         time.Time
	NumberRecordsProcessed int64
	NumberRecordsFailed    int64
	Uploads                int // PUT /batches calls accepted
	UploadedBytes          int
	SOQL                   string
}

func (j *job) info() JobInfo {
	ji := JobInfo{
		ID: j.id, Query: j.query, Object: j.object.desc.Name, Operation: j.operation,
		ExternalIDFieldName: j.extID, State: j.state, ErrorMessage: j.errorMessage,
		APIVersion: j.apiVersion, LineEnding: j.lineEnding, ColumnDelimiter: j.delimiter,
		CreatedDate: j.created, SystemModstamp: j.modstamp,
		NumberRecordsProcessed: j.processed, NumberRecordsFailed: j.failed,
		Uploads: j.uploads, UploadedBytes: len(j.data),
	}
	if j.soql != nil {
		ji.SOQL = j.soql.text
	}
	return ji
}

// Jobs returns snapshots of all jobs (ingest and query) in creation order.
// Deleted jobs are not included.
func (s *Server) Jobs() []JobInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobInfo, 0, len(s.jobOrder))
	for _, j := range s.jobOrder {
		out = append(out, j.info())
	}
	return out
}

// Job returns a snapshot of the job with the given 15- or 18-character id.
func (s *Server) Job(id string) (JobInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobLocked(id)
	if j == nil {
		return JobInfo{}, false
	}
	return j.info(), true
}

// UploadedCSV returns a copy of the bytes uploaded to a job (nil if none).
func (s *Server) UploadedCSV(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobLocked(id)
	if j == nil || j.data == nil {
		return nil
	}
	return bytes.Clone(j.data)
}

// AwaitJobState blocks until the job reaches state, the job reaches a
// different terminal state (an error), the job disappears (an error), or
// ctx is done. It waits on a notification channel, never by polling.
func (s *Server) AwaitJobState(ctx context.Context, id, state string) error {
	for {
		s.mu.Lock()
		j := s.jobLocked(id)
		if j == nil {
			s.mu.Unlock()
			return fmt.Errorf("await job %s state %s: job not found", id, state)
		}
		cur, msg := j.state, j.errorMessage
		ch := s.changed
		s.mu.Unlock()
		if cur == state {
			return nil
		}
		if isTerminal(cur) {
			if msg != "" {
				return fmt.Errorf("await job %s state %s: job is %s: %s", id, state, cur, msg)
			}
			return fmt.Errorf("await job %s state %s: job is %s", id, state, cur)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("await job %s state %s (last %s): %w", id, state, cur, ctx.Err())
		case <-ch:
		}
	}
}

// jobLocked finds a live job by 18-char id or 15-char prefix. s.mu must be
// held.
func (s *Server) jobLocked(id string) *job {
	if len(id) == 18 {
		j := s.jobs[id[:15]]
		if j != nil && j.id == id {
			return j
		}
		return nil
	}
	if len(id) == 15 {
		return s.jobs[id]
	}
	return nil
}

// JSON shapes (contract §2.2, §2.5, §2.6, §2.7).

func (j *job) headJSON() obj {
	o := obj{
		{"id", j.id}, {"operation", j.operation}, {"object", j.object.desc.Name},
		{"createdById", j.createdBy}, {"createdDate", fmtTime(j.created)},
		{"systemModstamp", fmtTime(j.modstamp)}, {"state", j.state},
	}
	if j.operation == "upsert" {
		o = append(o, kv{"externalIdFieldName", j.extID})
	}
	o = append(o, kv{"concurrencyMode", "Parallel"}, kv{"contentType", "CSV"}, kv{"apiVersion", rawNum(j.apiVersion)})
	return o
}

func (j *job) contentURL() string {
	return "services/data/v" + j.apiVersion + "/jobs/ingest/" + j.id + "/batches"
}

func (j *job) createJSON() obj {
	o := j.headJSON()
	if j.state == StateOpen {
		o = append(o, kv{"contentUrl", j.contentURL()})
	}
	o = append(o, kv{"lineEnding", j.lineEnding}, kv{"columnDelimiter", j.delimiter})
	if j.assignRuleID != "" {
		o = append(o, kv{"assignmentRuleId", j.assignRuleID})
	}
	return o
}

func (j *job) fullJSON(countersWhileOpen bool) obj {
	o := j.headJSON()
	if j.query {
		o = append(o, kv{"jobType", "V2Query"}, kv{"lineEnding", j.lineEnding}, kv{"columnDelimiter", j.delimiter},
			kv{"numberRecordsProcessed", j.processed}, kv{"retries", j.retries},
			kv{"totalProcessingTime", j.totalMS}, kv{"isPkChunkingSupported", true})
		return o
	}
	o = append(o, kv{"jobType", "V2Ingest"})
	if j.state == StateOpen {
		o = append(o, kv{"contentUrl", j.contentURL()})
	}
	o = append(o, kv{"lineEnding", j.lineEnding}, kv{"columnDelimiter", j.delimiter})
	if j.assignRuleID != "" {
		o = append(o, kv{"assignmentRuleId", j.assignRuleID})
	}
	if j.state != StateOpen || countersWhileOpen {
		o = append(o, kv{"numberRecordsProcessed", j.processed}, kv{"numberRecordsFailed", j.failed},
			kv{"retries", j.retries}, kv{"totalProcessingTime", j.totalMS},
			kv{"apiActiveProcessingTime", j.activeMS}, kv{"apexProcessingTime", int64(0)})
	}
	if j.errorMessage != "" {
		o = append(o, kv{"errorMessage", j.errorMessage})
	}
	return o
}

func (j *job) listJSON() obj {
	o := j.headJSON()
	jt := "V2Ingest"
	if j.query {
		jt = "V2Query"
	}
	return append(o, kv{"jobType", jt}, kv{"lineEnding", j.lineEnding}, kv{"columnDelimiter", j.delimiter})
}

// fmtTime formats a job timestamp: 2025-03-04T10:15:02.000+0000.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

func (s *Server) routeIngest(w http.ResponseWriter, r *http.Request, version string, segs []string) {
	if versionMajor(version) < 41 {
		s.writeNotFound(w, r)
		return
	}
	switch len(segs) {
	case 0:
		switch r.Method {
		case http.MethodPost:
			s.handleCreateIngest(w, r, version)
		case http.MethodGet, http.MethodHead:
			s.handleListJobs(w, r, version, false)
		default:
			s.writeMethodNotAllowed(w, r, "GET", "HEAD", "POST")
		}
		return
	case 1:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.handleGetJob(w, r, segs[0], false)
		case http.MethodPatch:
			s.handlePatchJob(w, r, segs[0], false)
		case http.MethodDelete:
			s.handleDeleteJob(w, r, segs[0], false)
		default:
			s.writeMethodNotAllowed(w, r, "GET", "HEAD", "PATCH", "DELETE")
		}
		return
	case 2:
		switch strings.ToLower(segs[1]) {
		case "batches":
			if r.Method != http.MethodPut {
				s.writeMethodNotAllowed(w, r, "PUT")
				return
			}
			s.handleUpload(w, r, segs[0])
			return
		case "successfulresults", "failedresults", "unprocessedrecords":
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.writeMethodNotAllowed(w, r, "GET", "HEAD")
				return
			}
			s.handleResults(w, r, segs[0], strings.ToLower(segs[1]))
			return
		}
	}
	s.writeNotFound(w, r)
}

// createRequest is the JSON body of POST /jobs/ingest.
type createRequest struct {
	Object              *string `json:"object"`
	Operation           *string `json:"operation"`
	ExternalIDFieldName *string `json:"externalIdFieldName"`
	ContentType         *string `json:"contentType"`
	LineEnding          *string `json:"lineEnding"`
	ColumnDelimiter     *string `json:"columnDelimiter"`
	AssignmentRuleID    *string `json:"assignmentRuleId"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func badRequest(code, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: msg}
}

// validateCreate applies the synchronous create-time checks in the
// emulator's order: enums, then object, then externalIdFieldName
// (contract §2.2).
func (s *Server) validateCreate(req createRequest) (*job, *apiError) {
	invalid := func(v, prop string) *apiError {
		return badRequest("API_ERROR", fmt.Sprintf("Invalid value: '%s' supplied for property: '%s'", v, prop))
	}
	op := str(req.Operation)
	switch op {
	case "insert", "update", "upsert", "delete", "hardDelete":
	default:
		return nil, invalid(op, "operation")
	}
	if req.ContentType != nil && *req.ContentType != "CSV" {
		return nil, invalid(*req.ContentType, "contentType")
	}
	le := "LF"
	if req.LineEnding != nil {
		le = *req.LineEnding
		if le != "LF" && le != "CRLF" {
			return nil, invalid(le, "lineEnding")
		}
	}
	delim := "COMMA"
	if req.ColumnDelimiter != nil {
		delim = *req.ColumnDelimiter
		if _, ok := delimiters[delim]; !ok {
			return nil, invalid(delim, "columnDelimiter")
		}
	}
	name := str(req.Object)
	o := s.objects[strings.ToLower(name)]
	if o == nil {
		return nil, badRequest("INVALIDJOB", "InvalidJob : Unable to find object: "+name)
	}
	j := &job{object: o, operation: op, lineEnding: le, delimiter: delim, assignRuleID: str(req.AssignmentRuleID)}
	if op == "upsert" {
		ext := str(req.ExternalIDFieldName)
		f := o.fields[strings.ToLower(ext)]
		if !strings.EqualFold(ext, "Id") && (f == nil || !f.ExternalID) {
			return nil, badRequest("INVALIDJOB", fmt.Sprintf(
				"InvalidJob : Field name provided, %s does not match an External ID for %s", ext, o.desc.Name))
		}
		j.extID = ext
	}
	if op == "hardDelete" && s.opts.HardDeleteDisabled {
		return nil, badRequest("FEATURENOTENABLED", "Bulk API Hard Delete permission is not enabled for this user")
	}
	return j, nil
}

// registerJobLocked assigns an id and timestamps and stores j. s.mu must
// be held.
func (s *Server) registerJobLocked(j *job, version string) {
	j.id = s.newIDLocked("750")
	j.id15 = j.id[:15]
	j.apiVersion = version
	j.createdBy = s.opts.UserID
	j.created = s.now()
	j.modstamp = j.created
	s.jobs[j.id15] = j
	s.jobOrder = append(s.jobOrder, j)
	s.notifyLocked()
}

func (s *Server) handleCreateIngest(w http.ResponseWriter, r *http.Request, version string) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		s.handleMultipartCreate(w, r, version, params["boundary"])
		return
	}
	body, _, err := readBody(r, 1<<20)
	if err != nil {
		s.writeBodyErr(w, r, err)
		return
	}
	var req createRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeErr(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", jsonErrorText(err))
		return
	}
	j, aerr := s.validateCreate(req)
	if aerr != nil {
		s.writeErr(w, r, aerr.status, aerr.code, aerr.msg)
		return
	}
	s.mu.Lock()
	j.state = StateOpen
	s.registerJobLocked(j, version)
	resp := j.createJSON()
	s.mu.Unlock()
	s.logf("salesforcetest: job %s created (%s %s)", j.id, j.operation, j.object.desc.Name)
	s.writeJSONValue(w, r, http.StatusOK, resp)
}

func jsonErrorText(err error) string {
	return "Unexpected character in JSON request body: " + err.Error()
}

// maxMultipartCSV is the multipart create CSV limit (contract §2.3).
const maxMultipartCSV = 100000

func (s *Server) handleMultipartCreate(w http.ResponseWriter, r *http.Request, version, boundary string) {
	if boundary == "" {
		s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "Missing multipart boundary")
		return
	}
	mr := multipart.NewReader(r.Body, boundary)
	var jobJSON, content []byte
	haveContent := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "Invalid multipart body: "+err.Error())
			return
		}
		b, err := io.ReadAll(io.LimitReader(part, 4*maxMultipartCSV+1))
		if err != nil {
			s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "Invalid multipart body: "+err.Error())
			return
		}
		switch part.FormName() {
		case "job":
			jobJSON = b
		case "content":
			content, haveContent = b, true
		}
	}
	if jobJSON == nil {
		s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "Missing multipart part: job")
		return
	}
	var req createRequest
	if err := json.Unmarshal(jobJSON, &req); err != nil {
		s.writeErr(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", jsonErrorText(err))
		return
	}
	j, aerr := s.validateCreate(req)
	if aerr != nil {
		s.writeErr(w, r, aerr.status, aerr.code, aerr.msg)
		return
	}
	if !haveContent {
		s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "Missing multipart part: content")
		return
	}
	if len([]rune(string(content))) > maxMultipartCSV {
		s.writeErr(w, r, http.StatusBadRequest, "API_ERROR",
			fmt.Sprintf("The multipart content exceeds the limit of %d characters", maxMultipartCSV))
		return
	}
	s.mu.Lock()
	j.state = StateUploadComplete
	j.data = content
	j.uploads = 1
	s.registerJobLocked(j, version)
	resp := j.createJSON()
	s.startJobLocked(j)
	s.mu.Unlock()
	s.writeJSONValue(w, r, http.StatusOK, resp)
}

// multipleContentsLocked is the second-upload rejection (contract §2.4).
func (s *Server) multipleContents(j *job) *apiError {
	return badRequest(s.opts.SecondUploadErrorCode, fmt.Sprintf("Found multipe contents for job: <%s>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.", j.id15))
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	j := s.jobLocked(id)
	if j == nil || j.query {
		s.mu.Unlock()
		s.writeNotFound(w, r)
		return
	}
	var aerr *apiError
	switch {
	case j.state != StateOpen:
		if s.opts.PutAfterCloseMultipleContents && j.uploads > 0 {
			aerr = s.multipleContents(j)
		} else {
			aerr = badRequest("INVALIDJOBSTATE", fmt.Sprintf("Uploading data to a job in state %s not allowed", j.state))
		}
	case j.uploads > 0 && !s.opts.SecondUploadFailsAtClose:
		aerr = s.multipleContents(j)
	}
	s.mu.Unlock()
	if aerr != nil {
		s.writeErr(w, r, aerr.status, aerr.code, aerr.msg)
		return
	}
	if !s.opts.AcceptAnyContentType {
		ct := r.Header.Get("Content-Type")
		mt, _, _ := mime.ParseMediaType(ct)
		if !strings.EqualFold(mt, "text/csv") {
			s.writeErr(w, r, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
				fmt.Sprintf("Content-Type %s not supported, use text/csv", ct))
			return
		}
	}
	data, tooLarge, err := readBody(r, s.opts.MaxUploadBytes)
	if err != nil {
		s.writeBodyErr(w, r, err)
		return
	}
	s.mu.Lock()
	// Re-check: the job may have changed while the body was read.
	if s.jobLocked(id) != j || j.state != StateOpen {
		state := j.state
		s.mu.Unlock()
		s.writeErr(w, r, http.StatusBadRequest, "INVALIDJOBSTATE",
			fmt.Sprintf("Uploading data to a job in state %s not allowed", state))
		return
	}
	if j.uploads == 0 {
		j.data = data
		j.tooLarge = tooLarge
	} else {
		j.secondPending = true
	}
	j.uploads++
	j.modstamp = s.now()
	s.notifyLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request, id string, query bool) {
	s.mu.Lock()
	j := s.jobLocked(id)
	if j == nil || j.query != query {
		s.mu.Unlock()
		s.writeNotFound(w, r)
		return
	}
	resp := j.fullJSON(s.opts.CountersWhileOpen)
	s.mu.Unlock()
	s.writeJSONValue(w, r, http.StatusOK, resp)
}

func (s *Server) handlePatchJob(w http.ResponseWriter, r *http.Request, id string, query bool) {
	body, _, err := readBody(r, 1<<20)
	if err != nil {
		s.writeBodyErr(w, r, err)
		return
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeErr(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", jsonErrorText(err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobLocked(id)
	if j == nil || j.query != query {
		s.writeNotFound(w, r)
		return
	}
	raw, present := req["state"]
	want := ""
	if present {
		if err := json.Unmarshal(raw, &want); err != nil {
			want = strings.Trim(string(raw), `"`)
			s.writeErr(w, r, http.StatusBadRequest, "API_ERROR",
				fmt.Sprintf("Invalid value: '%s' supplied for property: 'state'", want))
			return
		}
		if !isStateName(want) {
			s.writeErr(w, r, http.StatusBadRequest, "API_ERROR",
				fmt.Sprintf("Invalid value: '%s' supplied for property: 'state'", want))
			return
		}
	}
	notAllowed := func() {
		s.writeErr(w, r, http.StatusBadRequest, "INVALIDJOBSTATE",
			fmt.Sprintf("Changing job state from %s to %s not allowed", j.state, want))
	}
	switch want {
	case StateUploadComplete:
		if query || j.state != StateOpen {
			notAllowed()
			return
		}
		if j.secondPending {
			e := s.multipleContents(j)
			s.writeErr(w, r, e.status, e.code, e.msg)
			return
		}
		if j.uploads == 0 && s.opts.RejectCloseWithoutUpload {
			notAllowed()
			return
		}
		j.state = StateUploadComplete
		j.modstamp = s.now()
		s.startJobLocked(j)
	case StateAborted:
		switch j.state {
		case StateOpen, StateUploadComplete, StateInProgress:
		case StateJobComplete:
			s.writeErr(w, r, http.StatusBadRequest, "INVALIDJOBSTATE", "Aborting already Completed Job not allowed")
			return
		default:
			notAllowed()
			return
		}
		j.state = StateAborted
		j.modstamp = s.now()
		s.abortUnprocessedLocked(j)
	default:
		notAllowed()
		return
	}
	s.notifyLocked()
	s.logf("salesforcetest: job %s -> %s", j.id, j.state)
	s.writeJSONValue(w, r, http.StatusOK, j.headJSON())
}

func (s *Server) handleDeleteJob(w http.ResponseWriter, r *http.Request, id string, query bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobLocked(id)
	if j == nil || j.query != query {
		s.writeNotFound(w, r)
		return
	}
	if j.state == StateOpen || j.state == StateInProgress || query && j.state == StateUploadComplete {
		s.writeErr(w, r, http.StatusBadRequest, "API_ERROR",
			"Error encountered when deleting the job because the job is not terminated")
		return
	}
	if j.state == StateUploadComplete {
		// Queued but never started: deleting it cancels processing.
		j.state = StateAborted
	}
	delete(s.jobs, j.id15)
	for i, x := range s.jobOrder {
		if x == j {
			s.jobOrder = append(s.jobOrder[:i:i], s.jobOrder[i+1:]...)
			break
		}
	}
	j.data, j.success, j.failures, j.unprocessed, j.rows, j.queryRows = nil, okList{}, nil, nil, nil, nil
	s.notifyLocked()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request, version string, query bool) {
	q := r.URL.Query()
	offset := 0
	if loc := q.Get("queryLocator"); loc != "" {
		_, n, ok := strings.Cut(loc, "-")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 0 {
			s.writeErr(w, r, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
			return
		}
		offset = v
	}
	jobType := q.Get("jobType")
	s.mu.Lock()
	var all []*job
	for _, j := range s.jobOrder {
		if j.query != query {
			continue
		}
		if jobType != "" && !(jobType == "V2Ingest" && !j.query || jobType == "V2Query" && j.query) {
			continue
		}
		if cm := q.Get("concurrencyMode"); cm != "" && cm != "Parallel" {
			continue
		}
		if pk := q.Get("isPkChunkingEnabled"); pk == "true" {
			continue
		}
		all = append(all, j)
	}
	if offset > len(all) {
		offset = len(all)
	}
	end := min(offset+s.opts.ListPageSize, len(all))
	recs := make([]any, 0, end-offset)
	for _, j := range all[offset:end] {
		recs = append(recs, j.listJSON())
	}
	s.mu.Unlock()
	var next any
	kind := "ingest"
	if query {
		kind = "query"
	}
	if end < len(all) {
		v := url2Values(q)
		v.Set("queryLocator", fmt.Sprintf("01gHs000001AbCdIAK-%d", end))
		next = "/services/data/v" + version + "/jobs/" + kind + "?" + v.Encode()
	}
	s.writeJSONValue(w, r, http.StatusOK, obj{{"done", end >= len(all)}, {"records", recs}, {"nextRecordsUrl", next}})
}
