//go:build unix

package blobio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// captureStdout points standard-output locations at a buffer for the test.
func captureStdout(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	old := stdout
	stdout = &buf
	t.Cleanup(func() { stdout = old })
	return &buf
}

// TestStdoutLocations: "-" and "/dev/stdout" mean standard output, for
// whole writes (reports) and streamed ones (file sinks); no file named "-"
// appears and /dev/stdout is not replaced.
func TestStdoutLocations(t *testing.T) {
	for _, loc := range []string{"-", "/dev/stdout", "file:///dev/stdout"} {
		t.Run(loc, func(t *testing.T) {
			base := t.TempDir()
			buf := captureStdout(t)
			l, err := Parse(base, loc)
			if err != nil {
				t.Fatal(err)
			}
			if l.Scheme != SchemeStdout || l.String() != loc {
				t.Fatalf("Parse(%q) = scheme %q shown %q, want %q %q", loc, l.Scheme, l, SchemeStdout, loc)
			}
			if err := WriteAll(context.Background(), l, []byte(`{"status":"succeeded"}`+"\n")); err != nil {
				t.Fatal(err)
			}
			w, err := NewWriter(context.Background(), l)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "a,b\n")
			io.WriteString(w, "1,2\n")
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, want := buf.String(), "{\"status\":\"succeeded\"}\na,b\n1,2\n"; got != want {
				t.Errorf("standard output = %q, want %q", got, want)
			}
			if ents, _ := os.ReadDir(base); len(ents) != 0 {
				t.Errorf("files created in the base directory: %v", ents)
			}
			if fi, err := os.Lstat("/dev/stdout"); err == nil && fi.Mode().IsRegular() {
				t.Errorf("/dev/stdout became a regular file")
			}
		})
	}
}

// TestStdoutRefusesOtherUses: standard output cannot be read, listed or
// hold several objects (a dead-letter prefix).
func TestStdoutRefusesOtherUses(t *testing.T) {
	captureStdout(t)
	ctx := context.Background()
	l, _ := Parse("", "-")
	if _, err := NewReader(ctx, l); err == nil || !strings.Contains(err.Error(), "standard output can only be written") {
		t.Errorf("NewReader(-) = %v", err)
	}
	if _, err := List(ctx, l); err == nil || !strings.Contains(err.Error(), "standard output can only be written") {
		t.Errorf("List(-) = %v", err)
	}
	if _, err := NewWriter(ctx, Join(l, "run1", "map.csv")); err == nil || !strings.Contains(err.Error(), "holds one output") {
		t.Errorf("NewWriter(Join(-, ...)) = %v", err)
	}
	// A relative path spelled differently is a file named "-", as in Unix.
	base := t.TempDir()
	dash, _ := Parse(base, "./-")
	if err := WriteAll(ctx, dash, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(base, "-")); err != nil || string(b) != "x" {
		t.Errorf("./- = %q, %v", b, err)
	}
}

// TestWriteThroughSymlink: an output path that is a symlink stays a link;
// its final target gets the content, written atomically in the target's
// directory (no temporary file left in either directory).
func TestWriteThroughSymlink(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, linkDir, targetDir string) (link, target string)
	}{
		{"absolute link to a file", func(t *testing.T, ld, td string) (string, string) {
			target := filepath.Join(td, "report.json")
			must(t, os.WriteFile(target, []byte("old"), 0o644))
			must(t, os.Symlink(target, filepath.Join(ld, "out.json")))
			return filepath.Join(ld, "out.json"), target
		}},
		{"relative link", func(t *testing.T, ld, td string) (string, string) {
			target := filepath.Join(td, "report.json")
			must(t, os.WriteFile(target, []byte("old"), 0o644))
			rel, err := filepath.Rel(ld, target)
			must(t, err)
			must(t, os.Symlink(rel, filepath.Join(ld, "out.json")))
			return filepath.Join(ld, "out.json"), target
		}},
		{"chain of links", func(t *testing.T, ld, td string) (string, string) {
			target := filepath.Join(td, "report.json")
			must(t, os.WriteFile(target, []byte("old"), 0o644))
			must(t, os.Symlink(target, filepath.Join(td, "mid.json")))
			must(t, os.Symlink(filepath.Join(td, "mid.json"), filepath.Join(ld, "out.json")))
			return filepath.Join(ld, "out.json"), target
		}},
		{"dangling link", func(t *testing.T, ld, td string) (string, string) {
			target := filepath.Join(td, "new.json")
			must(t, os.Symlink(target, filepath.Join(ld, "out.json")))
			return filepath.Join(ld, "out.json"), target
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ld, td := t.TempDir(), t.TempDir()
			link, target := tc.setup(t, ld, td)
			l, err := Parse("", link)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteAll(context.Background(), l, []byte("new")); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(link)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Fatalf("%s is no longer a symlink: %v %v", link, fi.Mode(), err)
			}
			if b, err := os.ReadFile(target); err != nil || string(b) != "new" {
				t.Errorf("target = %q, %v; want %q", b, err, "new")
			}
			for _, d := range []string{ld, td} {
				ents, _ := os.ReadDir(d)
				for _, e := range ents {
					if strings.HasSuffix(e.Name(), ".tmp") {
						t.Errorf("temporary file left: %s", filepath.Join(d, e.Name()))
					}
				}
			}
		})
	}
}

