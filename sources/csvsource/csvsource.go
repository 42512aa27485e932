package csvsource

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

func init() {
	pipeline.DefaultRegistry().RegisterSource("csv", Spec, open)
}

// Spec describes the "csv" source type to the registry.
var Spec = pipeline.Spec{
	Summary: "Read CSV objects (local files or blob URLs, globs and .gz allowed)",
	Example: `url: data/accounts-*.csv.gz
delimiter: ","
header: true
columns:
  AnnualRevenue: decimal
  NumberOfEmployees: int
  CreatedDate: timestamp
null_values: ["NULL", "\\N"]
on_error: dead_letter
batch_size: 1024
`,
	NewOptions: newOptions,
}

func open(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) {
	o, ok := opts.(*Options)
	if !ok {
		return nil, fmt.Errorf("csv: options are %T, want *csvsource.Options", opts)
	}
	return Open(ctx, env, o)
}

// ErrClosed is returned by Schema and Read after Close.
var ErrClosed = errors.New("csv: source is closed")

// Source reads rows from CSV objects. It implements pipeline.Source. Its
// methods must not be called concurrently.
type Source struct {
	cfg      *config
	loc      blobio.Location
	ioCtx    context.Context // bounds every object reader; cancelled by Close
	ioCancel context.CancelFunc
	shard    pipeline.Shard
	log      *slog.Logger

	schema  *pipeline.Schema
	types   []pipeline.Type
	header  []string        // the first object's header (nil without header)
	objects []blobio.Object // every object the URL names, sorted by key
	next    int             // index in objects of the next object to open
	cur     *object         // the object being read, nil between objects
	rr      *recordReader
	bb      batchBuilder // the values of the batch being read
	err     error        // sticky error returned by every later Read
	eof     bool
	closed  bool
}

// object is one open object.
type object struct {
	name string // as users see it
	idx  int    // index in Source.objects
	rc   io.ReadCloser
	gz   *gzip.Reader
	row  int64 // records read so far (header excluded)
}

func (o *object) close() error {
	var err error
	if o.gz != nil {
		err = o.gz.Close()
	}
	if cerr := o.rc.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open returns a source reading the objects opts.URL names, resolved against
// env.BaseDir (env may be nil). With env.Shard set, only the objects the
// shard keeps (by index in the sorted listing) are read; the schema still
// comes from the first object of the whole listing. It checks the options
// but does no I/O: a missing object is reported by Schema or Read. The
// caller must Close the source. ctx's values (not its cancellation) are kept
// for object reads.
func Open(ctx context.Context, env *pipeline.Env, opts *Options) (*Source, error) {
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	var base string
	var shard pipeline.Shard
	log := slog.New(slog.DiscardHandler)
	if env != nil {
		base, shard = env.BaseDir, env.Shard
		if env.Logger != nil {
			log = env.Logger
		}
	}
	if shard.Count > 1 && (shard.Index < 0 || shard.Index >= shard.Count) {
		return nil, fmt.Errorf("csv: shard %d/%d: the index must be from 0 to %d", shard.Index, shard.Count, shard.Count-1)
	}
	loc, err := blobio.Parse(base, opts.URL)
	if err != nil {
		return nil, fmt.Errorf("csv: url: %w", err)
	}
	ioCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Source{cfg: cfg, loc: loc, ioCtx: ioCtx, ioCancel: cancel, shard: shard, log: log}, nil
}

// Schema returns the columns: the header of the first object (in order,
// typed by Options.Columns), or Options.Columns when there is no header. The
// first call lists the objects and reads the first header.
func (s *Source) Schema(ctx context.Context) (*pipeline.Schema, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if s.schema != nil {
		return s.schema, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, s.ioCancel)
	defer stop()
	sch, err := s.loadSchema(ctx)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		s.err = err
		return nil, err
	}
	s.schema = sch
	return sch, nil
}

