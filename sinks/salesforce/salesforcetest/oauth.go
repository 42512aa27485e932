package salesforcetest

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

const grantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// loadJWTKey resolves Options.JWTPublicKey / JWTCertificatePEM.
func (s *Server) loadJWTKey() error {
	if s.opts.JWTPublicKey != nil {
		if _, ok := s.opts.JWTPublicKey.(*rsa.PublicKey); !ok {
			return fmt.Errorf("salesforcetest: JWTPublicKey must be *rsa.PublicKey, got %T", s.opts.JWTPublicKey)
		}
		s.pubKey = s.opts.JWTPublicKey
		return nil
	}
	if len(s.opts.JWTCertificatePEM) == 0 {
		return nil
	}
	key, err := ParseRSAPublicKeyPEM(s.opts.JWTCertificatePEM)
	if err != nil {
		return fmt.Errorf("salesforcetest: JWTCertificatePEM: %w", err)
	}
	s.pubKey = key
	return nil
}

// ParseRSAPublicKeyPEM extracts an RSA public key from a PEM encoded X.509
// certificate, PKIX public key or PKCS#1 public key.
func ParseRSAPublicKeyPEM(b []byte) (*rsa.PublicKey, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no certificate or public key PEM block found")
		}
		var key any
		var err error
		switch blk.Type {
		case "CERTIFICATE":
			var cert *x509.Certificate
			cert, err = x509.ParseCertificate(blk.Bytes)
			if err == nil {
				key = cert.PublicKey
			}
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(blk.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", strings.ToLower(blk.Type), err)
		}
		rk, ok := key.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s holds a %T, want an RSA key", strings.ToLower(blk.Type), key)
		}
		return rk, nil
	}
}

// baseURL returns the instance URL for responses.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.InstanceURL != "" {
		return strings.TrimSuffix(s.opts.InstanceURL, "/")
	}
	if s.URL != "" {
		return s.URL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) oauthErr(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	s.writeJSONValue(w, r, status, obj{{"error", code}, {"error_description", desc}})
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.writeMethodNotAllowed(w, r, "POST")
		return
	}
	if err := decodeBody(r); err != nil {
		s.writeBodyErr(w, r, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.oauthErr(w, r, http.StatusBadRequest, "invalid_request", "invalid request body")
		return
	}
	clientID, clientSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && clientID == "" {
		clientID, clientSecret = u, p
	}
	checkClient := func(needSecret bool) bool {
		if clientID != s.opts.ClientID {
			s.oauthErr(w, r, http.StatusBadRequest, "invalid_client_id", "client identifier invalid")
			return false
		}
		if (needSecret || clientSecret != "") && clientSecret != s.opts.ClientSecret {
			s.oauthErr(w, r, http.StatusBadRequest, "invalid_client", "invalid client credentials")
			return false
		}
		return true
	}
	var newRefresh string
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "client_credentials":
		if s.opts.LoginHost {
			s.oauthErr(w, r, http.StatusBadRequest, "invalid_grant", "request not supported on this domain")
			return
		}
		if !checkClient(true) {
			return
		}
	case "password":
		if !checkClient(true) {
			return
		}
		if r.PostForm.Get("username") != s.opts.Username || r.PostForm.Get("password") != s.opts.Password {
			s.oauthErr(w, r, http.StatusBadRequest, "invalid_grant", "authentication failure")
			return
		}
	case "refresh_token":
		if !checkClient(false) {
			return
		}
		rt := r.PostForm.Get("refresh_token")
		s.mu.Lock()
		valid := s.refreshTokens[rt]
		if valid && s.opts.RotateRefreshTokens {
			delete(s.refreshTokens, rt)
			newRefresh = "5Aep861" + s.newSessionIDLocked()[20:80]
			s.refreshTokens[newRefresh] = true
		}
		s.mu.Unlock()
		if !valid {
			s.oauthErr(w, r, http.StatusBadRequest, "invalid_grant", "expired access/refresh token")
			return
		}
	case grantJWTBearer:
		code, desc := s.verifyAssertion(r, r.PostForm.Get("assertion"))
		if code != "" {
			s.oauthErr(w, r, http.StatusBadRequest, code, desc)
			return
		}
		clientID = s.opts.ClientID
	default:
		s.oauthErr(w, r, http.StatusBadRequest, "unsupported_grant_type", "grant type not supported")
		return
	}
	s.issueToken(w, r, newRefresh)
}

