package salesforcesink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// Row error codes the sink reports besides Salesforce's own sf__Error
// status codes (REQUIRED_FIELD_MISSING, UNABLE_TO_LOCK_ROW, ...) and job
// error codes (InvalidBatch, ClientInputError, ...).
const (
	// CodeUnprocessed: Salesforce did not process the row (its job failed or
	// was aborted part-way). Retryable.
	CodeUnprocessed = "UNPROCESSED"
	// CodeJobIncomplete: the job did not finish within poll_timeout, or its
	// state or results could not be read. It was not declared failed and may
	// still load the row; the error names the job id. Retryable after the
	// job is reconciled.
	CodeJobIncomplete = "job_incomplete"
	// CodeResultMismatch: no result row of the job could be matched to the
	// row, so it is not known to be loaded.
	CodeResultMismatch = "result_mismatch"
	// CodeCancelled: the run was cancelled before the row was loaded.
	CodeCancelled = pipeline.CodeCancelled
	// CodeAPIError: the job could not be created or its data uploaded after
	// the client's retries (5xx, request limits, network). Retryable.
	CodeAPIError = "api_error"
	// CodeInvalidValue: a value cannot be written as Bulk API CSV (NaN).
	CodeInvalidValue = "invalid_value"
	// CodeRowTooLarge: one encoded row exceeds max_job_bytes.
	CodeRowTooLarge = "row_too_large"
	// CodeLockRow is Salesforce's lock contention code; such rows are
	// re-driven up to lock_retries times.
	CodeLockRow = "UNABLE_TO_LOCK_ROW"
)

// abortTimeout bounds the clean-up calls made after cancellation.
const abortTimeout = 30 * time.Second

// testClientOptions lets tests shorten the client's retry backoff.
var testClientOptions func(*salesforce.Options)

// JobStat describes one Bulk API job the sink ran.
type JobStat struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Operation string `json:"operation"`
	Attempt   int    `json:"attempt"` // 0 for a first load, n for the n'th lock retry
	Rows      int    `json:"rows"`    // rows uploaded
	Bytes     int64  `json:"bytes"`   // CSV bytes uploaded
	State     string `json:"state"`   // last known job state
	Processed int64  `json:"processed"`
	// Succeeded, Failed and Unprocessed count the rows of the job's three
	// result files.
	Succeeded   int64         `json:"succeeded"`
	Failed      int64         `json:"failed"`
	Unprocessed int64         `json:"unprocessed"`
	Duration    time.Duration `json:"-"`
	Seconds     float64       `json:"duration_seconds"` // Duration in seconds, for reports
	Error       string        `json:"error,omitempty"`
}

// Sink loads rows into one Salesforce object with Bulk API 2.0 ingest jobs.
// Write may be called concurrently (BatchPolicy().MaxInFlight at once).
type Sink struct {
	opts    *Options
	op      salesforce.Operation
	schema  *pipeline.Schema
	client  *salesforce.Client
	emu     *salesforcetest.Server
	log     *slog.Logger
	enc     *encoder
	delim   salesforce.ColumnDelimiter
	spool   string
	idCol   int // column identifying a record (Id or the external id), or -1
	archive *blobio.Location
	runID   string

	mu        sync.Mutex
	jobs      []JobStat
	completed int   // jobs that reached JobComplete
	fatal     error // set once a failure that every job would hit was seen
	closed    bool
}

// Interface guards.
var (
	_ pipeline.StatsReporter = (*Sink)(nil)
	_ pipeline.Sink          = (*Sink)(nil)
	_ pipeline.Batcher       = (*Sink)(nil)
	_ pipeline.Validator     = (*Options)(nil)
)

func init() {
	pipeline.DefaultRegistry().RegisterSink("salesforce", pipeline.Spec{
		Summary: "Load rows into a Salesforce object with Bulk API 2.0 ingest jobs",
		Example: "object: Account\noperation: upsert\nexternal_id_field: External_Id__c\n" +
			"instance_url: \"emulator:\"\nmax_job_rows: 10000\nconcurrency: 4\n",
		NewOptions: func() any { return NewOptions() },
	}, func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
		return Open(ctx, env, opts.(*Options), in)
	})
}

