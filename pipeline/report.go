package pipeline

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// Run statuses, as written in Report.Status.
const (
	StatusSucceeded = "succeeded" // every row loaded or filtered
	StatusPartial   = "partial"   // finished; some rows dead-lettered, or some mirror deletes failed
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
	// SyncDeletesHeld says, per sync sink stage with delete_missing, why
	// the run deleted nothing although keys were missing: rows were
	// dead-lettered on their way to it, and a key whose row was
	// dead-lettered cannot be told from a deleted one. The keys stay in
	// the manifest; the next run without such dead letters deletes those
	// still missing.
	SyncDeletesHeld map[string]string `json:"sync_deletes_held,omitempty"`
	// SyncHeld says, per sync sink stage whose manifest this run did not
	// commit although it finished, why: rows of unknown outcome wait for
	// the resume that settles them (an insert with a ledger).
	SyncHeld map[string]string `json:"sync_held,omitempty"`
	// SyncDeletesFailed counts, per sync sink stage, the missing keys
	// whose records the sink failed to delete: they are still in the
	// destination, so the run is partial; the keys stay in the manifest
	// and the next run deletes them again (the sync log has each error).
	SyncDeletesFailed map[string]int64 `json:"sync_deletes_failed,omitempty"`
	// DeadLetterDir is the folder of this run's dead letters (beside the
	// manifest), when the run wrote any.
	DeadLetterDir string `json:"dead_letter_dir,omitempty"`
	// ErrorGroups groups the dead-lettered rows by error code, largest
	// group first.
	ErrorGroups []ErrorGroup `json:"error_groups,omitempty"`
	// NextSteps are the commands that recover dead-lettered rows, by
	// recovery class (retry: replay; resume: run --resume).
	NextSteps []NextStep `json:"next_steps,omitempty"`
	// ResumeCommand resumes this run (`bulkflow run FILE --resume RUN_ID`
	// with the flags it needs; a replay's own `replay --resume`), set when
	// rows only a resume or a person settles were dead-lettered: the
	// summary gives it for settling rows of unknown outcome
	// (--settle-unknown).
	ResumeCommand string `json:"resume_command,omitempty"`
}

// ErrorGroup is the dead-lettered rows of one error code (_error_code).
type ErrorGroup struct {
	Code string `json:"code"`
	// Recovery is the code's class in the code table (Codes): fix, retry,
	// resume or inspect.
	Recovery string `json:"recovery"`
	// Retryable says replay may send the rows again unchanged.
	Retryable bool  `json:"retryable"`
	Rows      int64 `json:"rows"`
	// Stages are the stages whose dead letters hold the rows, sorted.
	Stages []string `json:"stages"`
	// TopMessages are the group's most frequent _error texts (at most
	// three, secrets masked).
	TopMessages []MessageCount `json:"top_messages"`
}

// MessageCount is one error message and how many rows carry it.
type MessageCount struct {
	Message string `json:"message"`
	Rows    int64  `json:"rows"`
}

// NextStep is a command that recovers some of a run's dead-lettered rows.
type NextStep struct {
	// Recovery is "retry" (replay a dead-letter file as it is) or "resume"
	// (run the pipeline again under the same run id).
	Recovery string `json:"recovery"`
	// Rows is how many rows the command may settle.
	Rows int64 `json:"rows"`
	// Command is the shell command, arguments quoted where needed.
	Command string `json:"command"`
}

// Top messages kept per code in the summary, and distinct messages
// counted per code (bounded: messages may quote row values).
const (
	topMessages     = 3
	trackedMessages = 64
	maxMessageLen   = 240
)

// errorTally counts dead-lettered rows by code, stage and message as they
// are written. It is safe for concurrent use.
type errorTally struct {
	mu    sync.Mutex
	codes map[string]*codeTally
	// retryable counts rows written with _retryable=true, by stage.
	retryable map[string]int64
	// resume counts resume-class rows, by stage.
	resume map[string]int64
}

type codeTally struct {
	rows   int64
	stages map[string]bool
	msgs   map[string]int64
}

// tallyRow is one dead-lettered row as the tally counts it.
type tallyRow struct {
	code, msg, ref string
	retryable      bool
}

