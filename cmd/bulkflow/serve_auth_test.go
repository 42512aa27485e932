package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// Tokens of the auth tests: long enough to be accepted, distinct enough
// to be grepped for in logs.
const (
	testReadToken  = "read-token-7f3a9c2e5b1d4f60"
	testRunToken   = "run-token-0c8e2a4f6b9d1e37"
	testWrongToken = "wrong-token-55aa33cc11ee99"
)

// writeTokenFile writes the read and run tokens as a --token-file.
func writeTokenFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	content := "# role token\nread " + testReadToken + "\n\nrun  " + testRunToken + "\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveAuthServer builds a server on the fixture with tokens from a file;
// the people pipeline dead-letters ada and cy (their names are not dates).
func serveAuthServer(t *testing.T, metricsPublic bool) (*server, <-chan state.RunRecord, *serveSafeBuffer) {
	t.Helper()
	dir, stateDir := serveFixture(t, "")
	file := filepath.Join(dir, "people.yaml")
	y, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	y2 := strings.Replace(string(y), "      Name: upper(name)\n", "      Name: upper(name)\n      Born: sfDate(name, \"2006-01-02\")\n", 1)
	if y2 == string(y) {
		t.Fatal("fixture changed: no map to extend")
	}
	if err := os.WriteFile(file, []byte(y2), 0o644); err != nil {
		t.Fatal(err)
	}
	return serveTestServerWith(t, serveOptions{Dir: dir, State: stateDir, Grace: time.Minute,
		TokenFile: writeTokenFile(t), MetricsPublic: metricsPublic})
}

// serveAuthDo sends a request with an optional bearer token.
func serveAuthDo(t *testing.T, c *http.Client, method, u, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestServeAuthRoutes: every route with no token, a wrong token, a read
// token and a run token.
func TestServeAuthRoutes(t *testing.T) {
	for _, metricsPublic := range []bool{false, true} {
		name := "metrics need a token"
		if metricsPublic {
			name = "--metrics-public"
		}
		t.Run(name, func(t *testing.T) {
			s, done, stderr := serveAuthServer(t, metricsPublic)
			ts := httptest.NewServer(newServeHandler(s))
			defer ts.Close()
			runID, err := s.trigger("people", "manual")
			if err != nil {
				t.Fatal(err)
			}
			if rec := serveWait(t, done); rec.Status != pipeline.StatusPartial || len(rec.DeadLetters) != 1 {
				t.Fatalf("run = %+v\n%s", rec, stderr.String())
			}

			const ok, unauth, forbidden, accepted = 200, 401, 403, 202
			metricsNoToken := unauth
			if metricsPublic {
				metricsNoToken = ok
			}
			routes := []struct {
				method, path                string
				none, wrong, read, runToken int
			}{
				{"GET", "/", unauth, unauth, ok, ok},
				{"GET", "/reports/people/" + runID + ".json", unauth, unauth, ok, ok},
				{"GET", "/dead-letters/people/" + runID + "/0", unauth, unauth, ok, ok},
				{"GET", "/metrics", metricsNoToken, metricsNoToken, ok, ok}, // a public route ignores credentials
				{"GET", "/healthz", ok, ok, ok, ok},
				{"GET", "/reports/people/nosuchrun.json", unauth, unauth, 404, 404},
				{"POST", "/run/people", unauth, unauth, forbidden, accepted},
				{"POST", "/run/nosuch", unauth, unauth, forbidden, 404},
			}
			for _, rt := range routes {
				for _, c := range []struct {
					cred, token string
					want        int
				}{{"no token", "", rt.none}, {"wrong token", testWrongToken, rt.wrong}, {"read token", testReadToken, rt.read}, {"run token", testRunToken, rt.runToken}} {
					resp := serveAuthDo(t, ts.Client(), rt.method, ts.URL+rt.path, c.token)
					if resp.StatusCode != c.want {
						t.Errorf("%s %s with %s = %d, want %d", rt.method, rt.path, c.cred, resp.StatusCode, c.want)
					}
					if resp.StatusCode == unauth && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
						t.Errorf("%s %s with %s: 401 without WWW-Authenticate: Bearer (%q)", rt.method, rt.path, c.cred, resp.Header.Get("WWW-Authenticate"))
					}
					if resp.StatusCode == accepted {
						serveWait(t, done)
					}
				}
			}
			// A scheme other than Bearer is no credential either.
			req, _ := http.NewRequest("GET", ts.URL+"/", nil)
			req.SetBasicAuth("run", testRunToken)
			if resp, err := ts.Client().Do(req); err != nil || resp.StatusCode != unauth {
				t.Errorf("GET / with basic auth = %v, %v; want 401", resp, err)
			} else {
				resp.Body.Close()
			}

			logs := stderr.String()
			if !strings.Contains(logs, "authentication failed") || !strings.Contains(logs, "permission denied") {
				t.Errorf("failed attempts not logged:\n%s", logs)
			}
			for _, tok := range []string{testWrongToken, testReadToken, testRunToken} {
				if strings.Contains(logs, tok) {
					t.Errorf("a token is in the log:\n%s", logs)
				}
			}
		})
	}
}

