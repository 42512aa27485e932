package salesforcesource

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

func init() {
	pipeline.DefaultRegistry().RegisterSource("salesforce", Spec, pipeline.TypedSource("salesforce source", Open))
}

// Spec describes the "salesforce" source type to the registry.
var Spec = pipeline.Spec{
	Summary: "Read a SOQL query (or an object's fields) from Salesforce as a Bulk API 2.0 query job, page by page",
	Example: `instance_url: https://acme.my.salesforce.com
auth:
  client_id: ${SF_CLIENT_ID}
  client_secret: ${SF_CLIENT_SECRET}
object: Account
fields: [Id, Name, AnnualRevenue, SystemModstamp]
all_rows: false
max_records: 50000
batch_size: 2000
`,
	NewOptions: newOptions,
}

// ErrClosed is returned by Schema, Read and Project after Close.
var ErrClosed = errors.New("salesforce source: source is closed")

// abortTimeout bounds the abort of an unfinished job at Close or cancel.
const abortTimeout = 10 * time.Second

// column is one selected field.
type column struct {
	name string // as written in the query
	typ  pipeline.Type
}

// Source reads one query job's results. It implements pipeline.Source,
// pipeline.Projector and pipeline.CursorPusher. Its methods must not be
// called concurrently.
type Source struct {
	opts  *Options
	env   *pipeline.Env
	q     *soql
	log   *slog.Logger
	ioCtx context.Context // values for connection set-up; not cancelled

	client   *salesforce.Client
	stopInst func()
	all      []column
	project  []string
	cols     []column
	schema   *pipeline.Schema
	cursor   string // the condition pushed into WHERE; "" when none

	job      string // the query job of soqlText; "" before it is created
	soqlText string
	origin   string // "salesforce:<job id>"
	complete bool   // the job reached JobComplete
	started  bool   // the first Read went past the job's wait
	page     *salesforce.QueryResultsPage
	recs     *salesforce.QueryRecords // the page's records; nil between pages
	ahead    *prefetch                // the request for the next page, or nil
	release  func()                   // ends the current page's request, once read
	rb       rowBuilder
	locator  string
	lastPage bool
	row      int64
	fetched  int64
	total    int64 // the job's numberRecordsProcessed, once complete
	eof      bool
	closed   bool
	err      error
}

// Open returns a source reading opts's query. It checks the options and
// refuses --shard (one query job has no objects to deal out); the
// connection is made by Schema. The caller must Close the source.
func Open(ctx context.Context, env *pipeline.Env, opts *Options) (*Source, error) {
	q, err := opts.soql()
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = &pipeline.Env{}
	}
	if env.Shard.Count > 1 {
		return nil, fmt.Errorf("salesforce source: --shard %s is not supported: one query job returns one result set, "+
			"which cannot be dealt out by object; run without --shard (results are already paged by max_records), "+
			"or split the query yourself with WHERE conditions in several pipelines", env.Shard)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := *opts
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxRecords == 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.PollTimeout == 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	return &Source{opts: &o, env: env, q: q, log: log, ioCtx: context.WithoutCancel(ctx)}, nil
}

// JobID returns the query job the source reads ("" before Schema).
func (s *Source) JobID() string { return s.job }

// Fetched returns how many records the source has read from the results.
func (s *Source) Fetched() int64 { return s.fetched }

// Total returns the number of records the query job returned (its
// numberRecordsProcessed), known once the first Read has waited for the
// job; 0 before.
func (s *Source) Total() int64 { return s.total }

// Project reads only names (pipeline.Projector). Before the first Read
// only; a job created for other columns is aborted and made again.
func (s *Source) Project(names []string) error {
	if s.closed {
		return ErrClosed
	}
	if s.started {
		return errors.New("salesforce source: Project after the first Read")
	}
	if err := pipeline.CheckProjection(names); err != nil {
		return fmt.Errorf("salesforce source: projection: %w", err)
	}
	if s.all != nil {
		if _, err := s.pick(names); err != nil {
			return err
		}
	}
	s.project = slices.Clone(names)
	if s.all != nil {
		s.plan()
	}
	return nil
}

// pick returns the columns named in names, in query order.
func (s *Source) pick(names []string) ([]column, error) {
	var out []column
	for _, n := range names {
		if !slices.ContainsFunc(s.all, func(c column) bool { return strings.EqualFold(c.name, n) }) {
			return nil, fmt.Errorf("salesforce source: projection: %q is not selected by the query (%s)", n, strings.Join(s.q.fields, ", "))
		}
	}
	for _, c := range s.all {
		if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(c.name, n) }) {
			out = append(out, c)
		}
	}
	return out, nil
}

