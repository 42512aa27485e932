//go:build !unix

package scratch

import "os"

// haveLocks: without flock(2) a live run's folder cannot be told from a
// dead run's, so RemoveStale removes none.
const haveLocks = false

func lockShared(*os.File) {}

func tryLockExclusive(*os.File) bool { return false }
