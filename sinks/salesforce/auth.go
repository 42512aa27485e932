package salesforce

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"

	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Salesforce login hosts, used as the JWT audience (contract §1.2).
const (
	LoginURL   = "https://login.salesforce.com"
	SandboxURL = "https://test.salesforce.com"
)

// tokenPath is the OAuth token endpoint path on a login host (contract §1).
const tokenPath = "/services/oauth2/token"

// Token is an access token and the instance URL it is valid for. Its
// String, GoString and LogValue methods hide the access token.
type Token struct {
	AccessToken string
	InstanceURL string
}

// String implements fmt.Stringer without revealing the access token.
func (t Token) String() string {
	return "Token{InstanceURL:" + t.InstanceURL + " AccessToken:REDACTED}"
}

// GoString implements fmt.GoStringer without revealing the access token.
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer without revealing the access token.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("instance_url", t.InstanceURL), slog.String("access_token", "REDACTED"))
}

// Auth yields access tokens and the instance URL for a Client. It caches
// the current token (Salesforce tokens carry no expiry) and fetches a new
// one only when the API reports the session invalid. An Auth is safe for
// concurrent use and may be shared by several Clients.
type Auth struct {
	fetch func(ctx context.Context) (*oauth2.Token, error) // nil for static tokens
	hc    *http.Client
	// secrets lists credentials to scrub from token endpoint errors.
	secrets func() []string

	mu  sync.Mutex
	cur Token
	ok  bool
}

// Token returns the cached token, fetching one if there is none yet.
func (a *Auth) Token(ctx context.Context) (Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ok {
		return a.cur, nil
	}
	return a.fetchLocked(ctx)
}

// Refresh forces a new token, bypassing the cache, unless the cached token
// already differs from stale (another caller refreshed it meanwhile). A
// static token cannot be refreshed: Refresh then returns ErrInvalidSession.
func (a *Auth) Refresh(ctx context.Context, stale Token) (Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ok && a.cur.AccessToken != stale.AccessToken {
		return a.cur, nil
	}
	if a.fetch == nil {
		return Token{}, fmt.Errorf("static access token cannot be refreshed: %w", ErrInvalidSession)
	}
	return a.fetchLocked(ctx)
}

// TokenSource adapts a to oauth2.TokenSource. The returned tokens carry
// the instance URL as the "instance_url" extra.
func (a *Auth) TokenSource(ctx context.Context) oauth2.TokenSource {
	return tokenSourceFunc(func() (*oauth2.Token, error) {
		t, err := a.Token(ctx)
		if err != nil {
			return nil, err
		}
		return (&oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer"}).
			WithExtra(map[string]any{"instance_url": t.InstanceURL}), nil
	})
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// fetchLocked gets a new token. a.mu must be held.
func (a *Auth) fetchLocked(ctx context.Context) (Token, error) {
	if a.fetch == nil {
		return a.cur, nil
	}
	if a.hc != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, a.hc)
	}
	ot, err := a.fetch(ctx)
	if err != nil {
		var secrets []string
		if a.secrets != nil {
			secrets = a.secrets()
		}
		if a.ok {
			secrets = append(secrets, a.cur.AccessToken)
		}
		return Token{}, convertAuthError(err, secrets)
	}
	inst, _ := ot.Extra("instance_url").(string)
	if ot.AccessToken == "" || inst == "" {
		return Token{}, errors.New("salesforce: token response lacks access_token or instance_url")
	}
	inst = strings.TrimRight(inst, "/")
	if err := checkURL(inst); err != nil {
		return Token{}, fmt.Errorf("instance_url from token response: %w", err)
	}
	a.cur = Token{AccessToken: ot.AccessToken, InstanceURL: inst}
	a.ok = true
	return a.cur, nil
}

