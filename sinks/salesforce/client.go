package salesforce

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/klauspost/compress/gzip"
)

// Version is the bulkflow version sent in Sforce-Call-Options
// (client=bulkflow/<Version>). The build sets it.
var Version = "dev"

// DefaultAPIVersion is the Bulk API version used when Options.APIVersion
// is empty.
const DefaultAPIVersion = "62.0"

// Options configure a Client. A nil *Options means all defaults.
type Options struct {
	// APIVersion such as "62.0" (default DefaultAPIVersion).
	APIVersion string
	// HTTPClient sends API requests (default http.DefaultClient). The
	// client sets Accept-Encoding itself (see ResponseCompression) and
	// decodes gzip and deflate responses whatever it asked for and
	// whatever the Transport's DisableCompression.
	HTTPClient *http.Client
	// ResponseCompression says when to ask for gzip responses:
	// CompressionAuto (the default) asks except from loopback hosts,
	// CompressionGzip always, CompressionNone never.
	ResponseCompression Compression
	// ClientName is sent as Sforce-Call-Options: client=<ClientName>
	// (default "bulkflow/" + Version).
	ClientName string
	// UserAgent is sent as User-Agent (default the ClientName).
	UserAgent string
	// Logger receives debug logs of requests and warnings on retries;
	// nil discards. Logs never contain tokens or secrets.
	Logger *slog.Logger
	// MaxAttempts bounds attempts per call, including the first (default 5).
	// Re-authentication after a 401 does not count.
	MaxAttempts int
	// MaxElapsed bounds the time spent retrying one call (default 2m).
	MaxElapsed time.Duration
	// InitialBackoff and MaxBackoff shape the exponential retry delay
	// (defaults 500ms and 30s).
	InitialBackoff, MaxBackoff time.Duration
	// Sleep waits d or until ctx ends; tests replace it to avoid real
	// sleeps. Default: a timer select.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// RepeatableCreate retries CreateJob after transport failures too
	// (connection lost, timeout), like the idempotent calls. A lost create
	// answer can at worst leave an empty Open job behind, which Salesforce
	// never processes: safe for callers that upload only to the job id
	// they got back (the sink). Default: only answers that prove
	// non-execution, and 5xx, are retried.
	RepeatableCreate bool
}

// Compression is when a Client asks for compressed responses.
type Compression string

// The values of Options.ResponseCompression.
const (
	// CompressionAuto asks for gzip except from loopback hosts (the
	// emulator, a local proxy): there compression saves no network time
	// and costs CPU on both ends (measured: a quarter of a full bench
	// run's client CPU).
	CompressionAuto Compression = "auto"
	// CompressionGzip always asks for gzip.
	CompressionGzip Compression = "gzip"
	// CompressionNone never asks (Accept-Encoding: identity).
	CompressionNone Compression = "none"
)

// Valid reports whether c is "" (auto) or one of the constants.
func (c Compression) Valid() bool {
	switch c {
	case "", CompressionAuto, CompressionGzip, CompressionNone:
		return true
	}
	return false
}

// acceptEncoding is the Accept-Encoding to send to host.
func (c Compression) acceptEncoding(host string) string {
	switch {
	case c == CompressionNone, (c == "" || c == CompressionAuto) && isLoopback(host):
		return "identity"
	}
	return "gzip"
}

// Client is a Salesforce Bulk API 2.0 client. It is safe for concurrent use.
type Client struct {
	auth       *Auth
	hc         *http.Client
	compress   Compression
	apiVersion string
	callOpts   string
	userAgent  string
	log        *slog.Logger

	maxAttempts                int
	maxElapsed                 time.Duration
	initialBackoff, maxBackoff time.Duration
	sleep                      func(ctx context.Context, d time.Duration) error
	now                        func() time.Time
	repeatableCreate           bool

	usageMu sync.Mutex
	usage   APIUsage
	usageOK bool
}

