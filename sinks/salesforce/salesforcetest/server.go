package salesforcetest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
)

// Server is an in-memory emulator of the Salesforce OAuth 2.0 token
// endpoint and the REST / Bulk API 2.0 resources described in the bulkflow
// contract (shared/docs/salesforce-bulk-api-2.md). It implements
// http.Handler. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of a started server (http://127.0.0.1:port), with
	// no trailing slash. It is the instance_url returned by the token
	// endpoint. Empty for a handler that is not listening yet.
	URL string

	opts Options
	// generalOnly makes every row take applyRowLocked, never the fast
	// insert path: set only by this package's tests, which check the two
	// against each other.
	generalOnly bool
	pubKey      any
	ts          *httptest.Server
	objects     map[string]*object
	objList     []*object
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	closeOne    sync.Once

	mu            sync.Mutex // guards everything below
	closed        bool
	faults        Faults
	collFaults    CollectionFaults // collections.go
	held          atomic.Int64     // collection answers being held (collections.go)
	rng           *mrand.Rand
	store         map[string]*objStore
	jobs          map[string]*job // 15-char id → job
	jobOrder      []*job
	tokens        map[string]*token
	refreshTokens map[string]bool
	idGens        map[string]*idGen // by key prefix
	lastIDPrefix  string            // the prefix of lastIDGen, which
	lastIDGen     *idGen            // saves newIDLocked a map lookup
	apiUsed       int64
	batchesUsed   int64
	recordsUsed   int64
	requests      map[string]int
	changed       chan struct{}
}

type token struct {
	issued  time.Time
	uses    int
	expired bool
}

