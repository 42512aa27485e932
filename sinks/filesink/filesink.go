// Package filesink writes rows to one CSV or JSON Lines object at any
// location blobio accepts (local path, file://, mem://, s3://, gs://,
// azblob://). It is registered as the sink types "csv" and "jsonl", and it is
// also what the engine writes dead letters with (see OpenCSV).
//
// The object becomes visible only when Close succeeds: until then it is a
// temporary file (file://) or an unfinished upload. A failed Write aborts it.
// Cancelling the run does not abort it: the engine closes sinks with a
// context that outlives cancellation so that rows counted as loaded are the
// rows in the file.
//
// # Options
//
//	url:         where to write (required), e.g. "out/accounts.csv";
//	             placeholders {run_id} (the run's id) and {date} (the run's
//	             UTC start date, 2006-01-02) name each run's object, e.g.
//	             "out/{date}/accounts-{run_id}.csv.gz"; a key ending in
//	             ".gz" is gzip-compressed
//	delimiter:   CSV field delimiter, one character (default ",")
//	header:      write a header row (CSV; default true)
//	line_ending: "LF" (default) or "CRLF" (CSV)
//	escape_formulas: prefix ' to text cells (and header names) that start
//	             with =, +, -, @, tab or CR, so a spreadsheet opening the
//	             file shows them instead of evaluating them as formulas
//	             (CSV; default false: the file then holds the values
//	             exactly, as replay and other programs need)
//
// # Output
//
// CSV cells are the values' text (pipeline.AppendValue); a cell is quoted
// when it holds the delimiter, a quote, CR or LF, or starts with a space;
// quotes are doubled. Null is an empty cell. Cell bytes are written exactly:
// CRLF inside a value stays CRLF. JSON Lines writes one object per row with
// keys in schema order; null is null, numbers and booleans are JSON numbers
// and booleans, times (and NaN, ±Inf) are strings of the same text.
//
// # Errors
//
// Opening fails when the location is a pattern or a prefix, names an unknown
// {placeholder}, or its bucket cannot be opened. Write errors are storage errors and fail the whole batch.
package filesink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// Options configures a file sink.
type Options struct {
	URL        string `yaml:"url"`
	Delimiter  string `yaml:"delimiter"`
	Header     *bool  `yaml:"header"`
	LineEnding string `yaml:"line_ending"`
	// EscapeFormulas prefixes ' to text cells starting with =, +, -, @,
	// tab or CR (CSV only; see the package doc).
	EscapeFormulas bool `yaml:"escape_formulas"`
}

// Validate checks the options without I/O.
func (o *Options) Validate() error {
	if o.URL == "" {
		return errors.New("url is required: where to write, e.g. url: out/accounts.csv")
	}
	if _, err := ExpandURL(o.URL, nil); err != nil {
		return err
	}
	if o.Delimiter != "" && (utf8.RuneCountInString(o.Delimiter) != 1 || strings.ContainsAny(o.Delimiter, "\"\r\n")) {
		return fmt.Errorf("delimiter %q must be one character other than a quote, CR or LF", o.Delimiter)
	}
	switch strings.ToUpper(o.LineEnding) {
	case "", "LF", "CRLF":
	default:
		return fmt.Errorf("line_ending %q must be LF or CRLF", o.LineEnding)
	}
	return nil
}

func init() {
	reg := pipeline.DefaultRegistry()
	reg.RegisterSink("csv", pipeline.Spec{
		Summary:    "Write rows as CSV to a file or blob URL",
		Example:    "url: out/accounts.csv\ndelimiter: \",\"\nheader: true\nline_ending: LF\n",
		NewOptions: func() any { return &Options{} },
	}, pipeline.TypedSink("csv sink", func(ctx context.Context, env *pipeline.Env, o *Options, in *pipeline.Schema) (*Sink, error) {
		return openFromOptions(ctx, env, o, in, formatCSV)
	}))
	reg.RegisterSink("jsonl", pipeline.Spec{
		Summary:    "Write rows as JSON Lines to a file or blob URL",
		Example:    "url: out/accounts.jsonl\n",
		NewOptions: func() any { return &Options{} },
	}, pipeline.TypedSink("jsonl sink", func(ctx context.Context, env *pipeline.Env, o *Options, in *pipeline.Schema) (*Sink, error) {
		if o.EscapeFormulas {
			return nil, errors.New("escape_formulas is a CSV option: JSON Lines has no formulas to escape; remove it")
		}
		return openFromOptions(ctx, env, o, in, formatJSONL)
	}))
}

type format int

const (
	formatCSV format = iota
	formatJSONL
)

