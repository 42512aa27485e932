// Package salesforce is a client for the Salesforce Bulk API 2.0 (ingest
// and query jobs) and the OAuth 2.0 token endpoint. It knows nothing of
// pipelines: it creates jobs, uploads one CSV per job, polls, and streams
// result files. The protocol it follows is
// shared/docs/salesforce-bulk-api-2.md ("the contract").
//
// A typical ingest:
//
//	auth, err := salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{...})
//	c, err := salesforce.NewClient(ctx, auth, nil)
//	job, err := c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
//	err = c.UploadJobData(ctx, job.ID, salesforce.BytesBody(csv))
//	_, err = c.CloseJob(ctx, job.ID)
//	info, err := c.WaitJob(ctx, job.ID, nil)
//	rc, err := c.FailedResults(ctx, job.ID)
//
// # Options
//
// Options set the API version (default 62.0), the HTTP client, the
// client name sent as Sforce-Call-Options (client=bulkflow/<Version>), a
// logger, and the retry budget (attempts, elapsed time, backoff, and a
// sleep/clock hook for tests). RepeatableCreate lets the client retry a
// create whose answer was lost (at worst an empty Open job is left);
// PollOptions.Failures lets WaitJob poll again after failed polls. The
// client is the one retry home for Salesforce calls: callers do not wrap
// it in loops of their own. Plain http:// URLs are refused unless the
// host is loopback.
//
// # Small loads: sObject Collections
//
// WriteCollection creates, updates, upserts (by external id) or deletes up
// to 200 records in one synchronous REST request
// (shared/docs/salesforce-rest-collections.md), with allOrNone false and
// one result per record in request order; per-record errors are RowErrors
// with the codes a Bulk job's failed results give. EncodeCollectionBody
// writes the JSON (null, typed numbers and booleans, references by external
// id as nested objects). A create is replayed only after answers that
// prove nothing was processed; without a definite answer its error matches
// ErrOutcomeUnknown and its rows may be in Salesforce.
//
// # Authentication
//
// ClientCredentials, JWTBearer, RefreshToken and StaticToken return an
// *Auth, which caches the access token and the instance URL from the token
// response. When an API call answers 401 INVALID_SESSION_ID the client
// forces one new token and replays the same request once.
//
// # Errors
//
// Failed API calls return *APIError (status, errorCode, message), matched
// with errors.Is against ErrInvalidSession, ErrRequestLimit, ErrNotFound,
// ErrInvalidJobState, ErrInvalidJob, ErrJobNotComplete, ErrDuplicateUpload
// and friends. Token endpoint failures are *AuthError. IsRetryable is the
// single retry policy; IsDefiniteRefusal says when to stop trying (an
// answer every attempt would get); IsTransport tells a request that got no
// answer. A job that ended Failed is described by
// JobInfo.Err, a *JobError (ParseJobError); per-row failures in
// failedResults are parsed with ParseRowError. Errors and logs never
// contain access tokens, refresh tokens, client secrets or JWT assertions.
package salesforce