// NewHandler returns an emulator that is not listening: mount it as an
// http.Handler or call Listen/Serve. Call Close to stop background job
// processing. opts may be nil.
func NewHandler(opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.OrgID == "" {
		o.OrgID = DefaultOrgID
	}
	if o.UserID == "" {
		o.UserID = DefaultUserID
	}
	for name, id := range map[string]string{"OrgID": o.OrgID, "UserID": o.UserID} {
		if _, ok := normalizeID(id); !ok || len(id) != 18 {
			return nil, fmt.Errorf("salesforcetest: %s %q is not a valid 18-character id", name, id)
		}
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.Username == "" {
		o.Username = DefaultUsername
	}
	if o.Password == "" {
		o.Password = "password"
	}
	if o.RefreshToken == "" {
		o.RefreshToken = DefaultRefreshToken
	}
	if o.APIRequestLimit <= 0 {
		o.APIRequestLimit = 100000
	}
	if o.DailyRecordLimit <= 0 {
		o.DailyRecordLimit = 150_000_000
	}
	if o.DailyBatchLimit <= 0 {
		o.DailyBatchLimit = 15000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if o.ListPageSize <= 0 {
		o.ListPageSize = 1000
	}
	if o.QueryPageSize <= 0 {
		o.QueryPageSize = 50000
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.SecondUploadErrorCode == "" {
		o.SecondUploadErrorCode = "BULK_API_ERROR"
	}
	if o.ProcessingRate < 0 {
		return nil, errors.New("salesforcetest: ProcessingRate must not be negative")
	}
	if err := o.Faults.validate(); err != nil {
		return nil, fmt.Errorf("salesforcetest: faults: %w", err)
	}
	if o.Objects == nil {
		o.Objects = DefaultObjects()
	}
	objects, list, err := compileCatalog(o.Objects)
	if err != nil {
		return nil, fmt.Errorf("salesforcetest: objects: %w", err)
	}
	s := &Server{
		opts:          o,
		objects:       objects,
		objList:       list,
		faults:        o.Faults,
		rng:           mrand.New(mrand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		store:         make(map[string]*objStore),
		jobs:          make(map[string]*job),
		tokens:        make(map[string]*token),
		refreshTokens: map[string]bool{o.RefreshToken: true},
		idGens:        make(map[string]*idGen),
		requests:      make(map[string]int),
		changed:       make(chan struct{}),
	}
	if err := s.loadJWTKey(); err != nil {
		return nil, err
	}
	if s.opts.AccessToken == "" {
		s.opts.AccessToken = s.newSessionIDLocked()
	}
	s.tokens[s.opts.AccessToken] = &token{issued: s.now()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// Seed the integration user so OwnerId lookups and /sobjects/User work.
	if u := s.objects["user"]; u != nil {
		st := s.storeLocked(u)
		rec := &record{vals: &recVals{obj: u}}
		for name, v := range map[string]string{"Username": s.opts.Username, "FirstName": "Integration",
			"LastName": "User", "Email": s.opts.Username, "IsActive": "true"} {
			if f := u.fields[strings.ToLower(name)]; f != nil {
				rec.put(f, v)
			}
		}
		st.addNamed(rec, s.opts.UserID)
	}
	return s, nil
}

// NewServer starts an emulator on a loopback port, like
// httptest.NewServer, and returns it. It panics if opts are invalid (the
// error is reported by NewHandler). Call Close when done.
func NewServer(opts *Options) *Server {
	s, err := NewHandler(opts)
	if err != nil {
		panic(err)
	}
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	return s
}

// Client returns an HTTP client for the server (the httptest client for a
// started server, http.DefaultClient otherwise).
func (s *Server) Client() *http.Client {
	if s.ts != nil {
		return s.ts.Client()
	}
	return http.DefaultClient
}

// TokenURL returns the OAuth 2.0 token endpoint
// (URL + "/services/oauth2/token").
func (s *Server) TokenURL() string { return s.URL + "/services/oauth2/token" }

// LoginURL returns the login host URL to configure in clients (the same
// host as URL; the emulator serves both).
func (s *Server) LoginURL() string { return s.URL }

// AccessToken returns the pre-issued access token.
func (s *Server) AccessToken() string { return s.opts.AccessToken }

// ClientID returns the connected-app consumer key the token endpoint accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the connected-app consumer secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Username returns the integration user's username (JWT "sub").
func (s *Server) Username() string { return s.opts.Username }

// RefreshToken returns the refresh token the token endpoint accepts
// initially.
func (s *Server) RefreshToken() string { return s.opts.RefreshToken }

// OrgID returns the 18-character organization id.
func (s *Server) OrgID() string { return s.opts.OrgID }

// UserID returns the 18-character integration user id.
func (s *Server) UserID() string { return s.opts.UserID }

// Close stops the listener (if any), waits for in-flight requests, then
// stops background job processing and waits for it. Close is idempotent.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		if s.ts != nil {
			s.ts.Close()
		}
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
	})
}

// Listen opens a TCP listener on addr (for example "127.0.0.1:8484") and
// sets URL to its address unless URL is already set. It refuses
// non-loopback addresses (including ":port", which binds every interface)
// unless Options.AllowNonLoopback is set.
func (s *Server) Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if !s.opts.AllowNonLoopback && !isLoopbackHost(host) {
		return nil, fmt.Errorf("listen %s: refusing non-loopback address (set AllowNonLoopback to override)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if s.URL == "" {
		a := ln.Addr().(*net.TCPAddr)
		h := a.IP.String()
		if a.IP.IsUnspecified() {
			h = "127.0.0.1"
		}
		s.URL = "http://" + net.JoinHostPort(h, strconv.Itoa(a.Port))
	}
	return ln, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves HTTP on ln until ctx is cancelled, then shuts down
// gracefully (5 s grace period) and calls Close. It returns nil after a
// clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	s.Close()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// ListenAndServe is Listen followed by Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := s.Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// SetFaults replaces the fault switches.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// Faults returns the current fault switches.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// ExpireTokens expires every access token issued so far, including the
// pre-issued one; later API calls with them get 401 INVALID_SESSION_ID.
// The token endpoint keeps issuing fresh tokens.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.expired = true
	}
}

// Requests returns how many requests each route received, keyed by
// "METHOD pattern", for example "PUT /services/data/vXX.X/jobs/ingest/{id}/batches".
// The key "total" counts every request.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// APIUsage returns the API calls counted so far and the daily limit, as
// reported in Sforce-Limit-Info.
func (s *Server) APIUsage() (used, max int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiUsed, s.opts.APIRequestLimit
}

