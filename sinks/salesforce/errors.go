package salesforce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors. Match them with errors.Is; *APIError implements Is for
// the API-level ones.
var (
	// ErrInvalidSession: 401 (INVALID_SESSION_ID and other auth failures).
	ErrInvalidSession = errors.New("salesforce: invalid session")
	// ErrRequestLimit: 429 or REQUEST_LIMIT_EXCEEDED.
	ErrRequestLimit = errors.New("salesforce: request limit exceeded")
	// ErrNotFound: 404 or NOT_FOUND (unknown or deleted job, unknown object).
	ErrNotFound = errors.New("salesforce: not found")
	// ErrInvalidJobState: INVALIDJOBSTATE (state change or upload not allowed).
	ErrInvalidJobState = errors.New("salesforce: invalid job state")
	// ErrInvalidJob: INVALIDJOB (bad object or external id at create).
	ErrInvalidJob = errors.New("salesforce: invalid job")
	// ErrJobNotComplete: 412 JOB_NOT_COMPLETE (results asked for too early).
	ErrJobNotComplete = errors.New("salesforce: job not complete")
	// ErrDuplicateUpload: the "Found multipe contents for job" rejection of
	// a second PUT (contract §2.4).
	ErrDuplicateUpload = errors.New("salesforce: job already has data")
	// ErrFeatureNotEnabled: FEATURENOTENABLED (e.g. hardDelete permission).
	ErrFeatureNotEnabled = errors.New("salesforce: feature not enabled")
	// ErrAPIDisabled: API_DISABLED_FOR_ORG.
	ErrAPIDisabled = errors.New("salesforce: API disabled for org")
	// ErrPollTimeout is returned by WaitJob when ctx or PollOptions.Timeout
	// ends before the job reached a terminal state. The job's state is
	// unknown beyond the returned last JobInfo; it has not failed.
	ErrPollTimeout = errors.New("salesforce: gave up waiting for job")
	// ErrJobFailed matches a *JobError (a job that ended in state Failed).
	ErrJobFailed = errors.New("salesforce: job failed")
	// ErrJobAborted is returned by JobInfo.Err for an Aborted job.
	ErrJobAborted = errors.New("salesforce: job aborted")
	// ErrUploadUnknown: an upload failed ambiguously and the job is no
	// longer Open, so whether the data landed cannot be known. Abort the
	// job and load the data in a new one.
	ErrUploadUnknown = errors.New("salesforce: upload outcome unknown")
	// ErrInsecureURL: an http:// URL whose host is not loopback.
	ErrInsecureURL = errors.New("salesforce: refusing plain http to a non-loopback host")
)

// APIError is a non-2xx answer from a REST or Bulk API 2.0 endpoint
// (contract §5.1). Code and Message come from the first element of the JSON
// error array; Body holds a short, redacted excerpt when the body was not
// JSON. It never contains access tokens or other secrets.
type APIError struct {
	StatusCode int      // HTTP status
	Code       string   // errorCode, e.g. INVALIDJOBSTATE; empty if none
	Message    string   // message of the first error
	Fields     []string // fields of the first error, if any
	Method     string   // HTTP method of the failed request
	Path       string   // URL path of the failed request
	Body       string   // redacted, truncated body when it was not a JSON error array
	retryAfter time.Duration
	// More holds further elements when the array had more than one.
	More []APIError
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "salesforce: %s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Message == "" && e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	return b.String()
}

// Is reports whether the error matches one of the package sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrInvalidSession:
		return e.StatusCode == 401 || e.Code == "INVALID_SESSION_ID"
	case ErrRequestLimit:
		return e.StatusCode == 429 || e.Code == "REQUEST_LIMIT_EXCEEDED"
	case ErrNotFound:
		return e.StatusCode == 404 || e.Code == "NOT_FOUND"
	case ErrInvalidJobState:
		return e.Code == "INVALIDJOBSTATE"
	case ErrInvalidJob:
		return e.Code == "INVALIDJOB"
	case ErrJobNotComplete:
		return e.StatusCode == 412 || e.Code == "JOB_NOT_COMPLETE"
	case ErrDuplicateUpload:
		m := strings.ToLower(e.Message)
		return e.StatusCode == 400 && (strings.Contains(m, "multipe contents") || strings.Contains(m, "multiple contents"))
	case ErrFeatureNotEnabled:
		return e.Code == "FEATURENOTENABLED"
	case ErrAPIDisabled:
		return e.Code == "API_DISABLED_FOR_ORG"
	}
	return false
}

// refreshable reports whether a 401 can be cured by a new token (contract
// §1.7: not when the token lacks the api scope).
func (e *APIError) refreshable() bool {
	if e.StatusCode != 401 {
		return false
	}
	if e.Code != "" && e.Code != "INVALID_SESSION_ID" {
		return false
	}
	m := e.Message
	return !strings.Contains(m, "not valid for use with the REST API") && !strings.Contains(m, "Connected app is not attached")
}

