// Package pipeline is bulkflow's engine: the portable layer that every
// source, transform and sink plugs into, in the way gocloud.dev/blob's
// Bucket sits over its drivers. It never imports a plugin package: plugins
// import pipeline and register themselves in init functions; cmd/bulkflow
// and tests blank-import the */all packages (and, for s3://, gs:// and
// azblob:// locations, pipeline/blobio/clouddrivers).
//
// # Data model
//
// A Schema is an ordered list of typed Fields (Type: string, int, float,
// bool, date, timestamp, decimal). A Batch carries rows of one schema
// together with their Origins (the file, line or row each came from), so
// every row can be traced to its input. AppendValue writes a value as the
// text every text output uses, in a form that reads back as the same value
// with the same declared type.
//
// # Plugins and optional interfaces
//
// Source reads batches, Transform maps a batch to a batch (dropping or
// failing rows with a reason), Sink writes batches. Plugins add behaviour by
// implementing optional interfaces that the engine looks for:
//   - sources: Projector (read only the columns the graph uses),
//     CursorPusher (skip data holding no row past an incremental watermark);
//   - transforms: ColumnUser (which input columns it reads);
//   - sinks: Batcher (batch policy), FinalWriter (rows final when Write
//     returns), IDWriter (record ids for sync manifests), Deleter (mirror
//     deletes), StatsReporter (details for the run report);
//   - transforms, sinks and syncers: RowReleaser (keeps no input row once
//     Apply, Write or Add returns), so that the engine may recycle the
//     memory of rows a producer took from a SlabPool (Batch.Recycle);
//   - plugin options: Validator (check themselves at load), ExprSetter (the
//     expressions of map and filter, with their file positions);
//   - sink options, for the CLI: Preflighter (check the destination before
//     any row moves; problems are a PreflightError), Planner (a PlanSink
//     that writes the files the sink would send, for `bulkflow plan`) and
//     RunLedger (a ledger of each run: --resume, the run lock, provenance),
//     so that commands find these sinks by capability, never by type name.
//
// # Registry
//
// A Registry maps plugin type names to constructors (SourceFunc,
// TransformFunc, SinkFunc) with their option types; TypedSource and
// TypedSink adapt constructors that take their own options type, refusing
// another with an error. DefaultRegistry is the process-wide one plugins
// register into. pipeline/config decodes a pipeline file against a
// registry into a Graph of StageSpecs, refusing unknown keys, types and
// stages before any work starts.
//
// # Prepare, Run, Report
//
// Prepare opens the sources, builds and checks every transform against its
// input schema, narrows sources to the columns the graph reads, and returns
// a Plan. Plan.Run executes it once: one goroutine group, bounded channels
// between stages (backpressure), ordered workers where asked, cancellation
// through the context. It returns a Report (per-stage counts, dead-letter
// files, watermarks, status) that cmd/bulkflow writes as JSON and prints as
// a summary.
//
// # Accounting and dead letters
//
// The engine owns accounting: every row a source reads ends as loaded (a
// sink accepted it), filtered (a transform dropped it on purpose) or
// dead-lettered (with a code and reason), and Run checks
// read + fanned_out = loaded + filtered + dead_lettered at the end, failing
// with ErrAccounting when it does not hold. Dead-letter rows carry the
// DeadLetterColumns (_stage, _error_code, _error, _retryable, _ref,
// _origin, _run_id, _raw) after the row's own columns, so a dead-letter file
// reads back as a CSV source; each run writes its files and a Manifest under
// DEAD_LETTER/RUN_ID/. Codes and what recovers each row (fix and replay,
// retry, resume the run, inspect) are one typed table: Codes, LookupCode,
// RecoveryOf. A row whose Salesforce job may have run is never marked
// retryable: only `bulkflow run --resume` settles it.
//
// # Incremental and sync
//
// A source stage with incremental: keeps a Watermark in the StateStore and
// reads only rows past it; watermarks are committed only when a run ends
// without rows of unknown outcome (recovery resume or inspect: the resume
// that settles them reads them again) and without retryable dead letters,
// unless, for the latter, the rows reach a sink that inserts (Resender)
// without sync: reading them again would insert the loaded ones twice, so
// the watermark moves and the retryable rows wait for replay
// (IncrementalReport.Note). A sink stage with sync: gets a Syncer
// (RunOptions.Syncers), which compares each mapped row with the manifest of
// the previous run and passes only new and changed rows (SyncOp), and
// deletes missing ones when asked (Deleter), first looking up by the sync
// key those whose record id the manifest does not hold (KeyResolver). A
// lookback (Incremental.Lookback) reads a margin below the watermark
// again, and needs sync on every sink it reaches; delete_missing is
// refused behind an incremental source (Graph.Check); a run that
// dead-lettered rows on their way to a sync stage deletes nothing
// (Report.SyncDeletesHeld), and one whose deletes failed is partial
// (Report.SyncDeletesFailed). The sync feature lives under pipeline/sync:
// sync/syncer carries out a `sync:` block (the Syncer the engine calls),
// sync/changes diffs rows against the manifest of key → hash, and
// sync/synclog writes the Parquet log of what each run sent.
// Two packages beside them serve more than sync: pipeline/state (the store
// of watermarks, manifests, run history and leases) and pipeline/schedule
// (cron schedules for `serve`).
//
// # Sharding
//
// A Shard (I of N) makes multi-object sources read every N-th object, for
// splitting one load across processes (`bulkflow run --shard I/N`).
//
// # Errors
//
// A ConfigError names the pipeline file position and what to change; it
// means no row moved. A transform fails single rows with RowError, a sink
// with RowErrors: they become dead letters, never a failed run. ErrPartialOutput marks a failure after
// some output may already exist.
package pipeline