func (s *Server) now() time.Time { return s.opts.Clock().UTC().Truncate(time.Millisecond) }

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// notifyLocked wakes every waiter of AwaitJobState. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) countLocked(key string) {
	s.requests[key]++
	s.requests["total"]++
}

func (s *Server) count(key string) {
	s.mu.Lock()
	s.countLocked(key)
	s.mu.Unlock()
}

// newSessionIDLocked returns a realistic "00D…!AQ…" access token. s.mu
// must be held (or s not yet shared).
func (s *Server) newSessionIDLocked() string {
	var b strings.Builder
	b.WriteString(s.opts.OrgID[:15])
	b.WriteString("!AQ")
	const alphabet = base62 + "._"
	for i := 0; i < 94; i++ {
		b.WriteByte(alphabet[s.rng.IntN(len(alphabet))])
	}
	return b.String()
}

// ServeHTTP routes a request. Panics in handlers are recovered and
// answered with a 500 JSON error body; unknown paths get 404 NOT_FOUND.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			func() {
				defer func() { _ = recover() }() // a panicking Logf must not escape
				s.logf("salesforcetest: panic serving %s %s: %v", r.Method, r.URL.Path, v)
			}()
			s.writeErr(w, r, http.StatusInternalServerError, "UNKNOWN_EXCEPTION",
				fmt.Sprintf("An unexpected error occurred. Please include this ErrorId if you contact support: %v", v))
		}
	}()
	s.logf("salesforcetest: %s %s", r.Method, r.URL.RequestURI())
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case p == "/services/oauth2/token":
		s.count(r.Method + " /services/oauth2/token")
		s.handleToken(w, r)
	case p == "/services/oauth2/userinfo":
		s.count(r.Method + " /services/oauth2/userinfo")
		s.handleUserinfo(w, r)
	case p == "/services/oauth2/introspect":
		s.count(r.Method + " /services/oauth2/introspect")
		s.handleIntrospect(w, r)
	case p == "/services/oauth2/revoke":
		s.count(r.Method + " /services/oauth2/revoke")
		s.handleRevoke(w, r)
	case strings.HasPrefix(p, "/id/"):
		s.count(r.Method + " /id/{org}/{user}")
		s.handleIdentity(w, r, p)
	case strings.HasPrefix(p, "/__emulator/"):
		s.count(r.Method + " " + p)
		if s.guardAdmin(w, r) {
			s.handleAdmin(w, r, strings.TrimPrefix(p, "/__emulator/"))
		}
	case p == "/services/data" || strings.HasPrefix(p, "/services/data/"):
		s.serveData(w, r, strings.TrimPrefix(p, "/services/data"))
	default:
		s.count(r.Method + " (unknown)")
		s.writeNotFound(w, r)
	}
}

// acceptsGzip reports whether the request allows a gzip response.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") || strings.TrimSpace(name) == "*" {
			if strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") && !strings.Contains(params, "q=0.") {
				return false
			}
			return true
		}
	}
	return false
}

// gzipWriters are reused across responses. BestSpeed: the emulator runs on
// loopback, where compression only costs CPU (at the default level it was
// a fifth of a whole end-to-end run's CPU); the bytes are still real gzip,
// as Salesforce sends. klauspost/compress rather than compress/gzip: at
// level 1 it is several times faster on result CSVs (requests are still
// decoded with compress/gzip).
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := kgzip.NewWriterLevel(nil, kgzip.BestSpeed)
	return zw
}}

