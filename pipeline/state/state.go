// Package state keeps what a long-running bulkflow (the `serve` command)
// must remember about each pipeline between runs and across restarts: small
// JSON documents, the run history and a lease that keeps two processes from
// running the same pipeline at once.
//
// A store lives at a location — a local directory (default
// ".bulkflow/state/") or any blob URL blobio accepts (file://, mem://, s3://,
// gs://, azblob://) — with one folder per pipeline:
//
//	LOCATION/PIPELINE/docs/KEY.json            Get / Put
//	LOCATION/PIPELINE/runs/STARTED-RUNID.json  AppendRun / Runs (one document per run)
//	LOCATION/PIPELINE/reports/RUNID.json       ReportURL (written by the caller)
//	LOCATION/PIPELINE/lease.json               AcquireLease / RenewLease / ReleaseLease
//
// Every document is written with blobio.WriteAll: the object appears whole
// or not at all (a temp file renamed into place locally, a single upload on
// blob stores), so a crash mid-write leaves the previous version valid.
// Run history is append-only (one object per run), so concurrent appends
// never overwrite each other.
//
// # Lease semantics
//
// The lease is a document {holder, expires, generation}. Taking a lease that
// is free or expired means winning the next generation: AcquireLease
// creates the claim object LOCATION/PIPELINE/lease-claims/GENERATION with
// blobio.CreateExclusive (a conditional write on S3, GCS and Azure, an
// O_EXCL-style hard link on local disks), and only the one process whose
// create succeeds writes the lease document; every other contender for the
// same generation gets false. So two processes, on one machine or several
// sharing a blob state, never both take the same free lease. A holder
// extends its lease with RenewLease (serve renews every ttl/3); a holder
// that died loses it when `expires` passes, or at once to TakeOverLease
// when the caller knows it died (serve: same host, process gone).
//
// # Fencing
//
// The generation is the lease's fencing token. The holder works through
// the store AcquireFenced returns, bound to the generation it won: every write
// of that store (Put: watermarks, the in-flight run; AppendRun: run
// history; and objects written beside the store, such as sync manifests
// and reports, after a CheckFence) first reads the lease and is refused
// with ErrFenced when a newer generation has taken it since. So a holder
// paused past its ttl (a long GC pause, a stopped VM, a network partition)
// cannot overwrite what the next holder wrote when it wakes up; its
// renewal fails with ErrLeaseLost and serve cancels the run. Blob stores
// offer no write conditioned on another object, so the check and the
// write are two steps: the window left is the duration of one small write
// (milliseconds against a ttl of minutes), not the whole pause. Within one
// process the check and a Put or AppendRun are atomic with lease changes.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// DefaultLocation is where state is kept when no location is given.
const DefaultLocation = ".bulkflow/state/"

// ErrLeaseLost is returned by RenewLease when the lease is held by someone
// else (it expired and was taken over) or was released.
var ErrLeaseLost = errors.New("lease lost")

// ErrFenced is returned by the writes of a fenced store (see # Fencing) once
// a newer lease generation has been taken: this holder's lease expired
// and another holder owns the pipeline's state now.
var ErrFenced = errors.New("lease taken over by a newer holder")

// Store is the state of one pipeline. Its methods are safe for concurrent
// use.
type Store struct {
	// Now returns the current time for lease expiry; default time.Now. Set
	// it before using the store (tests inject a fake clock).
	Now func() time.Time

	location string          // as given to Open (normalized)
	pipeline string          // pipeline name
	prefix   blobio.Location // LOCATION/PIPELINE/
	fence    int64           // lease generation writes are bound to; 0 = none
}

