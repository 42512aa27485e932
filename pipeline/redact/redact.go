// Package redact keeps secret values out of everything bulkflow writes
// itself: errors printed by the CLI, log lines, run reports, dead-letter
// reasons and manifests, validate output.
//
// Secrets are registered by value: the pipeline-file loader registers every
// string that came from ${NAME} or ${file:PATH} interpolation (unless marked
// ${NAME:public}), whatever key it sits under, so a token in a source URL's
// query, an expression or an instance_url path is masked as surely as one in
// auth. Redact replaces each registered value, and its URL-query-escaped,
// URL-path-escaped, Go-quoted, JSON-escaped and HTML-escaped forms (errors
// often print a URL escaped or a value quoted) and, for a value written in a
// URL, its decoded forms, with Mask.
//
// Values shorter than MinLen bytes are not registered: masking "1" or "eu"
// would garble every message while protecting nothing a guess would not
// find.
//
// The set is process-wide (one process may load several pipelines, as
// serve does, and every output must mask all of them) and only grows.
// Redact is safe for concurrent use and costs one atomic load when nothing
// is registered.
package redact

import (
	"encoding/json"
	"html"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MinLen is the shortest value, in bytes, that Register accepts as a secret.
const MinLen = 6

// Mask replaces every occurrence of a secret.
const Mask = "[redacted]"

// Set is a set of secret values and the replacer that masks them. The zero
// value is an empty set, ready to use. A Set must not be copied after first
// use.
type Set struct {
	mu     sync.Mutex
	values map[string]struct{}
	r      atomic.Pointer[strings.Replacer] // nil while the set is empty
}

// Add registers v (and its escaped forms) as a secret. Values shorter than
// MinLen bytes are ignored. The replacer is rebuilt only when the set
// changes.
func (s *Set) Add(v string) {
	if len(v) < MinLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, f := range forms(v) {
		if len(f) < MinLen {
			continue
		}
		if _, ok := s.values[f]; ok {
			continue
		}
		if s.values == nil {
			s.values = map[string]struct{}{}
		}
		s.values[f] = struct{}{}
		changed = true
	}
	if !changed {
		return
	}
	olds := make([]string, 0, len(s.values))
	for f := range s.values {
		olds = append(olds, f)
	}
	// Longest first: strings.Replacer prefers earlier pairs at a position,
	// so a secret that contains another is masked whole.
	sort.Slice(olds, func(i, j int) bool {
		if len(olds[i]) != len(olds[j]) {
			return len(olds[i]) > len(olds[j])
		}
		return olds[i] < olds[j]
	})
	pairs := make([]string, 0, 2*len(olds))
	for _, o := range olds {
		pairs = append(pairs, o, Mask)
	}
	s.r.Store(strings.NewReplacer(pairs...))
}

// forms returns v and the forms it takes when printed escaped.
func forms(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	q := strconv.Quote(v)
	out = append(out, q[1:len(q)-1])
	q = strconv.QuoteToASCII(v)
	out = append(out, q[1:len(q)-1])
	if b, err := json.Marshal(v); err == nil { // HTML-escaped, as json.Encoder writes by default
		out = append(out, string(b[1:len(b)-1]))
	}
	out = append(out, html.EscapeString(v)) // as html/template writes text (the status page)
	// A value placed in a URL is printed decoded once parsed ("a+b" in a
	// query reads "a b").
	if u, err := url.QueryUnescape(v); err == nil {
		out = append(out, u)
	}
	if u, err := url.PathUnescape(v); err == nil {
		out = append(out, u)
	}
	return out
}

// Redact returns text with every registered secret replaced by Mask.
func (s *Set) Redact(text string) string {
	r := s.r.Load()
	if r == nil || text == "" {
		return text
	}
	return r.Replace(text)
}

// Len returns how many distinct strings (values and their escaped forms) are
// masked.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

var std Set

// Register adds v to the process-wide set of secrets (see Set.Add).
func Register(v string) { std.Add(v) }

// Redact returns text with every secret registered in the process-wide set
// replaced by Mask. It returns text unchanged, without copying, when no
// secret is registered.
func Redact(text string) string { return std.Redact(text) }

// Active reports whether any secret is registered in the process-wide set.
func Active() bool { return std.r.Load() != nil }
