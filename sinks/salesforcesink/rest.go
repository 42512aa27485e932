package salesforcesink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// The api option: how rows reach Salesforce.
const (
	// APIAuto sends a run's rows through REST sObject Collections when
	// the sink's whole input is at most rest_max_rows rows, else through
	// Bulk API 2.0 jobs.
	APIAuto = "auto"
	// APIBulk always uses Bulk API 2.0 ingest jobs.
	APIBulk = "bulk"
	// APIREST always uses REST sObject Collections (200 records per
	// request); hardDelete is not available there.
	APIREST = "rest"
	// DefaultAPI is the api default: auto, so that a small load (a sync
	// that found a few changed rows) costs one synchronous request instead
	// of a queued Bulk job.
	DefaultAPI = APIAuto
	// DefaultRestMaxRows is the rest_max_rows default: Salesforce's own
	// guidance puts the crossover at 2,000 records (collections contract §4).
	DefaultRestMaxRows = 2000
	// maxRESTBytes bounds one collection request's JSON body (collections
	// contract §1.6: split by bytes too, far below the 50 MB Data Loader
	// uses).
	maxRESTBytes = 10 << 20
	// restStateName is the State of the JobStat of a REST request.
	restStateName = "RestComplete"
)

// Ledger states of a REST request (a chunk sent through collections).
const (
	// stRESTSending: about to send the request; whether it was processed
	// is unknown until stRESTDone. A resume marks an insert's rows
	// outcome_unknown (a create is never resent blindly) and sends an
	// update, upsert or delete again (Salesforce applies them
	// idempotently).
	stRESTSending = "rest_sending"
	// stRESTDone: the request's per-row outcomes are in the record
	// (RESTFailed; the other rows were loaded, or marked as the failures
	// say); a resume settles the rows from it without a request.
	stRESTDone = "rest_done"
)

// restFailure is a row of a REST request that was not loaded, as the
// ledger keeps it (Row is the index within the request).
type restFailure struct {
	Row   int    `json:"row"`
	Code  string `json:"code"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"msg"`
	// Resent: the row was sent again after an answer an earlier attempt
	// never recorded (batchState.resent), so it may be in Salesforce.
	Resent bool `json:"resent,omitempty"`
}

// api returns the configured api, DefaultAPI when empty.
func (o *Options) api() string {
	if o.API == "" {
		return DefaultAPI
	}
	return strings.ToLower(o.API)
}

// restMaxRows returns rest_max_rows, the default when unset.
func (o *Options) restMaxRows() int {
	if o.RestMaxRows <= 0 {
		return DefaultRestMaxRows
	}
	return o.RestMaxRows
}

// validateAPI checks api and rest_max_rows.
func (o *Options) validateAPI() []error {
	var errs []error
	switch o.api() {
	case APIAuto, APIBulk:
	case APIREST:
		if o.operation() == salesforce.OpHardDelete {
			errs = append(errs, errors.New("api rest cannot hardDelete (sObject Collections deletes to the recycle bin): use api bulk or auto"))
		}
		if o.AssignmentRuleID != "" {
			errs = append(errs, errors.New("api rest does not send assignment_rule_id (a Bulk job option): use api bulk or auto"))
		}
		if strings.EqualFold(o.ExternalIDField, "Id") {
			errs = append(errs, errors.New("api rest cannot upsert on Id (collection upserts take External ID fields only): use api bulk or auto, or operation update"))
		}
	default:
		errs = append(errs, fmt.Errorf("api %q must be auto, bulk or rest", o.API))
	}
	if o.RestMaxRows < 0 {
		errs = append(errs, errors.New("rest_max_rows must not be negative"))
	}
	return errs
}

// batchRows is the engine's batch size for the sink: max_job_rows, and
// with api auto at least rest_max_rows+1, so that a first batch of at most
// rest_max_rows rows that is shorter than a full batch is the sink's whole
// input (the engine only hands over a short batch at the end).
func (s *Sink) batchRows() int {
	if s.opts.api() == APIAuto {
		return max(s.opts.MaxJobRows, s.opts.restMaxRows()+1)
	}
	return s.opts.MaxJobRows
}