// NewClient returns a Client using auth. It obtains a token (checking the
// instance URL) before returning.
func NewClient(ctx context.Context, auth *Auth, opts *Options) (*Client, error) {
	if auth == nil {
		return nil, errors.New("salesforce: new client: nil auth")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Client{
		auth:           auth,
		hc:             o.HTTPClient,
		compress:       o.ResponseCompression,
		apiVersion:     strings.TrimPrefix(o.APIVersion, "v"),
		log:            o.Logger,
		maxAttempts:    o.MaxAttempts,
		maxElapsed:     o.MaxElapsed,
		initialBackoff: o.InitialBackoff,
		maxBackoff:     o.MaxBackoff,
		sleep:          o.Sleep,
		now:            o.Now,

		repeatableCreate: o.RepeatableCreate,
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	c.hc = tracedClient(c.hc) // a span per request when tracing is on (trace.go)
	if c.apiVersion == "" {
		c.apiVersion = DefaultAPIVersion
	}
	if _, err := strconv.ParseFloat(c.apiVersion, 64); err != nil {
		return nil, fmt.Errorf("salesforce: new client: bad API version %q", o.APIVersion)
	}
	if !c.compress.Valid() {
		return nil, fmt.Errorf("salesforce: new client: response compression %q: want auto, gzip or none", o.ResponseCompression)
	}
	name := o.ClientName
	if name == "" {
		name = "bulkflow/" + Version
	}
	c.callOpts = "client=" + name
	c.userAgent = o.UserAgent
	if c.userAgent == "" {
		c.userAgent = name
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 5
	}
	if c.maxElapsed <= 0 {
		c.maxElapsed = 2 * time.Minute
	}
	if c.initialBackoff <= 0 {
		c.initialBackoff = 500 * time.Millisecond
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = 30 * time.Second
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.now == nil {
		c.now = time.Now
	}
	if _, err := auth.Token(ctx); err != nil {
		return nil, fmt.Errorf("salesforce: new client: %w", err)
	}
	return c, nil
}

// APIVersion returns the API version the client uses, e.g. "62.0".
func (c *Client) APIVersion() string { return c.apiVersion }

// APIUsage returns the daily API usage from the last Sforce-Limit-Info
// header seen, and false if none was seen yet.
func (c *Client) APIUsage() (APIUsage, bool) {
	c.usageMu.Lock()
	defer c.usageMu.Unlock()
	return c.usage, c.usageOK
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// UploadBody is a replayable request body for UploadJobData. Open is called
// once per attempt and must return the same bytes each time.
type UploadBody struct {
	Open func() (io.ReadCloser, error)
	Size int64 // -1 if unknown (chunked upload)
}

// BytesBody returns an UploadBody over b.
func BytesBody(b []byte) UploadBody {
	return UploadBody{Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// ReaderAtBody returns an UploadBody over the first size bytes of r.
func ReaderAtBody(r io.ReaderAt, size int64) UploadBody {
	return UploadBody{Size: size, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(r, 0, size)), nil
	}}
}

// FileBody returns an UploadBody that reopens the file at path on every
// attempt.
func FileBody(path string) (UploadBody, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return UploadBody{}, err
	}
	return UploadBody{Size: fi.Size(), Open: func() (io.ReadCloser, error) { return os.Open(path) }}, nil
}

// call describes one logical API request.
type call struct {
	method string
	// path is relative to /services/data/vXX.X/ ("jobs/ingest"), or an
	// absolute path starting with "/services/".
	path        string
	query       url.Values
	json        any        // request body marshalled as JSON
	upload      UploadBody // request body for PUTs
	contentType string
	accept      string
	idempotent  bool // transport errors may be retried
	noRetry     bool // only the 401 re-authentication replays
	// unrepeatable: the request may have executed when no definite answer
	// came (5xx, 408, lost connection), and executing it twice is not
	// safe: only the 401 re-authentication and refusals are replayed.
	unrepeatable bool

	attempts int // set by do: attempts made
	// replayed is set by do when it sent the call again after a failure
	// that may hide its processing (a 5xx, 408 or transport error): the
	// server may have executed an earlier attempt.
	replayed bool
}

// do performs cl with re-authentication and retries, and returns a 2xx
// response whose body the caller must close. Compressed bodies are
// decompressed.
func (c *Client) do(ctx context.Context, cl *call) (*http.Response, error) {
	var jsonBody []byte
	if cl.json != nil {
		b, err := json.Marshal(cl.json)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		jsonBody = b
	}
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     c.initialBackoff,
		RandomizationFactor: 0.3,
		Multiplier:          2,
		MaxInterval:         c.maxBackoff,
	}
	bo.Reset()
	start := c.now()
	// A 401 re-authenticates and replays the call. Several concurrent
	// calls share one session, so a fresh token can be spent (or expired)
	// by the others before this call uses it: allow a few re-authentications,
	// not one; a session refused this often is not a spent token.
	const maxReauth = 3
	reauths := 0
	cl.attempts, cl.replayed = 0, false
	for {
		tok, err := c.auth.Token(ctx)
		if err != nil {
			return nil, err
		}
		cl.attempts++
		resp, err := c.send(ctx, cl, tok, jsonBody)
		if err == nil {
			return resp, nil
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.refreshable() && reauths < maxReauth && c.auth.fetch != nil {
			reauths++
			cl.attempts--
			c.log.InfoContext(ctx, "salesforce: session invalid, re-authenticating", "method", cl.method, "path", ae.Path)
			if _, rerr := c.auth.Refresh(ctx, tok); rerr != nil {
				return nil, fmt.Errorf("re-authenticate: %w", rerr)
			}
			continue
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if cl.noRetry || !IsRetryable(err) || cl.unrepeatable && ambiguous(err) || cl.attempts >= c.maxAttempts {
			return nil, err
		}
		delay := min(bo.NextBackOff(), c.maxBackoff) // jitter may overshoot the cap
		if ra := retryAfter(err); ra > delay {
			delay = min(ra, c.maxBackoff)
		}
		if c.now().Add(delay).Sub(start) > c.maxElapsed {
			return nil, err
		}
		c.log.WarnContext(ctx, "salesforce: retrying", "method", cl.method, "path", errPath(err, cl.path), "attempt", cl.attempts, "delay", delay, "err", err)
		if serr := c.sleep(ctx, delay); serr != nil {
			return nil, err
		}
		cl.replayed = cl.replayed || ambiguous(err) && !neverSent(err)
	}
}

// errPath returns the request path recorded in err, or fallback.
func errPath(err error, fallback string) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Path
	}
	var te *transportError
	if errors.As(err, &te) {
		return te.path
	}
	return fallback
}

// retryAfter returns the server's Retry-After delay carried by err, or 0.
func retryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.retryAfter
	}
	return 0
}

