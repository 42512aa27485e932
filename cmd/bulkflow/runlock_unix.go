//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// flockRun takes an exclusive, non-blocking flock(2) on the lock file at
// name and writes holder into it. Another process holding it makes it fail
// at once with errRunLocked, naming the holder the file says. The kernel
// drops the lock when the process exits, however it exits.
func flockRun(name, holder, runID string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		data, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(data))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("run %s: %w: %s holds its lock %s; wait for it to finish (the lock is released when that process exits, even if killed)",
				runID, errRunLocked, who, name)
		}
		return nil, fmt.Errorf("run lock %s: %w", name, err)
	}
	// Who holds it, for the message of the next contender.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%s since %s\n", holder, time.Now().UTC().Format(time.RFC3339))
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// haveFlock: local state directories are locked with flock(2).
const haveFlock = true