// Open validates opts, authenticates (or starts the embedded emulator for
// instance_url "emulator:") and returns a sink for rows of schema in.
func Open(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) (*Sink, error) {
	if env == nil {
		env = &pipeline.Env{}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{opts: opts, op: opts.operation(), schema: in, log: env.Logger, delim: opts.delimiter(),
		enc: newEncoder(in, opts.delimiter(), opts.lineEnding()), idCol: -1, runID: env.RunID}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", "salesforce", "object", opts.Object)
	if s.runID == "" {
		s.runID = pipeline.NewRunID(time.Now())
	}
	if err := s.checkColumns(); err != nil {
		return nil, err
	}
	if opts.ArchiveResults != "" {
		loc, err := blobio.Parse(env.BaseDir, opts.ArchiveResults)
		if err != nil {
			return nil, fmt.Errorf("archive_results: %w", err)
		}
		s.archive = &loc
	}
	copts := &salesforce.Options{APIVersion: opts.APIVersion, Logger: env.Logger}
	var auth *salesforce.Auth
	var err error
	if opts.InstanceURL == EmulatorURL {
		s.emu = salesforcetest.NewServer(nil)
		copts.HTTPClient = s.emu.Client()
		auth, err = salesforce.StaticToken(s.emu.URL, s.emu.AccessToken())
		s.log.Info("salesforce sink: started the in-process emulator; nothing reaches Salesforce", "url", s.emu.URL)
	} else {
		auth, err = newAuth(ctx, env, opts)
	}
	if err == nil {
		if testClientOptions != nil {
			testClientOptions(copts)
		}
		s.client, err = salesforce.NewClient(ctx, auth, copts)
	}
	if err != nil {
		s.closeEmulator()
		return nil, fmt.Errorf("salesforce sink: connect: %w", err)
	}
	if s.spool, err = os.MkdirTemp("", "bulkflow-sf-"); err != nil {
		s.closeEmulator()
		return nil, fmt.Errorf("salesforce sink: spool directory: %w", err)
	}
	return s, nil
}

// checkColumns applies the I/O-free header rules of the operation.
func (s *Sink) checkColumns() error {
	names := s.schema.Names()
	find := func(name string) int {
		for i, n := range names {
			if strings.EqualFold(n, name) {
				return i
			}
		}
		return -1
	}
	switch s.op {
	case salesforce.OpDelete, salesforce.OpHardDelete:
		if len(names) != 1 || !strings.EqualFold(names[0], "Id") {
			return fmt.Errorf("operation %s needs exactly one input field, Id (got %s)", s.op, strings.Join(names, ", "))
		}
		s.idCol = 0
	case salesforce.OpUpdate:
		if s.idCol = find("Id"); s.idCol < 0 {
			return fmt.Errorf("operation update needs an Id field (got %s)", strings.Join(names, ", "))
		}
	case salesforce.OpUpsert:
		if s.idCol = find(s.opts.ExternalIDField); s.idCol < 0 && !strings.EqualFold(s.opts.ExternalIDField, "Id") {
			return fmt.Errorf("operation upsert needs the external id field %s among the input fields (got %s)",
				s.opts.ExternalIDField, strings.Join(names, ", "))
		}
	}
	return nil
}

func newAuth(ctx context.Context, env *pipeline.Env, o *Options) (*salesforce.Auth, error) {
	a := o.Auth
	if a.PrivateKeyFile != "" && !filepath.IsAbs(a.PrivateKeyFile) && env.BaseDir != "" {
		a.PrivateKeyFile = filepath.Join(env.BaseDir, a.PrivateKeyFile)
	}
	return NewAuth(ctx, a, o.InstanceURL, nil)
}

// NewAuth starts the auth flow that a selects (see AuthOptions) against
// instanceURL, with hc as HTTP client (nil: the default). An empty LoginURL
// means the instance URL for client credentials (the My Domain host is the
// token host) and https://login.salesforce.com for JWT and refresh tokens.
// It is the one place bulkflow turns configuration into credentials: the
// sink and `bulkflow jobs` both use it.
func NewAuth(ctx context.Context, a AuthOptions, instanceURL string, hc *http.Client) (*salesforce.Auth, error) {
	login := a.LoginURL
	switch a.flow() {
	case "access_token":
		return salesforce.StaticToken(instanceURL, a.AccessToken)
	case "client_credentials":
		if login == "" {
			login = instanceURL
		}
		return salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{
			LoginURL: login, ClientID: a.ClientID, ClientSecret: a.ClientSecret, HTTPClient: hc})
	case "refresh_token":
		if login == "" {
			login = salesforce.LoginURL
		}
		return salesforce.RefreshToken(ctx, salesforce.RefreshTokenConfig{
			LoginURL: login, ClientID: a.ClientID, ClientSecret: a.ClientSecret, RefreshToken: a.RefreshToken, HTTPClient: hc})
	case "jwt":
		if login == "" {
			login = salesforce.LoginURL
		}
		return salesforce.JWTBearer(ctx, salesforce.JWTConfig{LoginURL: login, Audience: a.Audience,
			ClientID: a.ClientID, Username: a.Username, PrivateKeyFile: a.PrivateKeyFile, HTTPClient: hc})
	}
	return nil, errors.New("no auth flow configured: set access_token, client_id with client_secret, private_key_file or refresh_token")
}

