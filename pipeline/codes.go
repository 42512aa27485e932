package pipeline

import (
	"slices"
	"strings"
)

// Recovery says how a dead-lettered row can be brought into its
// destination, and so whether sending it again unchanged is safe. It is
// decided by the row's error code alone (see Codes): nothing classifies a
// row by its message text.
type Recovery uint8

const (
	// RecoveryFix: the row was refused for its data or for the pipeline's
	// configuration (a bad value, a missing required field, an unknown
	// field). It is not in the destination; fix it (`bulkflow replay
	// --map`, the source, the pipeline) and send it again. Not retryable as
	// it is. Codes the table does not know are RecoveryFix.
	RecoveryFix Recovery = iota
	// RecoveryRetry: the row is certainly not in the destination and failed
	// for a transient reason (a lock, a request limit, an outage, a
	// cancelled run). `bulkflow replay` may send it again unchanged. This is
	// the only class whose dead letters say _retryable=true.
	RecoveryRetry
	// RecoveryResume: the row was sent in a remote job whose outcome is not
	// known (it outlived poll_timeout, its results could not be read, the
	// budget stopped the polling): the destination may have loaded it, so
	// sending it again may duplicate it. Only `bulkflow run FILE --resume
	// RUN_ID` settles it (the Salesforce sink's ledger reads that job's
	// state and results; _ref names the job). Replay must refuse such rows,
	// or settle them through _ref first.
	RecoveryResume
	// RecoveryInspect: the destination's answer contradicts the upload
	// (results that list a row twice, or rows that were not uploaded): the
	// row may or may not be loaded and a resume would read the same
	// answer. A person looks at the job (_ref) before sending it again.
	// Not retryable.
	RecoveryInspect
	// RecoverySettled: the row's outcome was unknown (RecoveryInspect) and
	// the operator, having looked, settled it as loaded (`bulkflow run FILE
	// --resume RUN_ID --settle-unknown=loaded`): it is recorded as in the
	// destination (a sync's manifest holds its key) and is dead-lettered
	// only so that it is accounted for. Nothing sends it again: replay
	// refuses it, even with --all. Not retryable.
	RecoverySettled
)

var recoveryNames = [...]string{"fix", "retry", "resume", "inspect", "settled"}

// String returns "fix", "retry", "resume", "inspect" or "settled".
func (r Recovery) String() string {
	if int(r) < len(recoveryNames) {
		return recoveryNames[r]
	}
	return "unknown"
}

// Retryable reports whether a row of this class may be sent again
// unchanged (RecoveryRetry only): the value of a dead letter's _retryable.
func (r Recovery) Retryable() bool { return r == RecoveryRetry }

// CodeInfo describes one dead-letter error code.
type CodeInfo struct {
	Code     string   // as written in _error_code
	Recovery Recovery // how such a row is recovered
	Doc      string   // what happened, in one sentence
}

// Network and outage codes: a request that never got an HTTP answer, by
// cause. Plugins that talk to a remote service use them in place of a
// generic error code, and only for rows the service certainly did not
// receive (rows of a job that may have run are CodeJobIncomplete).
const (
	CodeConnectionRefused = "connection_refused" // nothing listens at the host's port
	CodeDNSError          = "dns_error"          // the host name does not resolve
	CodeTLSError          = "tls_error"          // the TLS handshake failed (https to an http port, a bad certificate)
	CodeTimeout           = "timeout"            // the request timed out before an answer
	CodeConnectionReset   = "connection_reset"   // the connection was reset or closed mid-request
	CodeNetworkError      = "network_error"      // any other transport failure
)

