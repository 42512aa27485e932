package pipeline

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Schedule is a pipeline's `schedule:`: when `bulkflow serve` runs it.
type Schedule struct {
	// Cron is a 5-field cron expression or a descriptor such as @hourly or
	// "@every 15m".
	Cron string
	// TimeZone is an IANA zone name ("" = UTC... see pipeline/schedule).
	TimeZone string
	Pos      Position
}

// Incremental is a source stage's `incremental:`: read only rows whose
// Cursor field is greater than the watermark committed by the last
// successful run.
type Incremental struct {
	Cursor string
	// Lookback, when set, reads again the rows whose cursor is at most
	// this far below the watermark: a duration ("15m", "2h", "3d") for a
	// date or timestamp cursor, a number for an int or float one. It
	// catches rows committed after a run read past their cursor value (a
	// transaction that stamped updated_at when it began and committed
	// later). Every sink those rows reach must have sync: {mode: changed},
	// whose manifest filters the rows it already holds (Graph.Check).
	Lookback string
	Pos      Position
}

// SyncSpec is a sink stage's `sync:`: send only new and changed rows, and
// optionally delete keys that left the source.
type SyncSpec struct {
	// Mode is "changed" (the only mode so far; "all" is the same as no
	// sync: block).
	Mode string `yaml:"mode"`
	// Key is the field (of the sink's input) identifying a record, e.g.
	// External_Id__c.
	Key string `yaml:"key"`
	// DeleteMissing sends deletes for keys that were loaded by an earlier
	// run and are no longer in the source.
	DeleteMissing bool `yaml:"delete_missing"`
	// MaxDeletes guards DeleteMissing: an absolute number ("500") or a
	// percentage of the keys in the manifest ("5%"). Past it the run stops
	// before sending anything. Default "10%".
	MaxDeletes string `yaml:"max_deletes"`
	// Log is a blob URL or directory prefix where each run writes its sync
	// log as Parquet ("" = no sync log).
	Log string `yaml:"log"`
	// Seed is where the first manifest comes from when the state store has
	// none: "" (none: the first run sends every row) or "salesforce" (the
	// target object's records, so the first run sends only rows whose
	// values differ; rows are then hashed as Salesforce stores their
	// values, see pipeline/sync/remote). It also enables
	// `bulkflow run --reconcile`.
	Seed string   `yaml:"seed"`
	Pos  Position `yaml:"-"`
}

// SyncOp is what a sync decided for a key.
type SyncOp int

// The sync operations.
const (
	SyncNew       SyncOp = iota + 1 // key not in the manifest: send
	SyncChanged                     // key in the manifest with another hash (or unsynced): send
	SyncUnchanged                   // same hash as last loaded: filtered
	SyncMissing                     // in the manifest, not in this run: delete when delete_missing
)

var syncOpNames = [...]string{"", "new", "changed", "unchanged", "missing"}

// String returns "new", "changed", "unchanged" or "missing".
func (o SyncOp) String() string {
	if o > 0 && int(o) < len(syncOpNames) {
		return syncOpNames[o]
	}
	return "SyncOp(?)"
}

