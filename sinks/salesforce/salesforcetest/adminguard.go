package salesforcetest

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// guardAdmin protects the /__emulator/ routes, which need no token,
// against a web page in the developer's browser: a request whose Host is
// not the emulator's own address (DNS rebinding: evil.example resolving to
// 127.0.0.1) gets 421, and one whose Origin is another site, or whose
// Sec-Fetch-Site says it came from one (a cross-origin form or text/plain
// POST), gets 403. Accepted hosts are the host:port of URL and localhost,
// 127.0.0.1 and [::1] with URL's port; a handler with no URL yet accepts
// loopback names on any port. It reports whether the request may go on.
func (s *Server) guardAdmin(w http.ResponseWriter, r *http.Request) bool {
	if !s.adminHostAllowed(r.Host) {
		s.writeErr(w, r, http.StatusMisdirectedRequest, "MISDIRECTED_REQUEST",
			"salesforcetest: the admin routes answer only to the emulator's own host (Host "+r.Host+" refused)")
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		s.writeErr(w, r, http.StatusForbidden, "CROSS_ORIGIN_REQUEST", "salesforcetest: cross-origin requests to the admin routes are refused")
		return false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		s.writeErr(w, r, http.StatusForbidden, "CROSS_ORIGIN_REQUEST", "salesforcetest: cross-site requests to the admin routes are refused")
		return false
	}
	return true
}

func (s *Server) adminHostAllowed(host string) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, ""
	}
	h = strings.Trim(h, "[]")
	if s.URL == "" {
		return isLoopbackHost(h)
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		return false
	}
	wantPort := u.Port()
	if wantPort == "" {
		wantPort = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if port != wantPort {
		return false
	}
	if strings.EqualFold(h, u.Hostname()) {
		return true
	}
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// sameOrigin reports whether the Origin header names host (scheme http or
// https; the emulator does not know which one a proxy in front used).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}
