package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

var _ pipeline.KeyResolver = (*Sink)(nil)

// Bounds of one ResolveKeys query. Salesforce takes SOQL statements of up
// to 100,000 characters (older API versions and docs: 20,000) and strings
// of up to 4,000 characters in a WHERE clause. A query of at most
// resolveMaxKeys keys and resolveMaxChars bytes (at least as many as its
// characters) stays inside the older limit, whatever the org, and its
// results (one record per key, unless a value is held several times) fit
// the first results page. Typical external ids (10-40 characters) put
// 300 keys in 5,000-15,000 characters; 10,000 keys (the engine's delete
// batch) take 34 query jobs.
const (
	resolveMaxKeys  = 300
	resolveMaxChars = 20000
	// maxLiteralChars is the longest string SOQL takes in a WHERE clause.
	// No field that can be filtered on holds a longer value (a Text field
	// holds at most 255 characters; long text areas cannot be filtered):
	// a longer key is held by no record.
	maxLiteralChars = 4000
)

// ResolveKeys returns, for each key, the ids of the records of the sink's
// object whose field holds it: none, one or several (pipeline.KeyResolver,
// for a mirror's missing keys whose record id is not known). It runs Bulk
// API 2.0 query jobs `SELECT Id, FIELD FROM OBJECT WHERE FIELD IN (...)`
// of up to resolveMaxKeys keys each, at most concurrency at once, with the
// sink's client and polling options; the jobs are deleted after their
// results are read when delete_jobs is set. Salesforce compares text
// case-insensitively, so a record is matched to the key it equals, or
// else to every key it equals ignoring case. A record that matches no key
// is an error (nothing is then taken as not found), and so is any failed
// query: a nil error means every key was looked up.
func (s *Sink) ResolveKeys(ctx context.Context, field string, keys []string) ([][]string, error) {
	if !isAPIName(field) {
		return nil, fmt.Errorf("salesforce sink: cannot look %s records up by %q: not a field API name (letters, digits and underscores)", s.opts.Object, field)
	}
	if strings.EqualFold(field, "Id") {
		return nil, errors.New("salesforce sink: the key is the record Id: there is nothing to look up")
	}
	if !isAPIName(s.opts.Object) {
		return nil, fmt.Errorf("salesforce sink: cannot query object %q: not an object API name (letters, digits and underscores)", s.opts.Object)
	}
	if s.limitHit.Load() {
		return nil, errors.New("salesforce sink: no query was made: Salesforce refused earlier requests with REQUEST_LIMIT_EXCEEDED (the org's API request limit)")
	}
	// A Number field's values are compared as numbers and written
	// without quotes (Salesforce refuses a quoted value there).
	d, err := s.objectDescribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("salesforce sink: look %s records up by %s: %w", s.opts.Object, field, err)
	}
	f, ok := d.Field(field)
	if !ok {
		return nil, fmt.Errorf("salesforce sink: look %s records up by %s: the object has no such field", s.opts.Object, field)
	}
	numeric := isNumberType(f.Type)
	out := make([][]string, len(keys))
	queries := resolveQueries(s.opts.Object, field, keys, numeric)
	if len(queries) == 0 {
		return out, nil
	}
	// Each query's keys are its own: the goroutines write disjoint
	// entries of out.
	g, qctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, s.opts.Concurrency))
	for _, q := range queries {
		g.Go(func() error { return s.runResolveQuery(qctx, q, keys, numeric, out) })
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("salesforce sink: look %s records up by %s: %w", s.opts.Object, field, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("salesforce sink: look %s records up by %s: %w", s.opts.Object, field, err)
	}
	found := 0
	for _, ids := range out {
		if len(ids) > 0 {
			found++
		}
	}
	s.log.Info("salesforce sink: keys looked up", "object", s.opts.Object, "field", field, "keys", len(keys), "found", found, "queries", len(queries))
	return out, nil
}

// resolveQuery is one query of ResolveKeys: its SOQL and the indexes of
// the keys it asks for.
type resolveQuery struct {
	soql string
	keys []int
}

