// Package salesforcesource is the "salesforce" source: it reads a SOQL
// query as a Bulk API 2.0 query (or queryAll) job and streams the job's
// results page by page (contract §6 of shared/docs/salesforce-bulk-api-2.md).
//
// # Options
//
//	instance_url, auth, api_version, response_compression
//	             as the salesforce sink (salesforcesink.Connection; the
//	             same "emulator:" instance URL, the same auth flows)
//	query        a SOQL SELECT of plain and relationship fields
//	object       with fields: builds "SELECT fields FROM object"
//	fields       the fields to select with object
//	all_rows     true: a queryAll job (deleted and archived records too)
//	max_records  records per results page (default 50,000): the most
//	             records the source holds at once
//	batch_size   rows per batch (default 2,000)
//	poll_initial, poll_max, poll_timeout
//	             how the job is polled (default patience 30m)
//
// # Jobs and reading
//
// Schema describes the object (and the parent objects of relationship
// fields such as Account.Name) and creates the query job, so a bad query
// fails before any row moves. The first Read waits for the job, then each
// results page (Sforce-Locator, maxRecords) is read as it streams: memory
// is bounded by one page, never the whole result. While a page is read,
// the next one is already requested (one goroutine, stopped by Close), so
// that Salesforce prepares it meanwhile; only its headers and what the
// connection buffers arrive before it is read. Every page repeats the
// header, which is checked against the selected fields. A Project or
// PushCursor that changes the query after Schema aborts that job and makes
// another. A cancelled Read, a failed wait and a Close before the end
// abort the job (best effort: an aborted or finished job costs nothing).
//
// Rows' origins are salesforce:<job id>#row=N, N counting the job's
// records from 1, so that a dead letter names the job whose results hold
// the record.
//
// # Types
//
// Columns are typed from describe: id, string, picklist, multipicklist,
// reference, textarea, email, phone, url, combobox, time and unknown types
// are strings; boolean is bool; int and long are int; double, currency and
// percent are decimal (the exact text Salesforce returns, never a float:
// money keeps its digits); date is date; datetime is a UTC timestamp.
// Compound address and geolocation fields are refused with a message
// naming their components, which a query can select.
//
// Salesforce writes null and empty text alike as an empty cell (and stores
// empty text as null): an empty cell is "" in a string column and null in
// any other. A value that does not parse as its described type is a
// dead-lettered row (code bad_value), not a failed run. The results are
// parsed as encoding/csv parses them (salesforce.QueryRecords: a fast
// path for the shape Salesforce writes, encoding/csv for anything else),
// which reads a CRLF inside a quoted value as LF. Rows are built with no
// allocation per value (shared text chunks, values boxed in place).
//
// # Incremental reads and shards
//
// With `incremental: {cursor: SystemModstamp}` (or any selected field) the
// engine's watermark is pushed into the query as
// "(FIELD > watermark OR FIELD = null)", ANDed into an existing WHERE;
// the engine still filters every row. --shard is refused: one query job's
// results cannot be dealt out by object.
// # Lookups
//
// LoadLookup, registered with package exprenv, loads the lookups: tables
// declared with query: (see the README's "Lookups from Salesforce"): one
// query job per table and run, refused above max_entries (default
// DefaultLookupMaxEntries).
package salesforcesource
