package salesforcetest_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

type tokenResp struct {
	AccessToken  string `json:"access_token"`
	InstanceURL  string `json:"instance_url"`
	ID           string `json:"id"`
	TokenType    string `json:"token_type"`
	IssuedAt     string `json:"issued_at"`
	Signature    string `json:"signature"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	ErrorDesc    string `json:"error_description"`
}

func postToken(t *testing.T, srv *salesforcetest.Server, form url.Values) (int, tokenResp) {
	t.Helper()
	res, err := srv.Client().PostForm(srv.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tr tokenResp
	if err := json.NewDecoder(res.Body).Decode(&tr); err != nil {
		t.Fatalf("decode token response: %v", err)
	}
	return res.StatusCode, tr
}

func signJWT(t *testing.T, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srv := salesforcetest.NewServer(&salesforcetest.Options{JWTPublicKey: &key.PublicKey})
	defer srv.Close()
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": srv.ClientID(), "sub": srv.Username(), "aud": "https://login.salesforce.com",
			"exp": now.Add(3 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	cases := []struct {
		name      string
		form      url.Values
		wantErr   string
		wantDesc  string
		wantRTNew bool
	}{
		{"client credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID()}, "client_secret": {srv.ClientSecret()}}, "", "", false},
		{"client credentials bad secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID()}, "client_secret": {"x"}}, "invalid_client", "invalid client credentials", false},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {"x"}}, "invalid_client_id", "client identifier invalid", false},
		{"password", url.Values{"grant_type": {"password"}, "client_id": {srv.ClientID()}, "client_secret": {srv.ClientSecret()}, "username": {srv.Username()}, "password": {"password"}}, "", "", false},
		{"password wrong", url.Values{"grant_type": {"password"}, "client_id": {srv.ClientID()}, "client_secret": {srv.ClientSecret()}, "username": {srv.Username()}, "password": {"nope"}}, "invalid_grant", "authentication failure", false},
		{"refresh", url.Values{"grant_type": {"refresh_token"}, "client_id": {srv.ClientID()}, "refresh_token": {srv.RefreshToken()}}, "", "", false},
		{"refresh revoked", url.Values{"grant_type": {"refresh_token"}, "client_id": {srv.ClientID()}, "refresh_token": {"old"}}, "invalid_grant", "expired access/refresh token", false},
		{"jwt", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {signJWT(t, key, claims(nil))}}, "", "", false},
		{"jwt exp as string", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {signJWT(t, key, claims(func(c jwt.MapClaims) { c["exp"] = itoa(now.Add(time.Minute).Unix()) }))}}, "", "", false},
		{"jwt bad signature", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {signJWT(t, other, claims(nil))}}, "invalid_grant", "invalid assertion", false},
		{"jwt expired", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {signJWT(t, key, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }))}}, "invalid_grant", "expired authorization code", false},
		{"jwt unknown user", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {signJWT(t, key, claims(func(c jwt.MapClaims) { c["sub"] = "someone@else" }))}}, "invalid_grant", "user hasn't approved this consumer", false},
		{"jwt HS256 refused", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte("k"))
			return s
		}()}}, "invalid_grant", "invalid assertion", false},
		{"unsupported grant", url.Values{"grant_type": {"authorization_codez"}}, "unsupported_grant_type", "grant type not supported", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, tr := postToken(t, srv, tc.form)
			if tc.wantErr != "" {
				if status != 400 || tr.Error != tc.wantErr || tr.ErrorDesc != tc.wantDesc {
					t.Fatalf("got %d %q %q, want 400 %q %q", status, tr.Error, tr.ErrorDesc, tc.wantErr, tc.wantDesc)
				}
				return
			}
			if status != 200 || tr.InstanceURL != srv.URL || !strings.HasPrefix(tr.AccessToken, "00DHs0000001gPL!AQ") ||
				tr.TokenType != "Bearer" || tr.ID != srv.URL+"/id/"+srv.OrgID()+"/"+srv.UserID() || tr.Signature == "" {
				t.Fatalf("got %d %+v", status, tr)
			}
			// The token works for API calls and the identity URL.
			c := &tc_{srv: srv, token: tr.AccessToken}
			if st := c.get(t, "/services/data/v62.0/limits"); st != 200 {
				t.Errorf("limits with new token: %d", st)
			}
			if st := c.get(t, tr.ID); st != 200 {
				t.Errorf("identity: %d", st)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// tc_ is a minimal authenticated GET helper for absolute URLs or paths.
type tc_ struct {
	srv   *salesforcetest.Server
	token string
}

func (c *tc_) get(t *testing.T, u string) int {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = c.srv.URL + u
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestTokenModes(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{LoginHost: true})
	defer srv.Close()
	status, tr := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID()}, "client_secret": {srv.ClientSecret()}})
	if status != 400 || tr.Error != "invalid_grant" || tr.ErrorDesc != "request not supported on this domain" {
		t.Errorf("login host client credentials: %d %+v", status, tr)
	}

	srv2 := salesforcetest.NewServer(&salesforcetest.Options{MinimalTokenResponse: true, JWTAccessTokens: true, RotateRefreshTokens: true})
	defer srv2.Close()
	res, err := srv2.Client().PostForm(srv2.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "client_id": {srv2.ClientID()}, "refresh_token": {srv2.RefreshToken()}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	res.Body.Close()
	if _, ok := m["id"]; ok || m["api_instance_url"] != "https://api.salesforce.com" || strings.Count(m["access_token"].(string), ".") != 2 || m["refresh_token"] == nil {
		t.Errorf("minimal/JWT/rotated response: %v", m)
	}
	// The old refresh token is now invalid.
	status, tr = postToken(t, srv2, url.Values{"grant_type": {"refresh_token"}, "client_id": {srv2.ClientID()}, "refresh_token": {srv2.RefreshToken()}})
	if status != 400 || tr.Error != "invalid_grant" {
		t.Errorf("rotated-out refresh token: %d %+v", status, tr)
	}
	if st := (&tc_{srv: srv2, token: m["access_token"].(string)}).get(t, "/services/oauth2/userinfo"); st != 200 {
		t.Errorf("userinfo: %d", st)
	}
}

func TestTokenExpiry(t *testing.T) {
	clock := newTestClock("2025-03-04T10:00:00Z")
	c := newTC(t, &salesforcetest.Options{Clock: clock.now, Faults: salesforcetest.Faults{TokenTTL: time.Hour}})
	c.expect(c.do("GET", "/limits", nil), 200)
	clock.set("2025-03-04T11:00:00Z")
	r := c.expect(c.do("GET", "/limits", nil), 401)
	if want := `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`; r.String() != want {
		t.Errorf("expired body = %s", r)
	}
	// A fresh token works; ExpireTokens kills it.
	_, tr := postToken(t, c.srv, url.Values{"grant_type": {"client_credentials"}, "client_id": {c.srv.ClientID()}, "client_secret": {c.srv.ClientSecret()}})
	c.token = tr.AccessToken
	c.expect(c.do("GET", "/limits", nil), 200)
	c.expect(c.do("POST", "/__emulator/expire-tokens", nil), 204)
	c.expect(c.do("GET", "/limits", nil), 401)

	c2 := newTC(t, &salesforcetest.Options{Faults: salesforcetest.Faults{TokenMaxUses: 2}})
	c2.expect(c2.do("GET", "/limits", nil), 200)
	c2.expect(c2.do("GET", "/limits", nil), 200)
	c2.expect(c2.do("GET", "/limits", nil), 401)
	c2.token = ""
	c2.expect(c2.do("GET", "/limits", nil), 401)
	r = c2.expect(c2.do("GET", "/limits", nil, "Authorization", "Basic abc"), 401)
	if !strings.Contains(r.String(), "INVALID_AUTH_HEADER") {
		t.Errorf("bad header body = %s", r)
	}
}