// PushCursor adds "field > after (or null)" to the query's WHERE
// condition (pipeline.CursorPusher); for SystemModstamp that is
// "WHERE SystemModstamp > <watermark>". A value that cannot be written
// in SOQL is not pushed (the engine filters every row anyway).
func (s *Source) PushCursor(field string, after any) {
	t := pipeline.TypeString
	found := false
	for _, c := range s.all {
		if strings.EqualFold(c.name, field) {
			t, found = c.typ, true
		}
	}
	if !found && s.all != nil {
		s.log.Warn("salesforce source: the cursor field is not selected; not pushed into the query", "field", field)
		return
	}
	lit, err := literal(t, after)
	if err != nil {
		s.log.Warn("salesforce source: cursor not pushed into the query", "field", field, "err", err)
		return
	}
	s.cursor = "(" + field + " > " + lit + " OR " + field + " = null)"
	if s.all != nil {
		s.plan()
	}
}

// Schema describes the object (and the parents of relationship fields)
// and creates the query job, so that a bad query fails here. Columns are
// typed as in the package doc.
func (s *Source) Schema(ctx context.Context) (*pipeline.Schema, error) {
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.err != nil:
		return nil, s.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.all == nil {
		if err := s.describe(ctx); err != nil {
			return nil, s.fail(ctx, err)
		}
		s.plan()
	}
	if err := s.createJob(ctx); err != nil {
		return nil, s.fail(ctx, err)
	}
	return s.schema, nil
}

// fail records err (ctx's error when ctx ended) as the source's error.
func (s *Source) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.err = err
	return err
}

func (s *Source) connect(ctx context.Context) error {
	if s.client != nil {
		return nil
	}
	c, stop, err := salesforcesink.Connect(ctx, s.env, s.opts.Connection, s.log)
	if err != nil {
		return fmt.Errorf("salesforce source: %w", err)
	}
	s.client, s.stopInst = c, stop
	return nil
}

// describe types every selected field from the describe of its object.
func (s *Source) describe(ctx context.Context) error {
	if err := s.connect(ctx); err != nil {
		return err
	}
	descs := map[string]*salesforce.DescribeResult{}
	get := func(obj string) (*salesforce.DescribeResult, error) {
		if d := descs[strings.ToLower(obj)]; d != nil {
			return d, nil
		}
		d, err := s.client.Describe(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("salesforce source: %w", err)
		}
		descs[strings.ToLower(obj)] = d
		return d, nil
	}
	all := make([]column, 0, len(s.q.fields))
	for _, name := range s.q.fields {
		d, err := get(s.q.object)
		if err != nil {
			return err
		}
		path := strings.Split(name, ".")
		for _, rel := range path[:len(path)-1] {
			var parent *salesforce.Field
			for i := range d.Fields {
				if strings.EqualFold(d.Fields[i].RelationshipName, rel) && len(d.Fields[i].ReferenceTo) > 0 {
					parent = &d.Fields[i]
				}
			}
			if parent == nil {
				return fmt.Errorf("salesforce source: %s: %s has no relationship %q", name, d.Name, rel)
			}
			if d, err = get(parent.ReferenceTo[0]); err != nil {
				return err
			}
		}
		f, ok := d.Field(path[len(path)-1])
		if !ok {
			return fmt.Errorf("salesforce source: %s has no field %q (selected as %s); check the spelling, and the __c of custom fields", d.Name, path[len(path)-1], name)
		}
		t, err := columnType(f, d.Name)
		if err != nil {
			return fmt.Errorf("salesforce source: %w", err)
		}
		all = append(all, column{name: name, typ: t})
	}
	s.all = all
	return nil
}

// plan settles the columns, schema and query text; a job made for
// another text is dropped (aborted) so that the next one is made for it.
func (s *Source) plan() {
	s.cols = s.all
	if s.project != nil {
		s.cols, _ = s.pick(s.project)
	}
	fields := make([]pipeline.Field, len(s.cols))
	names := make([]string, len(s.cols))
	for i, c := range s.cols {
		fields[i] = pipeline.Field{Name: c.name, Type: c.typ}
		names[i] = c.name
	}
	s.schema = pipeline.MustSchema(fields...)
	text := s.q.build(names, s.cursor)
	if text != s.soqlText && s.job != "" {
		s.abort("the query changed before the first read (projection or cursor)")
		s.job = ""
	}
	s.soqlText = text
}

// Query returns the SOQL the job runs (after Schema).
func (s *Source) Query() string { return s.soqlText }