// BatchPolicy asks for batches of max_job_rows rows and concurrency Writes
// in flight, so memory is bounded by max_job_rows × concurrency rows.
func (s *Sink) BatchPolicy() pipeline.BatchPolicy {
	return pipeline.BatchPolicy{MaxRows: s.opts.MaxJobRows, MaxInFlight: s.opts.Concurrency}
}

// Jobs returns a snapshot of the jobs run so far, in the order they
// finished.
func (s *Sink) Jobs() []JobStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]JobStat(nil), s.jobs...)
	for i := range out {
		out[i].Seconds = out[i].Duration.Seconds()
	}
	return out
}

// Stats returns what the run report shows for this sink (see
// pipeline.StatsReporter): its jobs, and the API usage last seen in
// Sforce-Limit-Info.
func (s *Sink) Stats() any {
	st := struct {
		Jobs    []JobStat `json:"jobs"`
		APIUsed int64     `json:"api_used,omitempty"`
		APIMax  int64     `json:"api_max,omitempty"`
	}{Jobs: s.Jobs()}
	if s.client != nil {
		if u, ok := s.client.APIUsage(); ok {
			st.APIUsed, st.APIMax = u.Used, u.Max
		}
	}
	return st
}

// Emulator returns the embedded emulator when instance_url is "emulator:",
// else nil.
func (s *Sink) Emulator() *salesforcetest.Server { return s.emu }

// Close deletes the finished jobs when delete_jobs is set, removes the
// spool directory and stops the embedded emulator. It is idempotent.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	jobs := append([]JobStat(nil), s.jobs...)
	s.mu.Unlock()
	var errs []error
	if s.opts.DeleteJobs {
		for _, j := range jobs {
			if !salesforce.JobState(j.State).Terminal() {
				continue // still running (job_incomplete): keep it for resume
			}
			if err := s.client.DeleteJob(ctx, j.ID); err != nil && !errors.Is(err, salesforce.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(s.spool); err != nil {
		errs = append(errs, fmt.Errorf("remove spool: %w", err))
	}
	s.closeEmulator()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("salesforce sink: close: %w", err)
	}
	return nil
}

func (s *Sink) closeEmulator() {
	if s.emu != nil {
		s.emu.Close()
	}
}

// rowErr builds the RowError of a failed row.
func rowErr(code, field string, retryable bool, jobID, format string, args ...any) *pipeline.RowError {
	msg := fmt.Sprintf(format, args...)
	if jobID != "" {
		msg += " (job " + jobID + ", retryable=" + fmt.Sprint(retryable) + ")"
	} else {
		msg += " (retryable=" + fmt.Sprint(retryable) + ")"
	}
	return &pipeline.RowError{Code: code, Field: field, Err: errors.New(msg)}
}

// retryableCode reports whether a row or job error code is transient.
func retryableCode(code string) bool {
	switch code {
	case CodeLockRow, "REQUEST_LIMIT_EXCEEDED", CodeUnprocessed, CodeJobIncomplete, CodeCancelled, CodeAPIError,
		"ExceededQuota", "InternalServerError", "Timeout", "TooManyLockFailure", "Unknown":
		return true
	}
	return false
}

// batchState tracks the outcome of every row of one Write.
type batchState struct {
	cells  [][]string
	errs   []error
	ok     []bool
	loaded int // rows confirmed loaded so far
}

func (b *batchState) succeed(i int) {
	if !b.ok[i] {
		b.ok[i] = true
		b.errs[i] = nil
		b.loaded++
	}
}

func (b *batchState) fail(i int, err error) {
	if !b.ok[i] {
		b.errs[i] = err
	}
}

// Write loads the batch in one or more jobs (split by max_job_bytes and
// max_job_rows). It returns nil when Salesforce reported every row
// successful, a *pipeline.RowErrors naming the rows that were not, or a
// plain error when nothing was loaded and every later job would fail the
// same way (unknown object or field, bad external id, refused upload).
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	s.mu.Lock()
	fatal := s.fatal
	s.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	n := b.Len()
	st := &batchState{cells: make([][]string, n), errs: make([]error, n), ok: make([]bool, n)}
	pending := make([]int, 0, n)
	for i := range n {
		c, err := s.enc.cells(b.Row(i), nil)
		if err != nil {
			st.errs[i] = err
			continue
		}
		st.cells[i] = c
		pending = append(pending, i)
	}
	retries := s.opts.lockRetries()
	for attempt := 0; len(pending) > 0; attempt++ {
		maxRows := s.opts.MaxJobRows
		if attempt > 0 {
			maxRows = max(1, maxRows>>attempt)
		}
		var locked []int
		for len(pending) > 0 {
			if ctx.Err() != nil {
				for _, i := range pending {
					st.fail(i, rowErr(CodeCancelled, "", true, "", "not loaded: the run was cancelled"))
				}
				pending = nil
				break
			}
			c, rest, err := s.spoolChunk(st, pending, maxRows)
			if err != nil {
				return s.failBatch(st, pending, fmt.Errorf("salesforce sink: spool: %w", err))
			}
			pending = rest
			if c == nil {
				continue
			}
			lk, err := s.runChunk(ctx, st, c, attempt)
			os.Remove(c.path)
			if err != nil {
				return s.failBatch(st, append(c.rows, pending...), err)
			}
			locked = append(locked, lk...)
		}
		if attempt < retries && len(locked) > 0 && ctx.Err() == nil {
			s.log.Info("salesforce sink: re-driving rows that hit UNABLE_TO_LOCK_ROW in a smaller job",
				"rows", len(locked), "retry", attempt+1, "of", retries)
			pending = locked
		}
	}
	var re pipeline.RowErrors
	for i := range n {
		switch {
		case st.ok[i]:
		case st.errs[i] != nil:
			re.Add(i, st.errs[i])
		default:
			re.Add(i, rowErr(CodeResultMismatch, "", false, "", "no outcome was recorded for the row (a sink bug)"))
		}
	}
	if len(re.Failures) > 0 {
		return &re
	}
	return nil
}

