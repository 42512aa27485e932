package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// buildOnce builds the bulkflow binary for the whole test binary.
var buildOnce struct {
	sync.Once
	bin string
	err error
}

// bulkflowBinary returns the path of a bulkflow binary: -soak.bin, or one
// built once from the module root (found with `go env GOMOD`) into a
// directory removed by TestMain.
func bulkflowBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if *flagBin != "" {
			buildOnce.bin, buildOnce.err = filepath.Abs(*flagBin)
			return
		}
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildOnce.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			buildOnce.err = errors.New("go env GOMOD: not inside the bulkflow module")
			return
		}
		bin := filepath.Join(buildDir, "bulkflow")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/bulkflow")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build ./cmd/bulkflow in %s: %v\n%s", cmd.Dir, err, out)
			return
		}
		buildOnce.bin = bin
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.bin
}

// buildDir holds the built binary; TestMain creates and removes it.
var buildDir string

// lineWatcher collects a process's output and closes ready once the text
// marker and the end of its line have arrived (never for marker "").
type lineWatcher struct {
	marker string
	ready  chan struct{}

	mu   sync.Mutex
	buf  bytes.Buffer
	seen bool
}

func newLineWatcher(marker string) *lineWatcher {
	return &lineWatcher{marker: marker, ready: make(chan struct{})}
}

// Write implements io.Writer.
func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && w.marker != "" {
		text := w.buf.String()
		if i := strings.Index(text, w.marker); i >= 0 && strings.Contains(text[i:], "\n") {
			w.seen = true
			close(w.ready)
		}
	}
	return len(p), nil
}

// String returns everything written so far.
func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// emulator is a `bulkflow emulator` process on a loopback port.
type emulator struct {
	cmd          *exec.Cmd
	stdout       *lineWatcher
	stderr       *lineWatcher
	exited       chan struct{} // closed when the process has been waited for
	URL          string        // instance URL
	LoginURL     string
	ClientID     string
	ClientSecret string
	client       *http.Client
}

// startEmulator starts `bulkflow emulator --addr 127.0.0.1:0 --seed SEED`
// and parses the URLs and credentials it prints. The process is stopped
// (SIGINT, then SIGKILL) when the test ends.
func startEmulator(t *testing.T, bin string, seed uint64) *emulator {
	t.Helper()
	e := &emulator{stdout: newLineWatcher("faults:"), stderr: newLineWatcher(""), exited: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second}}
	e.cmd = exec.Command(bin, "emulator", "--addr", "127.0.0.1:0", "--seed", fmt.Sprint(seed))
	e.cmd.Stdout, e.cmd.Stderr = e.stdout, e.stderr
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	go func() { // owner: e; ends when the emulator process exits (t.Cleanup stops it)
		e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		e.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-e.exited:
		case <-time.After(10 * time.Second):
			e.cmd.Process.Kill()
			<-e.exited
		}
	})
	select {
	case <-e.stdout.ready:
	case <-e.exited:
		t.Fatalf("the emulator exited before printing its URLs: %s\n%s", e.stdout, e.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("the emulator printed no URLs within 30 s: %s\n%s", e.stdout, e.stderr)
	}
	for _, line := range strings.Split(e.stdout.String(), "\n") {
		label, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch label {
		case "instance URL":
			e.URL = value
		case "login URL":
			e.LoginURL = value
		case "client id":
			e.ClientID = value
		case "client secret":
			e.ClientSecret = value
		}
	}
	if e.URL == "" || e.LoginURL == "" || e.ClientID == "" || e.ClientSecret == "" {
		t.Fatalf("could not parse the emulator's instance URL, login URL and client credentials from:\n%s", e.stdout)
	}
	return e
}

// setFaults replaces the emulator's fault switches (POST /__emulator/faults).
func (e *emulator) setFaults(f salesforcetest.Faults) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	resp, err := e.client.Post(e.URL+"/__emulator/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST /__emulator/faults: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /__emulator/faults %s: %s: %s", body, resp.Status, b)
	}
	return nil
}

// setCollectionFaults replaces the emulator's collection fault switches
// (POST /__emulator/collection-faults).
func (e *emulator) setCollectionFaults(f salesforcetest.CollectionFaults) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	resp, err := e.client.Post(e.URL+"/__emulator/collection-faults", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST /__emulator/collection-faults: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /__emulator/collection-faults %s: %s: %s", body, resp.Status, b)
	}
	return nil
}

// jobCount returns the number of jobs the emulator has.
func (e *emulator) jobCount() (int, error) {
	jobs, err := e.jobs()
	return len(jobs), err
}

// collectionRequests returns the number of sObject Collections write
// requests the emulator has had (GET /__emulator/requests).
func (e *emulator) collectionRequests() (int, error) {
	var counts map[string]int
	if err := e.getJSON("/__emulator/requests", &counts); err != nil {
		return 0, err
	}
	n := 0
	for k, v := range counts {
		if strings.Contains(k, "composite/sobjects") && !strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	return n, nil
}

// getJSON decodes GET e.URL+path into v.
func (e *emulator) getJSON(path string, v any) error {
	resp, err := e.client.Get(e.URL + path)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// jobs returns every job the emulator knows (GET /__emulator/jobs).
func (e *emulator) jobs() ([]salesforcetest.JobInfo, error) {
	var jobs []salesforcetest.JobInfo
	err := e.getJSON("/__emulator/jobs", &jobs)
	return jobs, err
}

// records returns the stored records of object (GET /__emulator/records/OBJ).
func (e *emulator) records(object string) ([]map[string]string, error) {
	var recs []map[string]string
	err := e.getJSON("/__emulator/records/"+object, &recs)
	return recs, err
}

// waitJobsSettled waits until no ingest job is Open, UploadComplete or
// InProgress, so that the truth no longer moves under the checks. Open jobs
// nobody will close (a killed run's) do not move the truth and are
// ignored after grace.
func (e *emulator) waitJobsSettled(ctx context.Context, grace time.Duration) error {
	start := time.Now()
	for {
		jobs, err := e.jobs()
		if err != nil {
			return err
		}
		busy := 0
		for _, j := range jobs {
			switch j.State {
			case salesforcetest.StateUploadComplete, salesforcetest.StateInProgress:
				busy++
			case salesforcetest.StateOpen:
				if time.Since(start) < grace {
					busy++
				}
			}
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d jobs still processing: %w", busy, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// proc is one bulkflow child process.
type proc struct {
	args []string
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout and stderr, read only after done
	done chan struct{}
}

// startProc starts bin with args in dir. The caller owns the process and
// must call wait.
func startProc(bin, dir string, args ...string) (*proc, error) {
	p := &proc{args: args, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bulkflow %s: %w", strings.Join(args, " "), err)
	}
	go func() { // owner: p; ends when the child exits (wait kills it past its deadline)
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process and returns its exit code (-1
// when a signal ended it). A process still running at the deadline is
// killed and reported as hung.
func (p *proc) wait(timeout time.Duration) (code int, hung bool) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		hung = true
	}
	return p.cmd.ProcessState.ExitCode(), hung
}

// output returns the process's combined output (after wait).
func (p *proc) output() string { return p.out.String() }

// command is the command line, for messages.
func (p *proc) command() string { return "bulkflow " + strings.Join(p.args, " ") }
