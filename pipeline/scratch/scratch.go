// Package scratch makes the temporary folders a run spills to (a sync's
// diff, the Salesforce sink's job spool, the manifests a run builds) and
// removes those that killed runs left behind.
//
// A run removes its folders when it ends, however it fails; a process
// killed (SIGKILL, the OOM killer, a power cut) cannot, and each such run
// left its folders in the temporary directory for good, with the rows they
// hold (job CSVs, spilled rows): the soak's killed runs left over 3,000 in
// a day. So a scratch folder holds a lock file that its process keeps
// locked (flock(2), which the kernel drops when the process exits,
// however it exits), and RemoveStale removes the folders whose lock no
// process holds. A folder without the lock file (another program's, or an
// older bulkflow's) is never touched.
package scratch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/internal/flock"
)

// Prefix starts the name of every scratch folder.
const Prefix = "bulkflow-"

// LockFile is the name of the lock file in a scratch folder: its process
// holds it, and its modification time is the folder's age.
const LockFile = ".bulkflow-scratch.lock"

// Dir is a scratch folder this process holds.
type Dir struct {
	// Path is the folder.
	Path string
	lock *os.File
}

// New creates a folder in parent ("" = os.TempDir()) named by pattern as
// os.MkdirTemp names it (pattern must start with Prefix), and holds it
// until Remove.
func New(parent, pattern string) (*Dir, error) {
	if !strings.HasPrefix(pattern, Prefix) {
		return nil, fmt.Errorf("scratch: folder pattern %q does not start with %q", pattern, Prefix)
	}
	p, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(p, LockFile))
	if err != nil {
		os.RemoveAll(p)
		return nil, err
	}
	flock.Hold(f) // best effort: an unlocked folder is still spared for minAge
	return &Dir{Path: p, lock: f}, nil
}

// Remove removes the folder and everything in it, and lets it go. It may
// be called more than once.
func (d *Dir) Remove() error {
	if d == nil || d.Path == "" {
		return nil
	}
	err := os.RemoveAll(d.Path)
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	if err == nil {
		d.Path = ""
	}
	return err
}

// RemoveStale removes the scratch folders in parent ("" = os.TempDir())
// that no process holds and whose lock file is at least minAge old (which
// covers the instant between New creating the file and locking it). It
// returns the folders it removed. Where flock(2) is missing it removes
// nothing.
func RemoveStale(parent string, minAge time.Duration) ([]string, error) {
	if !flock.Supported {
		return nil, nil
	}
	if parent == "" {
		parent = os.TempDir()
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("scratch: look for folders killed runs left in %s: %w", parent, err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		gone, err := removeIfStale(dir, minAge)
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			removed = append(removed, dir)
		}
	}
	return removed, errors.Join(errs...)
}

// removeIfStale removes dir if it is a scratch folder no process holds,
// older than minAge.
func removeIfStale(dir string, minAge time.Duration) (bool, error) {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if err != nil {
		return false, nil // not a scratch folder (or gone)
	}
	defer f.Close()
	if !flock.Free(f) {
		return false, nil // its process is alive
	}
	info, err := f.Stat()
	if err != nil || time.Since(info.ModTime()) < minAge {
		return false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("scratch: remove %s, which a killed run left: %w", dir, err)
	}
	return true, nil
}