// Codes of rows sent to a remote service in jobs (the Salesforce sink's,
// and any later bulk sink's).
const (
	// CodeJobIncomplete: the row's job was created and its data uploaded,
	// but its outcome is not known (RecoveryResume).
	CodeJobIncomplete = "job_incomplete"
	// CodeResultMismatch: the job's results do not account for the row
	// exactly once (RecoveryInspect).
	CodeResultMismatch = "result_mismatch"
	// CodeOutcomeUnknown: the row was sent in a synchronous create (the
	// Salesforce sink's REST path) that got no definite answer (a 5xx, a
	// timeout, a lost connection): it may have been written, and a create
	// is never resent blindly (RecoveryInspect).
	CodeOutcomeUnknown = "outcome_unknown"
	// CodeOutcomeUnknownRetry: as CodeOutcomeUnknown for an update, upsert
	// or delete, which Salesforce applies idempotently: sending it again
	// cannot duplicate it (RecoveryRetry).
	CodeOutcomeUnknownRetry = "outcome_unknown_retry"
)

// Codes of rows whose unknown outcome (RecoveryInspect) the operator
// settled (RunOptions.SettleUnknown).
const (
	// CodeAssumedLoaded: settled as in the destination (RecoverySettled).
	CodeAssumedLoaded = "assumed_loaded"
	// CodeAssumedAbsent: settled as not in the destination
	// (RecoveryRetry): a sync's next run sends it again, or replay does.
	CodeAssumedAbsent = "assumed_absent"
)

