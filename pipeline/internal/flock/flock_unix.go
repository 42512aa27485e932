//go:build unix

package flock

import (
	"os"
	"syscall"
)

// Supported says flock(2) is here.
const Supported = true

// Hold takes a shared flock(2) on f, held while f is open. It is best
// effort: callers also spare files younger than some age.
func Hold(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
}

// Free takes an exclusive flock(2) on f without waiting, and reports
// whether it got it: no process holds f.
func Free(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
