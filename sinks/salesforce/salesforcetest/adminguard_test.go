package salesforcetest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestAdminRoutesRefuseForeignRequests sends the admin routes, over real
// HTTP, what a web page in the developer's browser could: a text/plain
// POST from another origin (CSRF), a request under a foreign Host name
// (DNS rebinding); and what the tools send: no Origin, the emulator's own
// host under any of its loopback names.
func TestAdminRoutesRefuseForeignRequests(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	tests := []struct {
		name, method, path string
		host               string            // "" = the URL's
		headers            map[string]string // besides Content-Type: text/plain
		want               int
	}{
		{"tool POST without Origin", "POST", "/__emulator/faults", "", nil, 200},
		{"same-origin POST", "POST", "/__emulator/faults", "", map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}, 200},
		{"localhost name", "POST", "/__emulator/faults", "localhost:" + port, nil, 200},
		{"IPv6 loopback name", "GET", "/__emulator/jobs", "[::1]:" + port, nil, 200},
		{"cross-origin text/plain POST", "POST", "/__emulator/faults", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site fetch metadata", "POST", "/__emulator/faults", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site other port", "POST", "/__emulator/faults", "", map[string]string{"Origin": "http://127.0.0.1:1"}, 403},
		{"null origin", "POST", "/__emulator/expire-tokens", "", map[string]string{"Origin": "null"}, 403},
		{"rebound host name", "POST", "/__emulator/faults", "evil.example:" + port, nil, 421},
		{"rebound host reads records", "GET", "/__emulator/records/Account", "evil.example:" + port, nil, 421},
		{"loopback name on another port", "GET", "/__emulator/jobs", "127.0.0.1:1", nil, 421},
		{"host without port", "GET", "/__emulator/jobs", "localhost", nil, 421},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Faults().ProcessingDelay
			delay := time.Duration(i+1) * time.Millisecond
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(fmt.Sprintf(`{"processingDelay":"%s"}`, delay)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/plain")
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s (Host %q) = %d %s; want %d", tc.method, tc.path, req.Host, resp.StatusCode, body, tc.want)
			}
			after := srv.Faults().ProcessingDelay
			switch {
			case tc.want == 200 && tc.path == "/__emulator/faults" && after != delay:
				t.Errorf("accepted POST did not set the faults: processing delay %v, want %v", after, delay)
			case tc.want != 200 && after != before:
				t.Errorf("refused request changed the faults: processing delay %v -> %v", before, after)
			}
		})
	}
}
