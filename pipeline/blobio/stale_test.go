//go:build unix

package blobio

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// killedWriterEnv makes the test binary a writer to be killed (TestMain).
const killedWriterEnv = "BLOBIO_KILLED_WRITER"

func TestMain(m *testing.M) {
	if p := os.Getenv(killedWriterEnv); p != "" {
		killedWriter(p)
		return
	}
	os.Exit(m.Run())
}

// killedWriter writes part of the object at p, says "ready" and waits to
// be killed.
func killedWriter(p string) {
	l, err := Parse("", p)
	if err == nil {
		var w *Writer
		if w, err = NewWriter(context.Background(), l); err == nil {
			_, err = w.Write([]byte(strings.Repeat("partial,row\n", 10_000)))
		}
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	// The temporary file exists once the upload goroutine opened it.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m, _ := filepath.Glob(p + ".*.tmp"); len(m) == 1 {
			break
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(2)
}

// killWriter runs a writer of the local path p in another process and
// kills it with SIGKILL mid-write; it returns the temporary file it left.
func killWriter(t *testing.T, p string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), killedWriterEnv+"="+p)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	if line != "ready\n" {
		t.Fatalf("writer: %q", line)
	}
	left, _ := filepath.Glob(p + ".*.tmp")
	if len(left) != 1 {
		t.Fatalf("the killed writer left %v, want one temporary file", left)
	}
	return left[0]
}

// TestRemoveStaleTemps: a writer killed with SIGKILL leaves NAME.<hex>.tmp
// beside its object; List skips it; RemoveStaleTemps removes it once it is
// old enough, but never the temporary file of a live writer of the same
// object (it holds the file's lock), nor a look-alike that is not a
// temporary file of the object, and the live writer still commits.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.csv")
	dead := killWriter(t, p)
	l, err := Parse("", p)
	must(t, err)
	if objs, err := List(context.Background(), l.WithKey(strings.TrimSuffix(l.Key, "out.csv"))); err == nil {
		t.Errorf("List found %v: the temporary file must not be listed", objs)
	}
	others := []string{p + ".tmp", p + ".xyz.tmp", filepath.Join(dir, "other.csv.1a2b.tmp")}
	for _, o := range others {
		must(t, os.WriteFile(o, []byte("x"), 0o644))
	}
	live, err := NewWriter(context.Background(), l)
	must(t, err)
	_, err = live.Write([]byte("live,row\n"))
	must(t, err)
	var liveTmp string
	for deadline := time.Now().Add(10 * time.Second); liveTmp == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		m, _ := filepath.Glob(p + ".*.tmp")
		for _, f := range m {
			if f != dead {
				liveTmp = f
			}
		}
	}
	if liveTmp == "" {
		t.Fatal("the live writer's temporary file did not appear")
	}
	// Too young: kept.
	if removed, err := RemoveStaleTemps(l, time.Hour); err != nil || len(removed) != 0 {
		t.Errorf("minAge 1h: removed %v (%v), want none", removed, err)
	}
	removed, err := RemoveStaleTemps(l, 0)
	if err != nil || len(removed) != 1 || removed[0] != dead {
		t.Errorf("removed %v (%v), want only %s", removed, err, dead)
	}
	for _, f := range append(others, liveTmp) {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v (it must be kept)", f, err)
		}
	}
	must(t, live.Close())
	if b, err := os.ReadFile(p); err != nil || string(b) != "live,row\n" {
		t.Errorf("committed %q (%v)", b, err)
	}
	// Another scheme has no temporary files.
	if removed, err := RemoveStaleTemps(Location{Scheme: "mem", Key: "x"}, 0); removed != nil || err != nil {
		t.Errorf("mem: %v %v", removed, err)
	}
}