// TestNonRegularOutputs: character devices and FIFOs are written directly
// and stay what they are; directories (also behind a link) and sockets are
// refused before anything is written.
func TestNonRegularOutputs(t *testing.T) {
	ctx := context.Background()
	t.Run("char device", func(t *testing.T) {
		l, _ := Parse("", "/dev/null")
		if err := WriteAll(ctx, l, []byte("discarded")); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
			t.Fatalf("/dev/null is no longer a character device: %v %v", fi.Mode(), err)
		}
	})
	t.Run("fifo", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "pipe")
		must(t, syscall.Mkfifo(p, 0o600))
		got := make(chan string, 1)
		go func() { // exits when the writer closes the FIFO
			f, err := os.Open(p)
			if err != nil {
				got <- err.Error()
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			got <- string(b)
		}()
		l, _ := Parse("", p)
		if err := WriteAll(ctx, l, []byte("through the pipe")); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "through the pipe" {
			t.Errorf("read from FIFO %q", s)
		}
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
			t.Errorf("FIFO replaced: %v %v", fi.Mode(), err)
		}
	})
	dir := t.TempDir()
	sub := filepath.Join(dir, "out.csv")
	must(t, os.Mkdir(sub, 0o755))
	must(t, os.Symlink(sub, filepath.Join(dir, "link.csv")))
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ path, want string }{
		{sub, "it is a directory"},
		{filepath.Join(dir, "link.csv"), "(a symbolic link to " + sub + "): it is a directory"},
		{sock, "not a regular file, character device or FIFO"},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			l, _ := Parse("", tc.path)
			_, err := NewWriter(ctx, l)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("NewWriter(%s) = %v, want an error naming the path and %q", tc.path, err, tc.want)
			}
			if fi, err := os.Lstat(tc.path); err != nil || fi.Mode().IsRegular() {
				t.Errorf("%s replaced: %v %v", tc.path, fi.Mode(), err)
			}
		})
	}
}

// TestFileDescriptorOutputs: a path leading to one of the process's file
// descriptors (/dev/stderr redirected to a log file, /dev/fd/N) is appended
// to through it; the file it names is not replaced (which would cut the
// process's later output off into an unlinked file).
func TestFileDescriptorOutputs(t *testing.T) {
	if _, err := os.Stat("/dev/fd"); err != nil {
		t.Skipf("no /dev/fd on this system: %v", err)
	}
	logf, err := os.CreateTemp(t.TempDir(), "stderr-*.log")
	must(t, err)
	defer logf.Close()
	_, err = logf.WriteString("earlier log line\n")
	must(t, err)
	before, err := os.Stat(logf.Name())
	must(t, err)
	for _, p := range []string{fmt.Sprintf("/dev/fd/%d", logf.Fd()), fmt.Sprintf("/proc/self/fd/%d", logf.Fd())} {
		l, err := Parse("", p)
		must(t, err)
		must(t, WriteAll(context.Background(), l, []byte(p+"\n")))
	}
	after, err := os.Stat(logf.Name())
	must(t, err)
	if !os.SameFile(before, after) {
		t.Errorf("%s was replaced by another file", logf.Name())
	}
	got, _ := os.ReadFile(logf.Name())
	want := fmt.Sprintf("earlier log line\n/dev/fd/%d\n/proc/self/fd/%d\n", logf.Fd(), logf.Fd())
	if string(got) != want {
		t.Errorf("content = %q, want %q", got, want)
	}
}

// failingWriter fails every write, as a closed pipe does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestPartialOutput: a direct writer's failure says part of the output may
// be out (ErrPartialOutput, so the engine does not mark its rows
// retryable); an atomic writer's does not, since nothing became visible.
func TestPartialOutput(t *testing.T) {
	ctx := context.Background()
	old := stdout
	stdout = failingWriter{}
	defer func() { stdout = old }()
	l, _ := Parse("", "-")
	w, err := NewWriter(ctx, l)
	must(t, err)
	_, werr := w.Write([]byte("x"))
	if err := w.Fail(werr); !errors.Is(err, ErrPartialOutput) || !errors.Is(err, syscall.EPIPE) {
		t.Errorf("stdout Fail = %v, want EPIPE and ErrPartialOutput", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Fail = %v, want nil (idempotent)", err)
	}
	dir := t.TempDir()
	fl, _ := Parse(dir, "out.csv")
	fw, err := NewWriter(ctx, fl)
	must(t, err)
	if err := fw.Fail(syscall.ENOSPC); errors.Is(err, ErrPartialOutput) || !strings.Contains(err.Error(), "out.csv") {
		t.Errorf("file Fail = %v, want the path and no ErrPartialOutput", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.csv")); !os.IsNotExist(err) {
		t.Errorf("failed object exists: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