// add counts dead-lettered rows of one stage.
func (t *errorTally) add(stage string, rows []tallyRow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.codes == nil {
		t.codes, t.retryable, t.resume = map[string]*codeTally{}, map[string]int64{}, map[string]int64{}
	}
	for _, r := range rows {
		c := t.codes[r.code]
		if c == nil {
			c = &codeTally{stages: map[string]bool{}, msgs: map[string]int64{}}
			t.codes[r.code] = c
		}
		c.rows++
		c.stages[stage] = true
		msg := r.msg
		if r.ref != "" {
			// One group per message, not per job: the job is in _ref.
			msg = strings.ReplaceAll(msg, r.ref, "<_ref>")
		}
		if len(msg) > maxMessageLen {
			msg = strings.ToValidUTF8(msg[:maxMessageLen], "") + "…"
		}
		if _, ok := c.msgs[msg]; ok || len(c.msgs) < trackedMessages {
			c.msgs[msg]++
		}
		if r.retryable {
			t.retryable[stage]++
		}
		if RecoveryOf(r.code) == RecoveryResume {
			t.resume[stage]++
		}
	}
}

// groups returns the tally by code, largest group first.
func (t *errorTally) groups() []ErrorGroup {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ErrorGroup, 0, len(t.codes))
	for code, c := range t.codes {
		rec := RecoveryOf(code)
		g := ErrorGroup{Code: code, Recovery: rec.String(), Retryable: rec.Retryable(), Rows: c.rows,
			Stages: slices.Sorted(maps.Keys(c.stages))}
		for m, n := range c.msgs {
			g.TopMessages = append(g.TopMessages, MessageCount{Message: redact.Redact(m), Rows: n})
		}
		slices.SortFunc(g.TopMessages, func(a, b MessageCount) int {
			return cmp.Or(cmp.Compare(b.Rows, a.Rows), strings.Compare(a.Message, b.Message))
		})
		g.TopMessages = g.TopMessages[:min(len(g.TopMessages), topMessages)]
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b ErrorGroup) int {
		return cmp.Or(cmp.Compare(b.Rows, a.Rows), strings.Compare(a.Code, b.Code))
	})
	return out
}

// nextSteps returns the commands that recover the tallied rows: one
// replay per dead-letter file holding retryable rows, and one resume when
// any row is resume-class. file is the pipeline file; resumeFlags are
// flags the resume must repeat.
func (t *errorTally) nextSteps(file, runID string, files []DeadLetterFile, resumeFlags []string) []NextStep {
	t.mu.Lock()
	defer t.mu.Unlock()
	if file == "" {
		file = "PIPELINE_FILE"
	}
	var out []NextStep
	var resume int64
	for _, f := range files {
		if n := t.retryable[f.Stage]; n > 0 {
			out = append(out, NextStep{Recovery: RecoveryRetry.String(), Rows: n,
				Command: ShellCommand("bulkflow", "replay", f.URL, "--pipeline", file)})
		}
		resume += t.resume[f.Stage]
	}
	if resume > 0 {
		args := append([]string{"bulkflow", "run", file, "--resume", runID}, resumeFlags...)
		out = append(out, NextStep{Recovery: RecoveryResume.String(), Rows: resume, Command: ShellCommand(args...)})
	}
	return out
}

