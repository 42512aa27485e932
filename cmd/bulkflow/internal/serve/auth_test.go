package serve

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve/servetest"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// serveAuthServer builds a server on the fixture with tokens from a file;
// the people pipeline dead-letters ada and cy (their names are not dates).
func serveAuthServer(t *testing.T, metricsPublic bool) (*Server, <-chan state.RunRecord, *servetest.SafeBuffer) {
	t.Helper()
	dir, stateDir := servetest.Fixture(t, "")
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
	return serveTestServerWith(t, Options{Dir: dir, State: stateDir, Grace: time.Minute,
		TokenFile: servetest.WriteTokenFile(t), MetricsPublic: metricsPublic})
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
			ts := httptest.NewServer(s.Handler())
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
				}{{"no token", "", rt.none}, {"wrong token", servetest.WrongToken, rt.wrong}, {"read token", servetest.ReadToken, rt.read}, {"run token", servetest.RunToken, rt.runToken}} {
					resp := servetest.AuthDo(t, ts.Client(), rt.method, ts.URL+rt.path, c.token)
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
			req.SetBasicAuth("run", servetest.RunToken)
			if resp, err := ts.Client().Do(req); err != nil || resp.StatusCode != unauth {
				t.Errorf("GET / with basic auth = %v, %v; want 401", resp, err)
			} else {
				resp.Body.Close()
			}

			logs := stderr.String()
			if !strings.Contains(logs, "authentication failed") || !strings.Contains(logs, "permission denied") {
				t.Errorf("failed attempts not logged:\n%s", logs)
			}
			for _, tok := range []string{servetest.WrongToken, servetest.ReadToken, servetest.RunToken} {
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
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	runID, err := s.trigger("people", "manual")
	if err != nil {
		t.Fatal(err)
	}
	serveWait(t, done)
	req, _ := http.NewRequest("GET", ts.URL+"/dead-letters/people/"+runID+"/0", nil)
	req.Header.Set("Authorization", "Bearer "+servetest.ReadToken)
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
	ts := httptest.NewServer(s.Handler())
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
	if code, body := servetest.Do(t, "GET", ts.URL+"/login"); code != 200 || !strings.Contains(body, `type="password" name="token"`) {
		t.Errorf("GET /login = %d\n%s", code, body)
	}
	if _, resp := login(servetest.WrongToken); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("login with a wrong token = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	reader, resp := login(servetest.ReadToken)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if ck.Name != sessionCookie || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Value == servetest.ReadToken || len(ck.Value) < 32 {
		t.Errorf("session cookie = %+v; want HttpOnly, SameSite=Strict, a random id", ck)
	}
	code, body := page(reader)
	if code != 200 || !strings.Contains(body, `<section class="pipeline" id="people"`) || strings.Contains(body, "Run now") || !strings.Contains(body, "Log out") {
		t.Errorf("status page for a read session = %d\n%s", code, body)
	}
	if resp, err := reader.Post(ts.URL+"/run/people", "application/x-www-form-urlencoded", nil); err != nil || resp.StatusCode != 403 {
		t.Errorf("POST /run with a read session = %v, %v; want 403", resp, err)
	}

	runner, _ := login(servetest.RunToken)
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
	if strings.Contains(stderr.String(), servetest.WrongToken) {
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
		want           []accessRole
		wantErr        string
	}{
		{"file", "# comment\nread " + servetest.ReadToken + "\r\n\nrun " + servetest.RunToken + "\n", "\n", []accessRole{roleRead, roleRun}, ""},
		{"env with commas", "read " + servetest.ReadToken + ", run " + servetest.RunToken, "\n,", []accessRole{roleRead, roleRun}, ""},
		{"duplicate same role", "run " + servetest.RunToken + "\nrun " + servetest.RunToken, "\n", []accessRole{roleRun}, ""},
		{"unknown role", "admin " + servetest.RunToken, "\n", nil, `line 1: role "admin" is neither read nor run`},
		{"short token", "\nrun short-secret", "\n", nil, "line 2: the token is 12 characters; use at least 16"},
		{"three fields", "run " + servetest.RunToken + " extra", "\n", nil, `line 1: want "ROLE TOKEN"`},
		{"token alone", servetest.RunToken, "\n", nil, `line 1: want "ROLE TOKEN"`},
		{"both roles", "read " + servetest.RunToken + "\nrun " + servetest.RunToken, "\n", nil, "line 2: the same token is listed as both read and run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTokens("src", "line", strings.NewReader(tc.in), tc.seps)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, tok := range []string{servetest.RunToken, servetest.ReadToken, "short-secret"} {
					if strings.Contains(err.Error(), tok) {
						t.Errorf("error %q holds the token", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var roles []accessRole
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
		t.Setenv("BULKFLOW_TEST_TOKENS", "run "+servetest.RunToken)
		t.Setenv("BULKFLOW_TEST_EMPTY", " ")
		if toks, err := loadTokens(servetest.WriteTokenFile(t), "BULKFLOW_TEST_TOKENS"); err != nil || len(toks) != 3 {
			t.Errorf("file and env = %d tokens, %v; want 3", len(toks), err)
		}
		if got := redact.Redact("token " + servetest.RunToken); strings.Contains(got, servetest.RunToken) {
			t.Errorf("a loaded token is not registered for redaction: %q", got)
		}
		for _, c := range []struct{ file, env, want string }{
			{"", "BULKFLOW_TEST_UNSET_VAR", "BULKFLOW_TEST_UNSET_VAR: the variable is not set"},
			{"", "BULKFLOW_TEST_EMPTY", "no tokens"},
			{filepath.Join(t.TempDir(), "missing"), "", "no such file"},
			{t.TempDir(), "", "not a regular file"},
		} {
			if _, err := loadTokens(c.file, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("loadTokens(%q, %q) = %v; want %q", c.file, c.env, err, c.want)
			}
		}
	})
}

func TestCheckServeExposure(t *testing.T) {
	tokens, tlsFiles := true, Options{TLSCert: "c.pem", TLSKey: "k.pem"}
	withAllow := func(o Options) Options { o.AllowNonLoopback = true; return o }
	for _, c := range []struct {
		addr   string
		o      Options
		tokens bool
		want   string // "" = allowed
	}{
		{"127.0.0.1:8585", Options{}, false, ""},
		{"localhost:8585", Options{}, false, ""},
		{"[::1]:8585", Options{}, false, ""},
		{"127.0.0.2:0", Options{}, tokens, ""},
		{":8585", Options{}, tokens, "listens on all interfaces"},
		{"0.0.0.0:8585", tlsFiles, tokens, "pass --allow-non-loopback"},
		{"10.1.2.3:8585", Options{}, false, "not loopback"},
		{"example.com:8585", Options{}, false, "not loopback"},
		{":8585", withAllow(Options{}), false, "needs tokens (--token-file FILE or --token-env VAR) and TLS"},
		{":8585", withAllow(Options{}), tokens, "needs TLS (--tls-cert and --tls-key, or --tls-terminated-upstream"},
		{":8585", withAllow(tlsFiles), false, "needs tokens"},
		{"127.0.0.1:8585", withAllow(tlsFiles), false, "needs tokens"},
		{":8585", withAllow(tlsFiles), tokens, ""},
		{":8585", withAllow(Options{TLSTerminatedUpstream: true}), tokens, ""},
		{"nonsense", Options{}, false, "missing port"},
	} {
		err := checkExposure(c.addr, c.o, c.tokens)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("checkExposure(%q, %+v, %v) = %v, want allowed", c.addr, c.o, c.tokens, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("checkExposure(%q, %+v, %v) = %v, want %q", c.addr, c.o, c.tokens, err, c.want)
		case err != nil && c.want != "missing port" && !errors.Is(err, errExposure):
			t.Errorf("checkExposure(%q) = %v, not errExposure", c.addr, err)
		}
	}
}
