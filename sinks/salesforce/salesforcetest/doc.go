// Package salesforcetest is an in-memory emulator of the Salesforce OAuth
// 2.0 token endpoint and the REST / Bulk API 2.0 resources bulkflow uses,
// built to the protocol contract in shared/docs/salesforce-bulk-api-2.md.
// It is the test double for the sinks/salesforce client, which it does not
// import: both halves agree only through the contract.
//
// NewServer starts an emulator on a loopback port, like
// httptest.NewServer:
//
//	srv := salesforcetest.NewServer(nil)
//	defer srv.Close()
//	// srv.URL is the instance URL, srv.TokenURL() the token endpoint,
//	// srv.AccessToken() a pre-issued bearer token.
//
// NewHandler returns the same Server unstarted, for mounting as an
// http.Handler or serving with Listen / Serve (used by `bulkflow emulator`).
//
// # Wire behaviour
//
// Ingest jobs follow the contract's state machine (Open → UploadComplete
// → InProgress → JobComplete | Failed | Aborted), one PUT per job, 18-char
// ids with a valid case suffix, apiVersion printed as 62.0, timestamps like
// 2025-03-04T10:15:02.000+0000, and fully quoted result CSVs. JSON is
// compact, or pretty-printed in Jackson style with X-PrettyPrint: 1. Every
// /services/data response carries Sforce-Limit-Info. Unknown routes get a
// 404 NOT_FOUND JSON array; panics are answered with a 500 JSON array.
//
// Processing runs on goroutines owned by the Server; Close stops them.
// Rows are validated against a describe-like catalog (DefaultObjects, or
// LoadObjects for pasted describe output) and produce sf__Error strings in
// the contract's format.
//
// # sObject Collections
//
// The REST collections resource (shared/docs/salesforce-rest-collections.md)
// is served under /composite/sobjects (collections.go): create (POST),
// update (PATCH), upsert by external id (PATCH …/{SObject}/{Field},
// updateOnly), delete (DELETE ?ids=) and retrieve (GET / POST
// …/{SObject}). A JSON record is turned into the Bulk row that means the
// same and goes through the same validation and store, so both APIs give
// the same records and sf__Error codes for the same input. Request-level
// checks answer 400 before any row (empty or missing records, more than 200,
// more than 10 type chunks, missing or unknown type, bad JSON), 413 above
// CollectionFaults.MaxBodyBytes; results are positional; allOrNone rolls the
// request back; every row sharing a duplicate key (upsert) or id (update,
// delete) fails. The Faults apply as to every call; SetCollectionFaults adds
// 500 before processing and the commit-then-fail faults (500 or a dropped
// connection after the rows were saved).
//
// # Options
//
// Options holds credentials, limits, the object catalog, a Clock and Seed
// for deterministic output, and switches for every behaviour the contract
// marks unconfirmed. Faults (5xx rate, request limits, token expiry, lock
// errors, slow processing, job failure after N rows, dropped connections)
// can be changed at run time with SetFaults or POST /__emulator/faults.
//
// # Inspection
//
// Tests assert without sleeping through Jobs, Job, Records, UploadedCSV,
// Requests and AwaitJobState, which waits on a notification channel.
//
// # Admin endpoints
//
// These endpoints need no token and are never subject to faults:
//
//	GET  /__emulator/faults          current Faults as JSON
//	POST /__emulator/faults          update Faults; keys absent keep their value, e.g.
//	                                 {"fail5xxRate":0.1,"lockErrorRate":0.05,"tokenTTL":"30s",
//	                                  "tokenMaxUses":0,"requestLimitExceeded":false,"requestLimitNext":3,
//	                                  "processingDelay":"2s","failJobAfterRows":5000,"dropConnectionRate":0}
//	POST /__emulator/expire-tokens   expire every issued access token
//	GET  /__emulator/jobs            all jobs (JobInfo) as JSON
//	GET  /__emulator/records/{obj}   stored records of an object as JSON
//	GET  /__emulator/requests        request counters as JSON
//
// Because they need no token, they refuse what a web page in the
// developer's browser could send: a Host other than the emulator's own
// address or a loopback name with its port (421: DNS rebinding), and an
// Origin or Sec-Fetch-Site naming another site (403: cross-site POSTs,
// text/plain ones included). Tools that send no Origin are unaffected.
//
// # Errors
//
// API errors are written as the contract's JSON arrays
// [{"errorCode":..,"message":..}] (REST framework errors such as
// INVALID_SESSION_ID list "message" first, as captured from Salesforce).
// Token endpoint errors are {"error":..,"error_description":..} objects.
package salesforcetest
