package serve

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// Handler returns the HTTP interface: / status page, POST
// /run/{pipeline}, /reports/{pipeline}/{run_id}.json,
// /dead-letters/{pipeline}/{run_id}/{n}, /metrics, /healthz, and the
// browser login (/login, /logout). With tokens configured every route but
// /healthz, the login (and /metrics with --metrics-public) needs a token
// (see auth.wrap). Cross-origin POSTs are refused (a web page cannot
// trigger runs), and unless non-loopback serving is allowed, so are
// requests whose Host is not a loopback name (DNS rebinding).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", s.auth.handleLogin)
	mux.HandleFunc("POST /logout", s.auth.handleLogout)
	mux.HandleFunc("GET /{$}", s.handleStatus)
	mux.HandleFunc("POST /run/{pipeline}", s.handleRun)
	mux.HandleFunc("GET /reports/{pipeline}/{file}", s.handleReport)
	mux.HandleFunc("GET /dead-letters/{pipeline}/{run}/{n}", s.handleDeadLetter)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", s.handleHealth)
	h := http.NewCrossOriginProtection().Handler(s.auth.wrap(securityHeaders(mux), s.opts.MetricsPublic))
	if s.opts.AllowNonLoopback {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !isLoopbackHost(host) {
			http.Error(w, "bulkflow serve: only loopback host names are accepted (see --allow-non-loopback)", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handleHealth answers ok until shutdown starts, then 503.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

// securityHeaders sets headers every response gets: no MIME sniffing, no
// framing (the status page has a Run now button), no scripts.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func writeJSONResponse(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(redact.Writer(w)).Encode(v) // one Write: masked whole
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("pipeline")
	runID, err := s.trigger(name, "manual")
	code := http.StatusAccepted
	switch {
	case errors.Is(err, errUnknownPipeline):
		code = http.StatusNotFound
	case errors.Is(err, errAlreadyRunning):
		code = http.StatusConflict
	case errors.Is(err, errStopping):
		code = http.StatusServiceUnavailable
	case err != nil:
		code = http.StatusInternalServerError
	}
	if err != nil {
		writeJSONResponse(w, code, map[string]string{"error": err.Error()})
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		http.Redirect(w, r, "/", http.StatusSeeOther) // the status page's button
		return
	}
	writeJSONResponse(w, code, map[string]string{"pipeline": name, "run_id": runID})
}

func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipelines[r.PathValue("pipeline")]
	id, isJSON := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok || !isJSON || !cli.ValidRunID(id) {
		http.NotFound(w, r)
		return
	}
	u, err := p.store.ReportURL(id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	serveObject(w, r, u, "application/json", "")
}

// serveObject streams the object at location u (a path or blob URL) as
// the response: 404 when it does not exist. A non-empty attachment is the
// file name a browser saves it under (Content-Disposition: attachment)
// instead of showing it.
func serveObject(w http.ResponseWriter, r *http.Request, u, contentType, attachment string) {
	loc, err := blobio.Parse("", u)
	var rc io.ReadCloser
	if err == nil {
		rc, err = blobio.NewReader(r.Context(), loc)
	}
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			http.NotFound(w, r)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if attachment != "" {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": attachment}))
	}
	io.Copy(w, rc)
}

// deadLetterHistory is how many recent runs' dead letters can be fetched
// through the status page.
const deadLetterHistory = 50

// handleDeadLetter serves the n'th dead-letter file of a recent run. Only
// locations recorded in the run history are read, so the route cannot be
// used to fetch anything else.
func (s *Server) handleDeadLetter(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipelines[r.PathValue("pipeline")]
	id := r.PathValue("run")
	n, err := strconv.Atoi(r.PathValue("n"))
	if !ok || !cli.ValidRunID(id) || err != nil || n < 0 {
		http.NotFound(w, r)
		return
	}
	runs, err := p.store.Runs(r.Context(), deadLetterHistory)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, rec := range runs {
		if rec.RunID != id || n >= len(rec.DeadLetters) {
			continue
		}
		serveObject(w, r, rec.DeadLetters[n], "text/csv; charset=utf-8", id+"-"+deadLetterName(rec.DeadLetters[n]))
		return
	}
	http.NotFound(w, r)
}

// deadLetterName is the file name of a dead-letter location, without the
// query of a blob URL.
func deadLetterName(loc string) string {
	if i := strings.IndexByte(loc, '?'); i >= 0 && strings.Contains(loc, "://") {
		loc = loc[:i]
	}
	return path.Base(filepath.ToSlash(loc))
}
