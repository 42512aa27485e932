//go:build unix

package salesforcetest

import (
	"syscall"
	"time"
)

// ProcessCPU returns the user+system CPU time of this process (exported
// for the benchmarks of package salesforcetest_test).
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
