//go:build unix

package config_test

import (
	"path/filepath"
	"syscall"
	"testing"
)

// specialFiles makes a FIFO for TestSecretFileLimits: opening one for
// reading would block until a writer appears, so it must be refused
// before it is opened.
func specialFiles(t *testing.T, dir string) []struct{ path, want string } {
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Logf("no FIFO: %v", err)
		return nil
	}
	return []struct{ path, want string }{{fifo, fifo + " is a named pipe (FIFO), not a regular file"}}
}