// AuthError is a failure from the OAuth token endpoint (contract §1.6).
// Code is the "error" field (e.g. invalid_grant). It never carries the
// request's secrets.
type AuthError struct {
	StatusCode  int
	Code        string
	Description string
}

// Error implements error.
func (e *AuthError) Error() string {
	s := fmt.Sprintf("salesforce: token request failed: %d", e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Is makes an AuthError match ErrInvalidSession.
func (e *AuthError) Is(target error) bool { return target == ErrInvalidSession }

// JobError is a job-level failure: a job in state Failed, with its
// errorMessage split per contract §5.3 ("<Code> : <text>").
type JobError struct {
	JobID   string
	Code    string // e.g. InvalidBatch, ClientInputError; empty if the text had no code
	Message string
}

// Error implements error.
func (e *JobError) Error() string {
	s := "salesforce: job"
	if e.JobID != "" {
		s += " " + e.JobID
	}
	s += " failed"
	switch {
	case e.Code != "" && e.Message != "":
		s += ": " + e.Code + " : " + e.Message
	case e.Code != "":
		s += ": " + e.Code
	case e.Message != "":
		s += ": " + e.Message
	}
	return s
}

// Is makes a JobError match ErrJobFailed.
func (e *JobError) Is(target error) bool { return target == ErrJobFailed }

// ParseJobError splits a job's errorMessage ("InvalidBatch : Field name not
// found : X") into code and message on the first " : ". A text without that
// separator, or whose prefix is not a single word, becomes Message alone.
func ParseJobError(errorMessage string) *JobError {
	code, msg, ok := strings.Cut(errorMessage, " : ")
	if !ok || !isWord(code) {
		return &JobError{Message: errorMessage}
	}
	return &JobError{Code: code, Message: msg}
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// transportError is a failure to get any HTTP response. Idempotent records
// whether the request may be repeated safely.
type transportError struct {
	method, path string
	idempotent   bool
	err          error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("salesforce: %s %s: %v", e.method, e.path, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

// IsTransport reports whether err is a request that got no HTTP answer
// (the connection failed, was reset or timed out, or the transport
// refused the exchange), as opposed to an answer with an error status.
func IsTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// IsRetryable is the client's one retry policy. It reports true for 5xx,
// 408 and 429 responses, REQUEST_LIMIT_EXCEEDED, and for connection resets,
// timeouts and unexpected EOFs on idempotent requests (GET, DELETE,
// PATCH to a state). Context cancellation is never retryable. Uploads are
// never retried on this basis; see Client.UploadJobData.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == 408 || ae.StatusCode == 429 || ae.Code == "REQUEST_LIMIT_EXCEEDED"
	}
	var te *transportError
	if errors.As(err, &te) {
		return te.idempotent && isTransient(te.err)
	}
	return false
}

// IsDefiniteRefusal reports whether err is an answer that a new attempt
// would get too: a 4xx (bad object, field, external id, permission,
// content type), as opposed to transient failures (5xx, 408, 429, request
// limits, lost connections, an upload whose outcome is unknown) and 401s
// (a token renewed and expired again under concurrency: re-authenticate).
// It is the one classifier callers use to decide whether to stop.
func IsDefiniteRefusal(err error) bool {
	if errors.Is(err, ErrUploadUnknown) || errors.Is(err, ErrRequestLimit) ||
		errors.Is(err, ErrInvalidSession) || IsRetryable(err) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 400 && ae.StatusCode < 500 && ae.StatusCode != 408 && ae.StatusCode != 429
	}
	var au *AuthError
	return errors.As(err, &au) && au.StatusCode < 500
}

// ambiguous reports whether a failed request may have been executed by the
// server: no response at all, a 5xx, or a 408.
func ambiguous(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == 408
	}
	var te *transportError
	return errors.As(err, &te)
}

// refused reports whether the server turned the request away without
// executing it (rate limiting).
func refused(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.StatusCode == 429 || ae.Code == "REQUEST_LIMIT_EXCEEDED")
}

func isTransient(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)("(?:access_token|refresh_token|client_secret|assertion|id_token|password)"\s*:\s*")[^"]*`),
	regexp.MustCompile(`(?i)((?:access_token|refresh_token|client_secret|assertion|password)=)[^&\s"]*`),
	regexp.MustCompile(`(?i)(Bearer\s+)[A-Za-z0-9!._~+/=-]+`),
	regexp.MustCompile(`(00D[A-Za-z0-9]{12,15}!)[A-Za-z0-9._\-]+`),
	regexp.MustCompile(`()eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*`), // JWTs: assertions, JWT access tokens
}

// redact removes known secrets and anything shaped like a token from s.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	for _, re := range secretPatterns {
		s = re.ReplaceAllString(s, "${1}REDACTED")
	}
	return s
}
