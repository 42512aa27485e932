//go:build unix

package bench

import (
	"syscall"
	"time"
)

// SelfCPU returns the user+system CPU time this process has used so far
// (the bench's emulator runs in it), or 0 where it cannot be read.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