func (s *Source) loadSchema(ctx context.Context) (*pipeline.Schema, error) {
	objs, err := blobio.List(s.ioCtx, s.loc)
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	s.objects = objs
	if s.shard.Count > 1 {
		s.log.Info("csv: this shard reads its part of the objects", "url", s.loc.String(), "shard", s.shard.String(), "objects", s.shard.Kept(len(objs)), "of", len(objs))
	}
	if !s.cfg.header {
		s.types = make([]pipeline.Type, len(s.cfg.order))
		for i, f := range s.cfg.order {
			s.types[i] = f.Type
		}
		return pipeline.NewSchema(s.cfg.order...)
	}
	if err := s.openNext(); err != nil {
		return nil, err
	}
	name := s.cur.name
	fields := make([]pipeline.Field, len(s.header))
	seen := make(map[string]int, len(s.header))
	s.types = make([]pipeline.Type, len(s.header))
	for i, h := range s.header {
		if h == "" {
			return nil, fmt.Errorf("csv %s:%d: column %d has an empty name", name, s.rr.start, i+1)
		}
		if j, dup := seen[h]; dup {
			return nil, fmt.Errorf("csv %s:%d: duplicate column name %q (columns %d and %d)", name, s.rr.start, h, j+1, i+1)
		}
		seen[h] = i
		t, ok := s.cfg.types[h]
		if !ok {
			t = pipeline.TypeString
		}
		fields[i] = pipeline.Field{Name: h, Type: t}
		s.types[i] = t
	}
	for _, c := range s.cfg.order {
		if _, ok := seen[c.Name]; !ok {
			return nil, fmt.Errorf("csv %s:%d: column %q declared in columns is not in the header", name, s.rr.start, c.Name)
		}
	}
	if !s.shard.Keep(s.cur.idx) { // opened for its header only
		err := s.cur.close()
		s.cur = nil
		if err != nil {
			return nil, fmt.Errorf("csv %s: %w", name, err)
		}
	}
	return pipeline.NewSchema(fields...)
}

// openNext opens objects[next] and reads its header, checking it against the
// first object's.
func (s *Source) openNext() error {
	obj := s.objects[s.next]
	s.next++
	name := obj.Loc.String()
	rc, err := blobio.NewReader(s.ioCtx, obj.Loc)
	if err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	cur := &object{name: name, idx: s.next - 1, rc: rc}
	var r io.Reader = rc
	if strings.HasSuffix(obj.Loc.Key, ".gz") {
		if cur.gz, err = gzip.NewReader(rc); err != nil {
			rc.Close()
			return fmt.Errorf("csv %s: gunzip: %w", name, err)
		}
		r = cur.gz
	}
	if s.rr == nil {
		s.rr = newRecordReader(r, s.cfg.comma, s.cfg.quote)
	} else {
		s.rr.reset(r)
	}
	s.cur = cur
	if bom, _ := s.rr.br.Peek(3); string(bom) == "\uFEFF" {
		s.rr.br.Discard(3)
	}
	if !s.cfg.header {
		return nil
	}
	pe, err := s.rr.read()
	switch {
	case err == io.EOF:
		return fmt.Errorf("csv %s: empty object: no header record", name)
	case err != nil:
		return fmt.Errorf("csv %s: read header: %w", name, err)
	case pe != nil:
		return fmt.Errorf("csv %s:%d: header: %s", name, s.rr.start, pe.msg)
	case s.rr.invalidUTF8Field() >= 0:
		return fmt.Errorf("csv %s:%d: header: column %d is not valid UTF-8", name, s.rr.start, s.rr.invalidUTF8Field()+1)
	}
	if s.header == nil {
		s.header = slices.Clone(s.rr.fields)
		return nil
	}
	if d := headerDiff(s.header, s.rr.fields); d != "" {
		return fmt.Errorf("csv %s:%d: header differs from the first object %s: %s", name, s.rr.start, s.objects[0].Loc, d)
	}
	return nil
}

