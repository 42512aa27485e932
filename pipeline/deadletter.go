package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// deadLetterColumns are appended to each dead-lettered row, in this order.
var deadLetterColumns = []string{"_stage", "_error_code", "_error", "_error_field", "_retryable", "_ref", "_origin", "_run_id", "_raw"}

// DeadLetterColumns returns the columns appended to each dead-lettered row,
// in order (a new slice each call). A dead-letter file is a CSV whose
// header is the stage's input columns followed by these, so it reads back
// as a CSV source without edits.
func DeadLetterColumns() []string { return slices.Clone(deadLetterColumns) }

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

	// attempt is this run's attempt at its run id: 1 for a new run, N+1
	// when a manifest of attempt N exists (a resume). Files of attempts
	// after the first go to <prefix>/<run_id>/attempt-N/.
	attempt int
	// superseded lists the dead-letter files of earlier attempts: this
	// attempt reads the whole source again and accounts for every row, so
	// none of their rows is live any more.
	superseded []SupersededFile

	mu    sync.Mutex
	files map[string]*dlFile
	// tally counts the written rows by code for the report.
	tally errorTally
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
	if d.attempt > 1 {
		f.loc = blobio.Join(d.prefix, d.runID, fmt.Sprintf("attempt-%d", d.attempt), safeName(stage)+".csv")
	}
	isMeta := map[string]bool{}
	for _, c := range deadLetterColumns {
		isMeta[c] = true
	}
	var fields []Field
	for i := 0; in != nil && i < in.Len(); i++ {
		if fl := in.Field(i); !isMeta[fl.Name] {
			f.keep = append(f.keep, i)
			fields = append(fields, Field{Name: fl.Name, Type: fl.Type})
		}
	}
	for _, c := range deadLetterColumns {
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
	tallies := make([]tallyRow, len(drops))
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
		tallies[i] = tallyRow{code, msg, ref, retryable}
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
	d.tally.add(stage, tallies)
	return nil
}

// DeadLetterFile describes one dead-letter object in the manifest.
type DeadLetterFile struct {
	Stage   string   `json:"stage"`
	URL     string   `json:"url"`
	Rows    int64    `json:"rows"`
	Columns []string `json:"columns"`
	// ReplayedBy lists the runs of `bulkflow replay` that sent the file's
	// rows (a replay that sent none is taken off); replay refuses a file
	// replayed before unless --force.
	ReplayedBy []string `json:"replayed_by,omitempty"`
}

// SupersededFile is a dead-letter file of an earlier attempt of a run
// (its run id was resumed): none of its rows is live, and replay refuses
// it.
type SupersededFile struct {
	DeadLetterFile
	// Attempt is the attempt that wrote the file.
	Attempt int `json:"attempt"`
	// SupersededBy is the attempt that read the source again and accounted
	// for every row afresh.
	SupersededBy int `json:"superseded_by"`
}

// ManifestRunning is the status of the manifest a resumed attempt writes
// before any row moves (it marks the earlier attempts' files superseded);
// the attempt replaces it when it ends.
const ManifestRunning = "running"

// Manifest is written as manifest.json beside a run's dead-letter files.
// Files lists the live dead-letter files: the last attempt's, once it has
// ended. Superseded lists earlier attempts' files.
type Manifest struct {
	RunID      string           `json:"run_id"`
	Pipeline   string           `json:"pipeline"`
	File       string           `json:"file,omitempty"`
	FileHash   string           `json:"file_sha256,omitempty"`
	Status     string           `json:"status"`
	Attempt    int              `json:"attempt,omitempty"`
	Counts     Counts           `json:"counts"`
	Files      []DeadLetterFile `json:"files"`
	Superseded []SupersededFile `json:"superseded,omitempty"`
	// FinishedAt is when the attempt that wrote the files ended (zero
	// while it runs, and in manifests of earlier releases). A sync run
	// that began after it read every row again (see `bulkflow replay`).
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// State is the state store the run used (RunOptions.StateLocation),
	// when it kept state: `bulkflow replay` diffs and commits its syncs
	// there, as the run did (`run --state` may differ from the file's).
	State string `json:"state,omitempty"`
	// StateName is the name the run's state is kept under in State (the
	// pipeline's name, with the shard of a `--shard` run).
	StateName string `json:"state_name,omitempty"`
}

// ReadManifest reads the manifest.json at loc; found is false when there
// is none.
func ReadManifest(ctx context.Context, loc blobio.Location) (m *Manifest, found bool, err error) {
	r, err := blobio.NewReader(ctx, loc)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read dead-letter manifest: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, false, fmt.Errorf("read dead-letter manifest %s: %w", loc, err)
	}
	m = &Manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, false, fmt.Errorf("dead-letter manifest %s: %w", loc, err)
	}
	if m.Attempt == 0 {
		m.Attempt = 1 // written before attempts were counted
	}
	return m, true, nil
}

// begin finds the run's earlier attempts (a manifest at
// <prefix>/<run_id>/manifest.json) before any row moves. When there are
// some, this attempt is the next one, and a manifest that lists every
// earlier file as superseded and no live file is written at once (status
// "running"), so that no earlier dead letter can be replayed while this
// attempt may load its rows, nor after it. A resumed run (resumed) whose
// earlier attempts left no manifest (killed) is attempt 2 all the same.
func (d *deadLetters) begin(m *Manifest, resumed bool) error {
	d.attempt = 1
	prev, found, err := ReadManifest(d.ctx, blobio.Join(d.prefix, d.runID, "manifest.json"))
	if err != nil {
		return err
	}
	if !found {
		if !resumed {
			return nil
		}
		prev = &Manifest{Attempt: 1}
	}
	d.attempt = prev.Attempt + 1
	d.superseded = append(d.superseded, prev.Superseded...)
	for _, f := range prev.Files {
		d.superseded = append(d.superseded, SupersededFile{DeadLetterFile: f, Attempt: prev.Attempt, SupersededBy: d.attempt})
	}
	m.Status, m.Files = ManifestRunning, []DeadLetterFile{}
	_, err = d.writeManifest(m)
	return err
}

// resumed reports whether this is not the run id's first attempt.
func (d *deadLetters) resumed() bool { return d.attempt > 1 }

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
	m.Attempt, m.Superseded = d.attempt, d.superseded
	if err := WriteManifest(d.ctx, loc, m); err != nil {
		return "", err
	}
	return loc.String(), nil
}

// WriteManifest writes m as the manifest.json at loc, atomically.
func WriteManifest(ctx context.Context, loc blobio.Location, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = []byte(redact.Redact(string(data)))
	if err := blobio.WriteAll(ctx, loc, append(data, '\n')); err != nil {
		return fmt.Errorf("write dead-letter manifest: %w", err)
	}
	return nil
}
