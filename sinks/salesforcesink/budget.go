package salesforcesink

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// countingTransport counts the API requests the sink's client sends, and
// keeps the freshest Sforce-Limit-Info with the count at its arrival.
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
	u    *usageSeen
}

// usageSeen is the last API usage Salesforce reported, and how many
// requests the sink had sent when it arrived: requests sent since are
// counted as used too (with concurrent jobs the header lags).
type usageSeen struct {
	mu       sync.Mutex
	usage    salesforce.APIUsage
	callsAt  int64
	ok       bool
	inflight int64 // requests sent and not yet answered
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, "/services/data/") {
		return t.base.RoundTrip(r)
	}
	if t.u == nil {
		t.n.Add(1)
		return t.base.RoundTrip(r)
	}
	// Sends are counted under u.mu, so that at an answer the count of
	// requests sent and of those still in flight agree.
	t.u.mu.Lock()
	t.n.Add(1)
	t.u.inflight++
	t.u.mu.Unlock()
	resp, err := t.base.RoundTrip(r)
	t.u.mu.Lock()
	defer t.u.mu.Unlock()
	t.u.inflight--
	if err != nil {
		return resp, err
	}
	u, ok := salesforce.ParseLimitInfo(resp.Header.Get("Sforce-Limit-Info"))
	if !ok || u.Max <= 0 {
		return resp, err
	}
	// The header counts the requests Salesforce had answered; the ones
	// still in flight may be missing from it, so they are charged too,
	// and every request sent from now on is charged on top (see
	// apiRemaining). With concurrent jobs answers arrive out of order: an
	// answer that would lower the usage already known is stale and kept
	// out. Without this, concurrent jobs overdrew min_api_remaining by a
	// request now and then (TestBudgetCountsPolls: 51 of 60 used with a
	// reserve of 10).
	now := t.n.Load()
	used := u.Used + t.u.inflight
	if t.u.ok && used < t.u.usage.Used+(now-t.u.callsAt) {
		return resp, err
	}
	u.Used = used
	t.u.usage, t.u.callsAt, t.u.ok = u, now, true
	return resp, err
}

// countingClient returns a copy of hc (nil: http.DefaultClient) whose
// requests are counted in n (and their usage headers kept in u).
func countingClient(hc *http.Client, n *atomic.Int64, u *usageSeen) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = countingTransport{base: base, n: n, u: u}
	return &c
}

// apiRemaining returns the daily API requests left, from the last
// Sforce-Limit-Info header or else from /limits at open minus the calls
// made since.
func (s *Sink) apiRemaining() (int64, bool) {
	s.usage.mu.Lock()
	u, at, ok := s.usage.usage, s.usage.callsAt, s.usage.ok
	s.usage.mu.Unlock()
	if ok {
		return u.Max - u.Used - (s.apiCalls.Load() - at), true
	}
	if u, ok := s.client.APIUsage(); ok && u.Max > 0 {
		return u.Max - u.Used, true
	}
	if s.limitKnown {
		return s.limitRemaining - (s.apiCalls.Load() - s.limitCalls), true
	}
	return 0, false
}

// API requests a job still needs: to be created (create, upload, close,
// a poll, three result files), and once created (close, a poll, results).
const (
	callsPerJob    = 7
	callsInFlight  = 5
	callsToResults = 3
)

// overBudget reports whether min_api_remaining forbids creating a job: the
// requests left, minus what the chunks in flight still need and what a new
// job needs, would fall below the reserve. Once reached it stays reached
// for the rest of the run.
func (s *Sink) overBudget() bool {
	if s.opts.MinAPIRemaining <= 0 {
		return false
	}
	rem, ok := s.apiRemaining()
	need := callsPerJob + callsInFlight*max(0, s.active.Load()-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.budgetOut {
		return true
	}
	if !ok || rem-need >= s.opts.MinAPIRemaining {
		return false
	}
	s.budgetOut = true
	s.log.Warn("salesforce sink: the daily API request allowance reached min_api_remaining; no more jobs are created "+
		"and the remaining rows are reported api_budget. Resume later with `"+s.resumeHint()+"`",
		"remaining", rem, "min_api_remaining", s.opts.MinAPIRemaining)
	return true
}

// pollBudgetOut reports whether polling a job once more would leave fewer
// than min_api_remaining requests after reading its results: the sink
// stops polling and leaves the job to a resume.
func (s *Sink) pollBudgetOut() bool {
	if s.opts.MinAPIRemaining <= 0 {
		return false
	}
	rem, ok := s.apiRemaining()
	return ok && rem-1-callsToResults < s.opts.MinAPIRemaining
}