// failBatch handles an error every later job would hit too. When nothing
// of the batch was loaded it is returned as is (the run stops); otherwise
// the rows not yet settled are reported with it so that loaded rows are not
// counted as failed, and the next Write returns it.
func (s *Sink) failBatch(st *batchState, rows []int, err error) error {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
	if st.loaded == 0 {
		return err
	}
	for _, i := range rows {
		st.fail(i, rowErr(pipeline.CodeSinkFailed, "", false, "", "%v", err))
	}
	var re pipeline.RowErrors
	for i := range st.ok {
		if !st.ok[i] {
			e := st.errs[i]
			if e == nil {
				e = rowErr(pipeline.CodeSinkFailed, "", false, "", "%v", err)
			}
			re.Add(i, e)
		}
	}
	return &re
}

// chunk is one job's worth of rows, spooled to a file.
type chunk struct {
	rows  []int // batch indices in upload order
	path  string
	bytes int64
}

// spoolChunk writes the header and as many pending rows as fit in
// max_job_bytes and maxRows to a spool file. It returns the chunk (nil if
// every candidate row was too large on its own) and the rows left.
func (s *Sink) spoolChunk(st *batchState, pending []int, maxRows int) (*chunk, []int, error) {
	f, err := os.CreateTemp(s.spool, "job-*.csv")
	if err != nil {
		return nil, nil, err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	line := s.enc.header(nil)
	hdr := int64(len(line))
	w.Write(line)
	c := &chunk{path: f.Name(), bytes: hdr}
	k := 0
	for ; k < len(pending) && len(c.rows) < maxRows; k++ {
		i := pending[k]
		line = s.enc.record(line[:0], st.cells[i])
		if hdr+int64(len(line)) > s.opts.MaxJobBytes {
			st.fail(i, rowErr(CodeRowTooLarge, "", false, "", "the encoded row is %d bytes, above max_job_bytes %d", len(line), s.opts.MaxJobBytes))
			continue
		}
		if c.bytes+int64(len(line)) > s.opts.MaxJobBytes {
			break
		}
		w.Write(line)
		c.bytes += int64(len(line))
		c.rows = append(c.rows, i)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || len(c.rows) == 0 {
		os.Remove(c.path)
		if err != nil {
			return nil, nil, err
		}
		return nil, pending[k:], nil
	}
	return c, pending[k:], nil
}