func openFromOptions(ctx context.Context, env *pipeline.Env, o *Options, in *pipeline.Schema, f format) (*Sink, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	u, err := ExpandURL(o.URL, env)
	if err != nil {
		return nil, err
	}
	loc, err := blobio.Parse(env.BaseDir, u)
	if err != nil {
		return nil, err
	}
	blobio.CleanStaleTemps(env.Logger, "file sink", loc)
	return open(ctx, loc, in, o, f)
}

// placeholder matches a {name} in a sink URL.
var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// expandURL replaces {run_id} and {date} (2006-01-02 of date) in a sink URL.
// Any other {name} is an error: a typo must not become part of a path.
func expandURL(u, runID string, date time.Time) (string, error) {
	var bad error
	out := placeholder.ReplaceAllStringFunc(u, func(m string) string {
		switch m {
		case "{run_id}":
			if runID == "" && bad == nil {
				bad = fmt.Errorf("url %q uses {run_id} but the run has no id", u)
			}
			return runID
		case "{date}":
			return date.UTC().Format(time.DateOnly)
		}
		if bad == nil {
			bad = fmt.Errorf("url %q: unknown placeholder %s; sink URLs accept {run_id} and {date}", u, m)
		}
		return m
	})
	return out, bad
}

// ExpandURL replaces the {run_id} and {date} placeholders of a sink URL
// for the run env describes, as the csv and jsonl sinks do: every sink that
// writes objects names them this way. With a nil env it only checks the
// placeholders (for Validate). Any other {name} is an error.
func ExpandURL(u string, env *pipeline.Env) (string, error) {
	if env == nil {
		return expandURL(u, "run", time.Time{})
	}
	return expandURL(u, env.RunID, runDate(env.RunID, time.Now()))
}

// runDate is the UTC date a run started: read from its id (NewRunID's
// 20060102T150405Z prefix) so that a resumed run writes to the same
// object, else now.
func runDate(runID string, now time.Time) time.Time {
	if len(runID) >= 16 {
		if t, err := time.Parse("20060102T150405Z", runID[:16]); err == nil {
			return t
		}
	}
	return now.UTC()
}

// OpenCSV opens a CSV sink writing rows of schema to loc. A nil opts means
// defaults. The engine's dead letters are written with it.
func OpenCSV(ctx context.Context, loc blobio.Location, schema *pipeline.Schema, opts *Options) (*Sink, error) {
	if opts == nil {
		opts = &Options{}
	}
	return open(ctx, loc, schema, opts, formatCSV)
}

// OpenJSONL opens a JSON Lines sink writing rows of schema to loc.
func OpenJSONL(ctx context.Context, loc blobio.Location, schema *pipeline.Schema) (*Sink, error) {
	return open(ctx, loc, schema, &Options{}, formatJSONL)
}

// Sink writes rows to one object. Write and Close may be called from several
// goroutines; writes are serialised.
type Sink struct {
	mu     sync.Mutex
	w      *blobio.Writer
	gz     *gzip.Writer // between buf and w for ".gz" keys, else nil
	buf    *bufio.Writer
	schema *pipeline.Schema
	format format
	delim  byte
	delimS string
	escape bool // escape_formulas
	eol    string
	keys   [][]byte // JSON-encoded keys with colon, for JSONL
	line   []byte
	failed error
	closed bool
}

func open(ctx context.Context, loc blobio.Location, schema *pipeline.Schema, o *Options, f format) (*Sink, error) {
	// The writer outlives cancellation of ctx: the engine decides when to
	// commit (Close) or discard (a failed Write).
	w, err := blobio.NewWriter(context.WithoutCancel(ctx), loc)
	if err != nil {
		return nil, err
	}
	s := &Sink{w: w, schema: schema, format: f, delimS: ",", eol: "\n"}
	if strings.HasSuffix(loc.Key, ".gz") {
		s.gz = gzip.NewWriter(w)
		s.buf = bufio.NewWriterSize(s.gz, 1<<20)
	} else {
		s.buf = bufio.NewWriterSize(w, 1<<20)
	}
	if o.Delimiter != "" {
		s.delimS = o.Delimiter
	}
	s.delim = s.delimS[0]
	if strings.EqualFold(o.LineEnding, "CRLF") {
		s.eol = "\r\n"
	}
	s.escape = o.EscapeFormulas && f == formatCSV
	switch f {
	case formatCSV:
		if o.Header == nil || *o.Header {
			s.line = s.line[:0]
			for i, n := range schema.Names() {
				if i > 0 {
					s.line = append(s.line, s.delimS...)
				}
				s.line = s.appendCell(s.line, s.escapeFormula([]byte(n), true))
			}
			s.line = append(s.line, s.eol...)
			if _, err := s.buf.Write(s.line); err != nil {
				return nil, w.Fail(err)
			}
		}
	case formatJSONL:
		for _, n := range schema.Names() {
			k, _ := json.Marshal(n)
			s.keys = append(s.keys, append(k, ':'))
		}
	}
	return s, nil
}