// useREST decides the path of batch seq of n rows. With api auto it is
// REST only for the first batch when it is the whole input (shorter than
// batchRows) and at most rest_max_rows rows; every later batch means the
// input was larger, and goes through Bulk. The decision depends only on the
// input's cut, so a resumed run decides the same.
func (s *Sink) useREST(seq int64, n int) bool {
	switch s.opts.api() {
	case APIREST:
		return true
	case APIAuto:
		// hardDelete, assignment rules and upserts on Id are Bulk only.
		return s.op != salesforce.OpHardDelete && s.opts.AssignmentRuleID == "" && !strings.EqualFold(s.opts.ExternalIDField, "Id") &&
			seq == 0 && n <= s.opts.restMaxRows() && n < s.batchRows()
	}
	return false
}

// restRequest is one collection request's rows.
type restRequest struct {
	rows   []int // batch indices, in request order
	recs   []salesforce.Record
	seq    int64 // the engine's batch number
	key    string
	body   []byte // the JSON body; a delete's ids, each followed by ","
	digest string // hex sha256 of body
	from   string
}

// rowRecord is the collection record of row i (collections contract
// §2.5, mirroring the CSV encoding's rules): nil → JSON null, an empty
// string is left out (Bulk's empty cell, which Salesforce ignores), numbers
// and booleans as JSON types (decimals keep their text), dates yyyy-MM-dd,
// timestamps in UTC with milliseconds, relationship columns
// (Account.External_Id__c, Type:Rel.Field) as nested reference objects.
func (s *Sink) rowRecord(row pipeline.Row) (salesforce.Record, error) {
	rec := make(salesforce.Record, 0, len(row))
	for i, v := range row {
		f := s.schema.Field(i)
		rf := salesforce.RecordField{Name: f.Name}
		switch x := v.(type) {
		case nil:
		case string:
			if x == "" {
				continue
			}
			if f.Type == pipeline.TypeDecimal {
				rf.Value = json.Number(x)
			} else {
				rf.Value = normalizeCR(x)
			}
		case int64, int, bool:
			rf.Value = x
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, &pipeline.RowError{Code: CodeInvalidValue, Field: f.Name, Err: errNonFinite}
			}
			rf.Value = x
		case time.Time:
			rf.Value, rf.DateOnly = x, f.Type == pipeline.TypeDate || (f.Type != pipeline.TypeTimestamp && isMidnightUTC(x))
		default:
			rf.Value = normalizeCR(pipeline.Text(v))
		}
		rec = append(rec, rf)
	}
	return rec, nil
}

// request builds the collection request of recs.
func (s *Sink) request(recs []salesforce.Record) salesforce.CollectionRequest {
	req := salesforce.CollectionRequest{Object: s.opts.Object, Operation: s.op, Records: recs}
	if s.op == salesforce.OpUpsert {
		req.ExternalIDField = s.opts.ExternalIDField
	}
	return req
}

// cutREST cuts pending rows into requests of at most 200 records and
// maxRESTBytes of JSON, in order. Rows that cannot be encoded fail in st.
func (s *Sink) cutREST(ctx context.Context, b *pipeline.Batch, st *batchState, pending []int) ([]*restRequest, error) {
	var obj *salesforce.DescribeResult
	if s.op == salesforce.OpDelete && len(pending) > 0 {
		var err error
		if obj, err = s.objectDescribe(ctx); err != nil {
			return nil, fmt.Errorf("salesforce sink: REST delete needs the object's key prefix: %w", err)
		}
	}
	return s.cutRequests(b, pending, obj, st.fail), nil
}

