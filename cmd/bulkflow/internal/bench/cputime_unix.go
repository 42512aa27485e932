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

// FlushDirty writes the system's dirty file pages to disk (sync(2)), so
// that the writeback of what earlier runs wrote does not land in the next
// measured run. A plan run leaves about 180 MB of job CSVs dirty, which the
// kernel writes back 30 s later (vm.dirty_expire_centisecs), on the same
// two cores as whatever run is being timed by then.
func FlushDirty() { syscall.Sync() }