// convertAuthError turns oauth2 errors (whose text embeds the raw response
// body) into an *AuthError with only the error code and description.
func convertAuthError(err error, secrets []string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		ae := &AuthError{Code: re.ErrorCode, Description: redact(re.ErrorDescription, secrets...)}
		if re.Response != nil {
			ae.StatusCode = re.Response.StatusCode
		}
		if ae.Code == "" {
			var body struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				ae.Code, ae.Description = body.Error, redact(body.ErrorDescription, secrets...)
			}
		}
		return ae
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		ae.Description = redact(ae.Description, secrets...)
		return ae
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("salesforce: token request: %s %s: %w", ue.Op, redact(ue.URL, secrets...), redactErr(ue.Err, secrets))
	}
	return fmt.Errorf("salesforce: token request: %s", redact(err.Error(), secrets...))
}

// StaticToken returns an Auth for a fixed access token. It cannot
// re-authenticate: a 401 is returned to the caller.
func StaticToken(instanceURL, accessToken string) (*Auth, error) {
	instanceURL = strings.TrimRight(instanceURL, "/")
	if err := checkURL(instanceURL); err != nil {
		return nil, fmt.Errorf("static token: %w", err)
	}
	if accessToken == "" {
		return nil, errors.New("static token: empty access token")
	}
	return &Auth{cur: Token{AccessToken: accessToken, InstanceURL: instanceURL}, ok: true}, nil
}

// ClientCredentialsConfig configures the client credentials flow
// (contract §1.1).
type ClientCredentialsConfig struct {
	// LoginURL is the My Domain URL, e.g. https://acme.my.salesforce.com.
	// The token endpoint is LoginURL + /services/oauth2/token.
	LoginURL string
	// TokenURL overrides the token endpoint.
	TokenURL     string
	ClientID     string
	ClientSecret string
	// HTTPClient is used for token requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// ClientCredentials returns an Auth using grant_type=client_credentials and
// fetches the first token so that bad credentials fail early.
func ClientCredentials(ctx context.Context, cfg ClientCredentialsConfig) (*Auth, error) {
	tokenURL, err := tokenEndpoint(cfg.LoginURL, cfg.TokenURL)
	if err != nil {
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("client credentials: client id and secret are required")
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     tokenURL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	a := &Auth{fetch: cc.Token, hc: cfg.HTTPClient, secrets: func() []string { return []string{cfg.ClientSecret} }}
	if _, err := a.Token(ctx); err != nil {
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	return a, nil
}

// RefreshTokenConfig configures the refresh token flow (contract §1.3).
type RefreshTokenConfig struct {
	// LoginURL is the token host (https://login.salesforce.com,
	// https://test.salesforce.com or My Domain).
	LoginURL     string
	TokenURL     string // overrides LoginURL + /services/oauth2/token
	ClientID     string
	ClientSecret string // optional
	RefreshToken string
	HTTPClient   *http.Client
}

// RefreshToken returns an Auth using grant_type=refresh_token. A rotated
// refresh token returned by the server replaces the configured one. The
// first token is fetched before RefreshToken returns.
func RefreshToken(ctx context.Context, cfg RefreshTokenConfig) (*Auth, error) {
	tokenURL, err := tokenEndpoint(cfg.LoginURL, cfg.TokenURL)
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	if cfg.ClientID == "" || cfg.RefreshToken == "" {
		return nil, errors.New("refresh token: client id and refresh token are required")
	}
	conf := &oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	rt := cfg.RefreshToken // guarded by Auth.mu: fetch runs with it held
	a := &Auth{hc: cfg.HTTPClient}
	a.secrets = func() []string { return []string{cfg.ClientSecret, cfg.RefreshToken, rt} }
	a.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		t, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			return nil, err
		}
		if t.RefreshToken != "" {
			rt = t.RefreshToken
		}
		return t, nil
	}
	if _, err := a.Token(ctx); err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	return a, nil
}

// JWTConfig configures the JWT bearer flow (contract §1.2).
type JWTConfig struct {
	// LoginURL is the host the token request is posted to (login, test or
	// My Domain).
	LoginURL string
	TokenURL string // overrides LoginURL + /services/oauth2/token
	// Audience is the aud claim; default https://login.salesforce.com. Use
	// SandboxURL for sandboxes, even when posting to a My Domain host.
	Audience string
	ClientID string // iss: the connected app's consumer key
	Username string // sub
	// PrivateKeyPEM or PrivateKeyFile holds the RSA private key (PKCS#1 or
	// PKCS#8 PEM).
	PrivateKeyPEM  []byte
	PrivateKeyFile string
	// Lifetime is exp - now; default 3 minutes.
	Lifetime   time.Duration
	HTTPClient *http.Client
	// Now overrides the clock for tests.
	Now func() time.Time
}

// JWTBearer returns an Auth using the JWT bearer grant with an RS256
// assertion, and fetches the first token before returning.
func JWTBearer(ctx context.Context, cfg JWTConfig) (*Auth, error) {
	tokenURL, err := tokenEndpoint(cfg.LoginURL, cfg.TokenURL)
	if err != nil {
		return nil, fmt.Errorf("jwt bearer: %w", err)
	}
	if cfg.ClientID == "" || cfg.Username == "" {
		return nil, errors.New("jwt bearer: client id and username are required")
	}
	pemBytes := cfg.PrivateKeyPEM
	if len(pemBytes) == 0 && cfg.PrivateKeyFile != "" {
		if pemBytes, err = os.ReadFile(cfg.PrivateKeyFile); err != nil {
			return nil, fmt.Errorf("jwt bearer: read key: %w", err)
		}
	}
	if len(pemBytes) == 0 {
		return nil, errors.New("jwt bearer: a private key is required")
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("jwt bearer: parse private key: %w", err)
	}
	aud := cfg.Audience
	if aud == "" {
		aud = LoginURL
	}
	life := cfg.Lifetime
	if life <= 0 {
		life = 3 * time.Minute
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	a := &Auth{hc: cfg.HTTPClient}
	a.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		assertion, err := signAssertion(key, cfg.ClientID, cfg.Username, aud, now().Add(life))
		if err != nil {
			return nil, err
		}
		t, err := postTokenForm(ctx, tokenURL, url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"assertion":  {assertion},
		})
		if err != nil {
			return nil, convertAuthError(err, []string{assertion})
		}
		return t, nil
	}
	if _, err := a.Token(ctx); err != nil {
		return nil, fmt.Errorf("jwt bearer: %w", err)
	}
	return a, nil
}

