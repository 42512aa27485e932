// Package syncer carries out the `sync:` block of a sink stage: it is the
// pipeline.Syncer the engine calls. It keeps, in the pipeline's state
// store, a manifest of key → hash of the row last loaded (pipeline/changes),
// sends only new and changed rows, deletes keys that left the source when
// delete_missing is set (guarded by max_deletes), commits the new manifest
// only when the run ends without failing, and writes a Parquet sync log
// (pipeline/synclog).
//
// The manifest of stage S lives at STATE/PIPELINE/sync/S.manifest.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/changes"
	"github.com/bulkflow/bulkflow/pipeline/sync/synclog"
)

// CodeDuplicateKey is the dead-letter code of a row whose sync key was
// already seen in the same run.
const CodeDuplicateKey = "duplicate_key"

// Options configures Open.
type Options struct {
	// TempDir holds the spill files of the diff ("" = os.TempDir()).
	TempDir string
	// MemLimit is the diff's in-memory buffer before it spills (0 = the
	// pipeline/changes default).
	MemLimit int
	// Now is the clock of sync log records; default time.Now.
	Now func() time.Time
}

// Summary is a sync stage's part of the run report.
type Summary struct {
	Key          string `json:"key"`
	Manifest     string `json:"manifest"`
	ManifestKeys int64  `json:"manifest_keys_before"`
	// ManifestAfter is the number of keys in the committed manifest (0 when
	// nothing was committed).
	ManifestAfter int64  `json:"manifest_keys_after"`
	New           int64  `json:"new"`
	Changed       int64  `json:"changed"`
	Unchanged     int64  `json:"unchanged"`
	Missing       int64  `json:"missing"`
	Duplicates    int64  `json:"duplicates"`
	Loaded        int64  `json:"loaded"`
	Failed        int64  `json:"failed"`
	Deleted       int64  `json:"deleted"`
	DeleteFailed  int64  `json:"delete_failed"`
	Committed     bool   `json:"committed"`
	Log           string `json:"sync_log,omitempty"`
}

// Syncer implements pipeline.Syncer for one sink stage.
type Syncer struct {
	spec     *pipeline.SyncSpec
	stage    string
	keyIdx   int
	loc      blobio.Location
	st       *state.Store      // fenced under serve: the manifest is committed only under the current lease
	old      *changes.Manifest // nil on the first run
	differ   *changes.Differ
	log      *synclog.Writer // nil without sync.log
	runID    string
	now      func() time.Time
	counts   changes.Counts
	diffDone bool

	loaded, failed, deleted, deleteFailed, dups atomic.Int64
	mu                                          sync.Mutex
	logErr                                      error
}

// ManifestLocation returns where the manifest of a sync stage lives.
func ManifestLocation(st *state.Store, stage string) blobio.Location {
	return st.Object("sync", stage+".manifest")
}

