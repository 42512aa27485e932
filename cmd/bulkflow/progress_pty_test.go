//go:build unix

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// screen is the little of a terminal the progress display uses: text,
// "\r", "\n", ESC[2K (clear the line) and ESC[nA (cursor up n lines).
// Snapshots are taken at each ESC[nA, where a new frame starts.
type screen struct {
	lines     []string
	row, col  int
	snapshots []string
}

var csiRE = regexp.MustCompile(`^\x1b\[([0-9]*)([A-Za-z])`)

func (s *screen) write(b []byte) {
	for len(b) > 0 {
		if m := csiRE.FindSubmatch(b); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			switch m[2][0] {
			case 'A':
				s.snapshots = append(s.snapshots, s.String())
				s.row = max(s.row-max(n, 1), 0)
			case 'K':
				s.grow()
				s.lines[s.row] = ""
			}
			b = b[len(m[0]):]
			continue
		}
		switch c := b[0]; c {
		case '\r':
			s.col = 0
		case '\n':
			s.row, s.col = s.row+1, 0 // the pty turns \n into \r\n
		default:
			s.grow()
			l := []rune(s.lines[s.row])
			for len(l) < s.col {
				l = append(l, ' ')
			}
			r := []rune(string(c))
			if c >= 0x80 { // a UTF-8 sequence: take it whole
				size := 1
				for size < len(b) && b[size]&0xC0 == 0x80 {
					size++
				}
				r = []rune(string(b[:size]))
				b = b[size-1:]
			}
			l = append(l[:s.col], append(r, l[min(s.col+1, len(l)):]...)...)
			s.lines[s.row] = string(l)
			s.col++
		}
		b = b[1:]
	}
}

func (s *screen) grow() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, "")
	}
}

func (s *screen) String() string { return strings.Join(s.lines, "\n") + "\n" }

// normalizeFrame replaces what changes from run to run on the screen:
// the run id, times and rates, the API requests (polls), the temporary
// folder.
func normalizeFrame(text, runID, dir string) string {
	text = strings.ReplaceAll(text, dir, "DIR")
	if runID != "" {
		text = strings.ReplaceAll(text, runID, "RUN_ID")
	}
	text = regexp.MustCompile(`[0-9]+(\.[0-9]+)?(s|m[0-9.]+s)\b`).ReplaceAllString(text, "T")
	text = regexp.MustCompile(`\([0-9.]+ rows/s\)`).ReplaceAllString(text, "(R rows/s)")
	text = regexp.MustCompile(`[0-9]+ requests`).ReplaceAllString(text, "N requests") // polls: as many as the timing takes
	return regexp.MustCompile(`in [0-9]+\.[0-9]{2}s`).ReplaceAllString(text, "in T")
}

// TestProgressTerminal runs a pipeline with its stderr on a
// pseudo-terminal, as a person at a terminal runs it, and reads what the
// terminal shows: frames redrawn in place (never a scrolling column of
// them), a frame while the Salesforce jobs are processed showing the
// sink's line with jobs in progress, and the last frame kept above the
// summary. Frames are compared with golden files with times and rates
// normalised: the one seen while jobs are in progress (counts normalised
// too: when it is drawn depends on the scheduler) and the final screen.
func TestProgressTerminal(t *testing.T) {
	here, _ := os.Getwd()
	sf := salesforcetest.NewServer(&salesforcetest.Options{Faults: salesforcetest.Faults{ProcessingDelay: 1200 * time.Millisecond}})
	t.Cleanup(sf.Close)
	dir := t.TempDir()
	t.Chdir(dir)
	var in strings.Builder
	in.WriteString("Name,AnnualRevenue\n")
	for i := range 40 {
		fmt.Fprintf(&in, "acct %d,%d\n", i, i*1000)
	}
	yaml := fmt.Sprintf("name: terminal\ndead_letter: dl/\nstages:\n"+
		"  - {name: read, source: {type: csv, url: in.csv}}\n"+
		"  - name: load\n    inputs: [read]\n    sink: {type: salesforce, object: Account, api: bulk, max_job_rows: 10, concurrency: 4, ledger: off,\n"+
		"      poll_initial: 50ms, poll_max: 100ms, instance_url: %q, auth: {access_token: %q}}\n", sf.URL, sf.AccessToken())
	for name, data := range map[string]string{"p.yaml": yaml, "in.csv": in.String()} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 200}); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	copied := make(chan struct{})
	go func() { // ends when ptmx is closed or tty's last writer is gone
		defer close(copied)
		io.Copy(&raw, ptmx)
	}()
	var stdout bytes.Buffer
	code := realMain([]string{"run", "p.yaml", "--offline", "--json"}, &stdout, tty)
	tty.Close()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, raw.String())
	}
	runID := regexp.MustCompile(`"run_id": "([^"]+)"`).FindStringSubmatch(stdout.String())
	if runID == nil {
		t.Fatalf("no run id in the report:\n%s", stdout.String())
	}
	var sc screen
	sc.write(raw.Bytes())
	final := sc.String()
	// Redrawn in place: the final screen holds one frame, not a column
	// of them.
	if n := strings.Count(final, " | loaded "); n != 1 {
		t.Errorf("the final screen holds %d frames, want 1 (frames must be redrawn in place):\n%s", n, final)
	}
	var during string
	for _, f := range sc.snapshots {
		if strings.Contains(f, "in progress") && regexp.MustCompile(`jobs [0-9]+ open, [1-9][0-9]* in progress`).MatchString(f) {
			during = f
			break
		}
	}
	if during == "" {
		t.Fatalf("no frame showed jobs in progress; %d frames, the last:\n%s", len(sc.snapshots), final)
	}
	during = regexp.MustCompile(`[0-9]+`).ReplaceAllString(normalizeFrame(during, runID[1], dir), "N")
	golden(t, filepath.Join(here, "testdata/progress/during-jobs.golden"), []byte(during))
	golden(t, filepath.Join(here, "testdata/progress/final.golden"), []byte(normalizeFrame(final, runID[1], dir)))
}
