package salesforcesink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// Ledger states of a chunk, recorded before the remote step they name
// (created, uploaded and closed after it: they carry what the step
// returned). The last record of a chunk says how far it is known to have
// got.
const (
	// stCreating: about to POST the create. A job may exist, but it is
	// Open with no data at worst: never processed.
	stCreating = "creating"
	// stCreated: the job exists (Job); its upload has not started.
	stCreated = "created"
	// stUploading: about to PUT the data; whether it landed is unknown.
	stUploading = "uploading"
	// stUploaded: the PUT returned 201; the job is not known to be closed.
	stUploaded = "uploaded"
	// stClosed: the close PATCH succeeded; Salesforce processes the job.
	stClosed = "closed"
	// stFinished: the job is terminal (JobState) and its results were read.
	stFinished = "finished"
	// stAborted: the job was aborted while Open (never processed); the
	// chunk is to be sent in a new job.
	stAborted = "aborted"
)

// ledgerRecord is one line of the ledger.
type ledgerRecord struct {
	// Chunk is the chunk's position (chunkKey: batch, lock-retry attempt,
	// chunk within them). Ledgers written before positions keyed chunks by
	// digest + "." + occurrence in the run; they still resume that way.
	Chunk string `json:"chunk"`
	State string `json:"state"`
	// Digest is the hex sha256 of the chunk's CSV bytes.
	Digest string `json:"digest,omitempty"`
	// From is the origin of the chunk's first row (object:line).
	From  string    `json:"from,omitempty"`
	Time  time.Time `json:"t"`
	Rows  int       `json:"rows,omitempty"`
	Bytes int64     `json:"bytes,omitempty"`
	Job   string    `json:"job,omitempty"`
	// Set with stFinished.
	JobState    string `json:"job_state,omitempty"`
	Processed   int64  `json:"processed,omitempty"`
	Succeeded   int64  `json:"succeeded,omitempty"`
	Failed      int64  `json:"failed,omitempty"`
	Unprocessed int64  `json:"unprocessed,omitempty"`
	Loaded      int    `json:"loaded,omitempty"` // rows of the chunk confirmed loaded
	Error       string `json:"error,omitempty"`  // the job's errorMessage
	// RESTFailed, with stRESTDone, are the rows of a REST request that
	// were not loaded (rest.go); the others were.
	RESTFailed []restFailure `json:"rest_failed,omitempty"`
	// Options is the fingerprint of what shapes the chunks (runKey record).
	Options string `json:"options,omitempty"`
	// Provenance is what this process read (runKey record; see Provenance).
	Provenance *Provenance `json:"provenance,omitempty"`
}

// runKey is the chunk key of the record every process of the run writes at
// open, holding the options fingerprint.
const runKey = "_run"

// ledger is the sink's write-ahead log for one run: <ledger>/<pipeline>/<run id>/.
// Locally it is one append-only ledger.jsonl (fsynced after every record)
// plus the spool directory of chunks not finished yet; on a blob store every
// record is its own object under log/ (blob writes are atomic), named so
// that keys sort in write order.
type ledger struct {
	where string // shown to users

	mu   sync.Mutex
	f    *os.File // local: ledger.jsonl
	blob *blobio.Location
	seq  int
	boot int64 // blob: process start, the key prefix of its records

	dir   string // local run directory ("" for blob ledgers)
	prior map[string]ledgerRecord
	count map[string]int  // digest → chunks with that digest seen in this process (legacy keys)
	seen  map[string]bool // prior keys this process looked up
	// origin is the Provenance of the first process of the run, if it
	// recorded one.
	origin *Provenance
	// legacy is set when earlier processes keyed chunks by digest (key).
	legacy bool
	// gate holds back new uploads of a resumed run (nil when not resuming).
	gate *resumeGate
}

const ledgerFile = "ledger.jsonl"