// headerDiff describes the first difference between two headers, or "".
func headerDiff(want, got []string) string {
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			return fmt.Sprintf("column %d is %q, want %q", i+1, got[i], want[i])
		}
	}
	if len(want) != len(got) {
		return fmt.Sprintf("%d columns, want %d", len(got), len(want))
	}
	return ""
}

// ctxCheckEvery is how many records Read reads between checks of ctx.
const ctxCheckEvery = 256

// Read returns the next batch of up to Options.BatchSize rows, bad records
// included as Drops. It returns io.EOF after the last batch and on every
// later call, and ctx.Err() promptly when ctx is cancelled (the source is then
// unusable). With on_error "fail" it returns the *pipeline.RowError of the
// first bad record (after a batch of the rows before it). Read must not be
// called concurrently.
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
		return nil, err
	}
	if s.schema == nil {
		if _, err := s.Schema(ctx); err != nil {
			return nil, err
		}
	}
	stop := context.AfterFunc(ctx, s.ioCancel)
	defer func() {
		if !stop() && s.err == nil {
			s.err = ctx.Err() // object readers were cancelled: no way back
		}
	}()
	b, err := s.fill(ctx, &s.err)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return b, err
}

// fill reads the next batch. An error met after some records were read is
// stored in *deferred and the batch returned, so those rows are not lost; the
// error comes back from the next Read.
func (s *Source) fill(ctx context.Context, deferred *error) (*pipeline.Batch, error) {
	b, err := s.fillBatch(ctx)
	if err != nil && err != io.EOF && b != nil && b.Settled() > 0 && ctx.Err() == nil {
		*deferred = err
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (s *Source) fillBatch(ctx context.Context) (*pipeline.Batch, error) {
	size := s.cfg.batchSize
	ncol := len(s.types)
	chunkRows := min(size, 256)
	b := pipeline.NewBatch(s.schema, min(size, 4096))
	bb := &s.bb
	bb.reset(chunkRows, s.types)
	var slab []any
	for n := 0; b.Settled() < size; n++ {
		if n%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if s.cur == nil {
			for s.next < len(s.objects) && !s.shard.Keep(s.next) {
				s.next++ // another shard's object
			}
			if s.next >= len(s.objects) {
				s.eof = true
				break
			}
			if err := s.openNext(); err != nil {
				return b, err
			}
		}
		pe, err := s.rr.readSpans()
		if err == io.EOF {
			err = s.cur.close()
			name := s.cur.name
			s.cur = nil
			if err != nil {
				return b, fmt.Errorf("csv %s: %w", name, err)
			}
			continue
		}
		if err != nil {
			return b, fmt.Errorf("csv %s:%d: read: %w", s.cur.name, s.rr.lines+1, err)
		}
		s.cur.row++
		origin := pipeline.Origin{Object: s.cur.name, Line: s.rr.start, Row: s.cur.row}
		nf := len(s.rr.spans)
		var re *pipeline.RowError
		switch {
		case pe != nil:
			re = s.rowError(origin, pe.code, pe.field, "%s", pe.msg)
		case nf != ncol:
			re = s.rowError(origin, "field_count", -1, "record has %d fields, want %d", nf, ncol)
		default:
			if i := s.rr.invalidUTF8Field(); i >= 0 {
				re = s.rowError(origin, "invalid_utf8", i, "field is not valid UTF-8")
				break
			}
			if len(slab) < ncol {
				slab = make([]any, ncol*chunkRows)
			}
			row := pipeline.Row(slab[:ncol:ncol])
			if re = s.cells(bb, row, origin); re == nil {
				slab = slab[ncol:]
				b.Append(row, origin)
				continue
			}
			clear(row)
		}
		var drop pipeline.Row
		if nf == ncol && pe == nil {
			drop = make(pipeline.Row, ncol)
			for j, f := range s.rr.fieldStrings() {
				drop[j] = f
			}
		}
		if s.cfg.fail {
			return b, re
		}
		b.Drop(pipeline.Drop{Row: drop, Origin: origin, Raw: s.rr.rawText(), Err: re})
	}
	if b.Settled() == 0 && s.eof {
		return nil, io.EOF
	}
	return b, nil
}

// cells sets row's values from the fields of the record just read. It
// returns the error of the first value that does not parse.
func (s *Source) cells(bb *batchBuilder, row pipeline.Row, origin pipeline.Origin) *pipeline.RowError {
	text := s.rr.text
	var rec string // the record's text, copied once when a string value needs it
	copied := false
	for j, sp := range s.rr.spans {
		f := text[sp.start:sp.end]
		if s.cfg.nulls != nil && s.cfg.nulls[string(f)] {
			continue // row[j] stays nil
		}
		t := s.types[j]
		if t != pipeline.TypeString {
			if len(f) == 0 {
				continue // an empty typed cell is null
			}
			v, err := parseValue(t, string(f))
			if err != nil {
				return s.rowError(origin, "bad_value", j, "%w", err)
			}
			switch x := v.(type) {
			case string: // decimal: the text itself, made below
			case int64:
				row[j] = bb.boxInt(x)
				continue
			case float64:
				row[j] = bb.boxFloat(x)
				continue
			case time.Time:
				row[j] = bb.boxTime(x)
				continue
			default:
				row[j] = v
				continue
			}
		}
		if !copied {
			rec, copied = bb.text.Copy(text), true
		}
		row[j] = bb.boxString(rec[sp.start:sp.end])
	}
	return nil
}

// rowError returns a RowError for the record at origin; field is a column
// index or -1.
func (s *Source) rowError(origin pipeline.Origin, code string, field int, format string, args ...any) *pipeline.RowError {
	re := &pipeline.RowError{Origin: origin, Code: code, Err: fmt.Errorf(format, args...)}
	if field >= 0 && field < s.schema.Len() {
		re.Field = s.schema.Field(field).Name
	}
	return re
}

// parseValue parses the non-empty text f as a value of type t.
func parseValue(t pipeline.Type, f string) (any, error) {
	switch t {
	case pipeline.TypeInt:
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int", f)
		}
		return v, nil
	case pipeline.TypeFloat:
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a float", f)
		}
		return v, nil
	case pipeline.TypeBool:
		switch strings.ToLower(f) {
		case "true", "1", "yes":
			return true, nil
		case "false", "0", "no":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a bool (want true/false, 1/0 or yes/no)", f)
	case pipeline.TypeDate:
		v, err := time.Parse(time.DateOnly, f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a date (want YYYY-MM-DD)", f)
		}
		return v, nil
	case pipeline.TypeTimestamp:
		if v, err := time.Parse(time.RFC3339, f); err == nil {
			return v, nil
		}
		if v, err := time.Parse(time.DateTime, f); err == nil {
			return v, nil
		}
		return nil, fmt.Errorf("%q is not a timestamp (want RFC 3339 or YYYY-MM-DD hh:mm:ss)", f)
	case pipeline.TypeDecimal:
		if !isDecimal(f) {
			return nil, fmt.Errorf("%q is not a decimal", f)
		}
		return f, nil
	case pipeline.TypeString:
		return f, nil
	}
	return nil, fmt.Errorf("unsupported column type %s", t)
}

// isDecimal reports whether f is [+-]digits[.digits] or [+-].digits.
func isDecimal(f string) bool {
	if f != "" && (f[0] == '+' || f[0] == '-') {
		f = f[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// Close releases the object being read. It is idempotent and safe after an
// error; Schema and Read return ErrClosed afterwards.
func (s *Source) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.cur != nil {
		err = s.cur.close()
		s.cur = nil
	}
	s.ioCancel()
	return err
}

// Interface guard: *Source satisfies pipeline.Source.
var _ pipeline.Source = (*Source)(nil)