func (c *Client) url(tok Token, cl *call) string {
	p := cl.path
	if !strings.HasPrefix(p, "/") {
		p = "/services/data/v" + c.apiVersion + "/" + p
	}
	u := tok.InstanceURL + p
	if len(cl.query) > 0 {
		if strings.Contains(u, "?") {
			u += "&" + cl.query.Encode()
		} else {
			u += "?" + cl.query.Encode()
		}
	}
	return u
}

// send makes one HTTP attempt.
func (c *Client) send(ctx context.Context, cl *call, tok Token, jsonBody []byte) (*http.Response, error) {
	u := c.url(tok, cl)
	var body io.Reader
	size := int64(0)
	switch {
	case jsonBody != nil:
		body, size = bytes.NewReader(jsonBody), int64(len(jsonBody))
	case cl.upload.Open != nil:
		rc, err := cl.upload.Open()
		if err != nil {
			return nil, fmt.Errorf("open upload body: %w", err)
		}
		// Hide the concrete type so net/http cannot replay the body itself.
		body, size = struct{ io.ReadCloser }{rc}, cl.upload.Size
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		if rc, ok := body.(io.Closer); ok {
			rc.Close()
		}
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.ContentLength = size
		if size < 0 {
			req.ContentLength = 0
		}
		req.GetBody = nil
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Sforce-Call-Options", c.callOpts)
	req.Header.Set("User-Agent", c.userAgent)
	accept := cl.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	// Setting Accept-Encoding ourselves stops net/http's transparent
	// decoding (the stdlib decoder): decompress decodes every response with
	// one, faster decoder, whether the server compressed because it was
	// asked or not.
	req.Header.Set("Accept-Encoding", c.compress.acceptEncoding(req.URL.Hostname()))
	if jsonBody != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	} else if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}
	t0 := c.now()
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.log.DebugContext(ctx, "salesforce request", "method", cl.method, "path", req.URL.Path, "err", err, "elapsed", c.now().Sub(t0))
		return nil, &transportError{method: cl.method, path: req.URL.Path, idempotent: cl.idempotent, err: err}
	}
	c.log.DebugContext(ctx, "salesforce request", "method", cl.method, "path", req.URL.Path, "status", resp.StatusCode, "elapsed", c.now().Sub(t0))
	if h := resp.Header.Get("Sforce-Limit-Info"); h != "" {
		if u, ok := parseLimitInfo(h); ok {
			c.usageMu.Lock()
			c.usage, c.usageOK = u, true
			c.usageMu.Unlock()
		}
	}
	if err := decompress(resp); err != nil {
		resp.Body.Close()
		return nil, &transportError{method: cl.method, path: req.URL.Path, idempotent: cl.idempotent, err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, c.parseAPIError(resp, cl.method, req.URL.Path, tok)
}

// decompress wraps resp.Body in a decoder for its Content-Encoding. The
// client asks for gzip itself (see send), so net/http never decodes
// transparently and this is the one decoding path. Like net/http's
// transparent decoder, the decoder starts on the first Read: a 0-byte body
// reads as empty, and a corrupt stream fails the Read (not the request).
func decompress(resp *http.Response) error {
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	var kind int
	switch enc {
	case "", "identity":
		return nil
	case "gzip", "x-gzip":
		kind = encGzip
	case "deflate":
		kind = encDeflate
	default:
		return fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	resp.Body = &decodedBody{body: resp.Body, kind: kind}
	resp.Header.Del("Content-Encoding")
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	resp.Uncompressed = true
	return nil
}

const (
	encGzip = iota + 1
	encDeflate
)

// gzipReaders recycles gzip decoders (with their window and tables)
// across responses.
var gzipReaders sync.Pool

// errReadClosed is what a decoded body returns once closed (net/http's
// text for a read on a closed body).
var errReadClosed = errors.New("http: read on closed response body")

// decodedBody decodes a compressed response body, starting on the first
// Read. It must not be used concurrently.
type decodedBody struct {
	body   io.ReadCloser
	kind   int
	gz     *gzip.Reader  // gzip decoder, from gzipReaders
	r      io.ReadCloser // the decoder in use
	err    error         // sticky error from starting the decoder
	closed bool
}

func (d *decodedBody) Read(p []byte) (int, error) {
	if d.closed {
		return 0, errReadClosed
	}
	if d.err != nil {
		return 0, d.err
	}
	if d.r == nil {
		if d.err = d.start(); d.err != nil {
			return 0, d.err
		}
	}
	return d.r.Read(p)
}

func (d *decodedBody) start() error {
	if d.kind == encDeflate {
		zr, err := zlib.NewReader(d.body)
		if err != nil {
			return err
		}
		d.r = zr
		return nil
	}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(d.body)
	} else {
		err = zr.Reset(d.body)
	}
	if err != nil {
		if zr != nil {
			gzipReaders.Put(zr)
		}
		return err
	}
	d.gz, d.r = zr, zr
	return nil
}

// Close closes the body and recycles the decoder. It is idempotent.
func (d *decodedBody) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	if d.gz != nil {
		gzipReaders.Put(d.gz)
		d.gz = nil
	} else if d.r != nil {
		d.r.Close()
	}
	d.r = nil
	return d.body.Close()
}

