package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// Dead-letter columns appended to each dead-lettered row, in this order.
// A dead-letter file is a CSV whose header is the stage's input columns
// followed by these, so it reads back as a CSV source without edits.
var DeadLetterColumns = []string{"_stage", "_error_code", "_error", "_error_field", "_retryable", "_ref", "_origin", "_run_id", "_raw"}

// DeadLetterOpener opens the sink a stage's dead letters are written to: a
// CSV object at loc with the given schema. cmd/bulkflow passes the file
// sink's CSV writer; package pipeline imports no plugin.
type DeadLetterOpener func(ctx context.Context, loc blobio.Location, schema *Schema) (Sink, error)

// deadLetters writes dropped rows, one CSV object per stage under
// <prefix>/<run_id>/<stage>.csv, and a manifest.json beside them. It is
// safe for concurrent use.
type deadLetters struct {
	ctx    context.Context // not cancelled with the run: dead letters must be written
	open   DeadLetterOpener
	prefix blobio.Location
	runID  string

	mu    sync.Mutex
	files map[string]*dlFile
}

type dlFile struct {
	mu      sync.Mutex
	stage   string
	loc     blobio.Location
	in      *Schema
	keep    []int // input columns copied (meta columns of a replayed file are replaced)
	schema  *Schema
	sink    Sink
	rows    int64
	openErr error
}

func (d *deadLetters) file(stage string, in *Schema) *dlFile {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.files[stage]; ok {
		return f
	}
	f := &dlFile{stage: stage, in: in, loc: blobio.Join(d.prefix, d.runID, safeName(stage)+".csv")}
	isMeta := map[string]bool{}
	for _, c := range DeadLetterColumns {
		isMeta[c] = true
	}
	var fields []Field
	for i := 0; in != nil && i < in.Len(); i++ {
		if fl := in.Field(i); !isMeta[fl.Name] {
			f.keep = append(f.keep, i)
			fields = append(fields, Field{Name: fl.Name, Type: fl.Type})
		}
	}
	for _, c := range DeadLetterColumns {
		fields = append(fields, Field{Name: c, Type: TypeString})
	}
	f.schema, f.openErr = NewSchema(fields...)
	if f.openErr == nil {
		f.sink, f.openErr = d.open(d.ctx, f.loc, f.schema)
	}
	if f.openErr != nil {
		f.openErr = fmt.Errorf("open dead letter %s: %w", f.loc, f.openErr)
	}
	d.files[stage] = f
	return f
}

// safeName turns a stage name into a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// write dead-letters drops that left the graph at stage (whose input schema
// is in). It returns an error if they could not be written.
func (d *deadLetters) write(stage string, in *Schema, drops []Drop) error {
	if d.open == nil {
		return errors.New("no dead-letter store configured")
	}
	f := d.file(stage, in)
	if f.openErr != nil {
		return f.openErr
	}
	b := NewBatch(f.schema, len(drops))
	width := f.schema.Len()
	slab := make([]any, len(drops)*width)
	for i, dr := range drops {
		row := Row(slab[i*width : (i+1)*width : (i+1)*width])
		for j, c := range f.keep {
			if c < len(dr.Row) {
				row[j] = dr.Row[c]
			}
		}
		code, msg, field, retryable, ref := CodeRowFailed, "<nil>", "", false, ""
		if dr.Err != nil {
			msg = dr.Err.Error()
			var re *RowError
			if errors.As(dr.Err, &re) {
				if re.Code != "" {
					code = re.Code
				}
				if re.Err != nil {
					msg = re.Err.Error()
				}
				field, retryable, ref = re.Field, re.Retryable, re.Ref
			}
		}
		n := len(f.keep)
		row[n] = stage
		row[n+1] = code
		row[n+2] = redact.Redact(msg) // the reason is bulkflow's text; the row's columns are the user's data
		row[n+3] = field
		row[n+4] = strconv.FormatBool(retryable)
		row[n+5] = ref
		row[n+6] = dr.Origin.String()
		row[n+7] = d.runID
		row[n+8] = dr.Raw
		b.Append(row, dr.Origin)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.sink.Write(d.ctx, b); err != nil {
		return fmt.Errorf("write dead letter %s: %w", f.loc, err)
	}
	f.rows += int64(len(drops))
	return nil
}

// DeadLetterFile describes one dead-letter object in the manifest.
type DeadLetterFile struct {
	Stage   string   `json:"stage"`
	URL     string   `json:"url"`
	Rows    int64    `json:"rows"`
	Columns []string `json:"columns"`
}

// Manifest is written as manifest.json beside a run's dead-letter files.
type Manifest struct {
	RunID    string           `json:"run_id"`
	Pipeline string           `json:"pipeline"`
	File     string           `json:"file,omitempty"`
	FileHash string           `json:"file_sha256,omitempty"`
	Status   string           `json:"status"`
	Counts   Counts           `json:"counts"`
	Files    []DeadLetterFile `json:"files"`
}

// close commits every dead-letter file and returns them sorted by stage.
func (d *deadLetters) close() ([]DeadLetterFile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []DeadLetterFile
	var errs []error
	for _, f := range d.files {
		if f.openErr != nil {
			errs = append(errs, f.openErr)
			continue
		}
		if err := f.sink.Close(d.ctx); err != nil {
			errs = append(errs, fmt.Errorf("close dead letter %s: %w", f.loc, err))
			continue
		}
		out = append(out, DeadLetterFile{Stage: f.stage, URL: f.loc.String(), Rows: f.rows, Columns: f.schema.Names()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stage < out[j].Stage })
	return out, errors.Join(errs...)
}

// writeManifest writes manifest.json for the run.
func (d *deadLetters) writeManifest(m *Manifest) (string, error) {
	loc := blobio.Join(d.prefix, d.runID, "manifest.json")
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	data = []byte(redact.Redact(string(data)))
	if err := blobio.WriteAll(d.ctx, loc, append(data, '\n')); err != nil {
		return "", fmt.Errorf("write dead-letter manifest: %w", err)
	}
	return loc.String(), nil
}
