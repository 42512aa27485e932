package salesforcesink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestResultMismatch: a proxy in front of the emulator drops the last row
// of every successfulResults file. Those rows were saved but are not
// confirmed, so they must be reported result_mismatch, never loaded.
func TestResultMismatch(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{Compression: salesforcetest.CompressionNever})
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/successfulResults") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = bytes.TrimRight(b, "\n")
		if i := bytes.LastIndexByte(b, '\n'); i > 0 {
			b = b[:i]
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	rows := genAccounts(300, 0, "M")
	for _, r := range rows {
		r[4] = "single line" // so the proxy can drop the last record by line
	}
	r := runPipeline(t, context.Background(), accountSchema, rows, fmt.Sprintf(
		"object: Account\nmax_job_rows: 100\ninstance_url: %s\nauth: {access_token: %q}\npoll_initial: 5ms\npoll_max: 20ms\n", ps.URL, srv.AccessToken()))
	if r.err != nil {
		t.Fatal(r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 3 || countCode(dead, CodeResultMismatch) != 3 {
		t.Fatalf("dead %v %v", dead, dlMessages(r.dl))
	}
	unconfirmed := map[string]bool{}
	for k := range dead {
		unconfirmed[k] = true
	}
	checkStored(t, srv, "Account", rows, dead, unconfirmed)
	if r.rep.Counts.Loaded != 297 {
		t.Errorf("loaded %d", r.rep.Counts.Loaded)
	}
}
