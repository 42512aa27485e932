package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Source reads rows. The engine calls Schema once, then Read repeatedly from
// a single goroutine until it returns io.EOF (or another error), then Close.
//
// Read returns the next batch. Rows the source could not parse are reported
// as Drops in the batch (with a *RowError naming object and line), never by
// failing the read, unless the source was told to fail on bad rows. Read
// returns io.EOF after the last batch and on every later call. When ctx is
// cancelled Read returns ctx.Err() promptly.
//
// Close releases resources; it is idempotent and safe after an error.
type Source interface {
	Schema(ctx context.Context) (*Schema, error)
	Read(ctx context.Context) (*Batch, error)
	Close() error
}

// Transform turns batches into batches.
//
// Check is called once, before any row moves, with the input schema; it
// compiles whatever the transform needs and returns the output schema, or an
// error that names the offending option (wrap it in a *ConfigError when the
// position is known).
//
// Apply is called after Check, possibly from several goroutines at once (the
// stage's workers), with batches of the input schema. It returns a new batch
// of the output schema holding the rows that continue, and records every
// other input row as a Drop on that batch: filtered (nil Err) or failed (a
// *RowError). Every input row must be either in the output or dropped. An
// error returned by Apply fails the run.
type Transform interface {
	Check(in *Schema) (*Schema, error)
	Apply(ctx context.Context, in *Batch) (*Batch, error)
}

// Sink writes rows somewhere.
//
// Write is given batches of the sink's input schema. It returns nil when every
// row was loaded, a *RowErrors when the listed rows failed and the rest were
// loaded, or another error when the whole batch failed (the engine
// dead-letters the batch and stops the run). Write may be called
// concurrently up to the sink's BatchPolicy().MaxInFlight (1 by default).
//
// Close flushes and commits what was written: output must not be visible
// until Close succeeds, and cancelling ctx before that must leave no partial
// output. Sinks never start goroutines that outlive Write or Close.
type Sink interface {
	Write(ctx context.Context, b *Batch) error
	Close(ctx context.Context) error
}

// StatsReporter is implemented by sinks that have details for the run
// report (the Salesforce sink's jobs, for example). The engine calls Stats
// after Close and puts the value, marshalled as JSON, under the sink's stage
// name in Report.Sinks.
type StatsReporter interface {
	Stats() any
}

// BatchPolicy is how a sink wants its input grouped.
type BatchPolicy struct {
	// MaxRows is the most rows per Write; the engine joins smaller input
	// batches up to it. Zero means batches are passed as they arrive.
	MaxRows int
	// MaxInFlight is how many Writes may run at once. Zero means 1.
	MaxInFlight int
}

// Batcher is implemented by sinks that want a BatchPolicy other than the
// default.
type Batcher interface {
	BatchPolicy() BatchPolicy
}

// Validator is implemented by plugin option structs that can check
// themselves without I/O. The config loader calls Validate after decoding.
type Validator interface {
	Validate() error
}

// Preflighter is implemented by the options of sinks that can check their
// destination before any row moves (the Salesforce sink describes the
// object and its fields). `bulkflow validate` and `bulkflow run` call
// Preflight for every sink stage whose options implement it, with the
// stage's input schema. It must change nothing at the destination.
// Problems with the pipeline are a *PreflightError; anything else (the
// destination could not be reached, a credential was refused) is another
// error. Options that name no destination to check return nil.
type Preflighter interface {
	Preflight(ctx context.Context, env *Env, in *Schema) error
}

// PreflightError lists what a Preflighter found wrong with the pipeline, as
// opposed to a failure to reach the destination. The CLI reports each
// problem at the sink stage's position and exits 2.
type PreflightError struct {
	// Sink names the sink, e.g. "salesforce sink".
	Sink string
	// Target is what was checked, e.g. "upsert Account".
	Target string
	// Problems are the problems found, one sentence each.
	Problems []string
}

// Error lists the problems.
func (e *PreflightError) Error() string {
	return fmt.Sprintf("%s: pre-flight %s: %s", e.Sink, e.Target, strings.Join(e.Problems, "; "))
}

// Planner is implemented by the options of sinks that `bulkflow plan` can
// stand in for. The plan runs the pipeline with each such sink replaced by
// the PlanSink that OpenPlan returns, which writes the exact files the sink
// would send and sends nothing.
type Planner interface {
	// PlanTarget names what the sink writes to, for the plan's report.
	PlanTarget() PlanTarget
	// OpenPlan validates the options as the sink's constructor does and
	// opens the stand-in for rows of schema in, writing its files under
	// dir. It makes no network call.
	OpenPlan(ctx context.Context, env *Env, in *Schema, dir string) (PlanSink, error)
}

// PlanTarget is what a planned sink writes to.
type PlanTarget struct {
	// Object is the destination object or table, e.g. "Account".
	Object string
	// Operation is what the sink does with each row, e.g. "upsert".
	Operation string
	// Instance is where the sink sends rows, as its options name it (a
	// URL, or a registered scheme such as "emulator:").
	Instance string
}