// resolveQueries cuts keys into queries of object by field within the
// bounds above. Empty keys, and keys longer than maxLiteralChars, are in
// none: no record holds them (an empty string is null in SOQL). For a
// numeric field each key is written as a number (numberKey), and a key
// that is not one is in none either: the field cannot hold it.
func resolveQueries(object, field string, keys []string, numeric bool) []*resolveQuery {
	prefix := "SELECT Id, " + field + " FROM " + object + " WHERE " + field + " IN ("
	var out []*resolveQuery
	var b strings.Builder
	var idx []int
	flush := func() {
		if len(idx) > 0 {
			b.WriteByte(')')
			out = append(out, &resolveQuery{soql: b.String(), keys: idx})
		}
		b.Reset()
		idx = nil
	}
	for i, k := range keys {
		if k == "" || utf8.RuneCountInString(k) > maxLiteralChars {
			continue
		}
		lit := soqlString(k)
		if numeric {
			var ok bool
			if lit, ok = numberKey(k); !ok {
				continue
			}
		}
		if len(idx) > 0 && (len(idx) >= resolveMaxKeys || b.Len()+2+len(lit)+1 > resolveMaxChars) {
			flush()
		}
		if len(idx) == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(", ")
		}
		b.WriteString(lit)
		idx = append(idx, i)
	}
	flush()
	return out
}

// soqlEscaper writes text as the inside of a SOQL string literal: a
// backslash before ' and \, and the escape sequences SOQL defines for
// line breaks, tabs, backspace and form feed (as the salesforce source
// writes its cursor values).
var soqlEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\b", `\b`, "\f", `\f`)

// soqlString returns s as a quoted SOQL string literal.
func soqlString(s string) string { return "'" + soqlEscaper.Replace(s) + "'" }

// isNumberType reports whether a describe field type holds numbers.
func isNumberType(typ string) bool {
	switch typ {
	case "int", "long", "double", "currency", "percent":
		return true
	}
	return false
}

// numberKey returns key as a SOQL number literal in its canonical form
// (no exponent, no leading or trailing zeros: "0042.50" is 42.5), and
// whether key is a number at all.
func numberKey(key string) (string, bool) {
	d, err := decimal.NewFromString(strings.TrimSpace(key))
	if err != nil {
		return "", false
	}
	return d.String(), true
}

// isAPIName reports whether s is a plain Salesforce API name: a letter,
// then letters, digits and underscores (Account, External_Id__c,
// ns__Field__c).
func isAPIName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// runResolveQuery runs q as a query job and adds the id of every record
// it returns to out, at the index of the key the record matches.
func (s *Sink) runResolveQuery(ctx context.Context, q *resolveQuery, keys []string, numeric bool, out [][]string) error {
	info, err := s.client.CreateQueryJob(ctx, salesforce.CreateQueryJobRequest{Operation: salesforce.OpQuery, Query: q.soql})
	if err != nil {
		if errors.Is(err, salesforce.ErrRequestLimit) {
			s.limitHit.Store(true) // no request more: it would be refused too
		}
		return err
	}
	job := info.ID
	s.log.Debug("salesforce sink: query job created to look keys up", "job", job, "keys", len(q.keys))
	end, err := s.client.WaitQueryJob(ctx, job, &salesforce.PollOptions{Initial: s.opts.PollInitial, Max: s.opts.PollMax,
		Timeout: s.opts.PollTimeout, Failures: maxFailedPolls})
	if err != nil {
		if end == nil || !end.State.Terminal() {
			s.abortQuery(ctx, job)
		}
		return fmt.Errorf("query job %s: %w", job, err)
	}
	defer s.dropQuery(ctx, job)
	if end.State != salesforce.StateJobComplete {
		why := end.ErrorMessage
		if why == "" {
			why = "Salesforce gives no reason for a failed query job"
		}
		return fmt.Errorf("query job %s ended %s after %d records: %s", job, end.State, end.NumberRecordsProcessed, why)
	}
	m := newKeyMatcher(keys, q.keys, numeric)
	for locator, first := "", true; first || locator != ""; first = false {
		p, err := s.client.QueryResults(ctx, job, locator, 0)
		if err != nil {
			return err
		}
		err = m.page(p.Body, out)
		p.Body.Close()
		if err != nil {
			return fmt.Errorf("query job %s: %w", job, err)
		}
		locator = p.NextLocator
	}
	return nil
}

