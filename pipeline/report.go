package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// Run statuses, as written in Report.Status.
const (
	StatusSucceeded = "succeeded" // every row loaded or filtered
	StatusPartial   = "partial"   // finished; some rows dead-lettered
	StatusFailed    = "failed"    // a stage failed, or accounting did not balance
	StatusCancelled = "cancelled" // stopped by the user (Ctrl-C, SIGTERM)
)

// Counts is the engine's row accounting. At the end of every run
// Read + FannedOut == Loaded + Filtered + DeadLettered + Lost, and Lost is 0
// unless writing a dead letter itself failed.
type Counts struct {
	// Read is rows read by sources, including unparseable records.
	Read int64 `json:"read"`
	// FannedOut is the extra row copies made when a stage feeds several
	// stages (a row sent to 3 stages adds 2).
	FannedOut int64 `json:"fanned_out"`
	// Filtered is rows dropped on purpose by filters.
	Filtered int64 `json:"filtered"`
	// Loaded is rows accepted by sinks.
	Loaded int64 `json:"loaded"`
	// DeadLettered is rows written to dead letters with a reason.
	DeadLettered int64 `json:"dead_lettered"`
	// Lost is rows that could not even be dead-lettered (the dead-letter
	// store failed). Always 0 in a healthy run; a run with Lost > 0 fails.
	Lost int64 `json:"lost"`
}

// Balanced reports whether every row is accounted for.
func (c Counts) Balanced() bool {
	return c.Read+c.FannedOut == c.Loaded+c.Filtered+c.DeadLettered+c.Lost && c.Lost == 0
}

// StageReport is one stage's counts.
type StageReport struct {
	Name         string `json:"name"`
	Kind         Kind   `json:"kind"`
	Type         string `json:"type"`
	In           int64  `json:"in"`
	Out          int64  `json:"out"`
	Filtered     int64  `json:"filtered"`
	DeadLettered int64  `json:"dead_lettered"`
	Loaded       int64  `json:"loaded"`
}

// Report is the outcome of a run, written as JSON by `bulkflow run
// --report`. Its schema is documented in the README and kept stable: fields
// are only ever added.
type Report struct {
	RunID       string        `json:"run_id"`
	Pipeline    string        `json:"pipeline"`
	File        string        `json:"file,omitempty"`
	FileHash    string        `json:"file_sha256,omitempty"`
	Status      string        `json:"status"`
	StartedAt   time.Time     `json:"started_at"`
	FinishedAt  time.Time     `json:"finished_at"`
	Seconds     float64       `json:"duration_seconds"`
	Counts      Counts        `json:"counts"`
	Stages      []StageReport `json:"stages"`
	DeadLetters []string      `json:"dead_letters"`
	Manifest    string        `json:"dead_letter_manifest,omitempty"`
	Errors      []string      `json:"errors"`
	// Sinks holds per-sink details by stage name, from sinks that implement
	// StatsReporter (e.g. the Salesforce sink's jobs).
	Sinks map[string]any `json:"sinks,omitempty"`
	// Incremental holds each incremental source stage's watermark.
	Incremental map[string]*IncrementalReport `json:"incremental,omitempty"`
	// Sync holds each sync sink stage's summary (new, changed, unchanged,
	// deleted, the manifest and the sync log).
	Sync map[string]any `json:"sync,omitempty"`
}

// WriteJSON writes the report as indented JSON, with secrets masked
// (package redact).
func (r *Report) WriteJSON(w io.Writer) error {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	_, err := io.WriteString(w, redact.Redact(buf.String()))
	return err
}

// Summary writes a short human summary (a few lines), with secrets masked
// (package redact).
func (r *Report) Summary(w io.Writer) {
	w = redact.Writer(w)
	fmt.Fprintf(w, "run %s of %q: %s in %.2fs\n", r.RunID, r.Pipeline, r.Status, r.Seconds)
	c := r.Counts
	fmt.Fprintf(w, "  read %d, loaded %d, filtered %d, dead-lettered %d", c.Read, c.Loaded, c.Filtered, c.DeadLettered)
	if c.FannedOut > 0 {
		fmt.Fprintf(w, " (fan-out copies %d)", c.FannedOut)
	}
	if c.Lost > 0 {
		fmt.Fprintf(w, ", LOST %d", c.Lost)
	}
	fmt.Fprintln(w)
	for _, d := range r.DeadLetters {
		fmt.Fprintf(w, "  dead letters: %s\n", d)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}
