//go:build unix

package scratch

import (
	"os"
	"syscall"
)

// haveLocks: scratch folders are held with flock(2).
const haveLocks = true

// lockShared takes a shared flock(2) on f, held while f is open.
func lockShared(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
}

// tryLockExclusive takes an exclusive flock(2) on f without waiting, and
// reports whether it got it (no process holds the folder).
func tryLockExclusive(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