func (s *Source) createJob(ctx context.Context) error {
	if s.job != "" {
		return nil
	}
	op := salesforce.OpQuery
	if s.opts.AllRows {
		op = salesforce.OpQueryAll
	}
	info, err := s.client.CreateQueryJob(ctx, salesforce.CreateQueryJobRequest{Operation: op, Query: s.soqlText})
	if err != nil {
		return fmt.Errorf("salesforce source: query %q: %w", s.soqlText, err)
	}
	s.job, s.complete = info.ID, false
	s.origin = "salesforce:" + info.ID
	s.log.Info("salesforce source: query job created", "job", info.ID, "operation", op, "query", s.soqlText)
	return nil
}

// abort aborts the job when it has not completed, best effort (the job
// ends by itself on Salesforce's side anyway).
func (s *Source) abort(why string) {
	if s.job == "" || s.complete || s.client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ioCtx, abortTimeout)
	defer cancel()
	if _, err := s.client.AbortQueryJob(ctx, s.job); err != nil {
		if info, ierr := s.client.QueryJob(ctx, s.job); ierr == nil && info.State.Terminal() {
			s.log.Debug("salesforce source: the query job had already finished", "job", s.job, "state", info.State, "why", why)
			return
		}
		s.log.Warn("salesforce source: could not abort the query job", "job", s.job, "why", why, "err", err)
		return
	}
	s.log.Info("salesforce source: query job aborted", "job", s.job, "why", why)
}

// Read returns the next batch of at most batch_size rows, fetching the
// next results page when the current one is read out.
func (s *Source) Read(ctx context.Context) (*pipeline.Batch, error) {
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.err != nil:
		return nil, s.err
	case s.eof:
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		s.abort("the read was cancelled")
		return nil, err
	}
	if s.schema == nil || s.job == "" {
		if _, err := s.Schema(ctx); err != nil {
			return nil, err
		}
	}
	if !s.started {
		s.started = true
		if err := s.wait(ctx); err != nil {
			return nil, err
		}
	}
	b := pipeline.NewBatch(s.schema, s.opts.BatchSize)
	s.rb.reset(s.opts.BatchSize, len(s.cols), b)
	for b.Settled() < s.opts.BatchSize {
		if b.Settled()%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if s.recs == nil {
			if s.lastPage {
				s.eof = true
				break
			}
			if err := s.nextPage(ctx); err != nil {
				return nil, s.fail(ctx, err)
			}
		}
		rec, _, err := s.recs.Read()
		if err == io.EOF {
			s.closePage()
			continue
		}
		if err != nil {
			return nil, s.fail(ctx, fmt.Errorf("salesforce source: job %s: results page after record %d: %w; run again "+
				"(the job's results stay for 7 days)", s.job, s.row, err))
		}
		s.row++
		s.fetched++
		s.convert(b, rec)
	}
	if b.Settled() == 0 {
		return nil, io.EOF
	}
	return b, nil
}

// convert appends rec to b as a row, or as a drop naming the bad fields.
func (s *Source) convert(b *pipeline.Batch, rec []string) {
	origin := pipeline.Origin{Object: s.origin, Row: s.row}
	row := s.rb.row()
	var bad, badField []string
	for i, c := range s.cols {
		v, err := parseValue(&s.rb, c.typ, rec[i])
		if err != nil {
			bad = append(bad, c.name+": "+err.Error())
			badField = append(badField, c.name)
			continue
		}
		row[i] = v
	}
	if bad != nil {
		s.rb.unrow(row)
		var raw strings.Builder
		w := csv.NewWriter(&raw)
		w.Write(rec)
		w.Flush()
		b.Drop(pipeline.Drop{Origin: origin, Raw: strings.TrimSuffix(raw.String(), "\n"), Err: &pipeline.RowError{
			Origin: origin, Code: CodeBadValue, Field: strings.Join(badField, ";"), Ref: s.job,
			Err: errors.New(strings.Join(bad, "; ") + " (Salesforce returned a value its describe does not type so)")}})
		return
	}
	b.Append(row, origin)
}