// abortQuery aborts an unfinished query job, best effort (it ends by
// itself on Salesforce's side anyway).
func (s *Sink) abortQuery(ctx context.Context, job string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if _, err := s.client.AbortQueryJob(actx, job); err != nil {
		s.log.Debug("salesforce sink: could not abort the query job", "job", job, "err", err)
	}
}

// dropQuery deletes a finished query job and its results when delete_jobs
// is set, best effort.
func (s *Sink) dropQuery(ctx context.Context, job string) {
	if !s.opts.DeleteJobs {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := s.client.DeleteQueryJob(dctx, job); err != nil && !errors.Is(err, salesforce.ErrNotFound) {
		s.log.Debug("salesforce sink: could not delete the query job", "job", job, "err", err)
	}
}

// keyMatcher matches the records of one query to the keys it asked for.
type keyMatcher struct {
	keys    []string
	idx     []int            // the query's keys, as indexes into keys
	folded  map[string][]int // lower-cased key (numeric: numberKey) → indexes into keys
	numeric bool
}

func newKeyMatcher(keys []string, idx []int, numeric bool) *keyMatcher {
	m := &keyMatcher{keys: keys, idx: idx, folded: make(map[string][]int, len(idx)), numeric: numeric}
	for _, i := range idx {
		f := m.fold(keys[i])
		m.folded[f] = append(m.folded[f], i)
	}
	return m
}

// fold is the form in which a key and a record's value match: a number's
// canonical form for a numeric field (Salesforce may write 42 as 42.0),
// else lower case.
func (m *keyMatcher) fold(v string) string {
	if m.numeric {
		if n, ok := numberKey(v); ok {
			return n
		}
	}
	return strings.ToLower(v)
}

// page reads one results page (header "Id" and the key field, in either
// order) and adds each record's id to out at the keys it matches.
func (m *keyMatcher) page(body io.Reader, out [][]string) error {
	recs := salesforce.NewQueryRecords(body, salesforce.DelimiterComma)
	header, err := recs.Header()
	if err == io.EOF { // a 0-byte page: no records
		return nil
	}
	if err != nil {
		return err
	}
	idCol, keyCol := -1, -1
	for i, h := range header {
		if strings.EqualFold(h, "Id") {
			idCol = i
		} else {
			keyCol = i
		}
	}
	if len(header) != 2 || idCol < 0 || keyCol < 0 {
		return fmt.Errorf("results header %q lacks the Id or key column", header)
	}
	for {
		rec, line, err := recs.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		matched := m.match(rec[keyCol])
		if len(matched) == 0 {
			return fmt.Errorf("results line %d: a record with value %q matches none of the keys asked for", line, rec[keyCol])
		}
		id := strings.Clone(rec[idCol])
		for _, i := range matched {
			out[i] = append(out[i], id)
		}
	}
}

// match returns the indexes of the keys value matches: the keys equal to
// it if any, else those equal to it ignoring case.
func (m *keyMatcher) match(value string) []int {
	cands := m.folded[m.fold(value)]
	if m.numeric {
		return cands // every key of a number is that number
	}
	if len(cands) == 0 { // case folding that lower-casing misses
		for _, i := range m.idx {
			if strings.EqualFold(m.keys[i], value) {
				cands = append(cands, i)
			}
		}
	}
	for _, i := range cands {
		if m.keys[i] == value {
			if len(cands) == 1 {
				return cands
			}
			var exact []int
			for _, j := range cands {
				if m.keys[j] == value {
					exact = append(exact, j)
				}
			}
			return exact
		}
	}
	return cands
}
