package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// accessRole is what a token may do: read (status page, reports, dead
// letters, metrics) or also run (POST /run/NAME).
type accessRole int

const (
	roleNone accessRole = iota
	roleRead
	roleRun
)

func (r accessRole) String() string {
	switch r {
	case roleRead:
		return "read"
	case roleRun:
		return "run"
	}
	return "none"
}

// minTokenLen is the shortest token accepted: a guessable token is no
// authentication.
const minTokenLen = 16

// maxTokenSource bounds a token file or variable (the same 1 MiB limit as
// ${file:}).
const maxTokenSource = 1 << 20

// sessionTTL is how long a browser login lasts.
const sessionTTL = 12 * time.Hour

// sessionCookie is the cookie a browser login sets: a random session id,
// never the token itself.
const sessionCookie = "bulkflow_session"

// token is a configured token: its SHA-256 (so comparisons take the
// same time whatever the length of the presented token) and its role.
type token struct {
	sum  [sha256.Size]byte
	role accessRole
}

// auth checks bearer tokens and browser sessions. With no tokens
// configured it lets every request through with the run role (serve then
// listens on loopback only and warns at start).
type auth struct {
	tokens       []token
	secureCookie bool // the browser reaches serve over https
	log          *slog.Logger
	now          func() time.Time

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]session // by SHA-256 of the session id
}

type session struct {
	role    accessRole
	expires time.Time
}

// parseTokens reads a token list: one "ROLE TOKEN" entry per line (or per
// comma-separated item, for environment variables), blank lines and lines
// starting with # ignored; unit names an entry in errors ("line" or
// "entry"). Errors name the source and entry, never the token.
func parseTokens(src, unit string, r io.Reader, seps string) ([]token, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTokenSource+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(data) > maxTokenSource {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a token list", src, maxTokenSource)
	}
	var out []token
	seen := map[[sha256.Size]byte]accessRole{}
	text := string(data)
	for _, sep := range seps {
		text = strings.ReplaceAll(text, string(sep), "\n")
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s: %s %d: want \"ROLE TOKEN\" (role read or run), found %d fields", src, unit, n, len(f))
		}
		var role accessRole
		switch f[0] {
		case "read":
			role = roleRead
		case "run":
			role = roleRun
		default:
			return nil, fmt.Errorf("%s: %s %d: role %q is neither read nor run", src, unit, n, f[0])
		}
		if len(f[1]) < minTokenLen {
			return nil, fmt.Errorf("%s: %s %d: the token is %d characters; use at least %d (e.g. openssl rand -hex 32)", src, unit, n, len(f[1]), minTokenLen)
		}
		sum := sha256.Sum256([]byte(f[1]))
		if prev, dup := seen[sum]; dup {
			if prev != role {
				return nil, fmt.Errorf("%s: %s %d: the same token is listed as both read and run", src, unit, n)
			}
			continue
		}
		seen[sum] = role
		redact.Register(f[1]) // masked should any output ever hold it
		out = append(out, token{sum: sum, role: role})
	}
	return out, nil
}

// loadTokens reads --token-file and --token-env (either or both). An
// empty list from a source that was given is an error: a typo must not
// turn authentication off.
func loadTokens(file, envVar string) ([]token, error) {
	var all []token
	if file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("--token-file %s: not a regular file", file)
		}
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		toks, err := parseTokens("--token-file "+file, "line", f, "\n")
		f.Close()
		if err != nil {
			return nil, err
		}
		if len(toks) == 0 {
			return nil, fmt.Errorf("--token-file %s: no tokens (want lines \"ROLE TOKEN\", role read or run)", file)
		}
		all = append(all, toks...)
	}
	if envVar != "" {
		v, ok := os.LookupEnv(envVar)
		if !ok {
			return nil, fmt.Errorf("--token-env %s: the variable is not set", envVar)
		}
		toks, err := parseTokens("--token-env "+envVar, "entry", strings.NewReader(v), "\n,")
		if err != nil {
			return nil, err
		}
		if len(toks) == 0 {
			return nil, fmt.Errorf("--token-env %s: no tokens (want \"ROLE TOKEN\" entries separated by commas or newlines, role read or run)", envVar)
		}
		all = append(all, toks...)
	}
	return all, nil
}

func newAuth(tokens []token, secureCookie bool, log *slog.Logger, now func() time.Time) *auth {
	return &auth{tokens: tokens, secureCookie: secureCookie, log: log, now: now, sessions: map[[sha256.Size]byte]session{}}
}

// enabled reports whether tokens are configured.
func (a *auth) enabled() bool { return len(a.tokens) > 0 }

// tokenRole returns the role of a presented token, comparing it with every
// configured token in constant time.
func (a *auth) tokenRole(tok string) accessRole {
	sum := sha256.Sum256([]byte(tok))
	role := roleNone
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			role = t.role
		}
	}
	return role
}

// newSession starts a browser session with role and returns its id.
func (a *auth) newSession(role accessRole) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, s := range a.sessions { // drop expired ones: the map stays small
		if !now.Before(s.expires) {
			delete(a.sessions, k)
		}
	}
	a.sessions[sha256.Sum256([]byte(id))] = session{role: role, expires: now.Add(sessionTTL)}
	return id, nil
}

func (a *auth) sessionRole(id string) accessRole {
	key := sha256.Sum256([]byte(id))
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[key]
	if !ok {
		return roleNone
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, key)
		return roleNone
	}
	return s.role
}

