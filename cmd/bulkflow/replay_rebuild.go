package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// Private plugin types of `bulkflow replay` for a CSV source's dead letter.
const (
	replayRebuildType = "replay-rebuild"
	replayTypeType    = "replay-type"
)

// CodeNotRebuilt is the dead-letter code of a source-rejected row whose
// record replay could not rebuild from _raw (the source's objects are gone,
// so its header is unknown); the record stays in _raw.
const CodeNotRebuilt = "not_rebuilt"

// replayCSV is what replay knows of the CSV source that dead-lettered the
// rows: its options and its full header (every column of a record, in
// order), read from its objects when the replay starts.
type replayCSV struct {
	opts   *csvsource.Options
	header []string // nil when the source's header could not be read
	why    error    // why header is nil
	types  map[string]pipeline.Type
}

// newReplayCSV reads the CSV source's header (its objects' first record, or
// its declared columns) with the CSV source itself.
func newReplayCSV(ctx context.Context, env *pipeline.Env, o *csvsource.Options, types map[string]pipeline.Type) *replayCSV {
	rc := &replayCSV{opts: o, types: types}
	src, err := csvsource.Open(ctx, env, o)
	if err == nil {
		var sc *pipeline.Schema
		if sc, err = src.Schema(ctx); err == nil {
			rc.header = sc.Names()
		}
		src.Close()
	}
	rc.why = err
	return rc
}

// memSeq names the scratch objects parse writes.
var memSeq atomic.Int64

// parse reads text as CSV records with the source's own reader and
// options, every column named in cols with the type types gives it (string
// otherwise), without a header line. It returns the rows and the records
// the reader refused, in order.
func (rc *replayCSV) parse(ctx context.Context, env *pipeline.Env, text []byte, cols []string, types map[string]pipeline.Type,
	delim, quote string, nulls []string) ([]pipeline.Row, []pipeline.Drop, error) {
	loc, err := blobio.Parse("", "mem://bulkflow-replay/"+strconv.FormatInt(memSeq.Add(1), 10)+".csv")
	if err != nil {
		return nil, nil, err
	}
	if err := blobio.WriteAll(ctx, loc, text); err != nil {
		return nil, nil, err
	}
	defer blobio.Delete(context.WithoutCancel(ctx), loc)
	no := false
	o := &csvsource.Options{URL: loc.String(), Delimiter: delim, Quote: quote, Header: &no, NullValues: nulls}
	for _, c := range cols {
		t := pipeline.TypeString
		if tt, ok := types[c]; ok && tt != pipeline.TypeAny {
			t = tt
		}
		o.Columns = append(o.Columns, csvsource.Column{Name: c, Type: t.String()})
	}
	src, err := csvsource.Open(ctx, env, o)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	var rows []pipeline.Row
	var drops []pipeline.Drop
	for {
		b, err := src.Read(ctx)
		if b != nil {
			for i := range b.Len() {
				rows = append(rows, b.Row(i))
			}
			drops = append(drops, b.Drops()...)
		}
		if err == io.EOF {
			return rows, drops, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// replayRebuild turns the rows a CSV source refused (bad_quote,
// field_count, invalid_utf8: every data column empty, the record in _raw)
// back into rows, by reading _raw with the source's reader and options;
// other rows pass through. Every column is a string here: typed parsing
// comes after the --map fixes (replayType). A record that still does not
// parse is dead-lettered again with the reader's code and its _raw.
type replayRebuild struct {
	csv  *replayCSV
	env  *pipeline.Env
	raw  int // index of _raw in the input
	keep []int
	out  *pipeline.Schema
}

// Check drops the _raw column from the schema.
func (t *replayRebuild) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	t.raw = in.Index("_raw") // -1 in files without it: nothing to rebuild
	var fields []pipeline.Field
	for i, f := range in.Fields() {
		if i != t.raw {
			t.keep = append(t.keep, i)
			fields = append(fields, f)
		}
	}
	out, err := pipeline.NewSchema(fields...)
	t.out = out
	return out, err
}

// Apply rebuilds the rows that have a _raw record.
func (t *replayRebuild) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	out := pipeline.NewBatch(t.out, in.Len())
	for i := range in.Len() {
		row := in.Row(i)
		dst := make(pipeline.Row, len(t.keep))
		for j, c := range t.keep {
			dst[j] = row[c]
		}
		raw := ""
		if t.raw >= 0 {
			raw, _ = row[t.raw].(string)
		}
		if raw == "" {
			out.Append(dst, in.Origin(i))
			continue
		}
		if t.csv.header == nil {
			out.Drop(pipeline.Drop{Row: dst, Origin: in.Origin(i), Raw: raw, Err: &pipeline.RowError{Code: CodeNotRebuilt,
				Err: fmt.Errorf("cannot rebuild the record from _raw: the source's header cannot be read (%v); fix the record in the source and run again", t.csv.why)}})
			continue
		}
		o := t.csv.opts
		rows, drops, err := t.csv.parse(ctx, t.env, []byte(raw+"\n"), t.csv.header, nil, o.Delimiter, o.Quote, o.NullValues)
		switch {
		case err != nil:
			return nil, fmt.Errorf("rebuild the record of %s: %w", in.Origin(i), err)
		case len(drops) > 0:
			out.Drop(pipeline.Drop{Row: dst, Origin: in.Origin(i), Raw: raw, Err: ownOrigin(drops[0].Err)})
			continue
		case len(rows) != 1:
			out.Drop(pipeline.Drop{Row: dst, Origin: in.Origin(i), Raw: raw, Err: &pipeline.RowError{Code: "field_count",
				Err: fmt.Errorf("_raw holds %d records, not one; fix it in the source and run again", len(rows))}})
			continue
		}
		for j := range t.keep {
			if k := slices.Index(t.csv.header, t.out.Field(j).Name); k >= 0 {
				dst[j] = rows[0][k]
			}
		}
		out.Append(dst, in.Origin(i))
	}
	return out, nil
}

// ownOrigin clears the origin of a row error the scratch reader made, so
// that the engine gives it the replayed row's own.
func ownOrigin(err error) error {
	var re *pipeline.RowError
	if errors.As(err, &re) {
		re.Origin = pipeline.Origin{}
	}
	return err
}

// replayType parses the columns the CSV source declared with a type, after
// the --map fixes, with the source's own value parsing (so a bad_value row
// is fixed by a --map of its column). A value a fix made typed is written
// as text by its type and read back; a value that still does not parse is
// dead-lettered again (bad_value, naming the column).
type replayType struct {
	csv   *replayCSV
	env   *pipeline.Env
	typed []int // columns to parse
	names []string
	out   *pipeline.Schema
}

// Check gives the declared columns their type.
func (t *replayType) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	fields := in.Fields()
	for i, f := range fields {
		if dt, ok := t.csv.types[f.Name]; ok && dt != pipeline.TypeString && dt != pipeline.TypeAny {
			t.typed = append(t.typed, i)
			t.names = append(t.names, f.Name)
			fields[i].Type = dt
		}
	}
	out, err := pipeline.NewSchema(fields...)
	t.out = out
	return out, err
}