// parseAPIError builds an *APIError from a non-2xx response.
func (c *Client) parseAPIError(resp *http.Response, method, path string, tok Token) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	ae := &APIError{StatusCode: resp.StatusCode, Method: method, Path: path}
	var items []apiErrorItem
	if err := json.Unmarshal(body, &items); err == nil && len(items) > 0 {
		for i, it := range items {
			e := APIError{StatusCode: resp.StatusCode, Method: method, Path: path,
				Code: it.ErrorCode, Message: redact(it.Message, tok.AccessToken), Fields: it.Fields}
			if i == 0 {
				ae.Code, ae.Message, ae.Fields = e.Code, e.Message, e.Fields
			} else {
				ae.More = append(ae.More, e)
			}
		}
	} else {
		var one apiErrorItem
		if err := json.Unmarshal(body, &one); err == nil && (one.ErrorCode != "" || one.Message != "") {
			ae.Code, ae.Message, ae.Fields = one.ErrorCode, redact(one.Message, tok.AccessToken), one.Fields
		} else {
			ae.Body = redact(truncate(strings.TrimSpace(string(body)), 256), tok.AccessToken)
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && s >= 0 {
			ae.retryAfter = time.Duration(s) * time.Second
		}
	}
	return ae
}

// doJSON performs cl and decodes a JSON response into out (if non-nil).
func (c *Client) doJSON(ctx context.Context, cl *call, out any) error {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s response: %w", cl.method, err)
	}
	return nil
}
