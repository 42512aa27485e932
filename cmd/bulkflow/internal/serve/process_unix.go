//go:build unix

package serve

import (
	"errors"
	"syscall"
)

// processGone reports whether no process pid exists (kill(pid, 0) fails
// with ESRCH). A zombie still exists until its parent reaps it; EPERM
// means a process of another user: it exists.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
