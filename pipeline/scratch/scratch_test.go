package scratch_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/scratch"
)

// TestHold is not a test: run by holdInChild, it makes a scratch folder
// in $SCRATCH_PARENT, prints its path and waits to be killed.
func TestHold(t *testing.T) {
	parent := os.Getenv("SCRATCH_PARENT")
	if parent == "" {
		t.Skip("run by holdInChild")
	}
	d, err := scratch.New(parent, "bulkflow-held-")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.Path, "job-0001.csv"), []byte("Name\nrow\n"), 0o600)
	os.Stdout.WriteString(d.Path + "\n")
	time.Sleep(time.Minute)
}

// holdInChild starts a process that holds a scratch folder in parent and
// returns the folder and the process.
func holdInChild(t *testing.T, parent string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHold$")
	cmd.Env = append(os.Environ(), "SCRATCH_PARENT="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the child printed no folder: %v", err)
	}
	return strings.TrimSpace(line), cmd
}

// TestRemoveStale: of the folders in a temporary directory, RemoveStale
// removes only the scratch folder whose process was SIGKILLed: not one a
// live process holds (another process's, or this one's), not a folder
// without the lock file (another program's, an older bulkflow's), and not
// a killed process's folder younger than minAge.
func TestRemoveStale(t *testing.T) {
	if !scratch.ScratchLocks {
		t.Skip("no flock(2) here: RemoveStale removes nothing")
	}
	parent := t.TempDir()
	alive, _ := holdInChild(t, parent)
	killed, cmd := holdInChild(t, parent)
	cmd.Process.Kill()
	cmd.Wait()
	mine, err := scratch.New(parent, "bulkflow-mine-")
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(parent, "bulkflow-bench-123")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}

	// Younger than minAge: kept, though no process holds it.
	if removed, err := scratch.RemoveStale(parent, time.Hour); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveStale(1h) = %v, %v; want nothing removed", removed, err)
	}
	removed, err := scratch.RemoveStale(parent, 0)
	if err != nil || !slices.Equal(removed, []string{killed}) {
		t.Fatalf("RemoveStale = %v, %v; want [%s]", removed, err, killed)
	}
	for _, dir := range []string{alive, mine.Path, other} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was removed: %v", dir, err)
		}
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Errorf("the killed process's folder is still there: %v", err)
	}
	if err := mine.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine.Path); !os.IsNotExist(err) {
		t.Errorf("Remove left %s: %v", mine.Path, err)
	}
	if err := mine.Remove(); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}

func TestNewRefusesOtherPrefixes(t *testing.T) {
	if d, err := scratch.New(t.TempDir(), "spool-"); err == nil {
		d.Remove()
		t.Fatal("New with a pattern without the prefix: no error")
	}
}