// TestServeDeadLetterAttachment: dead letters are downloads, never shown
// by the browser, with the run id in the file name.
func TestServeDeadLetterAttachment(t *testing.T) {
	s, done, _ := serveAuthServer(t, false)
	ts := httptest.NewServer(newServeHandler(s))
	defer ts.Close()
	runID, err := s.trigger("people", "manual")
	if err != nil {
		t.Fatal(err)
	}
	serveWait(t, done)
	req, _ := http.NewRequest("GET", ts.URL+"/dead-letters/people/"+runID+"/0", nil)
	req.Header.Set("Authorization", "Bearer "+testReadToken)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "expr_error") || !strings.Contains(string(body), "ada") {
		t.Fatalf("GET dead letter = %d\n%s", resp.StatusCode, body)
	}
	for h, want := range map[string]string{
		"Content-Disposition":    `attachment; filename=` + runID + `-map.csv`, // the map stage dead-lettered them
		"X-Content-Type-Options": "nosniff",
		"Content-Type":           "text/csv; charset=utf-8",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

// TestServeBrowserLogin: the login form sets an HttpOnly SameSite=Strict
// session cookie; a read session sees no Run now button and cannot POST;
// a run session can; logging out ends the session.
func TestServeBrowserLogin(t *testing.T) {
	s, done, stderr := serveAuthServer(t, false)
	ts := httptest.NewServer(newServeHandler(s))
	defer ts.Close()

	login := func(token string) (*http.Client, *http.Response) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.PostForm(ts.URL+"/login", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return c, resp
	}
	page := func(c *http.Client) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+"/", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := page(http.DefaultClient); code != 401 || !strings.Contains(body, `href="/login"`) {
		t.Errorf("GET / without login = %d %q; want 401 with a link to /login", code, body)
	}
	if code, body := serveDo(t, "GET", ts.URL+"/login"); code != 200 || !strings.Contains(body, `type="password" name="token"`) {
		t.Errorf("GET /login = %d\n%s", code, body)
	}
	if _, resp := login(testWrongToken); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("login with a wrong token = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	reader, resp := login(testReadToken)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if ck.Name != sessionCookie || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Value == testReadToken || len(ck.Value) < 32 {
		t.Errorf("session cookie = %+v; want HttpOnly, SameSite=Strict, a random id", ck)
	}
	code, body := page(reader)
	if code != 200 || !strings.Contains(body, "<h2 id=\"people\">") || strings.Contains(body, "Run now") || !strings.Contains(body, "Log out") {
		t.Errorf("status page for a read session = %d\n%s", code, body)
	}
	if resp, err := reader.Post(ts.URL+"/run/people", "application/x-www-form-urlencoded", nil); err != nil || resp.StatusCode != 403 {
		t.Errorf("POST /run with a read session = %v, %v; want 403", resp, err)
	}

	runner, _ := login(testRunToken)
	if code, body := page(runner); code != 200 || !strings.Contains(body, "Run now") {
		t.Errorf("status page for a run session = %d\n%s", code, body)
	}
	// A cross-site form post carrying the cookie is refused.
	req, _ := http.NewRequest("POST", ts.URL+"/run/people", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := runner.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("cross-site POST with a run session = %v, %v; want 403", resp, err)
	}
	// The page's own button works: 303 back to the page.
	if resp, err := runner.Post(ts.URL+"/run/people", "application/x-www-form-urlencoded", nil); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /run with a run session = %v, %v; want 303", resp, err)
	}
	serveWait(t, done)

	if resp, err := runner.Post(ts.URL+"/logout", "", nil); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /logout = %v, %v", resp, err)
	}
	// The old session id no longer works, even if a client kept it.
	req, _ = http.NewRequest("GET", ts.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: runnerSession(t, runner, ts.URL)})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("GET / after logout = %v, %v; want 401", resp, err)
	}
	if strings.Contains(stderr.String(), testWrongToken) {
		t.Errorf("the wrong token is in the log:\n%s", stderr.String())
	}
}

