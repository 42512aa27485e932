package blobio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// How outputs treat what is already at their path (issue 14.6):
//
//   - "-" and "/dev/stdout" (also "file:///dev/stdout") mean the process's
//     standard output, written directly: a report or sink there is not
//     atomic, and a failed write cannot be taken back.
//   - A path that leads to one of the process's file descriptors
//     (/dev/stderr, /dev/fd/N, /proc/self/fd/N) is appended to directly.
//   - A local path that is a symlink is written through: the atomic write
//     happens in the directory of the link's final target and renames over
//     the target, so the link stays a link.
//   - A local path that is (or whose link target is) a character device or a
//     FIFO is written directly; any other non-regular file (a directory, a
//     socket, a block device) is refused before anything is written. An
//     atomic rename never replaces a non-regular file.

// SchemeStdout is the Location.Scheme of standard output.
const SchemeStdout = "stdout"

// isStdout reports whether a location string names standard output.
func isStdout(loc string) bool {
	return loc == "-" || loc == "/dev/stdout"
}

// stdoutLocation is the location of standard output, shown as the user
// wrote it.
func stdoutLocation(shown string) Location {
	return Location{Scheme: SchemeStdout, display: shown}
}

// stdout is where standard-output locations write; tests replace it.
var stdout io.Writer = os.Stdout

// localPath returns the local file path of a file:// location's object.
func localPath(l Location) (string, error) {
	u, err := url.Parse(l.BucketURL)
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.FromSlash(u.Path), filepath.FromSlash(l.Key)), nil
}

// maxLinks bounds symlink chains, as the kernel's ELOOP does.
const maxLinks = 40

// resolveLink follows p while it is a symlink and returns the final target
// (which may not exist: a dangling link is written through, creating it),
// that target's file info (nil when it does not exist), and whether the
// chain went through a file descriptor of this process (/dev/fd/N,
// /proc/self/fd/N: /dev/stderr, say), whose target must be written
// through the descriptor, never replaced.
func resolveLink(p string) (string, fs.FileInfo, bool, error) {
	viaFD := false
	for range maxLinks {
		viaFD = viaFD || strings.HasPrefix(p, "/dev/fd/") || strings.HasPrefix(p, "/proc/self/fd/")
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil, viaFD, nil
		}
		if err != nil {
			return "", nil, false, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, fi, viaFD, nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", nil, false, err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = t
	}
	return "", nil, false, fmt.Errorf("more than %d levels of symbolic links", maxLinks)
}

// outputTarget decides how to write a file:// location: atomically at the
// returned location (the symlink's target when the path is a link; only its
// bucket and key are used, errors name l), or directly into the returned open
// file (a character device or FIFO).
func outputTarget(l Location) (Location, *os.File, error) {
	p, err := localPath(l)
	if err != nil {
		return l, nil, fmt.Errorf("write %s: %w", l, err)
	}
	target, fi, viaFD, err := resolveLink(p)
	if err != nil {
		return l, nil, fmt.Errorf("write %s: resolve symbolic link: %w", l, err)
	}
	if viaFD && fi != nil {
		// Another of this process's outputs (stderr redirected to a file,
		// say): append through the descriptor's file, never replace it.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return l, nil, fmt.Errorf("write %s: %w", l, err)
		}
		return l, f, nil
	}
	shownTarget := ""
	if target != p {
		shownTarget = fmt.Sprintf(" (a symbolic link to %s)", target)
	}
	if fi != nil && !fi.Mode().IsRegular() {
		switch {
		case fi.Mode()&fs.ModeCharDevice != 0, fi.Mode()&fs.ModeNamedPipe != 0:
			f, err := os.OpenFile(target, os.O_WRONLY, 0)
			if err != nil {
				return l, nil, fmt.Errorf("write %s%s: %w", l, shownTarget, err)
			}
			return l, f, nil
		case fi.IsDir():
			return l, nil, fmt.Errorf("write %s%s: it is a directory; name a file inside it", l, shownTarget)
		default:
			return l, nil, fmt.Errorf("write %s%s: it is a %s, not a regular file, character device or FIFO; bulkflow writes only those (move it away or name another path)", l, shownTarget, fi.Mode().Type())
		}
	}
	if target == p {
		return l, nil, nil
	}
	u, err := url.Parse(l.BucketURL)
	if err != nil {
		return l, nil, fmt.Errorf("write %s%s: %w", l, shownTarget, err)
	}
	tl := l
	tl.BucketURL = "file://" + filepath.ToSlash(filepath.Dir(target)) + "?" + u.RawQuery
	tl.Key = filepath.Base(target)
	return tl, nil, nil
}