// cutRequests cuts rows into requests of at most 200 records and
// maxRESTBytes of JSON, in order, each with its body (a delete's: the
// ids, comma-terminated) and the body's digest. A row that cannot be
// encoded, or a delete's id that is not a record id (of obj's object, when
// obj is given: a collection delete takes ids of any object, a Bulk job
// refuses the others with this error), goes to fail instead. The sink and
// its plan (PlanSink) cut alike.
func (s *Sink) cutRequests(b *pipeline.Batch, rows []int, obj *salesforce.DescribeResult, fail func(int, error)) []*restRequest {
	var out []*restRequest
	var cur *restRequest
	size := 0
	for _, i := range rows {
		if s.op == salesforce.OpDelete {
			if id, _ := b.Row(i)[0].(string); !isRecordID(id) || obj != nil && !strings.EqualFold(id[:3], obj.KeyPrefix) {
				label := s.opts.Object
				if obj != nil {
					label = obj.Label
				}
				fail(i, s.rowErr("MALFORMED_ID", "Id", "", "%s ID: id value of incorrect type: %s", label, id))
				continue
			}
		}
		rec, err := s.rowRecord(b.Row(i))
		if err == nil {
			var one []byte
			if s.op != salesforce.OpDelete {
				one, err = salesforce.EncodeCollectionBody(s.request([]salesforce.Record{rec}))
			}
			switch {
			case err != nil:
			case len(one) > maxRESTBytes:
				fail(i, s.rowErr(CodeRowTooLarge, "", "", "the row's JSON is %d bytes, above the %d bytes of a REST request", len(one), maxRESTBytes))
				continue
			default:
				if cur == nil || len(cur.rows) == salesforce.MaxCollectionRecords || size+len(one) > maxRESTBytes {
					cur = &restRequest{from: b.Origin(i).String()}
					out = append(out, cur)
					size = 0
				}
				cur.rows, cur.recs = append(cur.rows, i), append(cur.recs, rec)
				size += len(one)
				continue
			}
		}
		var re *pipeline.RowError
		if !errors.As(err, &re) {
			re = s.rowErr(CodeInvalidValue, "", "", "%v", err)
		}
		fail(i, re)
	}
	for _, rq := range out {
		if s.op == salesforce.OpDelete {
			for _, r := range rq.recs {
				rq.body = fmt.Appendf(rq.body, "%v,", r[0].Value)
			}
		} else {
			rq.body, _ = salesforce.EncodeCollectionBody(s.request(rq.recs))
		}
		h := sha256.Sum256(rq.body)
		rq.digest = hex.EncodeToString(h[:])
	}
	return out
}

// objectDescribe returns the sink object's describe, read once for the
// sink (by a REST delete: its key prefix and label; by ResolveKeys: the
// key field's type); describeObject is the preflight check's, uncached.
func (s *Sink) objectDescribe(ctx context.Context) (*salesforce.DescribeResult, error) {
	s.restDescribe.once.Do(func() {
		s.restDescribe.d, s.restDescribe.err = s.client.Describe(ctx, s.opts.Object)
	})
	if s.restDescribe.err != nil {
		return nil, fmt.Errorf("describe %s: %w", s.opts.Object, s.restDescribe.err)
	}
	return s.restDescribe.d, nil
}

// restDescribe is the sink object's describe, read once (objectDescribe).
type restDescribe struct {
	once sync.Once
	d    *salesforce.DescribeResult
	err  error
}