// runnerSession returns the session cookie value a client's jar holds, or
// a value that was valid before logout ("" becomes a made-up id).
func runnerSession(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie && ck.Value != "" {
			return ck.Value
		}
	}
	return strings.Repeat("0", 64)
}

func TestParseTokens(t *testing.T) {
	tests := []struct {
		name, in, seps string
		want           []serveRole
		wantErr        string
	}{
		{"file", "# comment\nread " + testReadToken + "\r\n\nrun " + testRunToken + "\n", "\n", []serveRole{roleRead, roleRun}, ""},
		{"env with commas", "read " + testReadToken + ", run " + testRunToken, "\n,", []serveRole{roleRead, roleRun}, ""},
		{"duplicate same role", "run " + testRunToken + "\nrun " + testRunToken, "\n", []serveRole{roleRun}, ""},
		{"unknown role", "admin " + testRunToken, "\n", nil, `line 1: role "admin" is neither read nor run`},
		{"short token", "\nrun short-secret", "\n", nil, "line 2: the token is 12 characters; use at least 16"},
		{"three fields", "run " + testRunToken + " extra", "\n", nil, `line 1: want "ROLE TOKEN"`},
		{"token alone", testRunToken, "\n", nil, `line 1: want "ROLE TOKEN"`},
		{"both roles", "read " + testRunToken + "\nrun " + testRunToken, "\n", nil, "line 2: the same token is listed as both read and run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTokens("src", "line", strings.NewReader(tc.in), tc.seps)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, tok := range []string{testRunToken, testReadToken, "short-secret"} {
					if strings.Contains(err.Error(), tok) {
						t.Errorf("error %q holds the token", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var roles []serveRole
			for _, tk := range got {
				roles = append(roles, tk.role)
			}
			if len(roles) != len(tc.want) {
				t.Fatalf("roles = %v, want %v", roles, tc.want)
			}
			for i := range roles {
				if roles[i] != tc.want[i] {
					t.Errorf("roles = %v, want %v", roles, tc.want)
				}
			}
		})
	}
	t.Run("sources", func(t *testing.T) {
		t.Setenv("BULKFLOW_TEST_TOKENS", "run "+testRunToken)
		t.Setenv("BULKFLOW_TEST_EMPTY", " ")
		if toks, err := loadServeTokens(writeTokenFile(t), "BULKFLOW_TEST_TOKENS"); err != nil || len(toks) != 3 {
			t.Errorf("file and env = %d tokens, %v; want 3", len(toks), err)
		}
		if got := redact.Redact("token " + testRunToken); strings.Contains(got, testRunToken) {
			t.Errorf("a loaded token is not registered for redaction: %q", got)
		}
		for _, c := range []struct{ file, env, want string }{
			{"", "BULKFLOW_TEST_UNSET_VAR", "BULKFLOW_TEST_UNSET_VAR: the variable is not set"},
			{"", "BULKFLOW_TEST_EMPTY", "no tokens"},
			{filepath.Join(t.TempDir(), "missing"), "", "no such file"},
			{t.TempDir(), "", "not a regular file"},
		} {
			if _, err := loadServeTokens(c.file, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("loadServeTokens(%q, %q) = %v; want %q", c.file, c.env, err, c.want)
			}
		}
	})
}

func TestCheckServeExposure(t *testing.T) {
	tokens, tlsFiles := true, serveOptions{TLSCert: "c.pem", TLSKey: "k.pem"}
	withAllow := func(o serveOptions) serveOptions { o.AllowNonLoopback = true; return o }
	for _, c := range []struct {
		addr   string
		o      serveOptions
		tokens bool
		want   string // "" = allowed
	}{
		{"127.0.0.1:8585", serveOptions{}, false, ""},
		{"localhost:8585", serveOptions{}, false, ""},
		{"[::1]:8585", serveOptions{}, false, ""},
		{"127.0.0.2:0", serveOptions{}, tokens, ""},
		{":8585", serveOptions{}, tokens, "listens on all interfaces"},
		{"0.0.0.0:8585", tlsFiles, tokens, "pass --allow-non-loopback"},
		{"10.1.2.3:8585", serveOptions{}, false, "not loopback"},
		{"example.com:8585", serveOptions{}, false, "not loopback"},
		{":8585", withAllow(serveOptions{}), false, "needs tokens (--token-file FILE or --token-env VAR) and TLS"},
		{":8585", withAllow(serveOptions{}), tokens, "needs TLS (--tls-cert and --tls-key, or --tls-terminated-upstream"},
		{":8585", withAllow(tlsFiles), false, "needs tokens"},
		{"127.0.0.1:8585", withAllow(tlsFiles), false, "needs tokens"},
		{":8585", withAllow(tlsFiles), tokens, ""},
		{":8585", withAllow(serveOptions{TLSTerminatedUpstream: true}), tokens, ""},
		{"nonsense", serveOptions{}, false, "missing port"},
	} {
		err := checkServeExposure(c.addr, c.o, c.tokens)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("checkServeExposure(%q, %+v, %v) = %v, want allowed", c.addr, c.o, c.tokens, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("checkServeExposure(%q, %+v, %v) = %v, want %q", c.addr, c.o, c.tokens, err, c.want)
		case err != nil && c.want != "missing port" && !errors.Is(err, errServeExposure):
			t.Errorf("checkServeExposure(%q) = %v, not errServeExposure", c.addr, err)
		}
	}
}

// TestRunServeRefusesExposure: the command refuses to start beyond
// loopback without tokens and TLS, before listening.
func TestRunServeRefusesExposure(t *testing.T) {
	dir, stateDir := serveFixture(t, "")
	tokens := writeTokenFile(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "0.0.0.0:0"}, "pass --allow-non-loopback together with tokens"},
		{[]string{"--addr", "0.0.0.0:0", "--allow-non-loopback"}, "needs tokens (--token-file FILE or --token-env VAR) and TLS"},
		{[]string{"--addr", "0.0.0.0:0", "--allow-non-loopback", "--token-file", tokens}, "needs TLS"},
		{[]string{"--addr", "127.0.0.1:0", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--addr", "127.0.0.1:0", "--tls-cert", "nosuch.pem", "--tls-key", "nosuch.key"}, "--tls-cert nosuch.pem / --tls-key nosuch.key"},
	} {
		var stdout, stderr serveSafeBuffer
		code := runServe(context.Background(), append([]string{"--pipelines", dir, "--state", stateDir}, c.args...), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("serve %v: exit %d, stderr:\n%s\nwant %q", c.args, code, stderr.String(), c.want)
		}
		if stdout.String() != "" {
			t.Errorf("serve %v listened: %q", c.args, stdout.String())
		}
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key as PEM
// files and returns their paths and a pool trusting the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulkflow serve test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// TestRunServeTLS runs the command with --allow-non-loopback, tokens and a
// certificate: it serves https only, with the tokens required.
func TestRunServeTLS(t *testing.T) {
	dir, stateDir := serveFixture(t, "")
	certFile, keyFile, pool := selfSignedCert(t)
	base, stderr, stop := runServeBackground(t, []string{"--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0", "--allow-non-loopback",
		"--token-file", writeTokenFile(t), "--tls-cert", certFile, "--tls-key", keyFile})
	if !strings.HasPrefix(base, "https://") {
		stop()
		t.Fatalf("address %q, want https://", base)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp := serveAuthDo(t, c, "GET", base+"/healthz", ""); resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("GET /healthz over TLS = %d (TLS %v)", resp.StatusCode, resp.TLS != nil)
	}
	if resp := serveAuthDo(t, c, "GET", base+"/", ""); resp.StatusCode != 401 {
		t.Errorf("GET / without a token over TLS = %d, want 401", resp.StatusCode)
	}
	if resp := serveAuthDo(t, c, "GET", base+"/", testReadToken); resp.StatusCode != 200 {
		t.Errorf("GET / with a read token over TLS = %d, want 200", resp.StatusCode)
	}
	// Plain http to the TLS port gets no page.
	if resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain http to the TLS listener answered 200")
		}
	}
	// A client that does not trust the certificate cannot connect.
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("a client without the certificate connected")
	}
	c.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	if code := stop(); code != exitOK {
		t.Errorf("exit = %d; stderr:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "no tokens configured") {
		t.Errorf("warned about missing tokens although they were given:\n%s", stderr.String())
	}
}

// TestRunServeWarnsWithoutTokens: on loopback without tokens serve works
// and says so.
func TestRunServeWarnsWithoutTokens(t *testing.T) {
	dir, stateDir := serveFixture(t, "")
	base, stderr, stop := runServeBackground(t, []string{"--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0"})
	if code, _ := serveDo(t, "GET", base+"/"); code != 200 {
		t.Errorf("GET / without tokens configured = %d, want 200", code)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "no tokens configured") {
		t.Errorf("no warning about missing tokens:\n%s", stderr.String())
	}
}

// TestServeDeploymentExample starts the two replicas of
// pipelines/deploy/serve-deployment.yaml with its own arguments (paths,
// the address and the Secrets' files replaced by the test's): the example
// passes serve's exposure checks, serves its probes over https without a
// token, /metrics as it says, and everything else only with a token.
func TestServeDeploymentExample(t *testing.T) {
	y, err := os.ReadFile(filepath.Join("..", "..", "pipelines", "deploy", "serve-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet struct{ Path, Scheme string } `yaml:"httpGet"`
	}
	var dep struct {
		Kind string
		Spec struct {
			Replicas int
			Template struct {
				Spec struct {
					Containers []struct {
						Args           []string
						ReadinessProbe probe `yaml:"readinessProbe"`
						LivenessProbe  probe `yaml:"livenessProbe"`
					}
				}
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(y))
	for dep.Kind != "Deployment" {
		if err := dec.Decode(&dep); err != nil {
			t.Fatalf("no Deployment in the example: %v", err)
		}
	}
	if dep.Spec.Replicas != 2 || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("example: %d replicas, %d containers; want 2 and 1", dep.Spec.Replicas, len(dep.Spec.Template.Spec.Containers))
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("example args %q: want serve ...", c.Args)
	}

	dir, stateDir := serveFixture(t, "")
	certFile, keyFile, pool := selfSignedCert(t)
	replace := map[string]string{"--pipelines": dir, "--state": stateDir, "--addr": "127.0.0.1:0",
		"--token-file": writeTokenFile(t), "--tls-cert": certFile, "--tls-key": keyFile}
	var args []string
	for _, a := range c.Args[1:] {
		name, value, hasValue := strings.Cut(a, "=")
		if v, ok := replace[name]; ok && hasValue {
			if name == "--addr" {
				if host, _, _ := net.SplitHostPort(value); isLoopbackHost(host) {
					t.Errorf("the example listens on loopback (%s): a pod must listen on its IP", value)
				}
			}
			a = name + "=" + v
			delete(replace, name)
		}
		args = append(args, a)
	}
	if len(replace) != 0 {
		t.Fatalf("the example lacks %v (args %q)", replace, c.Args)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	st, err := state.Open(context.Background(), stateDir, "people")
	if err != nil {
		t.Fatal(err)
	}
	// Both replicas at once, on one state.
	type replica struct {
		base   string
		stderr *serveSafeBuffer
		stop   func() int
	}
	var replicas []replica
	for range dep.Spec.Replicas {
		base, stderr, stop := runServeBackground(t, args)
		replicas = append(replicas, replica{base, stderr, stop})
	}
	for i, r := range replicas {
		base, stderr := r.base, r.stderr
		for _, p := range []probe{c.ReadinessProbe, c.LivenessProbe} {
			if scheme := strings.ToLower(p.HTTPGet.Scheme); scheme+"://" != base[:len(scheme)+3] {
				t.Errorf("probe scheme %q, but serve listens on %s", p.HTTPGet.Scheme, base)
			}
			if resp := serveAuthDo(t, client, "GET", base+p.HTTPGet.Path, ""); resp.StatusCode != 200 {
				t.Errorf("replica %d: probe %s = %d, want 200", i, p.HTTPGet.Path, resp.StatusCode)
			}
		}
		if resp := serveAuthDo(t, client, "GET", base+"/metrics", ""); resp.StatusCode != 200 {
			t.Errorf("replica %d: /metrics without a token = %d; the example serves it to the scraper", i, resp.StatusCode)
		}
		for _, path := range []string{"/", "/reports/people/x.json"} {
			if resp := serveAuthDo(t, client, "GET", base+path, ""); resp.StatusCode != 401 {
				t.Errorf("replica %d: GET %s without a token = %d, want 401", i, path, resp.StatusCode)
			}
		}
		if resp := serveAuthDo(t, client, "POST", base+"/run/people", testReadToken); resp.StatusCode != 403 {
			t.Errorf("replica %d: POST /run with a read token = %d, want 403", i, resp.StatusCode)
		}
		if resp := serveAuthDo(t, client, "POST", base+"/run/people", testRunToken); resp.StatusCode != 202 {
			t.Errorf("replica %d: POST /run with a run token = %d, want 202", i, resp.StatusCode)
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if runs, err := st.Runs(context.Background(), 0); err != nil || len(runs) > i {
				if err != nil || runs[0].Status != pipeline.StatusSucceeded {
					t.Errorf("replica %d: runs = %+v, %v", i, runs, err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: the run was not recorded\n%s", i, stderr.String())
			}
		}
	}
	client.CloseIdleConnections()
	for i, r := range replicas {
		if code := r.stop(); code != exitOK {
			t.Errorf("replica %d exited %d:\n%s", i, code, r.stderr.String())
		}
	}
}
