package csvsource

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/objsource"
)

func init() {
	pipeline.DefaultRegistry().RegisterSource("csv", Spec, pipeline.TypedSource("csv", Open))
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

// ErrClosed is returned by Schema and Read after Close.
var ErrClosed = errors.New("csv: source is closed")

// Source reads rows from CSV objects. It implements pipeline.Source. Its
// methods must not be called concurrently.
type Source struct {
	cfg  *config
	core *objsource.Core[*object] // listing, shard, lifecycle

	schema  *pipeline.Schema // the columns returned: all of fields, or the projected ones
	fields  []pipeline.Field // every column of a record, in order (set by Schema)
	project []string         // names given to Project, nil when not called
	sel     []int            // index in fields of each returned column, ascending
	types   []pipeline.Type  // type of each returned column (parallel to sel)
	// copyTo[k], for a returned column k whose value is sliced from the
	// record's text (string or decimal), is the last such column of the run
	// of adjacent record fields k is in: cells copies the text of fields
	// k..copyTo[k] at once, and never the text of unprojected fields.
	copyTo []int
	// runs are the runs of adjacent record fields among the returned
	// columns, as ranges of k, when every returned column is a string and
	// there are no null values: then stringCells makes the row.
	runs   []colRun
	header []string // the first object's header (nil without header)
	rr     *recordReader
	bb     batchBuilder // the values of the batch being read
	// slabs recycles the memory of the rows (the []any of their values)
	// once the engine has released a batch (pipeline.SlabPool).
	slabs pipeline.SlabPool
}

// colRun is the returned columns k0 <= k < k1, whose fields are adjacent
// in the record.
type colRun struct{ k0, k1 int }

// object is one open object.
type object struct {
	name string // as users see it
	rc   io.ReadCloser
	gz   *gzip.Reader
	row  int64 // records read so far (header excluded)
}

// Close closes the object's reader.
func (o *object) Close() error {
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
	s := &Source{cfg: cfg}
	f := objsource.Format[*object]{Kind: "csv", Closed: ErrClosed, Load: s.loadSchema, Open: s.openObject}
	if cfg.header {
		f.Check = s.checkHeader
	}
	if s.core, err = objsource.New(ctx, env, opts.URL, f); err != nil {
		return nil, err
	}
	return s, nil
}

// Project narrows the columns the source returns to names, which must be
// columns of the schema the source would otherwise return (the header, or
// Options.Columns without one). The engine calls it with the columns its
// compiled expressions use; it is an optimisation, not a filter users see.
//
// Project may be called before or after Schema but not after the first
// Read; Schema (and every batch) then has only the projected columns, in
// the source's column order (not the order of names), with the same types.
// Calling it again replaces the projection. An unknown name is reported
// here when the schema is already loaded, else by Schema. Project must not
// be called concurrently with other methods.
//
// Every record is still split and checked whole: a record with the wrong
// number of fields, a bad quote or invalid UTF-8 in any field is dropped
// just as without Project (the Drop's Raw holds the whole record; its Row,
// when the field count is right, holds the projected columns' texts, in
// line with the projected schema). Only projected columns are parsed as
// values, though: a typed column that is not projected is never parsed, so
// text that is not a value of its type there is not a bad_value error.
func (s *Source) Project(names []string) error {
	if err := s.core.CanProject(); err != nil {
		return err
	}
	if err := pipeline.CheckProjection(names); err != nil {
		return fmt.Errorf("csv: Project: %w", err)
	}
	if s.schema == nil {
		s.project = slices.Clone(names)
		return nil // applied when the schema is loaded
	}
	if err := s.applyProject(names); err != nil {
		return err
	}
	s.project = slices.Clone(names)
	return nil
}

// applyProject sets schema, sel, types and copyTo from fields and names
// (nil: every column). On error it changes nothing.
func (s *Source) applyProject(names []string) error {
	var sel []int
	if names == nil {
		sel = make([]int, len(s.fields))
		for i := range sel {
			sel[i] = i
		}
	} else {
		for _, n := range names {
			if !slices.ContainsFunc(s.fields, func(f pipeline.Field) bool { return f.Name == n }) {
				all := make([]string, len(s.fields))
				for i, f := range s.fields {
					all[i] = strconv.Quote(f.Name)
				}
				where := "csv:"
				if objs := s.core.Objects(); s.cfg.header && len(objs) > 0 {
					where = "csv " + objs[0].Loc.String() + ":"
				}
				return fmt.Errorf("%s Project: %q is not a column of the source (have %s)", where, n, strings.Join(all, ", "))
			}
		}
		for i, f := range s.fields {
			if slices.Contains(names, f.Name) {
				sel = append(sel, i)
			}
		}
	}
	fields := make([]pipeline.Field, len(sel))
	types := make([]pipeline.Type, len(sel))
	for k, i := range sel {
		fields[k] = s.fields[i]
		types[k] = s.fields[i].Type
	}
	copyTo := make([]int, len(sel))
	last := -1
	for k := len(sel) - 1; k >= 0; k-- {
		if k+1 < len(sel) && sel[k+1] != sel[k]+1 {
			last = -1 // a run of adjacent fields ends at k
		}
		if last < 0 && (types[k] == pipeline.TypeString || types[k] == pipeline.TypeDecimal) {
			last = k
		}
		copyTo[k] = last
	}
	var runs []colRun
	if s.cfg.nulls == nil && !slices.ContainsFunc(types, func(t pipeline.Type) bool { return t != pipeline.TypeString }) {
		for k := range sel {
			if k == 0 || sel[k] != sel[k-1]+1 {
				runs = append(runs, colRun{k, k})
			}
			runs[len(runs)-1].k1 = k + 1
		}
	}
	sch, err := pipeline.NewSchema(fields...)
	if err != nil {
		return err
	}
	s.schema, s.sel, s.types, s.copyTo, s.runs = sch, sel, types, copyTo, runs
	return nil
}

// Schema returns the columns: the header of the first object (in order,
// typed by Options.Columns), or Options.Columns when there is no header,
// narrowed by Project. The first call lists the objects and reads the first
// header.
func (s *Source) Schema(ctx context.Context) (*pipeline.Schema, error) {
	if err := s.core.Load(ctx); err != nil {
		return nil, err
	}
	return s.schema, nil
}

// loadSchema sets s.fields (every column of a record) and the schema, from
// the first object's header or the declared columns.
func (s *Source) loadSchema(ctx context.Context) error {
	if !s.cfg.header {
		if _, err := pipeline.NewSchema(s.cfg.order...); err != nil {
			return err
		}
		s.fields = s.cfg.order
		return s.applyProject(s.project)
	}
	first, err := s.core.OpenFirst()
	if err != nil {
		return err
	}
	name := first.name
	fields := make([]pipeline.Field, len(s.header))
	seen := make(map[string]int, len(s.header))
	for i, h := range s.header {
		if h == "" {
			return fmt.Errorf("csv %s:%d: column %d has an empty name", name, s.rr.start, i+1)
		}
		if j, dup := seen[h]; dup {
			return fmt.Errorf("csv %s:%d: duplicate column name %q (columns %d and %d)", name, s.rr.start, h, j+1, i+1)
		}
		seen[h] = i
		t, ok := s.cfg.types[h]
		if !ok {
			t = pipeline.TypeString
		}
		fields[i] = pipeline.Field{Name: h, Type: t}
	}
	for _, c := range s.cfg.order {
		if _, ok := seen[c.Name]; !ok {
			return fmt.Errorf("csv %s:%d: column %q declared in columns is not in the header", name, s.rr.start, c.Name)
		}
	}
	if _, err := pipeline.NewSchema(fields...); err != nil {
		return err
	}
	s.fields = fields
	return s.applyProject(s.project)
}

// openObject opens obj, the object at index idx of the listing, and reads
// its header, checking it against the first object's.
func (s *Source) openObject(ctx context.Context, obj blobio.Object, idx int) (*object, error) {
	name := obj.Loc.String()
	rc, err := blobio.NewReader(ctx, obj.Loc)
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	cur := &object{name: name, rc: rc}
	r := s.core.CountRead(rc)
	if strings.HasSuffix(obj.Loc.Key, ".gz") {
		if cur.gz, err = gzip.NewReader(r); err != nil {
			rc.Close()
			return nil, fmt.Errorf("csv %s: gunzip: %w", name, err)
		}
		r = cur.gz
	}
	if s.rr == nil {
		s.rr = newRecordReader(r, s.cfg.comma, s.cfg.quote, readBufferSize)
	} else {
		s.rr.reset(r)
	}
	s.rr.begin()
	if s.rr.eol == '\r' {
		s.core.Log().Info("csv: the object ends its lines with a bare CR (classic Mac OS); reading CR as the line end", "object", name)
	}
	if !s.cfg.header {
		return cur, nil
	}
	err = readHeader(s.rr, name)
	switch {
	case err == nil && idx == 0:
		s.header = slices.Clone(s.rr.fields)
	case err == nil:
		err = s.sameHeader(name, s.rr)
	}
	if err != nil {
		cur.Close()
		return nil, err
	}
	return cur, nil
}

// readHeader reads the header record of an object rr has begun (see
// recordReader.begin) into rr.fields; name is the object, for errors.
func readHeader(rr *recordReader, name string) error {
	pe, err := rr.read()
	switch {
	case err == io.EOF:
		return fmt.Errorf("csv %s: empty object: no header record", name)
	case err != nil:
		return fmt.Errorf("csv %s: read header: %w", name, err)
	case pe != nil:
		return fmt.Errorf("csv %s:%d: header: %s", name, rr.start, pe.msg)
	case rr.invalidUTF8Field() >= 0:
		return fmt.Errorf("csv %s:%d: header: column %d is not valid UTF-8", name, rr.start, rr.invalidUTF8Field()+1)
	}
	if rr.eol == '\n' {
		// Bare-CR line ends that begin did not see (no CR in the first
		// 64 KiB) would make the whole object one header record.
		for i, f := range rr.fields {
			if strings.ContainsRune(f, '\r') {
				return fmt.Errorf("csv %s:%d: header: column %d holds a carriage return: the object's lines may end with a bare CR (classic Mac OS) after a header longer than 64 KiB; save it with LF or CRLF line ends", name, rr.start, i+1)
			}
		}
	}
	return nil
}

// sameHeader checks the header rr just read from object name against the
// first object's.
func (s *Source) sameHeader(name string, rr *recordReader) error {
	if d := headerDiff(s.header, rr.fields); d != "" {
		return fmt.Errorf("csv %s:%d: header differs from the first object %s: %s; every object the URL matches must have the same header: fix the object or narrow the URL so it no longer matches",
			name, rr.start, s.core.Objects()[0].Loc, d)
	}
	return nil
}

// headChunk bounds each range read checkHeader makes: a header line longer
// than this costs one more read per headChunk bytes.
const headChunk = 64 << 10

// checkHeader reads the header of obj through ra, in range reads of at most
// headChunk bytes each (gunzipping a ".gz" object) and checks it against
// the first object's, without reading any record after it.
func (s *Source) checkHeader(ctx context.Context, obj blobio.Object, ra *blobio.ReaderAt) error {
	name := obj.Loc.String()
	var r io.Reader = io.NewSectionReader(ra, 0, ra.Size())
	if strings.HasSuffix(obj.Loc.Key, ".gz") {
		gz, err := gzip.NewReader(bufio.NewReaderSize(r, headChunk))
		if err != nil {
			return fmt.Errorf("csv %s: gunzip: %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	rr := newRecordReader(r, s.cfg.comma, s.cfg.quote, headChunk)
	rr.begin()
	if err := readHeader(rr, name); err != nil {
		return err
	}
	return s.sameHeader(name, rr)
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
	return s.core.Read(ctx, s.fillBatch)
}

// fillBatch reads the next batch, from as many objects as it takes. An
// error met after some records were read comes with the batch of those
// records (see objsource.Core.Read).
func (s *Source) fillBatch(ctx context.Context) (*pipeline.Batch, error) {
	size := s.cfg.batchSize
	ncol := len(s.fields) // fields a record must have
	width := len(s.sel)   // values a row has
	chunkRows := min(size, 256)
	b := pipeline.NewBatch(s.schema, min(size, 4096))
	bb := &s.bb
	bb.reset(chunkRows, s.types)
	var slab []any
	var cur *object // the object being read, nil between objects
	eof := false
	for n := 0; b.Settled() < size; n++ {
		if n%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if cur == nil {
			var ok bool
			var err error
			if cur, ok, err = s.core.Next(); err != nil {
				return b, err
			} else if !ok {
				eof = true
				break
			}
		}
		pe, err := s.rr.readSpans()
		if err == io.EOF {
			cur = nil
			if err := s.core.Finish(); err != nil {
				return b, err
			}
			continue
		}
		if err != nil {
			return b, fmt.Errorf("csv %s:%d: read: %w", cur.name, s.rr.lines+1, err)
		}
		cur.row++
		origin := pipeline.Origin{Object: cur.name, Line: s.rr.start, Row: cur.row}
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
			if len(slab) < width {
				slab = s.slabs.Get(width * chunkRows)
				b.Recycle(&s.slabs, slab)
			}
			row := pipeline.Row(slab[:width:width])
			if s.runs != nil {
				s.stringCells(bb, row)
				slab = slab[width:]
				b.Append(row, origin)
				continue
			}
			if re = s.cells(bb, row, origin); re == nil {
				slab = slab[width:]
				b.Append(row, origin)
				continue
			}
			clear(row)
		}
		var drop pipeline.Row
		if nf == ncol && pe == nil {
			drop = s.dropRow()
		}
		if s.cfg.fail {
			return b, re
		}
		b.Drop(pipeline.Drop{Row: drop, Origin: origin, Raw: s.rr.rawText(), Err: re})
	}
	if b.Settled() == 0 && eof {
		return nil, io.EOF
	}
	return b, nil
}

// dropRow returns the returned columns' texts of the record just read
// (whose field count is right) as new strings, for a Drop.
func (s *Source) dropRow() pipeline.Row {
	text, spans := s.rr.text, s.rr.spans
	lo, hi := spans[s.sel[0]].start, spans[s.sel[len(s.sel)-1]].end
	rec := string(text[lo:hi])
	row := make(pipeline.Row, len(s.sel))
	for k, j := range s.sel {
		row[k] = rec[spans[j].start-lo : spans[j].end-lo]
	}
	return row
}

// cells sets row's values from the returned columns' fields of the record
// just read; other fields are not looked at. It returns the error of the
// first value that does not parse.
func (s *Source) cells(bb *batchBuilder, row pipeline.Row, origin pipeline.Origin) *pipeline.RowError {
	text, spans := s.rr.text, s.rr.spans
	// rec is a copy of text[base:limit], made when a string value needs it:
	// the fields of a run of adjacent projected fields (see copyTo), so
	// without a projection the whole record is copied once.
	var rec string
	base, limit := 0, -1
	for k, j := range s.sel {
		sp := spans[j]
		f := text[sp.start:sp.end]
		if s.cfg.nulls != nil && s.cfg.nulls[string(f)] {
			continue // row[k] stays nil
		}
		t := s.types[k]
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
				row[k] = bb.boxInt(x)
				continue
			case float64:
				row[k] = bb.boxFloat(x)
				continue
			case time.Time:
				row[k] = bb.boxTime(x)
				continue
			default:
				row[k] = v
				continue
			}
		}
		if sp.end > limit {
			base, limit = sp.start, spans[s.sel[s.copyTo[k]]].end
			rec = bb.text.CopyBoxed(text[base:limit], s.copyTo[k]-k+1)
		}
		row[k] = bb.text.Box(rec[sp.start-base : sp.end-base])
	}
	return nil
}

// stringCells is cells when every returned column is a string and there
// are no null values (s.runs is set): each run of adjacent fields is
// copied at once, with its values' string headers beside it
// (StringArena.CopyBoxed).
func (s *Source) stringCells(bb *batchBuilder, row pipeline.Row) {
	text, spans, sel := s.rr.text, s.rr.spans, s.sel
	for _, r := range s.runs {
		base, limit := spans[sel[r.k0]].start, spans[sel[r.k1-1]].end
		rec := bb.text.CopyBoxed(text[base:limit], r.k1-r.k0)
		for k := r.k0; k < r.k1; k++ {
			sp := spans[sel[k]]
			row[k] = bb.text.Box(rec[sp.start-base : sp.end-base])
		}
	}
}

// rowError returns a RowError for the record at origin; field is the index
// of a field of the record (in s.fields, projected or not) or -1.
func (s *Source) rowError(origin pipeline.Origin, code string, field int, format string, args ...any) *pipeline.RowError {
	re := &pipeline.RowError{Origin: origin, Code: code, Err: fmt.Errorf(format, args...)}
	if field >= 0 && field < len(s.fields) {
		re.Field = s.fields[field].Name
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
func (s *Source) Close() error { return s.core.Close() }

// InputSize returns the bytes of the objects the source reads and how many
// it has read (pipeline.Sizer), gzip objects by their compressed size.
func (s *Source) InputSize() pipeline.InputSize { return s.core.InputSize() }

// Interface guard: *Source satisfies pipeline.Source.
var _ pipeline.Source = (*Source)(nil)

var _ pipeline.Sizer = (*Source)(nil)
