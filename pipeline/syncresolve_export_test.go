package pipeline

// SyncBatchRows exposes syncBatchRows to the external tests, which check
// that missing keys are looked up and deleted in batches of at most that
// many.
const SyncBatchRows = syncBatchRows
