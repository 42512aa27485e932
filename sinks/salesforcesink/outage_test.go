package salesforcesink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestOutageFailsRun: a sink that never got a job created (nothing listens,
// https to an http port, a permanent request limit) fails the run with an
// OutageError, and its rows keep the cause's code, retryable.
func TestOutageFailsRun(t *testing.T) {
	limited := salesforcetest.NewServer(nil)
	defer limited.Close()
	limited.SetFaults(salesforcetest.Faults{RequestLimitExceeded: true})
	plain := salesforcetest.NewServer(nil)
	defer plain.Close()
	// The closed port last: an emulator started after it could be given
	// the same port, and answer (401) where nothing must listen.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, yaml, code string
	}{
		{"connection refused", fmt.Sprintf("instance_url: %s\nauth: {access_token: tok}\n", closedURL), pipeline.CodeConnectionRefused},
		{"https to http", fmt.Sprintf("instance_url: %s\nauth: {access_token: %q}\n", strings.Replace(plain.URL, "http:", "https:", 1), plain.AccessToken()), pipeline.CodeNetworkError},
		// (net/http reports an http answer to an https client with an
		// untyped error: network_error, as rows are never classified by
		// message text.)
		{"request limit", emulatorYAML(limited), "REQUEST_LIMIT_EXCEEDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := genAccounts(150, 0, "O")
			r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 50\n"+tc.yaml)
			var oe *OutageError
			if !errors.As(r.err, &oe) || oe.Code != tc.code {
				t.Fatalf("err = %v, want an OutageError with code %s", r.err, tc.code)
			}
			if r.rep.Status != pipeline.StatusFailed {
				t.Errorf("status %s, want failed", r.rep.Status)
			}
			dead := dlCodes(t, r.dl, "External_Id__c")
			if len(dead) != 150 || countCode(dead, tc.code) != 150 {
				t.Errorf("dead %d, %s %d", len(dead), tc.code, countCode(dead, tc.code))
			}
			s := r.dl.Schema()
			if r.dl.Len() > 0 && r.dl.Row(0)[s.Index("_retryable")] != "true" {
				t.Errorf("dead letter %v", r.dl.Row(0))
			}
		})
	}
}

// TestFailureCode classifies request failures by type.
func TestFailureCode(t *testing.T) {
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"dns", fmt.Errorf("create job: %w", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}), pipeline.CodeDNSError},
		{"refused", opErr(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}), pipeline.CodeConnectionRefused},
		{"reset", opErr(&os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}), pipeline.CodeConnectionReset},
		{"tls record", fmt.Errorf("x: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), pipeline.CodeTLSError},
		{"unknown authority", fmt.Errorf("x: %w", x509.UnknownAuthorityError{}), pipeline.CodeTLSError},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), pipeline.CodeTimeout},
		{"unexpected EOF", fmt.Errorf("x: %w", io.ErrUnexpectedEOF), pipeline.CodeConnectionReset},
		{"other net", opErr(errors.New("weird")), pipeline.CodeNetworkError},
		{"request limit", &salesforce.APIError{StatusCode: 403, Code: "REQUEST_LIMIT_EXCEEDED"}, "REQUEST_LIMIT_EXCEEDED"},
		{"5xx code", &salesforce.APIError{StatusCode: 500, Code: "UNKNOWN_EXCEPTION"}, CodeAPIError},
		{"plain", errors.New("boom"), CodeAPIError},
	} {
		if got := failureCode(tc.err); got != tc.want {
			t.Errorf("%s: failureCode(%v) = %s, want %s", tc.name, tc.err, got, tc.want)
		}
	}
}
