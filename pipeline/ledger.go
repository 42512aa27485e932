package pipeline

import "context"

// RunLedger is implemented by the options of sinks that keep a ledger of
// each run (the Salesforce sink's write-ahead ledger of its jobs), so that
// `bulkflow run FILE --resume RUN_ID` continues a run without sending a row
// twice. Before any row moves, the CLI uses it to:
//
//   - know a run: --resume of an id that no ledger (nor dead-letter
//     manifest, report or run history) has a record of is refused, since
//     it would start a fresh run that sends every row again;
//   - lock the run, one process per run id: the first ledger of the
//     pipeline holds the lock, LOCATION/FOLDER/RUN_ID/run.lock beside the
//     run's records (a lease in LOCATION/FOLDER.run-RUN_ID/ on a blob
//     store);
//   - tell the sink what this attempt reads (SetProvenance), so that a
//     resume that cuts other rows than the first attempt says what changed.
//
// A sink whose options do not implement it keeps no run records: a
// resumed run is known only by its dead letters, report or run history, it
// sends its rows again, and it is locked only in the state store, when
// the pipeline keeps state (a sync or an incremental source).
type RunLedger interface {
	// LedgerLocation returns where the ledger is kept, a directory or
	// blob URL prefix (a relative one is relative to the pipeline's base
	// directory), or "" when the ledger is off.
	LedgerLocation() string
	// LedgerFolder returns the folder, under LedgerLocation, that holds
	// one folder per run id of the named pipeline: one path element.
	LedgerFolder(pipeline string) string
	// LedgerHasRun reports whether the ledger holds a record of run runID
	// of the named pipeline, resolving a relative LedgerLocation against
	// baseDir. A run folder that holds only the run's lock is no record;
	// a ledger that is off or cannot be read holds none.
	LedgerHasRun(ctx context.Context, baseDir, pipeline, runID string) bool
	// SetProvenance records what this attempt of the run reads: the
	// pipeline file (named in resume hints), the hex sha256 of its bytes,
	// and a fingerprint of each source object by URL (nil when unknown).
	// The CLI calls it before the sink opens, also when the ledger is off.
	SetProvenance(file, digest string, sources map[string]string)
}

// Resender is implemented by the options of sinks whose writes are not
// idempotent: a row sent again is stored again (a Salesforce insert makes a
// second record). The CLI uses it for pipelines that keep state between
// runs (a sync or an incremental source): their next run diffs against,
// or reads past, state that a run which did not finish (killed, cancelled,
// failed, or left rows whose job's outcome is unknown) never committed, so
// it would send again every row that run loaded. A plain `bulkflow run`
// of such a pipeline with a sink's ledger on therefore resumes the
// unfinished run (the ledger skips what it loaded) instead of starting a
// new one.
type Resender interface {
	// ResendsDuplicate reports whether a row written twice is stored twice.
	ResendsDuplicate() bool
}