// codeTable is every code bulkflow writes, in one place. Plugins' codes
// are here too (the Salesforce sink's and Salesforce's own sf__Error and
// job error codes that bulkflow treats specially), so that the sink, the
// report, plan and replay agree.
var codeTable = []CodeInfo{
	// Engine.
	{CodeCancelled, RecoveryRetry, "the run was cancelled before the row was loaded; a sink that had sent it in a job aborted that job first"},
	{CodeUnsettled, RecoveryResume, "a resumed attempt of the run stopped (refused, failed or cancelled) before it settled the row, and an earlier attempt may have loaded it: only `bulkflow run FILE --resume RUN_ID` can tell, through the sink's ledger; replay refuses it"},
	{CodeAborted, RecoveryRetry, "another stage failed and the run drained the row before it reached its sink"},
	{CodeSinkFailed, RecoveryFix, "the sink failed the whole batch for a reason every batch would hit (see _error); fix the pipeline, then replay --all"},
	{CodeRowFailed, RecoveryFix, "the row failed without a more precise code"},
	// Sources and transforms.
	{"field_count", RecoveryFix, "the record has more or fewer fields than the header; the record is in _raw"},
	{"bad_quote", RecoveryFix, "the record's quoting is malformed; the record is in _raw"},
	{"bad_value", RecoveryFix, "a value does not parse as the declared type"},
	{"out_of_range", RecoveryFix, "a value is outside the declared type's range"},
	{"expr_error", RecoveryFix, "a mapping or filter expression failed on the row"},
	{"duplicate_key", RecoveryFix, "another row has the same key"},
	// Network (the row never reached a job that could run).
	{CodeConnectionRefused, RecoveryRetry, "the service refused the connection (nothing listens at the host's port); the row was not sent"},
	{CodeDNSError, RecoveryRetry, "the service's host name did not resolve; the row was not sent"},
	{CodeTLSError, RecoveryRetry, "the TLS handshake failed (https to an http port, an untrusted certificate); the row was not sent"},
	{CodeTimeout, RecoveryRetry, "requests timed out before the row's job could run; the row was not sent"},
	{CodeConnectionReset, RecoveryRetry, "connections were reset before the row's job could run; the row was not sent"},
	{CodeNetworkError, RecoveryRetry, "a transport failure before the row's job could run; the row was not sent"},
	// Bulk sinks.
	{CodeJobIncomplete, RecoveryResume, "the row's job may have run but its outcome is not known (poll_timeout, unreadable results, the API budget stopped polling): use `bulkflow run FILE --resume RUN_ID`; _ref is the job id"},
	{CodeResultMismatch, RecoveryInspect, "the job's results do not list the row exactly once (duplicated, extra or missing result rows); look at the job in _ref, then settle the row: `bulkflow run FILE --resume RUN_ID --settle-unknown=loaded` (it is stored) or `=absent` (it is not)"},
	{CodeOutcomeUnknown, RecoveryInspect, "a REST create of the row got no definite answer (5xx, timeout, lost connection) and creates are never resent blindly: the row may be in Salesforce; look for it (by a natural key and its values), then settle it: `bulkflow run FILE --resume RUN_ID --settle-unknown=loaded` (it is there) or `=absent` (it is not)"},
	{CodeAssumedLoaded, RecoverySettled, "the row's outcome was unknown (result_mismatch, outcome_unknown) and `run --resume RUN_ID --settle-unknown=loaded` recorded it as in the destination: a sync's manifest holds it; nothing sends it again (replay refuses it)"},
	{CodeAssumedAbsent, RecoveryRetry, "the row's outcome was unknown (result_mismatch, outcome_unknown) and `run --resume RUN_ID --settle-unknown=absent` recorded it as not in the destination: a sync's next run sends it again, or replay does"},
	{CodeOutcomeUnknownRetry, RecoveryRetry, "a REST update, upsert or delete of the row got no definite answer after the client's retries; resending it cannot duplicate it (upsert re-matches, delete answers ENTITY_IS_DELETED)"},
	{"api_error", RecoveryRetry, "the job could not be created or its data uploaded (the service answered an error the retries did not overcome); the row was not processed"},
	{"api_budget", RecoveryRetry, "the daily API allowance fell below min_api_remaining before a job was created for the row; the row was not sent"},
	{"invalid_value", RecoveryFix, "a value cannot be written as Bulk API CSV (NaN or infinite)"},
	{"row_too_large", RecoveryFix, "the encoded row is larger than max_job_bytes"},
	{"UNPROCESSED", RecoveryRetry, "Salesforce did not process the row (its job failed or was aborted part-way)"},
	// Salesforce codes with a known meaning (sf__Error status codes and
	// job error codes); other Salesforce codes are RecoveryFix.
	{"UNABLE_TO_LOCK_ROW", RecoveryRetry, "Salesforce could not lock a record the row touches (after lock_retries smaller jobs)"},
	{"REQUEST_LIMIT_EXCEEDED", RecoveryRetry, "Salesforce refused the requests: the org's API request limit is exhausted; the row was not processed"},
	{"ExceededQuota", RecoveryRetry, "the job failed: the org's Bulk API quota is exhausted"},
	{"InternalServerError", RecoveryRetry, "the job failed with a Salesforce internal error"},
	{"Timeout", RecoveryRetry, "the job failed: Salesforce timed out processing it"},
	{"TooManyLockFailure", RecoveryRetry, "the job failed after too many lock failures"},
	{"Unknown", RecoveryRetry, "the job failed for an unknown reason"},
}

var codeIndex = func() map[string]CodeInfo {
	m := make(map[string]CodeInfo, len(codeTable))
	for _, c := range codeTable {
		if _, dup := m[c.Code]; dup {
			panic("pipeline: code " + c.Code + " twice in the code table")
		}
		m[c.Code] = c
	}
	return m
}()

// Codes returns the code table, sorted by code (a copy).
func Codes() []CodeInfo {
	out := slices.Clone(codeTable)
	slices.SortFunc(out, func(a, b CodeInfo) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// LookupCode returns the table's entry for code.
func LookupCode(code string) (CodeInfo, bool) {
	c, ok := codeIndex[code]
	return c, ok
}

// RecoveryOf returns how a row dead-lettered with code is recovered;
// RecoveryFix for a code the table does not know.
func RecoveryOf(code string) Recovery {
	return codeIndex[code].Recovery // zero value: RecoveryFix
}

// RetryableCode reports whether a row dead-lettered with code may be sent
// again unchanged: RecoveryOf(code) == RecoveryRetry.
func RetryableCode(code string) bool { return RecoveryOf(code).Retryable() }