// verifyAssertion checks an RS256 JWT bearer assertion (contract §1.2).
// It returns an OAuth error code and description, or "" when valid.
func (s *Server) verifyAssertion(r *http.Request, assertion string) (string, string) {
	if s.pubKey == nil {
		return "invalid_grant", "invalid assertion: no certificate configured for this connected app"
	}
	claims := jwt.MapClaims{}
	// Claims are checked by hand: Salesforce accepts "exp" as a JSON
	// number or a numeric string (contract §1.2); jwt.MapClaims only
	// accepts numbers.
	_, err := jwt.ParseWithClaims(assertion, claims, func(*jwt.Token) (any, error) { return s.pubKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return "invalid_grant", "invalid assertion"
	}
	var exp float64
	switch v := claims["exp"].(type) {
	case float64:
		exp = v
	case json.Number:
		exp, err = v.Float64()
	case string:
		exp, err = strconv.ParseFloat(v, 64)
	default:
		err = errors.New("missing exp")
	}
	if err != nil {
		return "invalid_grant", "invalid assertion"
	}
	if float64(s.opts.Clock().Unix()) >= exp {
		return "invalid_grant", "expired authorization code"
	}
	if iss, _ := claims["iss"].(string); iss != s.opts.ClientID {
		return "invalid_client_id", "client identifier invalid"
	}
	aud, _ := claims.GetAudience()
	allowed := s.opts.JWTAudiences
	if allowed == nil {
		allowed = []string{"https://login.salesforce.com", "https://test.salesforce.com", s.baseURL(r)}
	}
	ok := false
	for _, a := range aud {
		if slices.Contains(allowed, strings.TrimSuffix(a, "/")) {
			ok = true
		}
	}
	if !ok {
		return "invalid_grant", "audience is invalid"
	}
	if sub, _ := claims["sub"].(string); sub != s.opts.Username {
		return "invalid_grant", "user hasn't approved this consumer"
	}
	return "", ""
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, newRefresh string) {
	base := s.baseURL(r)
	s.mu.Lock()
	now := s.now()
	var tok string
	if s.opts.JWTAccessTokens {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": base, "sub": s.opts.UserID, "org": s.opts.OrgID, "iat": now.Unix(),
			"jti": s.newSessionIDLocked()[20:40],
		})
		signed, err := t.SignedString([]byte(s.opts.ClientSecret))
		if err != nil {
			s.mu.Unlock()
			panic(fmt.Errorf("sign access token: %w", err))
		}
		tok = signed
	} else {
		tok = s.newSessionIDLocked()
	}
	s.tokens[tok] = &token{issued: now}
	s.mu.Unlock()
	id := base + "/id/" + s.opts.OrgID + "/" + s.opts.UserID
	issuedAt := strconv.FormatInt(now.UnixMilli(), 10)
	var resp obj
	if s.opts.MinimalTokenResponse {
		resp = obj{{"access_token", tok}, {"scope", "api"}, {"instance_url", base},
			{"api_instance_url", "https://api.salesforce.com"}, {"token_type", "Bearer"}}
	} else {
		mac := hmac.New(sha256.New, []byte(s.opts.ClientSecret))
		mac.Write([]byte(id + issuedAt))
		resp = obj{{"access_token", tok}, {"signature", base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
		scope := "api"
		if newRefresh != "" {
			scope = "api refresh_token"
		}
		resp = append(resp, kv{"scope", scope}, kv{"instance_url", base}, kv{"id", id},
			kv{"token_type", "Bearer"}, kv{"issued_at", issuedAt})
	}
	if newRefresh != "" {
		resp = append(resp, kv{"refresh_token", newRefresh})
	}
	w.Header().Set("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")
	s.writeJSONValue(w, r, http.StatusOK, resp)
}

// checkBearer validates the bearer token of an identity/userinfo call
// and writes the 401 itself when invalid.
func (s *Server) checkBearer(w http.ResponseWriter, r *http.Request) bool {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "OAuth") {
		tok = r.URL.Query().Get("oauth_token")
	}
	s.mu.Lock()
	t := s.tokens[strings.TrimSpace(tok)]
	ok := t != nil && s.tokenValidLocked(t)
	s.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		s.writeInvalidSession(w, r)
	}
	return ok
}

