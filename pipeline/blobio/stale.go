package blobio

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/internal/flock"
)

// A local object is written to a temporary file beside it,
// NAME.<hex nanoseconds>.tmp (gocloud's fileblob, with no_tmp_dir), and
// renamed over NAME when the writer commits. A process killed mid-write
// leaves that file behind: List skips it, and RemoveStaleTemps removes it.
// While a Writer of this package writes a temporary file it holds a
// flock(2) on it (flock.Hold), which the kernel drops when the process
// exits, however it exits: a temporary file nobody holds is no writer's.

// RemoveStaleTemps removes the temporary files that killed writers of the
// local object l left beside it (NAME.<hex>.tmp): those no process holds
// locked and unchanged for at least minAge (which covers the instant
// between a writer closing its file and renaming it). It returns the paths
// it removed. Other schemes have no temporary files (nil, nil); where
// flock(2) is missing, nothing is removed.
func RemoveStaleTemps(l Location, minAge time.Duration) ([]string, error) {
	if l.Scheme != "file" || !flock.Supported || HasGlob(l.Key) || l.Key == "" || strings.HasSuffix(l.Key, "/") {
		return nil, nil
	}
	p, err := localPath(l)
	if err != nil {
		return nil, fmt.Errorf("look for temporary files of %s: %w", l, err)
	}
	dir, base := filepath.Dir(p), filepath.Base(p)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("look for temporary files of %s: %w", l, err)
	}
	var removed []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !isTempOf(e.Name(), base) {
			continue
		}
		name := filepath.Join(dir, e.Name())
		gone, err := removeIfStale(name, minAge)
		if err != nil {
			return removed, fmt.Errorf("remove the temporary file %s of %s: %w", name, l, err)
		}
		if gone {
			removed = append(removed, name)
		}
	}
	return removed, nil
}

// isTempOf reports whether name is a temporary file of base:
// base.<hex digits>.tmp.
func isTempOf(name, base string) bool {
	mid, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return false
	}
	mid, ok = strings.CutSuffix(mid, ".tmp")
	if !ok || mid == "" {
		return false
	}
	for _, c := range mid {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// removeIfStale removes the file at name if no process holds its lock and
// it was last modified at least minAge ago, holding the lock while it
// checks and removes.
func removeIfStale(name string, minAge time.Duration) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		if os.IsNotExist(err) {
			return false, nil // committed or removed meanwhile
		}
		return false, err
	}
	defer f.Close()
	if !flock.Free(f) {
		return false, nil // a live writer's
	}
	fi, err := f.Stat()
	if err != nil || time.Since(fi.ModTime()) < minAge {
		return false, err
	}
	if err := os.Remove(name); err != nil && !os.IsNotExist(err) {
		return false, err
	}
	return true, nil
}

// StaleTempAge is how long a temporary file nobody holds must have been
// left unchanged before a sink writing the same object removes it
// (CleanStaleTemps).
const StaleTempAge = time.Minute

// CleanStaleTemps is what a sink does when it opens the local object l:
// it removes the temporary files killed writers of l left
// (RemoveStaleTemps with StaleTempAge) and logs them at warn on log as
// "<sink>: ...". Failing to remove one does not stop the sink: listers
// skip temporary files, and the warning says to delete it by hand.
func CleanStaleTemps(log *slog.Logger, sink string, l Location) {
	if log == nil {
		log = slog.Default()
	}
	removed, err := RemoveStaleTemps(l, StaleTempAge)
	if len(removed) > 0 {
		log.Warn(sink+": removed temporary files that a killed writer of this output left (no process held them)",
			"output", l.String(), "files", removed)
	}
	if err != nil {
		log.Warn(sink+": a temporary file a killed writer left could not be removed; listers skip it, delete it by hand",
			"output", l.String(), "error", err)
	}
}