// safeName makes s usable as one path element.
func safeName(s string) string {
	if s == "" {
		return "default"
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

// LedgerRun returns where a sink with these options keeps the ledger of
// run runID of pipeline pipelineName (<ledger>/<pipeline>/<run id>, with
// relative locations resolved against baseDir), and false when the ledger
// is off.
func (o *Options) LedgerRun(baseDir, pipelineName, runID string) (blobio.Location, bool, error) {
	where := o.ledgerLocation()
	if where == "" {
		return blobio.Location{}, false, nil
	}
	run, err := ledgerRun(baseDir, where, pipelineName, runID)
	return run, err == nil, err
}

// LedgerHasRun implements pipeline.RunLedger: whether the ledger holds a
// record of run runID of pipeline pipelineName: a ledger.jsonl file in its
// local run folder (where the run's lock lives too), an object under its
// log/ on a blob store.
func (o *Options) LedgerHasRun(ctx context.Context, baseDir, pipelineName, runID string) bool {
	run, on, err := o.LedgerRun(baseDir, pipelineName, runID)
	if !on || err != nil {
		return false
	}
	if run.Scheme == "file" {
		dir, err := localRunDir(run)
		if err != nil {
			return false
		}
		st, err := os.Stat(filepath.Join(dir, ledgerFile))
		return err == nil && st.Mode().IsRegular()
	}
	_, err = blobio.List(ctx, logPrefix(run))
	return err == nil
}

// localRunDir is the directory of a run folder on the local file system.
func localRunDir(run blobio.Location) (string, error) {
	u, err := url.Parse(run.BucketURL)
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.FromSlash(u.Path), filepath.FromSlash(run.Key)), nil
}

// logPrefix is the prefix of a blob ledger's records in run folder run.
func logPrefix(run blobio.Location) blobio.Location {
	logLoc := blobio.Join(run, "log")
	logLoc.Key += "/"
	return logLoc
}

// ledgerRun is the run folder of a ledger at where.
func ledgerRun(baseDir, where, pipelineName, runID string) (blobio.Location, error) {
	loc, err := blobio.Parse(baseDir, strings.TrimSuffix(where, "/")+"/")
	if err != nil {
		return blobio.Location{}, err
	}
	return blobio.Join(loc, safeName(pipelineName), safeName(runID)), nil
}

// openLedger opens (creating it if needed) the ledger of run runID of
// pipeline name under where, and loads the records of earlier processes.
func openLedger(ctx context.Context, baseDir, where, pipelineName, runID string) (*ledger, error) {
	run, err := ledgerRun(baseDir, where, pipelineName, runID)
	if err != nil {
		return nil, err
	}
	l := &ledger{where: run.String(), count: map[string]int{}, seen: map[string]bool{}, boot: time.Now().UnixNano()}
	if run.Scheme != "file" {
		logLoc := logPrefix(run)
		l.blob = &logLoc
		objs, err := blobio.List(ctx, logLoc)
		if err != nil && !errors.Is(err, blobio.ErrNoMatch) {
			return nil, err
		}
		var buf bytes.Buffer
		for _, o := range objs {
			rc, err := blobio.NewReader(ctx, o.Loc)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(&buf, rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
			buf.WriteByte('\n')
		}
		l.prior, l.origin, _ = parseLedger(&buf)
		l.init()
		return l, nil
	}
	if l.dir, err = localRunDir(run); err != nil {
		return nil, err
	}
	l.where = l.dir
	if err := os.MkdirAll(filepath.Join(l.dir, "spool"), 0o755); err != nil {
		return nil, err
	}
	name := filepath.Join(l.dir, ledgerFile)
	data, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var good int
	l.prior, l.origin, good = parseLedger(bytes.NewReader(data))
	l.init()
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	// Cut a torn last line so that new records start on a line of their own.
	if good < len(data) {
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	l.f = f
	return l, nil
}

// init derives legacy and gate from the prior records.
func (l *ledger) init() {
	for k, r := range l.prior {
		if k != runKey && r.Digest == "" {
			l.legacy = true
		}
	}
	if l.resuming() && !l.legacy {
		l.gate = newResumeGate(l.prior)
	}
}

// parseLedger returns the last record of every chunk, the provenance of the
// first run record that has one, and the length of the prefix made of
// complete lines. Lines that do not parse (a torn last line after a crash)
// are ignored.
func parseLedger(r io.Reader) (map[string]ledgerRecord, *Provenance, int) {
	out := map[string]ledgerRecord{}
	var origin *Provenance
	br := bufio.NewReader(r)
	good := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			good += len(line)
			var rec ledgerRecord
			if json.Unmarshal(line, &rec) == nil && rec.Chunk != "" && rec.State != "" {
				out[rec.Chunk] = rec
				if rec.Chunk == runKey && origin == nil && rec.Provenance != nil {
					origin = rec.Provenance
				}
			}
		}
		if err != nil {
			return out, origin, good
		}
	}
}

// resuming reports whether earlier processes left chunk records.
func (l *ledger) resuming() bool { return l.chunks() > 0 }

// chunks returns how many chunks earlier processes recorded.
func (l *ledger) chunks() int {
	n := len(l.prior)
	if _, ok := l.prior[runKey]; ok {
		n--
	}
	return n
}

// unseen returns the chunks of earlier processes whose job (or REST
// request) may have run and that this process never produced again
// (changed input?).
func (l *ledger) unseen() []ledgerRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ledgerRecord
	for k, r := range l.prior {
		if k == runKey || l.seen[k] {
			continue
		}
		switch r.State {
		case stUploading, stUploaded, stClosed, stFinished, stRESTSending, stRESTDone:
			out = append(out, r)
		}
	}
	return out
}

// key returns the legacy ledger key of a chunk with the given digest (used
// to resume runs whose ledger predates position keys): the n'th chunk with
// the same bytes in this run gets suffix n. Identical chunks are
// interchangeable, so the order in which concurrent Writes draw suffixes
// does not matter.
func (l *ledger) key(digest string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.count[digest]
	l.count[digest] = n + 1
	return fmt.Sprintf("%s.%d", digest, n)
}

// last returns the last record an earlier process wrote for chunk.
func (l *ledger) last(chunk string) (ledgerRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.prior[chunk]
	l.seen[chunk] = true
	return r, ok
}

// append writes rec durably before returning.
func (l *ledger) append(ctx context.Context, rec ledgerRecord) error {
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.blob != nil {
		l.seq++
		name := fmt.Sprintf("%020d-%08d.json", l.boot, l.seq)
		if err := blobio.WriteAll(context.WithoutCancel(ctx), blobio.Join(*l.blob, name), b); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		return nil
	}
	if l.f == nil {
		return errors.New("ledger: closed")
	}
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// spoolDir is where chunks wait until their job finished ("" for blob
// ledgers: the spool stays in a temporary directory).
func (l *ledger) spoolDir() string {
	if l.dir == "" {
		return ""
	}
	return filepath.Join(l.dir, "spool")
}

func (l *ledger) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
