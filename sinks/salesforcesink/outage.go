package salesforcesink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// failureCode returns the dead-letter code of rows that were not sent
// because a request failed with err: Salesforce's own error code
// (REQUEST_LIMIT_EXCEEDED, ...) or the network cause (connection_refused,
// dns_error, tls_error, timeout, connection_reset, network_error), and
// api_error only when neither is known. Types decide, never message text.
func failureCode(err error) string {
	var ae *salesforce.APIError
	if errors.As(err, &ae) && ae.Code != "" {
		// Only a code the table says is transient: these rows were not
		// sent, and their code must not make them look fixable.
		if pipeline.RetryableCode(ae.Code) {
			return ae.Code
		}
		return CodeAPIError
	}
	if errors.Is(err, salesforce.ErrRequestLimit) {
		return "REQUEST_LIMIT_EXCEEDED"
	}
	var dnsErr *net.DNSError
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	var netErr net.Error
	var opErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.As(err, &dnsErr):
		return pipeline.CodeDNSError
	case errors.Is(err, syscall.ECONNREFUSED):
		return pipeline.CodeConnectionRefused
	case errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &unknownAuth),
		errors.As(err, &hostErr), errors.As(err, &invalid), errors.As(err, &alert):
		return pipeline.CodeTLSError
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return pipeline.CodeTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return pipeline.CodeConnectionReset
	case errors.As(err, &opErr), errors.As(err, &urlErr), salesforce.IsTransport(err):
		// A request without an answer and without a typed cause (net/http's
		// untyped transport errors, e.g. an http server answering an https
		// client).
		return pipeline.CodeNetworkError
	}
	return CodeAPIError
}

// OutageError is what Close returns when the sink never got a job created:
// Salesforce could not be reached at all, or refused every request (a
// permanent request limit). The run fails (the CLI exits 1) with the cause,
// rather than ending "partial" with every row dead-lettered. The rows keep
// the cause's code (Code) in their dead letters, retryable: none was sent.
type OutageError struct {
	Code  string // the rows' dead-letter code, e.g. connection_refused
	Rows  int64  // rows not sent
	Cause error  // the last request's error
}

// Error says what failed and that nothing was sent.
func (e *OutageError) Error() string {
	return fmt.Sprintf("salesforce sink: Salesforce could not be reached or refused every request (%s): no job was created and %d rows were not sent (dead-lettered %s, retryable): %v",
		e.Code, e.Rows, e.Code, e.Cause)
}

// Unwrap returns the cause.
func (e *OutageError) Unwrap() error { return e.Cause }

// noteCreateFailure records a request failure that left rows unsent
// before any job of the sink was created.
func (s *Sink) noteCreateFailure(code string, rows int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobsCreated > 0 {
		return
	}
	if s.outage == nil {
		s.outage = &OutageError{Code: code}
	}
	s.outage.Code, s.outage.Cause = code, err
	s.outage.Rows += int64(rows)
}

// outageErr returns the OutageError when no job was ever created.
func (s *Sink) outageErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage == nil || s.jobsCreated > 0 {
		return nil
	}
	return s.outage
}
