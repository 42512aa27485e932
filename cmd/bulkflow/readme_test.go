package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one fenced block of README.md marked for TestREADMECommands:
// shell lines to run (`<!-- readme-test -->` before a sh fence) or a file
// to write (`<!-- readme-test: file NAME -->` before any fence).
type readmeBlock struct {
	line  int    // README line of the fence
	file  string // the file to write, or "" for shell lines
	lines []string
}

// readmeBlocks returns the marked blocks of the README at path, in order.
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks  []readmeBlock
		marked  *readmeBlock
		inFence bool
		n       int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case inFence && strings.HasPrefix(l, "```"):
			inFence = false
			if marked != nil {
				blocks = append(blocks, *marked)
				marked = nil
			}
		case inFence:
			if marked != nil {
				marked.lines = append(marked.lines, l)
			}
		case strings.HasPrefix(l, "```"):
			inFence = true
			if marked != nil {
				marked.line = n
			}
		case strings.HasPrefix(l, "<!-- readme-test"):
			marked = &readmeBlock{}
			if name, ok := strings.CutPrefix(strings.TrimSuffix(l, " -->"), "<!-- readme-test: file "); ok {
				marked.file = name
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

var (
	readmeExitRE = regexp.MustCompile(`#\s*exit (\d+)`)
	readmeAddrRE = regexp.MustCompile(`--addr (\S+)`)
)

// readmeScript turns the marked blocks into one bash script: files are
// written, every shell line is run and its exit code compared with the
// `# exit N` its comment states (0 when none), a background line (ending in
// &) is waited for until its --addr listens, and background jobs are
// killed at the end.
func readmeScript(blocks []readmeBlock) string {
	var b strings.Builder
	b.WriteString("set -u\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n")
	for _, blk := range blocks {
		if blk.file != "" {
			fmt.Fprintf(&b, "cat > %q <<'README_EOF'\n%s\nREADME_EOF\n", blk.file, strings.Join(blk.lines, "\n"))
			continue
		}
		for i, l := range blk.lines {
			cmd := strings.TrimSpace(l)
			if cmd == "" || strings.HasPrefix(cmd, "#") {
				continue
			}
			where := fmt.Sprintf("README.md:%d", blk.line+1+i)
			if strings.HasSuffix(cmd, "&") {
				fmt.Fprintf(&b, "echo '+ %s: %s'\n%s\n", where, strings.ReplaceAll(cmd, "'", ""), cmd)
				if m := readmeAddrRE.FindStringSubmatch(cmd); m != nil {
					fmt.Fprintf(&b, "for i in $(seq 100); do (exec 3<>/dev/tcp/%s) 2>/dev/null && break; sleep 0.1; done\n",
						strings.Replace(m[1], ":", "/", 1))
				}
				continue
			}
			want := 0
			if m := readmeExitRE.FindStringSubmatch(cmd); m != nil {
				want, _ = strconv.Atoi(m[1])
			}
			fmt.Fprintf(&b, "echo '+ %s: %s'\n%s\nrc=$?\nif [ $rc -ne %d ]; then echo \"%s: exit $rc, want %d\"; exit 1; fi\n",
				where, strings.ReplaceAll(cmd, "'", ""), cmd, want, where, want)
		}
	}
	return b.String()
}

// TestREADMECommands runs the README's marked shell blocks in order, as a
// newcomer would type them, in a scratch folder that holds a copy of
// pipelines/ and links to the module's sources (so `go build
// ./cmd/bulkflow` works there). Each command must exit as the README says.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bulkflow and runs the README's commands")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	blocks := readmeBlocks(t, "../../README.md")
	if len(blocks) < 3 {
		t.Fatalf("README.md has %d blocks marked <!-- readme-test -->, want the guide's (3 or more)", len(blocks))
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "cmd", "pipeline", "sources", "sinks", "transforms"} {
		if err := os.Symlink(filepath.Join(root, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-R", filepath.Join(root, "pipelines"), filepath.Join(dir, "pipelines")).CombinedOutput(); err != nil {
		t.Fatalf("copy pipelines: %v\n%s", err, out)
	}
	if l, err := net.Listen("tcp", "127.0.0.1:8484"); err != nil {
		t.Skipf("the README's emulator address 127.0.0.1:8484 is taken: %v", err)
	} else {
		l.Close()
	}
	script := readmeScript(blocks)
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	done := make(chan struct{})
	var out []byte
	go func() {
		defer close(done)
		out, err = cmd.CombinedOutput()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the README's commands did not finish in 5 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("README commands: %v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	t.Logf("README commands:\n%s", out)
}
