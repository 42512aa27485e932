package bench

import (
	"bytes"
	"os"
	"testing"
)

// TestCopyExecutable checks that the copy the bench children run is the
// running executable, byte for byte, executable, and closed (a file still
// open for writing cannot be run).
func TestCopyExecutable(t *testing.T) {
	dir := t.TempDir()
	path, err := CopyExecutable(dir)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the copy has %d bytes, differing from the executable's %d", len(got), len(want))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("the copy is not executable: %v, %v", fi.Mode(), err)
	}
	if _, err := CopyExecutable(dir); err == nil {
		t.Error("a second copy into the same folder overwrote the first")
	}
}