// wait waits for the job to complete; on cancellation it aborts it.
func (s *Source) wait(ctx context.Context) error {
	info, err := s.client.WaitQueryJob(ctx, s.job, &salesforce.PollOptions{
		Initial: s.opts.PollInitial, Max: s.opts.PollMax, Timeout: s.opts.PollTimeout})
	if err != nil {
		if ctx.Err() != nil {
			s.abort("the read was cancelled while the job ran")
			return ctx.Err()
		}
		if info != nil && info.State == salesforce.StateFailed {
			s.complete = true
		} else {
			s.abort("waiting for the job failed")
		}
		return s.fail(ctx, fmt.Errorf("salesforce source: query job %s (%s): %w", s.job, s.soqlText, err))
	}
	s.complete, s.total = true, info.NumberRecordsProcessed
	if info.State != salesforce.StateJobComplete {
		why := info.ErrorMessage
		if why == "" {
			why = "Salesforce gives no reason for a failed query job"
		}
		return s.fail(ctx, fmt.Errorf("salesforce source: query job %s (%s) ended %s after %d records: %s; check the query, "+
			"the object's size and the org's query limits, then run again", s.job, s.soqlText, info.State, info.NumberRecordsProcessed, why))
	}
	s.log.Info("salesforce source: query job complete", "job", s.job, "records", info.NumberRecordsProcessed)
	return nil
}

// nextPage fetches the next results page and checks its header.
func (s *Source) nextPage(ctx context.Context) error {
	var p *salesforce.QueryResultsPage
	var err error
	if s.ahead != nil {
		pf := s.ahead
		s.ahead = nil
		if p, err = pf.wait(ctx); err == nil {
			// The page's request outlives the Read that made it: tie it
			// to this Read's context from now on.
			stop := context.AfterFunc(ctx, pf.cancel)
			s.release = func() { stop(); pf.cancel() }
		}
	} else {
		p, err = s.client.QueryResults(ctx, s.job, s.locator, s.opts.MaxRecords)
	}
	if err != nil {
		return fmt.Errorf("salesforce source: %w", err)
	}
	s.page, s.locator, s.lastPage = p, p.NextLocator, p.NextLocator == ""
	if !s.lastPage {
		s.ahead = s.fetchAhead(p.NextLocator)
	}
	s.recs = salesforce.NewQueryRecords(p.Body, salesforce.DelimiterComma)
	header, err := s.recs.Header()
	if err == io.EOF { // a 0-byte page: no rows
		s.closePage()
		return nil
	}
	if err != nil {
		s.closePage()
		return fmt.Errorf("salesforce source: job %s: results header: %w", s.job, err)
	}
	for i := range max(len(header), len(s.cols)) {
		if len(header) != len(s.cols) || !strings.EqualFold(header[i], s.cols[i].name) {
			s.closePage()
			return fmt.Errorf("salesforce source: job %s: results header %q does not match the selected fields %q", s.job, header, s.schema.Names())
		}
	}
	s.log.Info("salesforce source: results page", "job", s.job, "records", p.NumberOfRecords, "fetched", s.fetched)
	return nil
}

func (s *Source) closePage() {
	if s.page != nil {
		s.page.Body.Close()
	}
	if s.release != nil {
		s.release()
	}
	s.page, s.recs, s.release = nil, nil, nil
}

// Close aborts an unfinished job, releases the results page and stops an
// opened emulator. It is idempotent.
func (s *Source) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.closePage()
	if s.ahead != nil {
		s.ahead.stop()
		s.ahead = nil
	}
	if !s.eof {
		s.abort("the source was closed before the end")
	}
	if s.stopInst != nil {
		s.stopInst()
	}
	return nil
}

// prefetch is the request for the next results page, sent while the
// current page is read, so that Salesforce prepares the page (and the
// network carries its first bytes) while the source parses. Only the
// response's headers and what the connection buffers are read ahead: the
// body streams when the source reads it, so memory stays one page's
// stream (plus socket buffers), not two pages.
type prefetch struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the request has returned
	page   *salesforce.QueryResultsPage
	err    error
}

// fetchAhead starts the request for the page at locator. The source owns
// the goroutine: nextPage takes its result, Close stops it.
func (s *Source) fetchAhead(locator string) *prefetch {
	ctx, cancel := context.WithCancel(s.ioCtx)
	pf := &prefetch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(pf.done)
		pf.page, pf.err = s.client.QueryResults(ctx, s.job, locator, s.opts.MaxRecords)
	}()
	return pf
}

// wait returns the prefetched page, or ctx's error (stopping the request)
// when ctx ends first.
func (pf *prefetch) wait(ctx context.Context) (*salesforce.QueryResultsPage, error) {
	select {
	case <-pf.done:
		return pf.page, pf.err
	case <-ctx.Done():
		pf.stop()
		return nil, ctx.Err()
	}
}

// stop cancels the request, waits for its goroutine and closes a page it
// got.
func (pf *prefetch) stop() {
	pf.cancel()
	<-pf.done
	if pf.page != nil {
		pf.page.Body.Close()
	}
}