// writeBody writes a complete response, gzipping it when Options.Compression
// and the request allow.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	h := w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	gz := len(body) > 0 && (s.opts.Compression == CompressionAlways ||
		s.opts.Compression == CompressionAuto && acceptsGzip(r))
	if gz {
		buf := bytes.NewBuffer(getBuf(len(body)/4 + 64))
		zw := gzipWriters.Get().(*kgzip.Writer)
		zw.Reset(buf)
		zw.Write(body)
		zw.Close()
		gzipWriters.Put(zw)
		body = buf.Bytes()
		defer putBuf(body) // w.Write does not keep it
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// bufPool recycles the large byte buffers of responses (result CSVs and
// their gzip form): fresh megabytes cost page faults and zeroing on every
// results request.
var bufPool sync.Pool // of *[]byte

// getBuf returns an empty buffer with capacity n or more.
func getBuf(n int) []byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

// putBuf offers b for reuse; b must not be used afterwards. Small buffers
// are not worth pooling, huge ones not worth keeping.
func putBuf(b []byte) {
	if cap(b) >= 64<<10 && cap(b) <= 64<<20 {
		bufPool.Put(&b)
	}
}

const (
	jsonContentType = "application/json;charset=UTF-8"
	csvContentType  = "text/csv; charset=UTF-8"
)

func pretty(r *http.Request) bool { return r.Header.Get("X-PrettyPrint") == "1" }

func (s *Server) writeJSONValue(w http.ResponseWriter, r *http.Request, status int, v any) {
	s.writeBody(w, r, status, jsonContentType, encodeJSON(v, pretty(r)))
}

// writeGoJSON writes v encoded by encoding/json (for shapes without
// ordering or number-format constraints).
func (s *Server) writeGoJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var b []byte
	var err error
	if pretty(r) {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		panic(fmt.Errorf("encode response: %w", err))
	}
	s.writeBody(w, r, status, jsonContentType, b)
}

// writeErr writes the Bulk API error body [{"errorCode":..,"message":..}].
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.writeJSONValue(w, r, status, []any{obj{{"errorCode", code}, {"message", msg}}})
}

// writeErrMessageFirst writes the REST framework's error body, which
// lists "message" before "errorCode" (contract §1.7, §2.2).
func (s *Server) writeErrMessageFirst(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.writeJSONValue(w, r, status, []any{obj{{"message", msg}, {"errorCode", code}}})
}

func (s *Server) writeNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeErr(w, r, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

func (s *Server) writeMethodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.writeErr(w, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED",
		fmt.Sprintf("HTTP Method '%s' not allowed. Allowed are %s", r.Method, strings.Join(allowed, ",")))
}

func (s *Server) writeInvalidSession(w http.ResponseWriter, r *http.Request) {
	s.writeErrMessageFirst(w, r, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
}

var errDecompress = errors.New("unable to decompress request body")

// decodeBody wraps r.Body according to Content-Encoding (gzip, deflate).
func decodeBody(r *http.Request) error {
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))) {
	case "", "identity":
		return nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return errDecompress
		}
		r.Body = readCloser{zr, r.Body}
	case "deflate":
		zr, err := zlib.NewReader(r.Body)
		if err != nil {
			return errDecompress
		}
		r.Body = readCloser{zr, r.Body}
	default:
		return errDecompress
	}
	r.Header.Del("Content-Encoding")
	r.Header.Set("X-Emulator-Decompressed", "1")
	return nil
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// readBody reads at most limit bytes of the (decompressed) body. It
// reports whether the body was longer than limit; the excess is discarded.
func readBody(r *http.Request, limit int64) ([]byte, bool, error) {
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n < limit && r.Header.Get("X-Emulator-Decompressed") == "" {
		// The length is known: read into a buffer of that size rather
		// than regrowing one (uploads are many megabytes). One spare byte
		// lets the read see EOF without growing.
		b = make([]byte, 0, n+1)
		for err == nil && len(b) < cap(b) {
			var m int
			m, err = r.Body.Read(b[len(b):cap(b)])
			b = b[:len(b)+m]
		}
		if err == io.EOF {
			err = nil
		}
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, limit))
	}
	if err != nil {
		if r.Header.Get("X-Emulator-Decompressed") != "" {
			return nil, false, errDecompress
		}
		return nil, false, fmt.Errorf("read request body: %w", err)
	}
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil && r.Header.Get("X-Emulator-Decompressed") != "" {
		return nil, false, errDecompress
	}
	return b, n > 0, nil
}

func (s *Server) writeBodyErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errDecompress) {
		s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "Unable to decompress request body")
		return
	}
	s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", err.Error())
}

// dropConnection closes the client connection without a response.
func dropConnection(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
