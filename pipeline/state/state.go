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
// that died loses it when `expires` passes. The one remaining hazard is
// inherent to leases without fencing tokens: a holder paused for longer
// than its ttl may run beside the next holder until its renewal fails
// (RenewLease then returns ErrLeaseLost and serve cancels the run).
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// DefaultLocation is where state is kept when no location is given.
const DefaultLocation = ".bulkflow/state/"

// ErrLeaseLost is returned by RenewLease when the lease is held by someone
// else (it expired and was taken over) or was released.
var ErrLeaseLost = errors.New("lease lost")

// Store is the state of one pipeline. Its methods are safe for concurrent
// use.
type Store struct {
	// Now returns the current time for lease expiry; default time.Now. Set
	// it before using the store (tests inject a fake clock).
	Now func() time.Time

	location string          // as given to Open (normalized)
	pipeline string          // pipeline name
	prefix   blobio.Location // LOCATION/PIPELINE/
}

// RunRecord is one run in the history.
type RunRecord struct {
	RunID       string          `json:"run_id"`
	Status      string          `json:"status"`
	Trigger     string          `json:"trigger,omitempty"` // "schedule", "manual", ...
	Holder      string          `json:"holder,omitempty"`  // the process that ran it (host:pid)
	StartedAt   time.Time       `json:"started_at"`
	FinishedAt  time.Time       `json:"finished_at"`
	Counts      pipeline.Counts `json:"counts"`
	ReportURL   string          `json:"report_url,omitempty"`
	DeadLetters []string        `json:"dead_letters,omitempty"`
	Errors      []string        `json:"errors,omitempty"`
}

// Lease is the lease document.
type Lease struct {
	Holder  string    `json:"holder"` // "" when released
	Expires time.Time `json:"expires"`
	// Generation counts the times the lease was taken; the holder of
	// generation g won the claim object lease-claims/g.
	Generation int64 `json:"generation"`
}

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
	r, err := blobio.NewReader(ctx, l)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return false, nil
		}
		return false, fmt.Errorf("state: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return false, fmt.Errorf("state: read %s: %w", l, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("state: decode %s: %w", l, err)
	}
	return true, nil
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
// version.
func (s *Store) Put(ctx context.Context, key string, v any) error {
	if !validName(key) {
		return fmt.Errorf("state: invalid key %q", key)
	}
	return writeJSON(ctx, s.loc("docs", key+".json"), v)
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
	return writeJSON(ctx, s.loc("runs", name), rec)
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

// ReadLease returns the current lease document (zero when none).
func (s *Store) ReadLease(ctx context.Context) (Lease, error) {
	var le Lease
	_, err := readJSON(ctx, s.loc("lease.json"), &le)
	return le, err
}

// AcquireLease takes the pipeline's lease for holder until now+ttl. It
// reports false, with no error, when another holder has an unexpired lease
// or won the race for it. Acquiring a lease one already holds extends it.
func (s *Store) AcquireLease(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	if holder == "" || ttl <= 0 {
		return false, errors.New("state: a lease needs a holder and a positive ttl")
	}
	l, unlock := s.leaseLock()
	defer unlock()
	var cur Lease
	if _, err := readJSON(ctx, l, &cur); err != nil {
		return false, err
	}
	now := s.now()
	switch {
	case cur.Holder == holder && now.Before(cur.Expires):
		cur.Expires = now.Add(ttl).UTC()
		return true, writeJSON(ctx, l, cur)
	case cur.Holder != "" && now.Before(cur.Expires):
		return false, nil
	}
	gen := cur.Generation + 1
	claim := s.loc("lease-claims", fmt.Sprintf("%020d", gen))
	if err := blobio.CreateExclusive(ctx, claim, []byte(holder+"\n")); err != nil {
		if errors.Is(err, blobio.ErrExists) {
			return false, nil // another process took this generation
		}
		return false, fmt.Errorf("state: lease: %w", err)
	}
	if err := writeJSON(ctx, l, Lease{Holder: holder, Expires: now.Add(ttl).UTC(), Generation: gen}); err != nil {
		return false, err
	}
	if gen > 2 { // keep the claim objects from piling up
		blobio.Delete(ctx, s.loc("lease-claims", fmt.Sprintf("%020d", gen-2)))
	}
	return true, nil
}

// RenewLease extends holder's lease to now+ttl. It fails with ErrLeaseLost
// when the lease is no longer holder's (released, or expired and taken
// over). A lease that expired but was not taken over is renewed.
func (s *Store) RenewLease(ctx context.Context, holder string, ttl time.Duration) error {
	if holder == "" || ttl <= 0 {
		return errors.New("state: a lease needs a holder and a positive ttl")
	}
	l, unlock := s.leaseLock()
	defer unlock()
	var cur Lease
	if _, err := readJSON(ctx, l, &cur); err != nil {
		return err
	}
	if cur.Holder != holder {
		return fmt.Errorf("state: pipeline %q: %w (now held by %q)", s.pipeline, ErrLeaseLost, cur.Holder)
	}
	cur.Expires = s.now().Add(ttl).UTC()
	return writeJSON(ctx, l, cur)
}

// ReleaseLease gives up holder's lease. Releasing a lease held by someone
// else (or by no one) does nothing.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	l, unlock := s.leaseLock()
	defer unlock()
	var cur Lease
	if _, err := readJSON(ctx, l, &cur); err != nil {
		return err
	}
	if cur.Holder != holder || holder == "" {
		return nil
	}
	return writeJSON(ctx, l, Lease{Generation: cur.Generation})
}