// Syncer carries out a sink stage's `sync:` block (pipeline/sync/syncer
// implements it; the engine only knows this interface). The engine calls
// every method from the sink stage's goroutine except Outcome, which may be
// called from several sink writers at once.
type Syncer interface {
	// Add spools a row that reached the sink stage. A non-nil error
	// (a *RowError) dead-letters the row with that reason.
	Add(row Row, origin Origin) error
	// Diff is called once all input has arrived. It decides, before
	// calling anything, whether the run may go on (for example the
	// max_deletes guard) and returns an error if not. Then it calls emit
	// for every spooled row (SyncNew and SyncChanged rows are sent,
	// SyncUnchanged rows are counted as filtered), drop for rows to
	// dead-letter (a duplicate key), and del for every key to delete
	// (only with delete_missing), in key order. Diff may be called again
	// (the engine does so to drain a run that failed half-way) and must
	// then pass the same rows in the same order.
	//
	// A SyncUnchanged row may be passed as a nil row with a zero origin
	// (the syncer need not decode, or even keep, what nobody sends): the
	// engine only counts it as filtered, also when it is stopping or
	// draining. An unchanged row is the row the manifest already holds,
	// so a stopped run has nothing of it to send again.
	Diff(ctx context.Context, emit func(op SyncOp, row Row, origin Origin) error,
		drop func(row Row, origin Origin, err error) error, del func(key, id string) error) error
	// Outcome records what happened to a sent row (op SyncNew or
	// SyncChanged, key "", id the destination's record id when known) or
	// to a delete (op SyncMissing, row nil, key set). err is nil when it
	// succeeded.
	Outcome(op SyncOp, row Row, key, id string, err error)
	// Finish is called once at the end of the run. When commit is true
	// (the run finished without failing or being cancelled) the new state
	// is committed; otherwise the previous state is left untouched.
	// Finish returns a summary for the run report.
	Finish(ctx context.Context, commit bool) (any, error)
	// Close releases temporary files. It is safe after Finish.
	Close() error
}

// IDWriter is implemented by sinks that learn the destination's id for
// each loaded row (Salesforce record ids). The engine uses WriteIDs instead
// of Write when it needs the ids (a sync stage). ids has one entry per row
// of b ("" for a failed row or when unknown); the error means the same as
// Write's.
type IDWriter interface {
	WriteIDs(ctx context.Context, b *Batch) (ids []string, err error)
}

// Deleter is implemented by sinks that can delete records by destination
// id (for `sync: {delete_missing: true}`). errs has one entry per id: nil
// when the record was deleted. A non-nil error means none was.
type Deleter interface {
	Delete(ctx context.Context, ids []string) (errs []error, err error)
}

// KeyResolver is implemented by sinks that can find destination records by
// the value of a field. A mirror (`sync: {delete_missing: true}`) uses it
// for a missing key whose record id the manifest does not hold (a key
// loaded by a resumed run, settled as loaded by an operator, or stored by
// a run that was killed): the engine looks the key up by the sync key
// field and deletes the record found through Deleter. Without it such a
// key's delete fails, and the key stays in the manifest.
type KeyResolver interface {
	// ResolveKeys returns, for each key, the ids of the records whose
	// field holds it (none, one, or several), in one slice per key:
	// len(ids) == len(keys). A non-nil error means no key was resolved.
	ResolveKeys(ctx context.Context, field string, keys []string) (ids [][]string, err error)
}

// StateStore is the part of a state store (pipeline/state) the engine uses
// for incremental watermarks. Documents are small JSON values written
// atomically.
type StateStore interface {
	Get(ctx context.Context, key string, v any) (bool, error)
	Put(ctx context.Context, key string, v any) error
}

// ParseMaxDeletes parses a max_deletes value: "500" (a number of records)
// or "5%" (a percentage of the keys in the manifest). n is -1 for a
// percentage.
func ParseMaxDeletes(s string) (n int64, pct float64, err error) {
	t := strings.TrimSpace(s)
	bad := fmt.Errorf("max_deletes %q must be a whole number of records (500) or a percentage of the synced keys (5%%)", s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f >= 0 && f <= 100) {
			return 0, 0, bad
		}
		return -1, f, nil
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, 0, bad
	}
	return v, 0, nil
}

// DeleteLimit returns how many deletes max_deletes allows when the
// manifest holds manifestKeys keys (a percentage is rounded down).
func (s *SyncSpec) DeleteLimit(manifestKeys int64) int64 {
	n, pct, err := ParseMaxDeletes(s.MaxDeletes)
	if err != nil {
		return 0
	}
	if n >= 0 {
		return n
	}
	return int64(math.Floor(pct / 100 * float64(manifestKeys)))
}
