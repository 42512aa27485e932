// Package salesforcesink is the "salesforce" sink: it loads rows into one
// Salesforce object through Bulk API 2.0 ingest jobs, using the client in
// sinks/salesforce, and reports exactly which rows Salesforce saved.
//
// # Behaviour
//
// The engine hands the sink batches of up to max_job_rows rows, up to
// concurrency at a time. Each batch is encoded as Bulk API CSV (contract
// §3), split by encoded bytes (max_job_bytes) into chunks, and every chunk
// is spooled to a temporary file and loaded as one job: create → one PUT →
// close → poll with backoff (poll_initial up to poll_max, patience
// poll_timeout) → stream the successful, failed and unprocessed results.
// Result rows are correlated back to the batch by the exact echoed cells
// (identical rows are matched in upload order), falling back to the Id or
// external id column. A row counts as loaded only when it appears in
// successfulResults; every other row is reported in *pipeline.RowErrors
// with a code:
//
//	<sf__Error status code>  e.g. REQUIRED_FIELD_MISSING, STRING_TOO_LONG (Field = first field named)
//	UNABLE_TO_LOCK_ROW       after lock_retries smaller follow-up jobs
//	UNPROCESSED              the job failed or was aborted part-way
//	<job error code>         the whole job failed, e.g. InvalidBatch, ClientInputError
//	job_incomplete           the job may have run but its outcome is unknown (poll_timeout,
//	                         unreadable results): not retryable; `bulkflow run FILE --resume RUN_ID`
//	result_mismatch          the results do not list the row exactly once (no result row matched,
//	                         or a result row is duplicated or extra: then every row of the job)
//	cancelled                the run was cancelled; the sink aborted the job
//	REQUEST_LIMIT_EXCEEDED, connection_refused, dns_error, tls_error, timeout,
//	connection_reset, network_error
//	                         no job could be created (or its upload failed and it was aborted):
//	                         the cause's code; a sink that never got a job created fails the
//	                         run with an OutageError
//	api_error                as above when the cause has no more precise code
//	api_budget               the daily API allowance fell below min_api_remaining: no job was created
//	outcome_unknown          a REST create got no definite answer: it may be in Salesforce (not retryable)
//	outcome_unknown_retry    a REST update, upsert or delete got none after the retries (retryable)
//	invalid_value            NaN or infinite float
//	row_too_large            one row is larger than max_job_bytes
//
// Whether a row is retryable comes from its code alone, through the one
// code table pipeline.Codes (pipeline.RecoveryOf): retryable only when the
// row is certainly not in Salesforce. Every message names the job id and
// says retryable=true or false. If the first job of a run fails for a reason
// every job would hit (unknown object or field, bad external id, a refused
// header or line ending), Write returns a plain error and the run stops.
//
// # Cell encoding
//
// Header = the input field names. nil → #N/A (sets the field to null; an
// empty string stays an empty cell, which Salesforce ignores), booleans
// true/false, dates 2006-01-02, timestamps 2006-01-02T15:04:05.000Z in UTC,
// floats in plain decimal notation, decimals as their text. A cell is
// quoted when it holds the delimiter, a quote, CR or LF; quotes are
// doubled; CRLF and lone CR inside values become LF. No BOM; every line,
// the last included, ends with the job's line ending. A string value
// "#N/A" cannot be told from null.
//
// # Options
//
//	object:             sObject API name (required), e.g. Account
//	operation:          insert (default) | update | upsert | delete | hardDelete
//	external_id_field:  External ID field (or Id) for upsert; required for upsert
//	api_version:        default "62.0"
//	instance_url:       https://<domain>.my.salesforce.com; plain http only to loopback;
//	                    required with access_token; with the OAuth flows the token
//	                    response's instance_url is used. "SCHEME:" opens an instance
//	                    through the InstanceOpener registered for SCHEME
//	                    (RegisterInstanceOpener); cmd/bulkflow registers "emulator:",
//	                    an in-process salesforcetest emulator for the run (closed by Close)
//	auth:               one flow; secrets via ${ENV} or ${file:PATH}, never logged
//	  access_token:     a session id (needs instance_url; cannot be renewed)
//	  client_id, client_secret, login_url:                 client credentials (login_url = My Domain)
//	  client_id, username, private_key_file, login_url:    JWT bearer (audience: default login.salesforce.com)
//	  client_id, client_secret, refresh_token, login_url:  refresh token
//	line_ending:        LF (default) | CRLF
//	column_delimiter:   COMMA (default) | TAB | SEMICOLON | PIPE | CARET | BACKQUOTE
//	max_job_bytes:      raw CSV bytes per job, default 100000000; refused above 150000000
//	max_job_rows:       rows per job and per Write, default 10000
//	concurrency:        jobs in flight, default 4
//	poll_initial:       first poll delay, default 1s
//	poll_max:           longest poll delay, default 30s
//	poll_timeout:       patience per job, default 30m
//	assignment_rule_id: Case/Lead assignment rule (api_version >= 49.0)
//	lock_retries:       follow-up jobs for UNABLE_TO_LOCK_ROW rows, default 2
//	archive_results:    blob URL prefix; each job's three result files are copied to
//	                    <prefix>/<run id>/<job id>-{successful,failed,unprocessed}.csv
//	delete_jobs:        delete finished jobs at Close, default false
//	ledger:             write-ahead ledger directory or blob URL prefix, default
//	                    .bulkflow/ledger/ (relative to the pipeline's base directory);
//	                    "off" disables it; off by default for instance_url "emulator:"
//	min_api_remaining:  daily API request reserve: no job is created once the requests
//	                    left, minus what the jobs in flight still need (close, polls,
//	                    results), would fall below it (rows → api_budget); jobs in
//	                    flight stop polling at it (rows → job_incomplete: resume
//	                    later). Usage is the freshest Sforce-Limit-Info minus the
//	                    requests sent since. default 0 = no guard. Independently,
//	                    REQUEST_LIMIT_EXCEEDED that outlasts the client's retries
//	                    stops every further request of the sink (polls after 3
//	                    refusals in a row); the rows stay resumable
//	response_compression: auto (default: gzip except from a loopback host) | gzip | none
//	api:                auto (default, DefaultAPI) | bulk | rest: see # Small loads
//	rest_max_rows:      the largest input api auto sends through REST, default 2000
//
// # Small loads
//
// With api auto the engine hands the sink batches of at least
// rest_max_rows+1 rows (max_job_rows still caps a job), so a first batch
// (pipeline.BatchSeq 0) of at most rest_max_rows rows that is shorter than
// that is the sink's whole input: it goes through REST sObject Collections
// (rest.go; shared/docs/salesforce-rest-collections.md), every other batch
// through Bulk jobs; hardDelete, assignment_rule_id and upserts on Id
// always go through Bulk (api rest refuses them). api rest sends every batch that way. Requests carry up
// to 200 rows (and 10 MB of JSON), are sent one after the other with
// allOrNone false, and answer per row in order: the same codes, fields and
// messages as a job's failed results; UNABLE_TO_LOCK_ROW rows are sent
// again alone up to lock_retries times. A delete sends only ids of the
// sink's object (describe's key prefix; others fail MALFORMED_ID, as in a
// job). The ledger records each request at its position before it is sent
// (rest_sending, with the sha256 of its body) and its per-row outcome after
// (rest_done). A create is never sent twice blindly: without a definite
// answer (5xx, timeout, lost connection), or found rest_sending by a
// resume, its rows are outcome_unknown (RecoveryInspect); an update, upsert
// or delete is replayed by the client's retry policy and by a resume (a
// resumed delete counts ENTITY_IS_DELETED rows as deleted), and is
// outcome_unknown_retry (RecoveryRetry) when the retries are spent. A
// rest_done request is settled from the ledger without a request. The
// report counts bulk_jobs, bulk_rows, rest_requests and rest_records; a
// PlanSink writes the request bodies (rest-0001.json) of an input api auto
// sends through REST.
//
// # Ledger and resume
//
// Every chunk is recorded in <ledger>/<pipeline>/<run id>/ before each
// remote step, keyed by its position in the deterministic cut of the input
// (the engine's batch number, pipeline.BatchSeq; the lock-retry attempt;
// the chunk within them) with the sha256 of its exact CSV bytes:
//
//	creating → created {job} → uploading → uploaded → closed → finished {state, counts}
//	                                     ↘ aborted (the job was aborted while Open)
//
// Locally the ledger is one append-only ledger.jsonl, fsynced after every
// line (a torn last line is ignored and cut on reopen), and spool/ keeps
// the CSV of every chunk whose job may still run; on a blob store every
// record is one object under log/. The first line of each process records
// the options that shape chunks; a resume with other options is refused.
//
// Opening the sink with the run id of an earlier attempt (bulkflow run FILE
// --resume RUN_ID) resumes it. The source is read again; each chunk is
// looked up by position and never uploaded again when its job may have
// been processed. A chunk whose digest (or row count) differs from the
// record at its position while that record reached uploading stops the
// run before it or any later chunk is uploaded (ResumeMismatchError; the
// CLI exits 2): the mapping was edited, a function is non-deterministic
// (now()), workers are unordered, or the source was re-exported; the
// first attempt's Provenance (Options.Provenance) says which. New uploads
// of a resumed run wait until every earlier batch was found unchanged.
//
//	no record, creating, aborted  sent in a new job (at worst an empty Open job exists)
//	created, uploading            GET the job: Open → abort it, new job; closed or
//	                              terminal → wait and read its results; unreadable
//	                              → job_incomplete (a job gone after created → new job)
//	uploaded, closed              Open → close it (the data landed); else wait, results
//	finished                      all rows loaded → settled without an API call;
//	                              else its results are read again
//
// Rows an Aborted job left unprocessed (a cancelled run aborts its jobs)
// were never processed; a resume sends them again in a new job. Cancelling
// or a job_incomplete logs the command to resume with. Stats() adds
// api_calls (requests to /services/data), errors_by_code,
// errors_by_recovery, run_id, ledger and resumed_chunks. Ledgers written
// before chunks were keyed by position (digest + occurrence) still resume,
// by digest.
//
// # Recovery model
//
// Every row of a run ends in one of four states, and one command recovers
// each without loading it twice (pipeline.Codes says which by code):
//
//	never sent       api_budget, cancelled, UNPROCESSED, REQUEST_LIMIT_EXCEEDED,
//	                 connection_refused, ... (RecoveryRetry): no job that could
//	                 run held it; `bulkflow replay` (or a resume) sends it again.
//	outcome unknown  job_incomplete (RecoveryResume): its job may have run;
//	                 only `bulkflow run FILE --resume RUN_ID` settles it, by
//	                 reading that job (_ref) through the ledger; replay refuses it.
//	                 outcome_unknown (RecoveryInspect): a REST create without a
//	                 definite answer; no resume can tell: look for the row,
//	                 then settle it (`run --resume RUN_ID --settle-unknown
//	                 loaded|absent`, by _ref or row by row); without state,
//	                 replay --all the absent ones. outcome_unknown_retry: the same for
//	                 an idempotent update, upsert or delete (RecoveryRetry).
//	loaded           counted loaded; a resume settles its chunk from the ledger
//	                 without sending it.
//	rejected         a Salesforce error code (RecoveryFix): fix the data, then
//	                 replay; result_mismatch (RecoveryInspect): the results did
//	                 not list it exactly once; look at the job, then settle it
//	                 as for outcome_unknown.
//
// A resume cannot duplicate: a chunk whose job may have run is never
// uploaded again, and a chunk that differs from the one at its position
// stops the run before any upload (see above).
//
// Memory is bounded by max_job_rows × concurrency rows (the engine's
// batches plus their encoded cells); the CSV itself is spooled to disk.
//
// Operations and input fields: delete and hardDelete take exactly one
// field, Id; update needs Id; upsert needs the external id field. Relationship
// columns are written as field names, e.g. Account.External_Id__c.
package salesforcesink
