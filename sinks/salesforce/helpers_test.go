package salesforce_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// testToken looks like a real session id so that redaction patterns are
// exercised as well as exact-match redaction.
const testToken = "00DHs0000001gPL!AQ4AQFtZ3Xx9SECRETSECRET"

const base = "/services/data/v62.0"

const jobID = "750Hs00000KqZ3mIAF"

// rec is a request as the test server saw it.
type rec struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// server is an httptest server with a mux and a request log. Handlers see
// the request body already read into rec.Body (and r.Body refilled).
type server struct {
	*httptest.Server
	mux  *http.ServeMux
	mu   sync.Mutex
	reqs []rec
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{mux: http.NewServeMux()}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, rec{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		w.Header().Set("Sforce-Limit-Info", "api-usage=25/15000")
		s.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// requests returns the logged requests with the given method and path
// ("" matches any).
func (s *server) requests(method, path string) []rec {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []rec
	for _, r := range s.reqs {
		if (method == "" || r.Method == method) && (path == "" || r.Path == path) {
			out = append(out, r)
		}
	}
	return out
}

// sleeper records requested sleeps and returns at once.
type sleeper struct {
	mu     sync.Mutex
	delays []time.Duration
	now    time.Time
}

func newSleeper() *sleeper { return &sleeper{now: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)} }

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.now = s.now.Add(d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *sleeper) Delays() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.delays...)
}

// fastOptions returns options with a fake clock and a debug log into buf.
func fastOptions(sl *sleeper, buf *bytes.Buffer) *salesforce.Options {
	o := &salesforce.Options{Sleep: sl.Sleep, Now: sl.Now, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	if buf != nil {
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// staticClient returns a client with a static token against s.
func staticClient(t *testing.T, s *server, opts *salesforce.Options) *salesforce.Client {
	t.Helper()
	auth, err := salesforce.StaticToken(s.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(context.Background(), auth, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonFile answers with a testdata file.
func jsonFile(t *testing.T, name string, status int) http.HandlerFunc {
	b := readTestdata(t, name)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		w.Write(b)
	}
}

// csvFile answers with a testdata CSV, gzipped when gz is set (whatever
// the request's Accept-Encoding).
func csvFile(t *testing.T, name string, gz bool) http.HandlerFunc {
	b := readTestdata(t, name)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv; charset=UTF-8")
		if gz {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(b)
			zw.Close()
			return
		}
		w.Write(b)
	}
}

// apiError answers with a contract-style JSON error array.
func apiError(status int, code, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `[{"message":%q,"errorCode":%q}]`, msg, code)
	}
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

// hangUp closes the connection without answering.
func hangUp(w http.ResponseWriter, r *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("no hijacker")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// sequence runs the handlers in turn; the last one repeats.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(n, len(hs)-1)]
		n++
		mu.Unlock()
		h(w, r)
	}
}

// jobState answers GET job with a minimal JobInfo in state st.
func jobState(st string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		fmt.Fprintf(w, `{"id":%q,"operation":"insert","object":"Account","state":%q,"apiVersion":62.0}`, jobID, st)
	}
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}