func (s *Server) userObj(r *http.Request, identity bool) obj {
	base := s.baseURL(r)
	id := base + "/id/" + s.opts.OrgID + "/" + s.opts.UserID
	if identity {
		return obj{
			{"id", id}, {"asserted_user", true}, {"user_id", s.opts.UserID}, {"organization_id", s.opts.OrgID},
			{"username", s.opts.Username}, {"nick_name", "integration"}, {"display_name", "Integration User"},
			{"email", s.opts.Username}, {"email_verified", true}, {"first_name", "Integration"},
			{"last_name", "User"}, {"timezone", "GMT"}, {"active", true}, {"user_type", "STANDARD"},
			{"language", "en_US"}, {"locale", "en_US"}, {"utcOffset", 0},
			{"urls", obj{
				{"rest", base + "/services/data/v{version}/"},
				{"sobjects", base + "/services/data/v{version}/sobjects/"},
				{"query", base + "/services/data/v{version}/query/"},
				{"profile", base + "/" + s.opts.UserID},
			}},
			{"is_app_installed", true},
		}
	}
	return obj{
		{"sub", id}, {"user_id", s.opts.UserID}, {"organization_id", s.opts.OrgID},
		{"preferred_username", s.opts.Username}, {"nickname", "integration"}, {"name", "Integration User"},
		{"email", s.opts.Username}, {"email_verified", true}, {"given_name", "Integration"},
		{"family_name", "User"}, {"zoneinfo", "GMT"}, {"active", true}, {"user_type", "STANDARD"},
		{"language", "en_US"}, {"locale", "en_US"}, {"utcOffset", 0},
	}
}

func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.writeMethodNotAllowed(w, r, "GET", "POST")
		return
	}
	if !s.checkBearer(w, r) {
		return
	}
	s.writeJSONValue(w, r, http.StatusOK, s.userObj(r, false))
}

func (s *Server) handleIdentity(w http.ResponseWriter, r *http.Request, p string) {
	parts := strings.Split(strings.TrimPrefix(p, "/id/"), "/")
	if len(parts) != 2 {
		s.writeNotFound(w, r)
		return
	}
	org, _ := normalizeID(parts[0])
	user, _ := normalizeID(parts[1])
	if org != s.opts.OrgID[:15] || user != s.opts.UserID[:15] {
		s.writeNotFound(w, r)
		return
	}
	if !s.checkBearer(w, r) {
		return
	}
	s.writeJSONValue(w, r, http.StatusOK, s.userObj(r, true))
}

// handleIntrospect implements POST /services/oauth2/introspect.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.writeMethodNotAllowed(w, r, "POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.oauthErr(w, r, http.StatusBadRequest, "invalid_request", "invalid request body")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	if id != s.opts.ClientID || secret != s.opts.ClientSecret {
		s.oauthErr(w, r, http.StatusUnauthorized, "invalid_client", "invalid client credentials")
		return
	}
	s.mu.Lock()
	t := s.tokens[r.PostForm.Get("token")]
	active := t != nil && s.tokenValidLocked(t)
	var exp, iat int64
	if t != nil {
		iat = t.issued.Unix()
		exp = iat + 7200
		if ttl := s.faults.TokenTTL; ttl > 0 {
			exp = t.issued.Add(ttl).Unix()
		}
	}
	s.mu.Unlock()
	if !active {
		s.writeJSONValue(w, r, http.StatusOK, obj{{"active", false}})
		return
	}
	s.writeJSONValue(w, r, http.StatusOK, obj{{"active", true}, {"scope", "api"}, {"client_id", s.opts.ClientID},
		{"username", s.opts.Username}, {"sub", s.baseURL(r) + "/id/" + s.opts.OrgID + "/" + s.opts.UserID},
		{"token_type", "access_token"}, {"exp", exp}, {"iat", iat}, {"nbf", iat}})
}

// handleRevoke implements POST /services/oauth2/revoke.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.oauthErr(w, r, http.StatusBadRequest, "invalid_request", "invalid request body")
		return
	}
	tok := r.Form.Get("token")
	s.mu.Lock()
	t := s.tokens[tok]
	if t != nil {
		t.expired = true
	}
	known := t != nil || s.refreshTokens[tok]
	delete(s.refreshTokens, tok)
	s.mu.Unlock()
	if !known {
		s.oauthErr(w, r, http.StatusBadRequest, "unsupported_token_type", "this token type is not supported")
		return
	}
	w.WriteHeader(http.StatusOK)
}
