//go:build unix

package blobio

import (
	"os"
	"syscall"
)

// haveTempLocks: temporary files are locked with flock(2).
const haveTempLocks = true

// lockTemp takes a shared flock(2) on a temporary file being written, for
// as long as f is open. It is best effort: a file it could not lock is
// still never removed while it changes (RemoveStaleTemps' minAge).
func lockTemp(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
}

// tryLockTemp takes an exclusive flock(2) on f without waiting, and
// reports whether it got it (no writer holds the file).
func tryLockTemp(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