// Open opens the syncer of a sink stage: it reads and verifies the
// manifest (a corrupt manifest or one from a newer bulkflow is an error
// before any row moves) and starts the sync log.
func Open(ctx context.Context, st *state.Store, env *pipeline.Env, stage *pipeline.StageSpec, in *pipeline.Schema, o Options) (*Syncer, error) {
	spec := stage.Sync
	keyIdx := in.Index(spec.Key)
	if keyIdx < 0 {
		return nil, fmt.Errorf("sync key %q is not a field of the sink's input (%s)", spec.Key, in)
	}
	s := &Syncer{spec: spec, stage: stage.Name, keyIdx: keyIdx, loc: ManifestLocation(st, stage.Name), st: st, runID: env.RunID, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.old, err = changes.OpenManifest(ctx, s.loc); err != nil {
		return nil, fmt.Errorf("sync manifest: %w", err)
	}
	if s.differ, err = changes.NewDiffer(in, spec.Key, changes.Options{Dir: o.TempDir, MemLimit: o.MemLimit}); err != nil {
		return nil, err
	}
	if spec.Log != "" {
		if s.log, err = synclog.Create(ctx, env.BaseDir, spec.Log, env.Pipeline, env.RunID, s.now()); err != nil {
			s.differ.Close()
			return nil, fmt.Errorf("sync log: %w", err)
		}
	}
	return s, nil
}

// Add implements pipeline.Syncer.
func (s *Syncer) Add(row pipeline.Row, origin pipeline.Origin) error {
	return s.differ.Add(row, origin)
}

// Diff implements pipeline.Syncer. The first call checks max_deletes
// before passing on anything.
func (s *Syncer) Diff(ctx context.Context, emit func(op pipeline.SyncOp, row pipeline.Row, origin pipeline.Origin) error,
	drop func(row pipeline.Row, origin pipeline.Origin, err error) error, del func(key, id string) error) error {
	if !s.diffDone {
		c, err := s.differ.Diff(ctx, s.old, nil, func(string, pipeline.Row, pipeline.Origin) error { return nil })
		if err != nil {
			return err
		}
		s.counts, s.diffDone = c, true
		if s.spec.DeleteMissing {
			if limit := s.spec.DeleteLimit(c.Manifest); c.Missing > limit {
				return fmt.Errorf("%d of the %d synced keys are no longer in the source, more than max_deletes %s allows (%d); "+
					"nothing was sent or deleted and the manifest is unchanged. If the source is complete and the deletes are "+
					"intended, raise max_deletes for one run; if the source is truncated, fix it first",
					c.Missing, c.Manifest, s.spec.MaxDeletes, limit)
			}
		}
	}
	_, err := s.differ.Diff(ctx, s.old, func(op changes.Op, key string, row pipeline.Row, origin pipeline.Origin, oldID string) error {
		switch op {
		case changes.OpNew:
			return emit(pipeline.SyncNew, row, origin)
		case changes.OpChanged:
			return emit(pipeline.SyncChanged, row, origin)
		case changes.OpUnchanged:
			return emit(pipeline.SyncUnchanged, row, origin)
		case changes.OpMissing:
			if !s.spec.DeleteMissing {
				return nil
			}
			if oldID == "" {
				s.Outcome(pipeline.SyncMissing, nil, key, "", errors.New("no Salesforce id is known for this key (it was loaded by a resumed run); delete it by hand"))
				return nil
			}
			return del(key, oldID)
		}
		return fmt.Errorf("sync: unknown op %v", op)
	}, func(key string, row pipeline.Row, origin pipeline.Origin) error {
		s.dups.Add(1)
		return drop(row, origin, &pipeline.RowError{Code: CodeDuplicateKey, Field: s.spec.Key,
			Err: fmt.Errorf("sync key %s=%q appears more than once in this run; the first row with it was kept", s.spec.Key, key)})
	})
	return err
}

// Outcome implements pipeline.Syncer. It is safe for concurrent use.
func (s *Syncer) Outcome(op pipeline.SyncOp, row pipeline.Row, key, id string, err error) {
	rec := synclog.Record{RunID: s.runID, Time: s.now(), SalesforceID: id}
	var cop changes.Op
	switch op {
	case pipeline.SyncMissing:
		cop, rec.Operation = changes.OpMissing, "delete"
		if err == nil {
			s.deleted.Add(1)
			rec.Outcome = "deleted"
		} else {
			s.deleteFailed.Add(1)
			rec.Outcome = "delete_failed"
		}
	default:
		key = pipeline.Text(row[s.keyIdx])
		cop, rec.Operation = changes.OpNew, "new"
		if op == pipeline.SyncChanged {
			cop, rec.Operation = changes.OpChanged, "changed"
		}
		if err == nil {
			s.loaded.Add(1)
			rec.Outcome = "loaded"
		} else {
			s.failed.Add(1)
			rec.Outcome = "failed"
		}
	}
	rec.Key = key
	if err != nil {
		rec.ErrorCode, rec.Error = codeOf(err), err.Error()
	}
	oerr := s.differ.Outcome(key, cop, err == nil, id)
	if s.log != nil && oerr == nil {
		oerr = s.log.Write(rec)
	}
	if oerr != nil {
		s.mu.Lock()
		if s.logErr == nil {
			s.logErr = oerr
		}
		s.mu.Unlock()
	}
}

func codeOf(err error) string {
	var re *pipeline.RowError
	if errors.As(err, &re) && re.Code != "" {
		return re.Code
	}
	return pipeline.CodeRowFailed
}

// Finish implements pipeline.Syncer: with commit it writes the new
// manifest atomically; it always closes the sync log (a failed run's log
// still says what was sent).
func (s *Syncer) Finish(ctx context.Context, commit bool) (any, error) {
	sum := &Summary{Key: s.spec.Key, Manifest: s.loc.String(), New: s.counts.New, Changed: s.counts.Changed,
		Unchanged: s.counts.Unchanged, Missing: s.counts.Missing, Duplicates: s.dups.Load(), Loaded: s.loaded.Load(),
		Failed: s.failed.Load(), Deleted: s.deleted.Load(), DeleteFailed: s.deleteFailed.Load()}
	if s.old != nil {
		sum.ManifestKeys = s.old.Len()
	}
	var errs []error
	s.mu.Lock()
	if s.logErr != nil {
		errs = append(errs, s.logErr)
		commit = false
	}
	s.mu.Unlock()
	if commit && !s.diffDone {
		commit = false // nothing reached the sink stage's diff: keep the old manifest
	}
	if commit {
		n, err := s.writeManifest(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			sum.Committed, sum.ManifestAfter = true, n
		}
	}
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sync log: %w", err))
		} else {
			sum.Log = s.log.Location()
		}
		s.log = nil
	}
	return sum, errors.Join(errs...)
}

func (s *Syncer) writeManifest(ctx context.Context) (int64, error) {
	w, err := blobio.NewWriter(ctx, s.loc)
	if err != nil {
		return 0, fmt.Errorf("sync manifest: %w", err)
	}
	n, err := s.differ.Commit(ctx, s.old, w, s.spec.DeleteMissing)
	if err != nil {
		w.Abort()
		return 0, fmt.Errorf("sync manifest %s: %w (the previous manifest is unchanged)", s.loc, err)
	}
	if err := s.st.CheckFence(ctx); err != nil {
		w.Abort()
		return 0, fmt.Errorf("sync manifest %s: %w (the previous manifest is unchanged)", s.loc, err)
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("sync manifest %s: %w (the previous manifest is unchanged)", s.loc, err)
	}
	return n, nil
}

// Close implements pipeline.Syncer: it removes the diff's spill files and
// discards an unfinished sync log.
func (s *Syncer) Close() error {
	if s.log != nil {
		s.log.Abort()
		s.log = nil
	}
	return s.differ.Close()
}

var _ pipeline.Syncer = (*Syncer)(nil)
