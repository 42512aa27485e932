package salesforce_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

const (
	clientID     = "3MVG9.consumer.key"
	clientSecret = "8A1F-CLIENT-SECRET-VALUE"
)

// tokenEndpoint serves /services/oauth2/token. check validates the form and
// returns "" or an OAuth error code. Tokens are tok1, tok2, ... prefixed so
// they look like session ids.
type tokenEndpoint struct {
	count atomic.Int64
	check func(form url.Values) string
	extra map[string]any
}

func tokenN(n int64) string { return fmt.Sprintf("00DHs0000001gPL!AQ4AQtoken%dSECRET", n) }

func (te *tokenEndpoint) install(s *server) {
	s.handle("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":"invalid_request","error_description":"content type %s"}`, ct)
			return
		}
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(400)
			return
		}
		if te.check != nil {
			if code := te.check(r.PostForm); code != "" {
				w.WriteHeader(400)
				// Echo the request form: a careless server might, and
				// the client must not leak it.
				fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, code, "bad request: "+r.PostForm.Encode())
				return
			}
		}
		n := te.count.Add(1)
		resp := map[string]any{"access_token": tokenN(n), "instance_url": s.URL, "token_type": "Bearer", "scope": "api"}
		for k, v := range te.extra {
			resp[k] = v
		}
		json.NewEncoder(w).Encode(resp)
	})
}

func TestClientCredentials(t *testing.T) {
	s := newServer(t)
	te := &tokenEndpoint{check: func(f url.Values) string {
		if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != clientID {
			return "invalid_client_id"
		}
		if f.Get("client_secret") != clientSecret {
			return "invalid_client"
		}
		return ""
	}, extra: map[string]any{"api_instance_url": "https://api.salesforce.com"}}
	te.install(s)
	s.handle("GET "+base+"/limits", jsonFile(t, "limits.json", 200))
	ctx := context.Background()

	auth, err := salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{LoginURL: s.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(ctx, auth, fastOptions(newSleeper(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Limits(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.requests("GET", base+"/limits")[0].Header.Get("Authorization"); got != "Bearer "+tokenN(1) {
		t.Errorf("Authorization = %q", got)
	}
	tok, _ := auth.Token(ctx)
	if tok.InstanceURL != s.URL {
		t.Errorf("InstanceURL = %q, want %q", tok.InstanceURL, s.URL)
	}

	// Wrong secret: *AuthError, matches ErrInvalidSession, no secret inside.
	var buf bytes.Buffer
	_, err = salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{LoginURL: s.URL, ClientID: clientID, ClientSecret: "WRONG-SECRET-1234"})
	var ae *salesforce.AuthError
	if !errors.As(err, &ae) || ae.Code != "invalid_client" || ae.StatusCode != 400 || !errors.Is(err, salesforce.ErrInvalidSession) {
		t.Fatalf("bad secret: err = %#v", err)
	}
	fmt.Fprint(&buf, err)
	if strings.Contains(buf.String(), "WRONG-SECRET-1234") {
		t.Errorf("client secret leaked: %s", buf.String())
	}
}

func TestJWTBearer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "server.key")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var mu sync.Mutex
	var claims jwt.MapClaims
	s := newServer(t)
	te := &tokenEndpoint{check: func(f url.Values) string {
		if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			return "unsupported_grant_type"
		}
		c := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(f.Get("assertion"), c, func(tok *jwt.Token) (any, error) { return &key.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}))
		if err != nil || !tok.Valid {
			t.Errorf("assertion: %v", err)
			return "invalid_grant"
		}
		mu.Lock()
		claims = c
		mu.Unlock()
		return ""
	}}
	te.install(s)
	auth, err := salesforce.JWTBearer(context.Background(), salesforce.JWTConfig{
		LoginURL: s.URL, Audience: salesforce.SandboxURL, ClientID: clientID, Username: "integration@acme.example",
		PrivateKeyFile: keyFile, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Token(context.Background())
	if err != nil || tok.AccessToken != tokenN(1) {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := jwt.MapClaims{"iss": clientID, "sub": "integration@acme.example", "aud": "https://test.salesforce.com",
		"exp": float64(now.Add(3 * time.Minute).Unix())}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	// A rejected assertion never appears in the error.
	te.check = func(f url.Values) string { return "invalid_grant" }
	_, err = salesforce.JWTBearer(context.Background(), salesforce.JWTConfig{
		LoginURL: s.URL, ClientID: clientID, Username: "u", PrivateKeyPEM: pemBytes})
	if err == nil || strings.Contains(err.Error(), "eyJ") || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("rejected assertion error = %v", err)
	}
	if _, err := salesforce.JWTBearer(context.Background(), salesforce.JWTConfig{
		LoginURL: s.URL, ClientID: clientID, Username: "u", PrivateKeyPEM: []byte("not a key")}); err == nil {
		t.Error("bad key accepted")
	}
}

func TestRefreshTokenRotation(t *testing.T) {
	s := newServer(t)
	var mu sync.Mutex
	var seen []string
	te := &tokenEndpoint{check: func(f url.Values) string {
		mu.Lock()
		defer mu.Unlock()
		if f.Get("grant_type") != "refresh_token" || f.Get("client_id") != clientID {
			return "unsupported_grant_type"
		}
		seen = append(seen, f.Get("refresh_token"))
		return ""
	}, extra: map[string]any{"refresh_token": "5Aep861-ROTATED-RT"}}
	te.install(s)
	s.handle("GET "+base+"/limits", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+tokenN(1) {
			apiError(401, "INVALID_SESSION_ID", "Session expired or invalid")(w, r)
			return
		}
		jsonFile(t, "limits.json", 200)(w, r)
	})
	ctx := context.Background()
	auth, err := salesforce.RefreshToken(ctx, salesforce.RefreshTokenConfig{LoginURL: s.URL, ClientID: clientID, RefreshToken: "5Aep861-ORIGINAL-RT"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(ctx, auth, fastOptions(newSleeper(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Limits(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"5Aep861-ORIGINAL-RT", "5Aep861-ROTATED-RT"}, seen); diff != "" {
		t.Errorf("refresh tokens sent (-want +got):\n%s", diff)
	}
}

// TestReauthOnce checks that a 401 INVALID_SESSION_ID triggers one new
// token and one replay of the identical request, for JSON bodies and
// uploads alike, and that a persistent 401 stops after three
// re-authentications (concurrent calls share a session, so a fresh token
// may be spent by others before a call uses it) instead of looping.
func TestReauthOnce(t *testing.T) {
	tests := []struct {
		name        string
		always401   bool
		message     string
		wantTokens  int64
		wantCalls   int
		wantErr     error
		call        func(c *salesforce.Client) error
		method, sub string
	}{
		{name: "create job replayed", wantTokens: 2, wantCalls: 2, method: "POST", sub: "/jobs/ingest",
			call: func(c *salesforce.Client) error {
				_, err := c.CreateJob(context.Background(), salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
				return err
			}},
		{name: "upload replayed", wantTokens: 2, wantCalls: 2, method: "PUT", sub: "/jobs/ingest/" + jobID + "/batches",
			call: func(c *salesforce.Client) error {
				return c.UploadJobData(context.Background(), jobID, salesforce.ReaderAtBody(strings.NewReader(uploadCSV), int64(len(uploadCSV))))
			}},
		{name: "get replayed", wantTokens: 2, wantCalls: 2, method: "GET", sub: "/jobs/ingest/" + jobID,
			call: func(c *salesforce.Client) error { _, err := c.Job(context.Background(), jobID); return err }},
		{name: "persistent 401 stops after three reauths", always401: true, wantTokens: 4, wantCalls: 4, wantErr: salesforce.ErrInvalidSession,
			method: "GET", sub: "/jobs/ingest/" + jobID,
			call: func(c *salesforce.Client) error { _, err := c.Job(context.Background(), jobID); return err }},
		{name: "persistent 401 on upload", always401: true, wantTokens: 4, wantCalls: 4, wantErr: salesforce.ErrInvalidSession,
			method: "PUT", sub: "/jobs/ingest/" + jobID + "/batches",
			call: func(c *salesforce.Client) error {
				return c.UploadJobData(context.Background(), jobID, salesforce.BytesBody([]byte(uploadCSV)))
			}},
		{name: "api scope missing: no reauth", always401: true, message: "This session is not valid for use with the REST API",
			wantTokens: 1, wantCalls: 1, wantErr: salesforce.ErrInvalidSession, method: "GET", sub: "/jobs/ingest/" + jobID,
			call: func(c *salesforce.Client) error { _, err := c.Job(context.Background(), jobID); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			te := &tokenEndpoint{}
			te.install(s)
			msg := tc.message
			if msg == "" {
				msg = "Session expired or invalid"
			}
			s.handle(tc.method+" "+base+tc.sub, func(w http.ResponseWriter, r *http.Request) {
				if tc.always401 || r.Header.Get("Authorization") == "Bearer "+tokenN(1) {
					apiError(401, "INVALID_SESSION_ID", msg)(w, r)
					return
				}
				switch r.Method {
				case "PUT":
					w.WriteHeader(201)
				default:
					jsonFile(t, "create_response.json", 200)(w, r)
				}
			})
			auth, err := salesforce.ClientCredentials(context.Background(), salesforce.ClientCredentialsConfig{LoginURL: s.URL, ClientID: clientID, ClientSecret: clientSecret})
			if err != nil {
				t.Fatal(err)
			}
			c, err := salesforce.NewClient(context.Background(), auth, fastOptions(newSleeper(), nil))
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(c)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("call = %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("call = %v, want %v", err, tc.wantErr)
			}
			if got := te.count.Load(); got != tc.wantTokens {
				t.Errorf("token requests = %d, want %d", got, tc.wantTokens)
			}
			calls := s.requests(tc.method, base+tc.sub)
			if len(calls) != tc.wantCalls {
				t.Fatalf("API calls = %d, want %d", len(calls), tc.wantCalls)
			}
			for i, r := range calls[1:] {
				if !bytes.Equal(r.Body, calls[0].Body) {
					t.Errorf("replay %d body = %q, want %q", i+1, r.Body, calls[0].Body)
				}
				if r.Header.Get("Authorization") != "Bearer "+tokenN(int64(i)+2) { // each replay with the token fetched for it
					t.Errorf("replay used %q", r.Header.Get("Authorization"))
				}
			}
		})
	}
}

// TestReauthConcurrent: many calls hitting an expired token together cause
// one refresh, not one per call.
func TestReauthConcurrent(t *testing.T) {
	s := newServer(t)
	te := &tokenEndpoint{}
	te.install(s)
	s.handle("GET "+base+"/jobs/ingest/"+jobID, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+tokenN(1) {
			apiError(401, "INVALID_SESSION_ID", "Session expired or invalid")(w, r)
			return
		}
		jobState("Open")(w, r)
	})
	auth, err := salesforce.ClientCredentials(context.Background(), salesforce.ClientCredentialsConfig{LoginURL: s.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(context.Background(), auth, fastOptions(newSleeper(), nil))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Job(context.Background(), jobID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := te.count.Load(); got != 2 {
		t.Errorf("token requests = %d, want 2", got)
	}
}

func TestStaticTokenNoReauth(t *testing.T) {
	s := newServer(t)
	s.handle("GET "+base+"/jobs/ingest/"+jobID, apiError(401, "INVALID_SESSION_ID", "Session expired or invalid"))
	c := staticClient(t, s, fastOptions(newSleeper(), nil))
	if _, err := c.Job(context.Background(), jobID); !errors.Is(err, salesforce.ErrInvalidSession) {
		t.Fatalf("err = %v", err)
	}
	if n := len(s.requests("", "")); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestInsecureURLs(t *testing.T) {
	tests := []struct {
		url     string
		wantErr error // nil: accepted; errAny: some error
	}{
		{"https://acme.my.salesforce.com", nil},
		{"http://127.0.0.1:8080", nil},
		{"http://127.1.2.3", nil},
		{"http://[::1]:9000", nil},
		{"http://localhost:1234", nil},
		{"http://LOCALHOST", nil},
		{"http://acme.my.salesforce.com", salesforce.ErrInsecureURL},
		{"http://10.0.0.1", salesforce.ErrInsecureURL},
		{"http://127.0.0.1.nip.io", salesforce.ErrInsecureURL},
		{"http://localhost.evil.com", salesforce.ErrInsecureURL},
		{"ftp://acme.my.salesforce.com", errAny},
		{"acme.my.salesforce.com", errAny},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := salesforce.StaticToken(tc.url, testToken)
			checkErr(t, "StaticToken", err, tc.wantErr)
			_, err = salesforce.ClientCredentials(context.Background(), salesforce.ClientCredentialsConfig{
				LoginURL: tc.url, ClientID: "x", ClientSecret: "y",
				HTTPClient: &http.Client{Transport: failTransport{}}})
			if tc.wantErr != nil {
				checkErr(t, "ClientCredentials", err, tc.wantErr)
			} else if errors.Is(err, salesforce.ErrInsecureURL) {
				t.Errorf("ClientCredentials refused %s: %v", tc.url, err)
			}
		})
	}

	// instance_url from the token response is checked too.
	s := newServer(t)
	(&tokenEndpoint{extra: map[string]any{"instance_url": "http://acme.my.salesforce.com"}}).install(s)
	_, err := salesforce.ClientCredentials(context.Background(), salesforce.ClientCredentialsConfig{LoginURL: s.URL, ClientID: "x", ClientSecret: "y"})
	if !errors.Is(err, salesforce.ErrInsecureURL) {
		t.Errorf("insecure instance_url: err = %v", err)
	}
}

var errAny = errors.New("any error")

func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v, want nil", what, err)
	case want == errAny && err == nil:
		t.Errorf("%s: nil error, want one", what)
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

type failTransport struct{}

func (failTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in this test")
}

// TestTokenResponseShapes decodes the contract's full token response
// (§1.1) verbatim, and the observed minimal one.
func TestTokenResponseShapes(t *testing.T) {
	tests := []struct {
		name, body string
		wantErr    bool
	}{
		{"full", string(readTestdata(t, "token_full.json")), false},
		{"minimal", `{"access_token":"00DHs0000001gPL!AQ4AQmin","scope":"api","instance_url":"https://acme.my.salesforce.com","api_instance_url":"https://api.salesforce.com","token_type":"Bearer"}`, false},
		{"no instance_url", `{"access_token":"00DHs0000001gPL!AQ4AQmin"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.handle("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				w.Write([]byte(tc.body))
			})
			auth, err := salesforce.ClientCredentials(context.Background(), salesforce.ClientCredentialsConfig{LoginURL: s.URL, ClientID: clientID, ClientSecret: clientSecret})
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := auth.Token(context.Background())
			if tok.InstanceURL != "https://acme.my.salesforce.com" || !strings.HasPrefix(tok.AccessToken, "00DHs0000001gPL!AQ4AQ") {
				t.Errorf("token = %v (%s)", tok, tok.AccessToken[:5])
			}
		})
	}
}