func (a *auth) endSession(id string) {
	a.mu.Lock()
	delete(a.sessions, sha256.Sum256([]byte(id)))
	a.mu.Unlock()
}

// credentials returns the role a request authenticates as, and whether it
// presented any credentials at all.
func (a *auth) credentials(r *http.Request) (role accessRole, presented bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return roleNone, true
		}
		return a.tokenRole(strings.TrimSpace(tok)), true
	}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		return a.sessionRole(c.Value), true
	}
	return roleNone, false
}

type roleKey struct{}

// requestRole is the role the request was authenticated with (roleRun
// when serve has no tokens).
func requestRole(r *http.Request) accessRole {
	if v, ok := r.Context().Value(roleKey{}).(accessRole); ok {
		return v
	}
	return roleNone
}

// clientAddr is the remote address for logs.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// wrap requires a token (or a browser session) on every request except
// the public ones (/healthz, /login, /logout, and /metrics when public):
// 401 with WWW-Authenticate: Bearer without valid credentials, 403 for a
// read token on a route that changes something (every non-GET/HEAD
// method). Failed attempts are logged without the credentials.
func (a *auth) wrap(next http.Handler, metricsPublic bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		public := r.URL.Path == "/healthz" || r.URL.Path == "/login" || r.URL.Path == "/logout" ||
			(metricsPublic && r.URL.Path == "/metrics")
		if !a.enabled() {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, roleRun)))
			return
		}
		if public {
			next.ServeHTTP(w, r)
			return
		}
		role, presented := a.credentials(r)
		if role == roleNone {
			if presented {
				a.log.Warn("serve: authentication failed", "remote", clientAddr(r), "method", r.Method, "path", r.URL.Path,
					"reason", "invalid token or expired session")
				w.Header().Set("WWW-Authenticate", `Bearer realm="bulkflow serve", error="invalid_token"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="bulkflow serve"`)
			}
			unauthorized(w, r)
			return
		}
		need := roleRead
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			need = roleRun
		}
		if role < need {
			a.log.Warn("serve: permission denied", "remote", clientAddr(r), "method", r.Method, "path", r.URL.Path,
				"role", role.String(), "needs", need.String())
			http.Error(w, "forbidden: this token has the read role; triggering runs needs a run token", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
	})
}

// unauthorized answers 401: a link to the login form for browsers, one
// line for other clients.
func unauthorized(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `<!doctype html><html><head><meta charset="utf-8"><title>bulkflow serve</title></head><body><p>Authentication required: <a href="/login">log in</a> with a token.</p></body></html>`+"\n")
		return
	}
	http.Error(w, "authentication required: send Authorization: Bearer TOKEN (or log in at /login in a browser)", http.StatusUnauthorized)
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>bulkflow serve: log in</title>
<style>body{font-family:sans-serif;margin:2em}.failed{color:#b00}</style></head>
<body><h1>bulkflow serve</h1>
{{if .}}<p class="failed">{{.}}</p>{{end}}
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label> <button>Log in</button></form>
</body></html>
`))

func writeLoginPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	loginTmpl.Execute(w, msg)
}

// handleLogin serves the browser login: GET shows the form, POST checks
// the token and sets an HttpOnly, SameSite=Strict session cookie (Secure
// over https) holding a random session id.
func (a *auth) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !a.enabled() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if r.Method != http.MethodPost {
		writeLoginPage(w, http.StatusOK, "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		writeLoginPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	role := a.tokenRole(strings.TrimSpace(r.PostForm.Get("token")))
	if role == roleNone {
		a.log.Warn("serve: authentication failed", "remote", clientAddr(r), "method", r.Method, "path", r.URL.Path, "reason", "invalid token at login")
		writeLoginPage(w, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	id, err := a.newSession(role)
	if err != nil {
		http.Error(w, "cannot start a session: "+err.Error(), http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, Secure: a.secureCookie, SameSite: http.SameSiteStrictMode})
	a.log.Info("serve: browser login", "remote", clientAddr(r), "role", role.String())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleLogout ends the browser session.
func (a *auth) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.endSession(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.secureCookie, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// errExposure is the cause of refusing to listen beyond loopback.
var errExposure = errors.New("refusing to serve beyond loopback")

// checkExposure refuses listening beyond loopback unless
// --allow-non-loopback is given, and refuses --allow-non-loopback without
// tokens and TLS (served here, or terminated by a proxy in front).
func checkExposure(addr string, o Options, haveTokens bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v", addr, err)
	}
	tls := o.TLSCert != "" || o.TLSTerminatedUpstream
	if o.AllowNonLoopback {
		var missing []string
		if !haveTokens {
			missing = append(missing, "tokens (--token-file FILE or --token-env VAR)")
		}
		if !tls {
			missing = append(missing, "TLS (--tls-cert and --tls-key, or --tls-terminated-upstream when a TLS-terminating proxy is in front)")
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: --allow-non-loopback needs %s", errExposure, strings.Join(missing, " and "))
		}
		return nil
	}
	if isLoopbackHost(host) {
		return nil
	}
	if host == "" {
		host = "all interfaces"
	}
	return fmt.Errorf("%w: --addr %q listens on %s, not loopback; pass --allow-non-loopback together with tokens "+
		"(--token-file or --token-env) and TLS (--tls-cert/--tls-key or --tls-terminated-upstream)", errExposure, addr, host)
}
