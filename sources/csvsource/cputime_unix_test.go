//go:build unix

package csvsource

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time the process has used, or
// false when it cannot tell.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