// ShellCommand joins args into a POSIX shell command line, single-quoting
// the arguments that need it.
func ShellCommand(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		safe := a != ""
		for _, r := range a {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r)) {
				safe = false
				break
			}
		}
		if safe {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
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

// SummaryLiner is implemented by a sink's Stats value (StatsReporter)
// that has one line for the run's text summary, e.g. how many jobs or
// requests it sent; "" adds none.
type SummaryLiner interface {
	SummaryLine() string
}

// Summary writes a short human summary with secrets masked (package
// redact): the outcome and counts, the dead letters grouped by code with
// each code's recovery class and top messages, the dead-letter folder, and
// the commands that recover the rows (NextSteps).
func (r *Report) Summary(w io.Writer) {
	r.summary(redact.Writer(w), "loaded")
}

func (r *Report) summary(w io.Writer, loaded string) {
	fmt.Fprintf(w, "run %s of %q: %s in %.2fs\n", r.RunID, r.Pipeline, r.Status, r.Seconds)
	c := r.Counts
	fmt.Fprintf(w, "  read %d, %s %d, filtered %d, dead-lettered %d", c.Read, loaded, c.Loaded, c.Filtered, c.DeadLettered)
	if c.FannedOut > 0 {
		fmt.Fprintf(w, " (fan-out copies %d)", c.FannedOut)
	}
	if c.Lost > 0 {
		fmt.Fprintf(w, ", LOST %d", c.Lost)
	}
	fmt.Fprintln(w)
	for _, name := range slices.Sorted(maps.Keys(r.Sinks)) {
		if l, ok := r.Sinks[name].(SummaryLiner); ok && l.SummaryLine() != "" {
			fmt.Fprintf(w, "  %s: %s\n", name, l.SummaryLine())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.SyncHeld)) {
		fmt.Fprintf(w, "  %s: sync manifest held: %s\n", name, r.SyncHeld[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.SyncDeletesHeld)) {
		fmt.Fprintf(w, "  %s: deletes held: %s\n", name, r.SyncDeletesHeld[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.SyncDeletesFailed)) {
		fmt.Fprintf(w, "  %s: %d deletes failed: those records are still in the destination; the next run deletes them again (the sync log has each error)\n",
			name, r.SyncDeletesFailed[name])
	}
	r.writeErrorGroups(w)
	if r.DeadLetterDir != "" {
		fmt.Fprintf(w, "  dead-letter folder: %s\n", r.DeadLetterDir)
	} else {
		for _, d := range r.DeadLetters {
			fmt.Fprintf(w, "  dead letters: %s\n", d)
		}
	}
	if loaded == "loaded" {
		var fix, inspect int64
		for _, g := range r.ErrorGroups {
			switch g.Recovery {
			case "fix":
				fix += g.Rows
			case "inspect":
				inspect += g.Rows
			}
		}
		if fix > 0 {
			fmt.Fprintf(w, "  fix %d rows: correct the data or the pipeline (each file's _error and _error_field say what), then `bulkflow replay FILE --pipeline %s --all`, with --map FIELD=EXPR to fix a column\n",
				fix, ShellCommand(cmp.Or(r.File, "PIPELINE_FILE")))
		}
		if inspect > 0 {
			resume := cmp.Or(r.ResumeCommand, ShellCommand("bulkflow", "run", cmp.Or(r.File, "PIPELINE_FILE"), "--resume", r.RunID))
			fmt.Fprintf(w, "  inspect %d rows: they may be in the destination; look at the job or record in _ref, then settle them: %s --settle-unknown=loaded (found) or =absent (not found)\n",
				inspect, resume)
		}
		for _, s := range r.NextSteps {
			switch s.Recovery {
			case "retry":
				fmt.Fprintf(w, "  retry %d rows: %s\n", s.Rows, s.Command)
			case "resume":
				fmt.Fprintf(w, "  settle %d rows whose jobs may have run: %s\n", s.Rows, s.Command)
			}
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

// ErrorGroupsSummary writes the dead letters grouped by code, as Summary
// does (secrets masked): for commands with a summary of their own, such
// as `bulkflow plan`.
func (r *Report) ErrorGroupsSummary(w io.Writer) {
	r.writeErrorGroups(redact.Writer(w))
}

func (r *Report) writeErrorGroups(w io.Writer) {
	if len(r.ErrorGroups) == 0 {
		return
	}
	var retry int64
	for _, g := range r.ErrorGroups {
		if g.Retryable {
			retry += g.Rows
		}
	}
	fmt.Fprintf(w, "  dead letters by code (%d of %d rows retryable):\n", retry, r.Counts.DeadLettered)
	width := 0
	for _, g := range r.ErrorGroups {
		width = max(width, len(g.Code))
	}
	for _, g := range r.ErrorGroups {
		tag := "not retryable"
		if g.Retryable {
			tag = "retryable"
		}
		fmt.Fprintf(w, "    %-*s %6d  %s, %s (%s)\n", width, g.Code, g.Rows, g.Recovery, tag, strings.Join(g.Stages, ", "))
		for _, m := range g.TopMessages {
			fmt.Fprintf(w, "      %5d× %s\n", m.Rows, m.Message)
		}
	}
}