// Apply parses the typed columns of every row.
func (t *replayType) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	if len(t.typed) == 0 {
		return in, nil
	}
	out := pipeline.NewBatch(t.out, in.Len())
	var buf bytes.Buffer
	cells := make([]string, len(t.typed))
	for i := range in.Len() {
		row := in.Row(i)
		for k, c := range t.typed {
			switch v := row[c].(type) {
			case nil:
				cells[k] = ""
			case string:
				cells[k] = v
			default:
				cells[k] = string(pipeline.AppendValue(nil, t.csv.types[t.names[k]], v))
			}
		}
		buf.Reset()
		w := csv.NewWriter(&buf)
		w.Write(cells)
		w.Flush()
		rows, drops, err := t.csv.parse(ctx, t.env, buf.Bytes(), t.names, t.csv.types, ",", `"`, t.csv.opts.NullValues)
		switch {
		case err != nil:
			return nil, fmt.Errorf("parse the typed columns of %s: %w", in.Origin(i), err)
		case len(drops) > 0:
			out.Drop(pipeline.Drop{Row: row, Origin: in.Origin(i), Err: ownOrigin(drops[0].Err)})
			continue
		case len(rows) != 1:
			return nil, fmt.Errorf("parse the typed columns of %s: %d rows back", in.Origin(i), len(rows))
		}
		dst := make(pipeline.Row, len(row))
		copy(dst, row)
		for k, c := range t.typed {
			dst[c] = rows[0][k]
		}
		out.Append(dst, in.Origin(i))
	}
	return out, nil
}