// PlanSink is a sink that writes, instead of sending, the files its sink
// would send: one PlanFile per request or job, in the order they were
// written. PlanFiles is safe to call after Close.
type PlanSink interface {
	Sink
	PlanFiles() []PlanFile
}

// PlanFile is one file a PlanSink wrote: the body of one request or job
// of the sink it stands in for.
type PlanFile struct {
	// File is the file's path.
	File string `json:"file"`
	// Rows is the number of data rows (a header excluded).
	Rows int `json:"rows"`
	// Bytes is the file's size, header included.
	Bytes int64 `json:"bytes"`
}

// LookupSpec declares a small key → value table used by the lookup()
// expression function: a CSV object (URL), or the records of a SOQL query
// run as a Salesforce Bulk API 2.0 query job (Query; package
// salesforcesource loads it, within MaxEntries).
type LookupSpec struct {
	URL string `yaml:"url"`
	// Query is a SOQL query selecting Key and Value, instead of URL.
	Query string `yaml:"query"`
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
	// MaxEntries is the most records a Query table may hold (0: the
	// default budget); a query returning more is refused.
	MaxEntries int `yaml:"max_entries"`
	// Salesforce is the connection Query runs on, with the salesforce
	// sink's connection keys (instance_url, auth, api_version,
	// response_compression). The config loader fills it from the
	// pipeline's first salesforce sink (else source) when it is unset.
	Salesforce map[string]any `yaml:"salesforce"`
}

// Env is what the engine gives plugin constructors: facts about the run that
// no single plugin's options carry.
type Env struct {
	// RunID identifies the run (also written to reports and dead letters).
	RunID string
	// Pipeline is the pipeline's name.
	Pipeline string
	// BaseDir is the directory relative file paths and file:// URLs are
	// resolved against (the current directory by default).
	BaseDir string
	// Lookups are the pipeline's lookup tables by name.
	Lookups map[string]LookupSpec
	// Logger receives diagnostic messages; never nil when set by the engine.
	Logger *slog.Logger
	// Shard, when set, tells sources reading several objects to read only
	// the objects this shard keeps (see Shard.Keep).
	Shard Shard
}

// SourceFunc opens a source from its decoded options (a pointer returned by
// the plugin's Spec.NewOptions).
type SourceFunc func(ctx context.Context, env *Env, opts any) (Source, error)

// TransformFunc builds a transform from its decoded options.
type TransformFunc func(env *Env, opts any) (Transform, error)

// SinkFunc opens a sink for rows of the given schema from its decoded
// options.
type SinkFunc func(ctx context.Context, env *Env, opts any, in *Schema) (Sink, error)

// ExprField is one named expression as written in a pipeline file.
type ExprField struct {
	Name string
	Expr string
	Pos  Position
}

// ExprSetter is implemented by the options of expression transforms ("map",
// "filter") so the config loader can fill them from the `map:` and `filter:`
// shorthands with the position of each expression.
type ExprSetter interface {
	SetExprs([]ExprField)
}

// Projector is implemented by sources that can read only some of their
// columns. Before the first Read, the engine calls Project with the columns
// the rest of the graph reads (in the source's column order) when that is
// fewer than all; Schema and every batch then hold just those columns.
// Skipping a column must cost (next to) nothing beyond parsing the record.
type Projector interface {
	Project(names []string) error
}

// CheckProjection returns an error for a projection a Projector must
// refuse whatever its columns: an empty list, or a name listed twice.
func CheckProjection(names []string) error {
	if len(names) == 0 {
		return errors.New("needs at least one column")
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return fmt.Errorf("column %q listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// ColumnUser is implemented by transforms that can tell, after Check,
// which input columns they read. ok is false when a transform may read
// any column (an expression using $env, for example). Sources then skip
// the columns that no stage reads; see Projector.
type ColumnUser interface {
	ColumnsUsed() (names []string, ok bool)
}

// CursorPusher is implemented by sources that can skip data holding no row
// newer than an incremental watermark (Parquet row groups whose statistics
// say every cursor value is <= after, for example). The engine calls
// PushCursor once, after Schema and before the first Read, when the stage
// has `incremental: {cursor: FIELD}` and a committed watermark. The value of
// after has the Go type of the field's Type. Skipping is an optimisation:
// the engine still filters every row it reads, so a source may skip less
// than it could, but it must never skip a row whose cursor is > after (or
// null). Rows skipped this way were never read and are not counted.
type CursorPusher interface {
	PushCursor(field string, after any)
}

// Shard selects one part of a source's objects so that several processes
// (`bulkflow run --shard i/n`) can split a large source by file. The zero
// Shard keeps everything.
type Shard struct {
	Index int // 0-based
	Count int // 0 or 1: no sharding
}

// Keep reports whether the i'th object (0-based, in the sorted listing a
// source reads) belongs to this shard.
func (s Shard) Keep(i int) bool {
	return s.Count <= 1 || i%s.Count == s.Index
}

// Kept returns how many of n objects this shard keeps.
func (s Shard) Kept(n int) int {
	kept := 0
	for i := range n {
		if s.Keep(i) {
			kept++
		}
	}
	return kept
}

// String returns "i/n", or "" for no sharding.
func (s Shard) String() string {
	if s.Count <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}
