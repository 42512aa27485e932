package serve

import (
	"os"
	"strconv"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline/state"
)

// deadLocalHolder reports whether a lease's holder ("host:pid") is a
// process of this host, in this pid namespace and since the last boot
// (state.LocalNode), that no longer exists. A holder elsewhere, a live
// process, or one whose state cannot be told (another user's process,
// another OS) is not dead: its lease expires as usual.
func (s *Server) deadLocalHolder(le state.Lease) bool {
	host, pidText, ok := strings.Cut(le.Holder, ":")
	if !ok || host != localHostname() || le.Node == "" || le.Node != state.LocalNode() {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return processGone(pid)
}

// localHostname names this host in lease holders.
func localHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown-host"
	}
	return h
}