// escapeFormula returns cell with a ' in front when escape_formulas is on,
// the cell is text (not a number, date or decimal bulkflow formatted) and
// it starts with a character spreadsheets read as the start of a formula.
func (s *Sink) escapeFormula(cell []byte, text bool) []byte {
	if !s.escape || !text || len(cell) == 0 {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return append([]byte{'\''}, cell...)
	}
	return cell
}

// needsQuote reports whether a CSV cell must be quoted.
func (s *Sink) needsQuote(b []byte) bool {
	if len(b) > 0 && b[0] == ' ' {
		return true
	}
	for _, c := range b {
		if c == '"' || c == '\n' || c == '\r' || c == s.delim {
			return true
		}
	}
	if len(s.delimS) > 1 { // multi-byte delimiter
		return strings.Contains(string(b), s.delimS)
	}
	return false
}

func (s *Sink) appendCell(dst, cell []byte) []byte {
	if !s.needsQuote(cell) {
		return append(dst, cell...)
	}
	dst = append(dst, '"')
	for _, c := range cell {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// Write appends the batch's rows.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return errors.New("write after close")
	}
	if err := ctx.Err(); err != nil {
		// Nothing of this batch is written; rows written before stay and
		// are committed by Close.
		return err
	}
	var cell []byte
	for i := range b.Len() {
		row := b.Row(i)
		s.line = s.line[:0]
		switch s.format {
		case formatCSV:
			for j, v := range row {
				if j > 0 {
					s.line = append(s.line, s.delimS...)
				}
				t := s.schema.Field(j).Type
				cell = pipeline.AppendValue(cell[:0], t, v)
				_, text := v.(string)
				s.line = s.appendCell(s.line, s.escapeFormula(cell, text && t != pipeline.TypeDecimal))
			}
			s.line = append(s.line, s.eol...)
		case formatJSONL:
			s.line = append(s.line, '{')
			for j, v := range row {
				if j > 0 {
					s.line = append(s.line, ',')
				}
				s.line = append(s.line, s.keys[j]...)
				s.line = appendJSON(s.line, s.schema.Field(j).Type, v)
			}
			s.line = append(s.line, '}', '\n')
		}
		if _, err := s.buf.Write(s.line); err != nil {
			s.failed = s.w.Fail(err)
			return s.failed
		}
	}
	return nil
}

// ReleasesRows implements pipeline.RowReleaser: Write encodes every row
// into its buffer before it returns and keeps none.
func (s *Sink) ReleasesRows() bool { return true }

// appendJSON appends v, of declared type t, as a JSON value: numbers and
// booleans as such, anything else (and NaN, ±Inf, which JSON has no number
// for) as a string of pipeline.AppendValue's text.
func appendJSON(dst []byte, t pipeline.Type, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case int64, int, bool:
		return pipeline.AppendText(dst, x)
	case float64:
		if b, err := json.Marshal(x); err == nil {
			return append(dst, b...)
		}
	}
	b, _ := json.Marshal(string(pipeline.AppendValue(nil, t, v)))
	return append(dst, b...)
}

// Close flushes and commits the object, unless a Write failed, in which case
// the object is discarded. It is idempotent.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.failed != nil {
		return s.failed // the writer was discarded by Fail
	}
	err := s.buf.Flush()
	if err == nil && s.gz != nil {
		err = s.gz.Close() // writes the gzip trailer
	}
	if err != nil {
		return s.w.Fail(err)
	}
	return s.w.Close()
}

// Location returns where the sink writes.
func (s *Sink) Location() blobio.Location { return s.w.Location() }

// Interface guards.
var (
	_ pipeline.Sink      = (*Sink)(nil)
	_ pipeline.Validator = (*Options)(nil)
)

// DeadLetters opens dead-letter files as CSV objects; it is the
// pipeline.DeadLetterOpener every bulkflow command passes to Plan.Run.
func DeadLetters(ctx context.Context, loc blobio.Location, schema *pipeline.Schema) (pipeline.Sink, error) {
	return OpenCSV(ctx, loc, schema, nil)
}

var _ pipeline.DeadLetterOpener = DeadLetters
