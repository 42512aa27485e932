package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestOutageFailsRun: a sink that never got a job created (nothing listens,
// https to an http port, a permanent request limit) fails the run with an
// OutageError, and its rows keep the cause's code, retryable.
func TestOutageFailsRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()
	limited := salesforcetest.NewServer(nil)
	defer limited.Close()
	limited.SetFaults(salesforcetest.Faults{RequestLimitExceeded: true})
	plain := salesforcetest.NewServer(nil)
	defer plain.Close()
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