// signAssertion builds the RS256 assertion. exp is sent as a JSON number
// (RFC 7519 NumericDate); the contract (§1.2) notes Salesforce accepts both
// numbers and strings, and JWT libraries reject strings.
func signAssertion(key *rsa.PrivateKey, iss, sub, aud string, exp time.Time) (string, error) {
	claims := jwt.MapClaims{"iss": iss, "sub": sub, "aud": aud, "exp": exp.Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return s, nil
}

// postTokenForm posts form to the token endpoint and decodes a Salesforce
// token response (contract §1.5, §1.6).
func postTokenForm(ctx context.Context, tokenURL string, form url.Values) (*oauth2.Token, error) {
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	jerr := json.Unmarshal(body, &raw)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || jerr != nil {
		ae := &AuthError{StatusCode: resp.StatusCode}
		if jerr == nil {
			ae.Code, _ = raw["error"].(string)
			d, _ := raw["error_description"].(string)
			ae.Description = redact(d)
		}
		if ae.Code == "" && ae.Description == "" {
			ae.Description = redact(truncate(string(body), 200))
		}
		return nil, ae
	}
	at, _ := raw["access_token"].(string)
	tt, _ := raw["token_type"].(string)
	return (&oauth2.Token{AccessToken: at, TokenType: tt}).WithExtra(raw), nil
}

func tokenEndpoint(loginURL, tokenURL string) (string, error) {
	if tokenURL == "" {
		if loginURL == "" {
			return "", errors.New("login URL is required")
		}
		tokenURL = strings.TrimRight(loginURL, "/") + tokenPath
	}
	if err := checkURL(tokenURL); err != nil {
		return "", err
	}
	return tokenURL, nil
}

// checkURL accepts https URLs, and http URLs only for loopback hosts.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s: %w (use https)", u.Redacted(), ErrInsecureURL)
	}
	return fmt.Errorf("URL %q: unsupported scheme %q", u.Redacted(), u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactErr returns err, or a scrubbed copy when its text holds a secret.
func redactErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	if s := err.Error(); redact(s, secrets...) != s {
		return errors.New(redact(s, secrets...))
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