// RunRecord is one run in the history.
type RunRecord struct {
	RunID      string          `json:"run_id"`
	Status     string          `json:"status"`
	Trigger    string          `json:"trigger,omitempty"` // "schedule", "manual", ...
	Holder     string          `json:"holder,omitempty"`  // the process that ran it (host:pid)
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Counts     pipeline.Counts `json:"counts"`
	// LeaseGeneration is the lease generation the run was recorded under
	// (set by AppendRun of a fenced store).
	LeaseGeneration int64    `json:"lease_generation,omitempty"`
	ReportURL       string   `json:"report_url,omitempty"`
	DeadLetters     []string `json:"dead_letters,omitempty"`
	Errors          []string `json:"errors,omitempty"`
}

// Lease is the lease document.
type Lease struct {
	Holder  string    `json:"holder"` // "" when released
	Expires time.Time `json:"expires"`
	// Generation counts the times the lease was taken; the holder of
	// generation g won the claim object lease-claims/g.
	Generation int64 `json:"generation"`
	// Node is LocalNode of the process that took the lease: it tells
	// whether the holder's process id can be looked up from here.
	Node string `json:"node,omitempty"`
}

// LocalNode identifies where this process's ids are valid: on Linux the
// boot id and the pid namespace ("BOOT_ID/pid:[INODE]"), so that two
// containers sharing a host name (sidecars of one pod) or a host after a
// reboot are told apart. It is "" where it cannot be told; a lease whose
// Node is "" or another one's is never taken from a "dead" process.
var LocalNode = sync.OnceValue(func() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
})

