//go:build !unix

package bench

import "time"

// SelfCPU returns 0: this platform has no getrusage.
func SelfCPU() time.Duration { return 0 }

// FlushDirty does nothing on this platform.
func FlushDirty() {}