// isRecordID reports whether id has the shape of a 15- or 18-character
// Salesforce id.
func isRecordID(id string) bool {
	if len(id) != 15 && len(id) != 18 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// writeREST loads the pending rows of batch seq through sObject
// Collections: requests of up to 200 rows, sent one after the other (the
// contract advises few calls in flight per object), rows that hit
// UNABLE_TO_LOCK_ROW sent again alone after a backoff, up to lock_retries
// times. Every request is recorded in the ledger before it is sent and
// after it answered (see stRESTSending). It returns an error only for a
// failure every request would hit.
func (s *Sink) writeREST(ctx context.Context, b *pipeline.Batch, st *batchState, pending []int, seq int64) error {
	retries := s.opts.lockRetries()
	for attempt := 0; len(pending) > 0; attempt++ {
		reqs, err := s.cutREST(ctx, b, st, pending)
		if err != nil {
			return s.failBatch(st, pending, err)
		}
		pending = nil
		for k, rq := range reqs {
			rq.seq, rq.key = seq, chunkKey(seq, attempt, k)
		}
		if err := s.checkRESTCut(seq, attempt, reqs); err != nil {
			var rows []int
			for _, rq := range reqs {
				rows = append(rows, rq.rows...)
			}
			return s.failBatch(st, rows, err)
		}
		var locked []int
		for k, rq := range reqs {
			if ctx.Err() != nil {
				s.noteCancel()
				for _, r := range reqs[k:] {
					s.failRows(st, r.rows, CodeCancelled, "", "not loaded: the run was cancelled")
				}
				break
			}
			lk, err := s.sendREST(ctx, st, rq, attempt)
			if err != nil {
				var rows []int
				for _, r := range reqs[k:] {
					rows = append(rows, r.rows...)
				}
				return s.failBatch(st, rows, err)
			}
			locked = append(locked, lk...)
		}
		if attempt < retries && len(locked) > 0 && ctx.Err() == nil {
			s.log.Info("salesforce sink: re-sending rows that hit UNABLE_TO_LOCK_ROW in a new request",
				"rows", len(locked), "retry", attempt+1, "of", retries)
			t := time.NewTimer(time.Duration(attempt+1) * 200 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			sort.Ints(locked)
			pending = locked
		}
	}
	return nil
}

// checkRESTCut compares the requests of a batch's attempt with the
// ledger's records at their positions: a request whose rows differ from
// one an earlier attempt may have sent stops the run before anything is
// sent (ResumeMismatchError), as for Bulk chunks. A first attempt found
// unchanged lets later batches' new requests go ahead.
func (s *Sink) checkRESTCut(seq int64, attempt int, reqs []*restRequest) error {
	if s.ledger == nil {
		return nil
	}
	for k, rq := range reqs {
		if rec, ok := s.ledger.last(rq.key); ok && (rec.Digest != rq.digest || rec.Rows != len(rq.rows)) && reachedUpload(rec.State) {
			return s.refuseResume(seq, attempt, k, rec, &chunk{digest: rq.digest, rows: rq.rows, from: rq.from})
		}
	}
	if attempt == 0 {
		return s.endCut(seq, attempt, len(reqs)-1)
	}
	return nil
}

// restRef is the _ref of a REST request's rows: the run and the request's
// ledger position.
func (s *Sink) restRef(rq *restRequest) string { return "rest:" + s.runID + "/" + rq.key }

// sendREST sends one request (or settles it from the ledger of an earlier
// attempt of the run) and records each row's outcome in st. It returns
// the rows that hit UNABLE_TO_LOCK_ROW.
func (s *Sink) sendREST(ctx context.Context, st *batchState, rq *restRequest, attempt int) ([]int, error) {
	s.active.Add(1)
	defer s.active.Add(-1)
	ref := s.restRef(rq)
	c := &chunk{rows: rq.rows, digest: rq.digest, key: rq.key, from: rq.from, batch: rq.seq}
	replay := false // an earlier attempt of the run sent this request
	if s.ledger != nil {
		if rec, ok := s.ledger.last(rq.key); ok && rec.Digest == rq.digest {
			switch rec.State {
			case stRESTDone:
				s.mu.Lock()
				s.resumed++
				s.mu.Unlock()
				return s.settleREST(st, rq, ref, rec.RESTFailed), nil
			case stRESTSending:
				s.mu.Lock()
				s.resumed++
				s.mu.Unlock()
				if s.op == salesforce.OpInsert {
					// The earlier attempt may have created the rows: never
					// send them again blindly.
					fails := make([]restFailure, len(rq.rows))
					for j := range rq.rows {
						fails[j] = restFailure{Row: j, Code: pipeline.CodeOutcomeUnknown,
							Msg: "an earlier attempt of the run sent the row in a REST create and stopped before its answer was recorded: it may be in Salesforce"}
					}
					s.noteAfter(ctx, c, ledgerRecord{State: stRESTDone, Job: ref, RESTFailed: fails})
					return s.settleREST(st, rq, ref, fails), nil
				}
				s.log.Info("salesforce sink: resume: sending again a REST request whose answer an earlier attempt did not record (update, upsert and delete are idempotent)",
					"request", ref, "rows", len(rq.rows))
				replay = true
				if st.resent == nil {
					st.resent = make(map[int]bool, len(rq.rows))
				}
				for _, i := range rq.rows {
					st.resent[i] = true
				}
			}
		}
	}
	if g := s.gate(); g != nil {
		if err := g.wait(ctx, c.batch); err != nil {
			if ctx.Err() != nil {
				s.failRows(st, rq.rows, CodeCancelled, "", "not loaded: the run was cancelled")
				return nil, nil
			}
			return nil, err
		}
	}
	if s.limitHit.Load() {
		s.failRows(st, rq.rows, "REQUEST_LIMIT_EXCEEDED", "", "not sent: Salesforce refused earlier requests with REQUEST_LIMIT_EXCEEDED "+
			"(the org's API request limit); resume later with `%s`", s.resumeHint())
		return nil, nil
	}
	if s.overBudget() {
		s.failRows(st, rq.rows, CodeAPIBudget, "", "not loaded: the daily API request allowance is below min_api_remaining %d; resume later with `%s`",
			s.opts.MinAPIRemaining, s.resumeHint())
		return nil, nil
	}
	if err := s.note(ctx, c, ledgerRecord{State: stRESTSending, Job: ref}); err != nil {
		return nil, err
	}
	start := time.Now()
	stat := JobStat{ID: ref, Object: s.opts.Object, Operation: string(s.op), Attempt: attempt, Rows: len(rq.rows), API: APIREST}
	req := s.request(rq.recs)
	req.Replay = replay
	results, err := s.client.WriteCollection(ctx, req)
	stat.Duration = time.Since(start)
	if err != nil {
		stat.Error, stat.State = err.Error(), "RestFailed" // not a job state: Close deletes no job for it
		s.record(stat)
		return s.failREST(ctx, st, rq, c, ref, err)
	}
	s.mu.Lock()
	s.jobsCreated++
	s.mu.Unlock()
	var fails []restFailure
	for j, r := range results {
		i := rq.rows[j]
		if r.Success {
			st.succeed(i)
			st.setID(i, r.ID)
			stat.Succeeded++
			continue
		}
		e := r.Err()
		fails = append(fails, restFailure{Row: j, Code: e.Code, Field: strings.Join(e.Fields, ";"), Msg: e.Message, Resent: st.resent[i] || r.Replayed})
		stat.Failed++
	}
	stat.State, stat.Processed = restStateName, int64(len(results))
	s.record(stat)
	s.noteAfter(ctx, c, ledgerRecord{State: stRESTDone, Job: ref, Loaded: int(stat.Succeeded), RESTFailed: fails})
	return s.settleREST(st, rq, ref, fails), nil
}

// settleREST records a request's outcome in st: the failures fail their
// rows, every other row is loaded. It returns the rows that hit
// UNABLE_TO_LOCK_ROW.
func (s *Sink) settleREST(st *batchState, rq *restRequest, ref string, fails []restFailure) []int {
	failed := make(map[int]bool, len(fails))
	var locked []int
	for _, f := range fails {
		if f.Row < 0 || f.Row >= len(rq.rows) {
			continue
		}
		i := rq.rows[f.Row]
		failed[f.Row] = true
		code, msg := f.Code, f.Msg
		if code == "" {
			code = pipeline.CodeRowFailed
		}
		if code == CodeLockRow {
			locked = append(locked, i)
		}
		if f.Resent && !st.resent[i] { // settled from the ledger: later lock retries of the row were resent too
			if st.resent == nil {
				st.resent = map[int]bool{}
			}
			st.resent[i] = true
		}
		if st.resent[i] && pipeline.RecoveryOf(code) == pipeline.RecoveryRetry {
			// Sent again after an answer that was lost (an earlier attempt
			// of the run stopped before recording it, or the client's own
			// retry after a 5xx or lost connection): that send may have
			// written the row, so this transient failure does not say it
			// is not in Salesforce (the soak's REST class found it
			// reported as not loaded while stored, both ways).
			msg = fmt.Sprintf("the row was sent before and that answer was lost (an earlier attempt of the run stopped before recording it, "+
				"or a 5xx, timeout or lost connection made the client send it again), so it may be in Salesforce; "+
				"sending it again got %s: %s; sending it once more is safe (%s is idempotent)", code, f.Msg, s.op)
			code = pipeline.CodeOutcomeUnknownRetry
		}
		st.fail(i, s.rowErr(code, f.Field, ref, "%s", msg))
	}
	for j, i := range rq.rows {
		if !failed[j] {
			st.succeed(i)
		}
	}
	return locked
}

// failREST settles the rows of a request that got no per-row answer.
func (s *Sink) failREST(ctx context.Context, st *batchState, rq *restRequest, c *chunk, ref string, err error) ([]int, error) {
	unknown := func(code, why string) ([]int, error) {
		fails := make([]restFailure, len(rq.rows))
		for j := range rq.rows {
			fails[j] = restFailure{Row: j, Code: code, Msg: why}
		}
		s.noteAfter(ctx, c, ledgerRecord{State: stRESTDone, Job: ref, RESTFailed: fails})
		return s.settleREST(st, rq, ref, fails), nil
	}
	insert := s.op == salesforce.OpInsert
	switch {
	case errors.Is(err, salesforce.ErrResultCount):
		return unknown(CodeResultMismatch, fmt.Sprintf("the REST answer did not give one result per row: %v", err))
	case errors.Is(err, salesforce.ErrOutcomeUnknown) || ctx.Err() != nil && insert:
		if insert {
			return unknown(pipeline.CodeOutcomeUnknown, fmt.Sprintf("the REST create got no definite answer and is never resent blindly; the row may be in Salesforce: %v", err))
		}
		return unknown(pipeline.CodeOutcomeUnknownRetry, fmt.Sprintf("the REST %s got no definite answer after the client's retries; sending it again is safe: %v", s.op, err))
	case ctx.Err() != nil:
		s.noteAfter(ctx, c, ledgerRecord{State: stAborted, Job: ref})
		s.failRows(st, rq.rows, CodeCancelled, ref, "not loaded: the run was cancelled")
		return nil, nil
	case !salesforce.IsDefiniteRefusal(err) && !errors.Is(err, salesforce.ErrInvalidSession):
		// Refused before processing (request limit, authentication that
		// outlasted the retries): nothing was written.
		if errors.Is(err, salesforce.ErrRequestLimit) {
			s.limitHit.Store(true)
		}
		s.noteAfter(ctx, c, ledgerRecord{State: stAborted, Job: ref})
		code := failureCode(err)
		s.failRows(st, rq.rows, code, ref, "not loaded: the REST request was refused: %v", err)
		s.noteCreateFailure(code, len(rq.rows), err)
		return nil, nil
	}
	// A definite refusal (a 4xx for the request: unknown object or
	// external id field, a body Salesforce cannot read) every request
	// would get: nothing was written.
	s.noteAfter(ctx, c, ledgerRecord{State: stAborted, Job: ref})
	return nil, fmt.Errorf("salesforce sink: %w", err)
}

// pathStats counts what a sink sent by path, for the run report (JSON
// keys bulk_jobs, bulk_rows, rest_requests, rest_records, embedded in the
// sink's Stats) and its text summary (SummaryLine).
type pathStats struct {
	// BulkJobs and BulkRows count the Bulk API 2.0 jobs the run created
	// or re-attached to, and the rows uploaded in them.
	BulkJobs int   `json:"bulk_jobs"`
	BulkRows int64 `json:"bulk_rows"`
	// RESTRequests and RESTRecords count the sObject Collections requests
	// the run sent (a request that failed as a whole included) and the
	// records in them; a lock retry's request counts again.
	RESTRequests int   `json:"rest_requests"`
	RESTRecords  int64 `json:"rest_records"`
}

// countPaths returns the path counts of a sink's jobs.
func countPaths(jobs []JobStat) pathStats {
	var p pathStats
	for _, j := range jobs {
		if j.API == APIREST {
			p.RESTRequests++
			p.RESTRecords += int64(j.Rows)
		} else {
			p.BulkJobs++
			p.BulkRows += int64(j.Rows)
		}
	}
	return p
}

// SummaryLine says, for the run's text summary, how the sink sent its
// rows: "2 Bulk API jobs (15000 rows)", "1 REST request (40 records)",
// both, or "" when it sent nothing.
func (p pathStats) SummaryLine() string {
	plural := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	var parts []string
	if p.BulkJobs > 0 {
		parts = append(parts, fmt.Sprintf("%s (%d rows)", plural(p.BulkJobs, "Bulk API job"), p.BulkRows))
	}
	if p.RESTRequests > 0 {
		parts = append(parts, fmt.Sprintf("%s (%d records)", plural(p.RESTRequests, "REST request"), p.RESTRecords))
	}
	return strings.Join(parts, ", ")
}