// Open returns the store of pipeline at location ("" means
// DefaultLocation). The pipeline name becomes a path element: letters,
// digits, '.', '_' and '-' only.
func Open(ctx context.Context, location, pipelineName string) (*Store, error) {
	if location == "" {
		location = DefaultLocation
	}
	if !validName(pipelineName) {
		return nil, fmt.Errorf("state: pipeline name %q cannot name a folder (letters, digits, '.', '_' and '-' only)", pipelineName)
	}
	root, err := blobio.Parse("", location)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if blobio.HasGlob(root.Key) {
		return nil, fmt.Errorf("state: location %q must not hold a glob pattern", location)
	}
	// Opening the bucket checks the scheme and, for local directories,
	// creates the folder.
	_, closeFn, err := blobio.OpenBucket(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	closeFn()
	return &Store{location: location, pipeline: pipelineName, prefix: blobio.Join(root, pipelineName)}, nil
}

// Pipeline returns the pipeline name the store belongs to.
func (s *Store) Pipeline() string { return s.pipeline }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func validName(n string) bool {
	if n == "" || n == "." || n == ".." || len(n) > 128 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Object returns the location of an object of the pipeline's state that is
// not a JSON document (sync manifests, for example): LOCATION/PIPELINE/
// followed by parts. Callers write it atomically (blobio writers are).
func (s *Store) Object(parts ...string) blobio.Location { return s.loc(parts...) }

func (s *Store) loc(parts ...string) blobio.Location {
	return blobio.Join(s.prefix, parts...)
}

// readJSON decodes the object at l into v; found is false when it does not
// exist.
func readJSON(ctx context.Context, l blobio.Location, v any) (bool, error) {
	found, err := blobio.ReadJSON(ctx, l, v)
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	return found, nil
}

func writeJSON(ctx context.Context, l blobio.Location, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encode %s: %w", l, err)
	}
	if err := blobio.WriteAll(ctx, l, append(data, '\n')); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Get decodes the document key into v. It reports false (and leaves v
// alone) when the document does not exist. Keys are names: letters, digits,
// '.', '_' and '-'.
func (s *Store) Get(ctx context.Context, key string, v any) (bool, error) {
	if !validName(key) {
		return false, fmt.Errorf("state: invalid key %q", key)
	}
	return readJSON(ctx, s.loc("docs", key+".json"), v)
}

// Put writes v as the JSON document key, atomically replacing any previous
// version. A fenced store refuses with ErrFenced once its generation was
// superseded.
func (s *Store) Put(ctx context.Context, key string, v any) error {
	if !validName(key) {
		return fmt.Errorf("state: invalid key %q", key)
	}
	return s.fencedWrite(ctx, "document "+key, func() error { return writeJSON(ctx, s.loc("docs", key+".json"), v) })
}

// fenced returns a store on the same state whose writes carry the lease
// generation gen: each is refused with ErrFenced when the lease has been
// taken by a newer generation. The store Open returns is not fenced and
// writes unconditionally (single runs of `bulkflow run` hold no lease).
func (s *Store) fenced(gen int64) *Store {
	c := *s
	c.fence = gen
	return &c
}

// Generation returns the lease generation the store is bound to (0 when
// it is not fenced).
func (s *Store) Generation() int64 { return s.fence }

// CheckFence reports ErrFenced when the store is fenced and a newer lease
// generation has been taken. Callers that write objects of the state
// themselves (sync manifests, reports) call it just before committing the
// object; on an unfenced store it returns nil at once.
func (s *Store) CheckFence(ctx context.Context) error {
	if s.fence == 0 {
		return nil
	}
	_, unlock := s.leaseLock()
	defer unlock()
	return s.checkFenceLocked(ctx, "object")
}

// fencedWrite runs write after checking the fence, atomically with lease
// changes in this process.
func (s *Store) fencedWrite(ctx context.Context, what string, write func() error) error {
	if s.fence == 0 {
		return write()
	}
	_, unlock := s.leaseLock()
	defer unlock()
	if err := s.checkFenceLocked(ctx, what); err != nil {
		return err
	}
	return write()
}

func (s *Store) checkFenceLocked(ctx context.Context, what string) error {
	var cur Lease
	if _, err := readJSON(ctx, s.loc("lease.json"), &cur); err != nil {
		return fmt.Errorf("state: pipeline %q: check the lease before writing %s: %w", s.pipeline, what, err)
	}
	if cur.Generation > s.fence {
		return fmt.Errorf("state: pipeline %q: write of %s refused: %w: this process holds lease generation %d, "+
			"but generation %d was taken by %q (this process was paused or cut off past its lease); "+
			"the newer holder owns the state now, nothing of this run is recorded", s.pipeline, what, ErrFenced, s.fence, cur.Generation, cur.Holder)
	}
	return nil
}

// runKeyTime orders run documents by start time when listed by key.
const runKeyTime = "20060102T150405.000000000Z"

// AppendRun adds a run to the history. Appending the same run id with the
// same start time again replaces it.
func (s *Store) AppendRun(ctx context.Context, rec RunRecord) error {
	if !validName(rec.RunID) {
		return fmt.Errorf("state: invalid run id %q", rec.RunID)
	}
	name := rec.StartedAt.UTC().Format(runKeyTime) + "-" + rec.RunID + ".json"
	if s.fence != 0 {
		rec.LeaseGeneration = s.fence
	}
	return s.fencedWrite(ctx, "run "+rec.RunID, func() error { return writeJSON(ctx, s.loc("runs", name), rec) })
}

// Runs returns the last n runs (all when n <= 0), newest first.
func (s *Store) Runs(ctx context.Context, n int) ([]RunRecord, error) {
	dir := s.loc("runs") // key without trailing "/": add it for List
	dir.Key += "/"
	objs, err := blobio.List(ctx, dir)
	if err != nil {
		if errors.Is(err, blobio.ErrNoMatch) {
			return nil, nil
		}
		return nil, fmt.Errorf("state: %w", err)
	}
	var keys []string
	for _, o := range objs {
		if strings.HasSuffix(o.Loc.Key, ".json") {
			keys = append(keys, o.Loc.Key)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	if n > 0 && len(keys) > n {
		keys = keys[:n]
	}
	out := make([]RunRecord, 0, len(keys))
	for _, k := range keys {
		var rec RunRecord
		found, err := readJSON(ctx, s.prefix.WithKey(k), &rec)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, rec)
		}
	}
	return out, nil
}

// ReportURL returns the location string (a path or URL that blobio.Parse
// accepts, query parameters of the store's location kept) where the JSON
// report of a run is kept: LOCATION/PIPELINE/reports/RUNID.json.
func (s *Store) ReportURL(runID string) (string, error) {
	if !validName(runID) {
		return "", fmt.Errorf("state: invalid run id %q", runID)
	}
	elems := []string{s.pipeline, "reports", runID + ".json"}
	if !strings.Contains(s.location, "://") {
		return filepath.Join(append([]string{s.location}, elems...)...), nil
	}
	u, err := url.Parse(s.location)
	if err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	// file://rel/dir keeps its host (the first element of a relative path).
	u.Path = path.Join(append([]string{"/", u.Path}, elems...)...)
	u.RawPath = ""
	return u.String(), nil
}

// leaseLocks serializes lease operations on the same lease object within
// the process (several Stores may point at the same location).
var leaseLocks sync.Map // bucket URL + key -> *sync.Mutex

func (s *Store) leaseLock() (blobio.Location, func()) {
	l := s.loc("lease.json")
	mu, _ := leaseLocks.LoadOrStore(l.BucketURL+"\x00"+l.Key, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return l, mu.(*sync.Mutex).Unlock
}

// lockLease checks the arguments of a lease change, takes the process's
// lock of the lease and reads it; on success the caller calls unlock.
func (s *Store) lockLease(ctx context.Context, holder string, ttl time.Duration) (blobio.Location, Lease, func(), error) {
	if holder == "" || ttl <= 0 {
		return blobio.Location{}, Lease{}, nil, errors.New("state: a lease needs a holder and a positive ttl")
	}
	l, unlock := s.leaseLock()
	var cur Lease
	if _, err := readJSON(ctx, l, &cur); err != nil {
		unlock()
		return blobio.Location{}, Lease{}, nil, err
	}
	return l, cur, unlock, nil
}

// ReadLease returns the current lease document (zero when none).
func (s *Store) ReadLease(ctx context.Context) (Lease, error) {
	var le Lease
	_, err := readJSON(ctx, s.loc("lease.json"), &le)
	return le, err
}

// AcquireLease takes the pipeline's lease for holder until now+ttl. It
// reports false, with no error, when another holder has an unexpired lease
// or won the race for it. Acquiring a lease one already holds extends it
// (same generation). A holder that writes state under the lease uses
// AcquireFenced instead.
func (s *Store) AcquireLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	_, ok, err := s.AcquireFenced(ctx, holder, ttl)
	return ok, err
}

// AcquireFenced is AcquireLease returning, on success, the store bound to
// the generation won (see # Fencing in the package doc): work under the lease
// through it.
func (s *Store) AcquireFenced(ctx context.Context, holder string, ttl time.Duration) (*Store, bool, error) {
	l, cur, unlock, err := s.lockLease(ctx, holder, ttl)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	now := s.now()
	switch {
	case cur.Holder == holder && now.Before(cur.Expires):
		cur.Expires = now.Add(ttl).UTC()
		if err := writeJSON(ctx, l, cur); err != nil {
			return nil, false, err
		}
		return s.fenced(cur.Generation), true, nil
	case cur.Holder != "" && now.Before(cur.Expires):
		return nil, false, nil
	}
	return s.claimLocked(ctx, l, holder, cur.Generation+1, now, ttl)
}

// TakeOverLease takes the lease from a holder the caller knows is dead,
// before it expires: it succeeds only while the lease is still dead's
// (same holder and generation; a compare-and-swap on the generation), and
// like AcquireLease only one of several processes taking over the same
// generation wins. It reports false, with no error, when the lease has
// moved on or another process won; on success it returns the store bound
// to the new generation, as AcquireFenced does.
func (s *Store) TakeOverLease(ctx context.Context, holder string, dead Lease, ttl time.Duration) (*Store, bool, error) {
	l, cur, unlock, err := s.lockLease(ctx, holder, ttl)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if cur.Holder != dead.Holder || cur.Generation != dead.Generation {
		return nil, false, nil
	}
	return s.claimLocked(ctx, l, holder, cur.Generation+1, s.now(), ttl)
}

// keptClaims is how many recent claim objects stay: a contender must have
// read the lease that many generations ago to win a deleted claim.
const keptClaims = 64

// claimLocked wins generation gen for holder by creating its claim object
// exclusively, then writes the lease document.
func (s *Store) claimLocked(ctx context.Context, l blobio.Location, holder string, gen int64, now time.Time, ttl time.Duration) (*Store, bool, error) {
	claim := s.loc("lease-claims", fmt.Sprintf("%020d", gen))
	if err := blobio.CreateExclusive(ctx, claim, []byte(holder+"\n")); err != nil {
		if errors.Is(err, blobio.ErrExists) {
			return nil, false, nil // another process took this generation
		}
		return nil, false, fmt.Errorf("state: lease: %w", err)
	}
	// A process that read the lease long ago may win the claim of a
	// generation whose claim object was already cleaned up: never move the
	// generation backwards.
	var cur Lease
	if _, err := readJSON(ctx, l, &cur); err != nil {
		return nil, false, err
	}
	if cur.Generation >= gen {
		return nil, false, nil
	}
	le := Lease{Holder: holder, Expires: now.Add(ttl).UTC(), Generation: gen, Node: LocalNode()}
	if err := writeJSON(ctx, l, le); err != nil {
		return nil, false, err
	}
	if gen > keptClaims { // keep the claim objects from piling up
		blobio.Delete(ctx, s.loc("lease-claims", fmt.Sprintf("%020d", gen-keptClaims)))
	}
	return s.fenced(gen), true, nil
}

// RenewLease extends holder's lease to now+ttl. It fails with ErrLeaseLost
// when the lease is no longer holder's (released, or expired and taken
// over; on a fenced store also when its generation is not the store's). A
// lease that expired but was not taken over is renewed.
func (s *Store) RenewLease(ctx context.Context, holder string, ttl time.Duration) error {
	l, cur, unlock, err := s.lockLease(ctx, holder, ttl)
	if err != nil {
		return err
	}
	defer unlock()
	if cur.Holder != holder || (s.fence != 0 && cur.Generation != s.fence) {
		return fmt.Errorf("state: pipeline %q: %w (now held by %q, generation %d)", s.pipeline, ErrLeaseLost, cur.Holder, cur.Generation)
	}
	cur.Expires = s.now().Add(ttl).UTC()
	return writeJSON(ctx, l, cur)
}

// KeepLease renews holder's lease every ttl/3 in a goroutine of its own
// until the returned stop function is called (stop waits for it to exit).
// Renewals go on after ctx is cancelled, so that a run draining after a
// Ctrl-C keeps its lease; only stop ends them. Each failed renewal is
// passed to onErr; after ErrLeaseLost renewing stops (the lease is
// someone else's now) and onErr is not called again.
func (s *Store) KeepLease(ctx context.Context, holder string, ttl time.Duration, onErr func(error)) (stop func()) {
	bg := context.WithoutCancel(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(ttl/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				err := s.RenewLease(bg, holder, ttl)
				if err == nil {
					continue
				}
				onErr(err)
				if errors.Is(err, ErrLeaseLost) {
					return
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// ReleaseLease gives up holder's lease. Releasing a lease held by someone
// else (or by no one, or, on a fenced store, under another generation)
// does nothing.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	l, unlock := s.leaseLock()
	defer unlock()
	var cur Lease
	if _, err := readJSON(ctx, l, &cur); err != nil {
		return err
	}
	if cur.Holder != holder || holder == "" || (s.fence != 0 && cur.Generation != s.fence) {
		return nil
	}
	return writeJSON(ctx, l, Lease{Generation: cur.Generation})
}
