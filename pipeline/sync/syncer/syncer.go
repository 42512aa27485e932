// Package syncer carries out the `sync:` block of a sink stage: it is the
// pipeline.Syncer the engine calls. It keeps, in the pipeline's state
// store, a manifest of key → hash of the row last loaded (pipeline/changes),
// sends only new and changed rows, deletes keys that left the source when
// delete_missing is set (guarded by max_deletes), commits the new manifest
// only when the run ends without failing, and writes a Parquet sync log
// (pipeline/synclog).
//
// The manifest of stage S lives at STATE/PIPELINE/sync/S.manifest.
//
// With `seed: salesforce` every row is hashed by its values normalised as
// Salesforce stores them (pipeline/sync/remote), and a run that finds no
// manifest first builds one from the target object's records (Options.
// Remote): rows whose record already holds their values are unchanged.
// Records whose key the seeded run does not see are dropped from the
// manifest, never deleted (bulkflow did not load them). Options.Reconcile
// compares the manifest with the records before the run and reports the
// drift in the summary and the sync log; ReconcileFix also makes the run
// send the drifted rows again.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/scratch"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/changes"
	"github.com/bulkflow/bulkflow/pipeline/sync/remote"
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
	// Remote reads the sink's target object, for `seed:` and Reconcile;
	// a sync with seed cannot open without it.
	Remote remote.Remote
	// Reconcile compares the manifest with the target object before the
	// run (needs seed: salesforce and a committed manifest).
	Reconcile Reconcile
	// Replay says the run sees only some rows (a replay of dead letters),
	// not the source: its commit does not become the manifest's last
	// full-run commit (LastCommit).
	Replay bool
	// Plan says the run sends nothing (`bulkflow plan`): the syncer
	// records no start (Started).
	Plan bool
	// ReplayMirror says, with Replay, that the stage is a mirror
	// (delete_missing) in the pipeline file: a replay's view sets
	// DeleteMissing on every sync stage, only to keep the keys it does not
	// see.
	ReplayMirror bool
}

// Commit names the last run that read the whole source and committed a
// sync stage's manifest (a state document; see LastCommit).
type Commit struct {
	RunID string `json:"run_id"`
	// OpenedAt is when the run opened the sync, before it read any row.
	OpenedAt time.Time `json:"opened_at"`
}

// commitKey is the state document of stage's Commit.
func commitKey(stage string) string { return "sync-commit-" + stage }

// startKey is the state document of the last run that opened stage's
// sync to send rows (a Commit whose run may not have committed).
func startKey(stage string) string { return "sync-start-" + stage }

// LastStart returns the last run (not a replay, a plan or a reconcile
// report) that opened the sync of stage stage to send rows, whether or not
// it committed; found is false when none has since the document was
// introduced. Such a run diffs every row against the manifest: a row of a
// dead letter written before it is sent again by it, or by the next run
// if it stopped first (the manifest does not hold the row), so a replay of
// that dead letter would send older values over newer ones.
func LastStart(ctx context.Context, st *state.Store, stage string) (c Commit, found bool, err error) {
	found, err = st.Get(ctx, startKey(stage), &c)
	return c, found && c.RunID != "", err
}

// LastCommit returns the last run (not a replay) that committed the
// manifest of sync stage stage; found is false when none has since the
// document was introduced. A dead letter written before that run is
// superseded when the run read every row the dead letter's run read.
func LastCommit(ctx context.Context, st *state.Store, stage string) (c Commit, found bool, err error) {
	found, err = st.Get(ctx, commitKey(stage), &c)
	return c, found && c.RunID != "", err
}

// writingKey is the state document a run (not a replay) writes just before
// it replaces stage's manifest: which run, and the manifest it replaces
// (Committed).
func writingKey(stage string) string { return "sync-writing-" + stage }

// writing is the writingKey document.
type writing struct {
	RunID string `json:"run_id"`
	// Before is the blobio.Stamp of the manifest the run replaces ("" for
	// none).
	Before string `json:"before"`
	// Kept is the blobio.Stamp of the copy of that manifest the run kept
	// (keptLocation), which the run's resume diffs against; "" when there
	// was none, or the document was written before bulkflow kept one.
	Kept string `json:"kept,omitempty"`
}

// keptLocation is where a run that commits stage's manifest keeps the
// manifest it replaces (writing.Kept).
//
// Why: the stages of a pipeline whose rows fan out to two sync stages
// commit one after the other. A run stopped between the two commits (a
// kill, or the second commit failing) is resumed, since the second stage's
// manifest lacks its rows; the first stage's diff against the manifest
// the run wrote would then leave out the rows it loaded and cut other
// chunks than the run did: the sink's ledger refused that as a re-cut, on
// every later run, or (no row left to send) the resume reported none of
// the run's rows loaded. Its resume diffs against the kept manifest
// instead (Open): the same rows in the same chunks, which the ledger skips
// and counts as loaded.
func keptLocation(st *state.Store, stage string) blobio.Location {
	return st.Object("sync", stage+".manifest.before")
}

// resumeBase returns the manifest a resume of run runID diffs stage's rows
// against: the one the run replaced when it committed that stage's
// manifest (keptLocation). ok is false when the run did not commit it, or
// its copy is not there as the run kept it (a document from before
// bulkflow kept one): the stage's current manifest is used, and a resume
// whose chunks then differ is refused by the sink's ledger, as before.
// old is nil when the run wrote the stage's first manifest.
func resumeBase(ctx context.Context, st *state.Store, stage, runID string) (old *changes.Manifest, ok bool, err error) {
	// The writing document first: it names the run being resumed or the
	// stage's kept manifest is not that run's, and on a fresh run's start
	// (every run of a sync stage opens this way) this one read decides.
	var w writing
	if found, err := st.Get(ctx, writingKey(stage), &w); err != nil || !found || w.RunID != runID {
		return nil, false, err
	}
	if done, err := Committed(ctx, st, stage, runID); err != nil || !done {
		return nil, false, err
	}
	if w.Kept == "" && w.Before == "" {
		return nil, true, nil
	}
	kept := keptLocation(st, stage)
	if now, err := blobio.Stamp(ctx, kept); err != nil || w.Kept == "" || now != w.Kept {
		return nil, false, err
	}
	if old, err = changes.OpenManifest(ctx, kept); err != nil {
		return nil, false, fmt.Errorf("sync manifest kept by run %s: %w", runID, err)
	}
	return old, true, nil
}

// inDoubtKey is a mirror stage's state document that lists the keys in
// doubt: new keys that runs which did not commit the manifest sent, and
// may have loaded (a run killed, or stopped before its jobs' results were
// read). Why: the manifest holds only the keys a committed run loaded. A
// record that such a run stored, whose row then failed in every later run
// (or whose key left the source before the next run), never reached it,
// so its key leaving the source deleted nothing, and the run said
// succeeded with the record still in the org (the soak, seed 52667).
//
// So, before it sends anything, a mirror run writes its new keys to a
// file (inDoubtFile) and lists it here; every later run adds the
// listed keys to the manifest it diffs against, as unsynced entries
// without an id (mergeInDoubt): a key still in the source is sent again
// (an upsert finds the record if there is one), a key gone is deleted,
// its record found by the key (pipeline.KeyResolver). The commit of a run
// that merged them settles them: the manifest it writes holds each one,
// or it was deleted (settleInDoubt).
func inDoubtKey(stage string) string { return "sync-indoubt-" + stage }

// inDoubt is the inDoubtKey document.
type inDoubt struct {
	Runs []inDoubtRun `json:"runs,omitempty"`
}

// inDoubtRun is one run's file of keys in doubt (a resume of the run
// writes one of its own beside it).
type inDoubtRun struct {
	RunID string `json:"run_id"`
	// File is the file's name in the state store's sync folder
	// (inDoubtFile).
	File string `json:"file"`
	Keys int64  `json:"keys"`
	// Stamp is the file's blobio.Stamp.
	Stamp string `json:"stamp"`
}

// inDoubtFile names the file in which an attempt of run runID of a mirror
// stage, opened at opened, lists the keys it sends new (a manifest of
// keys, changes.KeysWriter).
func inDoubtFile(stage, runID string, opened time.Time) string {
	return fmt.Sprintf("%s.indoubt.%s.%d", stage, runID, opened.UnixNano())
}

// mergeInDoubt adds the keys in doubt (inDoubtKey) to the manifest the run
// diffs against.
func (s *Syncer) mergeInDoubt(ctx context.Context, o Options) error {
	if len(s.doubt.Runs) == 0 {
		return nil
	}
	var extra []*changes.Manifest
	for _, r := range s.doubt.Runs {
		loc := s.st.Object("sync", r.File)
		if now, err := blobio.Stamp(ctx, loc); err != nil || now != r.Stamp {
			if err == nil {
				err = errors.New("missing, or not the file the run wrote")
			}
			return fmt.Errorf("sync: the %d keys run %s sent new without committing them, which may be in Salesforce, are listed in %s: %w; "+
				"nothing was sent. Restore that file, or, to go on without those keys (a record of one of them that is in Salesforce is then "+
				"never deleted by this mirror), remove run %s from the state document %s", r.Keys, r.RunID, loc, err, r.RunID, inDoubtKey(s.stage))
		}
		m, err := changes.OpenManifest(ctx, loc)
		if err != nil {
			return fmt.Errorf("sync: keys in doubt of run %s: %w", r.RunID, err)
		}
		extra = append(extra, m)
	}
	merged, err := s.writeTemp(ctx, o, "indoubt.manifest", func(w *blobio.Writer) error {
		_, err := changes.MergeUnsynced(ctx, w, s.old, extra...)
		return err
	})
	if err != nil {
		return fmt.Errorf("sync: add the keys in doubt to the manifest: %w", err)
	}
	base := s.old
	s.old, s.merged = merged, true
	for _, r := range s.doubt.Runs {
		s.mergedFiles = append(s.mergedFiles, r.File)
	}
	s.inDoubtMerged = merged.Len() - base.Len() // keys the manifest did not hold
	return nil
}

// writeInDoubt is a mirror's counting pass (Diff): it writes the keys the
// run is about to send new to a file of keys in doubt, which listInDoubt
// lists (nil when there are none).
func (s *Syncer) writeInDoubt(ctx context.Context) (changes.Counts, *inDoubtRun, error) {
	file := inDoubtFile(s.stage, s.runID, s.openedAt)
	loc := s.st.Object("sync", file)
	w, err := blobio.NewWriter(ctx, loc)
	if err != nil {
		return changes.Counts{}, nil, fmt.Errorf("sync: write the keys this run sends new: %w", err)
	}
	kw := changes.NewKeysWriter(w)
	c, err := s.differ.NewKeys(ctx, s.old, kw.Add)
	if err == nil {
		err = kw.Close()
	}
	if err != nil || kw.Len() == 0 { // no new key: nothing to list
		w.Abort()
		w.Close()
		if err != nil {
			return c, nil, fmt.Errorf("sync: write the keys this run sends new: %w", err)
		}
		return c, nil, nil
	}
	if err := w.Close(); err != nil {
		return c, nil, fmt.Errorf("sync: write the keys this run sends new: %w", err)
	}
	stamp, err := blobio.Stamp(ctx, loc)
	if err != nil {
		return c, nil, fmt.Errorf("sync: write the keys this run sends new: %w", err)
	}
	return c, &inDoubtRun{RunID: s.runID, File: file, Keys: kw.Len(), Stamp: stamp}, nil
}

// listInDoubt lists the run's file of keys in doubt in the inDoubtKey
// document, beside those the run merged (until it commits, they are still
// in doubt), before any of its rows is sent.
func (s *Syncer) listInDoubt(ctx context.Context, r *inDoubtRun) error {
	if r == nil {
		return nil
	}
	doc := inDoubt{Runs: append(slices.Clone(s.doubt.Runs), *r)}
	if err := s.st.Put(ctx, inDoubtKey(s.stage), doc); err != nil {
		return fmt.Errorf("sync: list the keys this run sends new: %w", err)
	}
	s.doubt = doc
	return nil
}

// settleInDoubt, once the run committed the manifest, drops from the list
// of keys in doubt the files the run merged and its own, and removes them:
// the manifest now holds each of their keys that may be in Salesforce (it
// was loaded, or its outcome is unknown: OutcomeUnknown), or it was
// deleted. A key the run sent new whose row failed is not in Salesforce:
// a record an earlier run stored would have made it a key in doubt,
// merged, and sent as changed.
//
// A file it did not merge stays: a seeded run merges none.
func (s *Syncer) settleInDoubt(ctx context.Context) error {
	var keep, drop []inDoubtRun
	for _, r := range s.doubt.Runs {
		if r.File == inDoubtFile(s.stage, s.runID, s.openedAt) || slices.Contains(s.mergedFiles, r.File) {
			drop = append(drop, r)
		} else {
			keep = append(keep, r)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := s.st.Put(ctx, inDoubtKey(s.stage), inDoubt{Runs: keep}); err != nil {
		return fmt.Errorf("sync: settle the keys in doubt: %w", err)
	}
	for _, r := range drop {
		blobio.Delete(ctx, s.st.Object("sync", r.File)) // best effort: listed nowhere now
	}
	s.doubt = inDoubt{Runs: keep}
	return nil
}

// Committed reports whether run runID committed the manifest of sync stage
// stage: the commit record names it, or the run was stopped between
// writing the manifest and recording the commit (the record it wrote just
// before names it, and the manifest is no longer the one it replaced).
func Committed(ctx context.Context, st *state.Store, stage, runID string) (bool, error) {
	if c, found, err := LastCommit(ctx, st, stage); err != nil || found && c.RunID == runID {
		return err == nil, err
	}
	var w writing
	if found, err := st.Get(ctx, writingKey(stage), &w); err != nil || !found || w.RunID != runID {
		return false, err
	}
	now, err := blobio.Stamp(ctx, ManifestLocation(st, stage))
	return err == nil && now != w.Before, err
}

// Reconcile is what a run does about drift: records changed or deleted in
// the destination since the last sync.
type Reconcile int

// The reconcile modes.
const (
	// ReconcileOff: drift is not looked for.
	ReconcileOff Reconcile = iota
	// ReconcileReport: drift is counted in the summary and written to the
	// sync log; the manifest is not changed by it.
	ReconcileReport
	// ReconcileFix: as ReconcileReport, and the drifted keys are sent
	// again by the run (changed ones as changed, missing ones as new).
	ReconcileFix
)

// SeedSummary says how a seeded run's first manifest was built.
type SeedSummary struct {
	// From names the object and org read.
	From string `json:"from"`
	// Records is the number of records read; Keys the manifest entries
	// built from them.
	Records    int64 `json:"records"`
	Keys       int64 `json:"keys"`
	NoKey      int64 `json:"no_key,omitempty"`
	Unreadable int64 `json:"unreadable,omitempty"`
	Duplicates int64 `json:"duplicate_keys,omitempty"`
}

// Summary is a sync stage's part of the run report.
type Summary struct {
	Key          string `json:"key"`
	Manifest     string `json:"manifest"`
	ManifestKeys int64  `json:"manifest_keys_before"`
	// ManifestAfter is the number of keys in the committed manifest (0 when
	// nothing was committed).
	ManifestAfter int64 `json:"manifest_keys_after"`
	New           int64 `json:"new"`
	Changed       int64 `json:"changed"`
	Unchanged     int64 `json:"unchanged"`
	Missing       int64 `json:"missing"`
	// InDoubt is the number of keys in doubt the run added to the
	// manifest before its diff (keys that runs which did not commit sent
	// new, and may have loaded): each is counted as changed when the
	// source still has it (sent again), or missing (deleted).
	InDoubt    int64 `json:"in_doubt,omitempty"`
	Duplicates int64 `json:"duplicates"`
	Loaded     int64 `json:"loaded"`
	Failed     int64 `json:"failed"`
	// AssumedLoaded counts rows of unknown outcome the operator settled as
	// loaded (pipeline.CodeAssumedLoaded): in the manifest, not in Loaded.
	AssumedLoaded int64 `json:"assumed_loaded,omitempty"`
	Deleted       int64 `json:"deleted"`
	DeleteFailed  int64 `json:"delete_failed"`
	Committed     bool  `json:"committed"`
	// InKeyOrder says the run's rows came in key order and were diffed as
	// they were read (changes.Differ.Expect): nothing but the new and
	// changed rows was spooled, and the diff needed no merge.
	InKeyOrder bool `json:"diffed_in_key_order,omitempty"`
	// NotInKeyOrder says where a run's rows stopped coming in key order
	// ("row N: key K after K'", N counting the rows the sync stage
	// received), so that it was spooled and merged instead.
	NotInKeyOrder string `json:"not_in_key_order,omitempty"`
	Log           string `json:"sync_log,omitempty"`
	// Seed is set when this run built the first manifest from the target
	// object (seed: salesforce); Reconcile when it looked for drift.
	Seed      *SeedSummary   `json:"seed,omitempty"`
	Reconcile *remote.Report `json:"reconcile,omitempty"`
}

// Syncer implements pipeline.Syncer for one sink stage.
type Syncer struct {
	spec   *pipeline.SyncSpec
	stage  string
	keyIdx int
	loc    blobio.Location
	st     *state.Store      // fenced under serve: the manifest is committed only under the current lease
	old    *changes.Manifest // nil on the first run
	// resumed is set when this is a resume of a run that committed the
	// manifest, and old is the manifest that run replaced (resumeBase):
	// Finish keeps the run's writing document, which still names it.
	resumed bool
	// mirror: the stage deletes missing keys, so it keeps track of the
	// keys a run may have loaded without committing them (inDoubtKey).
	mirror bool
	plan   bool
	// doubt is the stage's in-doubt document as Open read it; merged says
	// Open added its keys to old, so that a commit settles them.
	doubt         inDoubt
	merged        bool
	mergedFiles   []string
	inDoubtMerged int64
	differ        *changes.Differ
	log           *synclog.Writer // nil without sync.log
	runID         string
	replay        bool      // Options.Replay
	openedAt      time.Time // for Commit
	now           func() time.Time
	counts        changes.Counts
	diffDone      bool         // a Diff of every key completed (counting or emitting)
	tmpDir        *scratch.Dir // seeded, reconciled or merged manifests (nil = none)
	seed          *SeedSummary
	drift         *remote.Report

	loaded, failed, deleted, deleteFailed, dups atomic.Int64
	assumed                                     atomic.Int64 // rows settled as loaded (pipeline.CodeAssumedLoaded)
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
	s := &Syncer{spec: spec, stage: stage.Name, keyIdx: keyIdx, loc: ManifestLocation(st, stage.Name), st: st, runID: env.RunID, replay: o.Replay, openedAt: time.Now().UTC(), now: o.Now,
		mirror: spec.DeleteMissing && (!o.Replay || o.ReplayMirror), plan: o.Plan}
	if s.now == nil {
		s.now = time.Now
	}
	var fields []remote.Field
	if spec.Seed != "" || o.Reconcile != ReconcileOff {
		var err error
		if fields, err = remoteFields(ctx, spec, in, o); err != nil {
			return nil, err
		}
	}
	var err error
	if !o.Replay && !o.Plan && o.Reconcile == ReconcileOff {
		if s.old, s.resumed, err = resumeBase(ctx, st, stage.Name, s.runID); err != nil {
			return nil, fmt.Errorf("sync manifest: %w", err)
		}
		// A seeded run that wrote the first manifest is not resumed from
		// none: seeding again would read what it loaded from Salesforce.
		s.resumed = s.resumed && (s.old != nil || spec.Seed == "")
	}
	if !s.resumed {
		if s.old, err = changes.OpenManifest(ctx, s.loc); err != nil {
			return nil, fmt.Errorf("sync manifest: %w", err)
		}
	}
	dopts := changes.Options{Dir: o.TempDir, MemLimit: o.MemLimit, LazyUnchanged: true}
	if fields != nil {
		dopts.Canon = remote.Canon(fields)
	}
	if s.differ, err = changes.NewDiffer(in, spec.Key, dopts); err != nil {
		return nil, err
	}
	if spec.Log != "" {
		if s.log, err = synclog.Create(ctx, env.BaseDir, spec.Log, env.Pipeline, env.RunID, s.now()); err != nil {
			s.differ.Close()
			return nil, fmt.Errorf("sync log: %w", err)
		}
	}
	switch {
	case o.Reconcile != ReconcileOff:
		err = s.reconcile(ctx, o, in, fields)
	case spec.Seed != "" && s.old == nil:
		err = s.seedManifest(ctx, o, in, fields)
	}
	if err == nil && s.mirror {
		// Every mirror run reads the list (a run that merges none keeps
		// its entries when it lists its own keys); a seeded or
		// reconciling run does not merge them: it deletes nothing, or
		// diffs against Salesforce's records.
		if _, err = s.st.Get(ctx, inDoubtKey(s.stage), &s.doubt); err != nil {
			err = fmt.Errorf("sync: read the keys in doubt: %w", err)
		} else if s.seed == nil && o.Reconcile == ReconcileOff {
			err = s.mergeInDoubt(ctx, o)
		}
	}
	if err == nil {
		// The diff runs as rows are added while their keys come in order
		// (changes.Differ.Expect): a sorted export's sync reads and
		// writes only its new and changed rows.
		err = s.differ.Expect(ctx, s.old)
	}
	if err == nil && !o.Replay && !o.Plan && o.Reconcile != ReconcileReport {
		if err = st.Put(ctx, startKey(stage.Name), Commit{RunID: s.runID, OpenedAt: s.openedAt}); err != nil {
			err = fmt.Errorf("sync: record the run's start: %w", err)
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// remoteFields describes the sink's input fields in the target object, for
// a seeded sync.
func remoteFields(ctx context.Context, spec *pipeline.SyncSpec, in *pipeline.Schema, o Options) ([]remote.Field, error) {
	switch {
	case spec.Seed == "":
		return nil, fmt.Errorf("--reconcile needs seed: salesforce in this sync block: drift is found by comparing the " +
			"manifest's hashes with the records' normalised values, and only a seeded sync hashes so. Add seed: salesforce " +
			"(the next run sends once the rows whose normalised text differs), then reconcile")
	case o.Remote == nil:
		return nil, fmt.Errorf("sync seed: %s needs a sink whose target object can be read back (a salesforce sink)", spec.Seed)
	}
	fields, err := o.Remote.Fields(ctx, in.Names())
	if err != nil {
		return nil, fmt.Errorf("sync seed: %w", err)
	}
	if len(fields) != in.Len() {
		return nil, fmt.Errorf("sync seed: %s described %d of the sink's %d fields", o.Remote, len(fields), in.Len())
	}
	return fields, nil
}

// tempManifest returns a location for a manifest built by this run.
func (s *Syncer) tempManifest(o Options, name string) (blobio.Location, error) {
	if s.tmpDir == nil {
		dir, err := scratch.New(o.TempDir, "bulkflow-sync-")
		if err != nil {
			return blobio.Location{}, fmt.Errorf("sync: create a temporary directory: %w", err)
		}
		s.tmpDir = dir
	}
	return blobio.Parse("", filepath.Join(s.tmpDir.Path, name))
}

// writeTemp writes a manifest with write to a temporary file and opens it.
func (s *Syncer) writeTemp(ctx context.Context, o Options, name string, write func(w *blobio.Writer) error) (*changes.Manifest, error) {
	loc, err := s.tempManifest(o, name)
	if err != nil {
		return nil, err
	}
	w, err := blobio.NewWriter(ctx, loc)
	if err != nil {
		return nil, err
	}
	if err := write(w); err != nil {
		w.Abort()
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return changes.OpenManifest(ctx, loc)
}

// seedManifest builds the first manifest from the target object's records.
func (s *Syncer) seedManifest(ctx context.Context, o Options, in *pipeline.Schema, fields []remote.Field) error {
	snap, err := remote.Take(ctx, o.Remote, in, s.spec.Key, fields, changes.Options{Dir: o.TempDir, MemLimit: o.MemLimit})
	if err != nil {
		return fmt.Errorf("sync seed: %w", err)
	}
	defer snap.Close()
	sum := &SeedSummary{From: o.Remote.String(), Records: snap.Read, NoKey: snap.NoKey, Unreadable: snap.Unreadable}
	s.old, err = s.writeTemp(ctx, o, "seed.manifest", func(w *blobio.Writer) error {
		sum.Keys, sum.Duplicates, err = snap.Seed(ctx, w)
		return err
	})
	if err != nil {
		return fmt.Errorf("sync seed: %w (nothing was sent; the run can be started again)", err)
	}
	s.seed = sum
	return nil
}

// reconcile compares the manifest with the target object's records,
// writes the drift to the sync log and, for ReconcileFix, diffs the run
// against a manifest in which the drifted keys are to be sent again.
func (s *Syncer) reconcile(ctx context.Context, o Options, in *pipeline.Schema, fields []remote.Field) error {
	if s.old == nil {
		return fmt.Errorf("--reconcile: stage %q has no manifest yet at %s: there is nothing to compare; run the sync first (a seeded first run starts from the records)", s.stage, s.loc)
	}
	snap, err := remote.Take(ctx, o.Remote, in, s.spec.Key, fields, changes.Options{Dir: o.TempDir, MemLimit: o.MemLimit})
	if err != nil {
		return fmt.Errorf("--reconcile: %w", err)
	}
	defer snap.Close()
	drift := func(d remote.Drift) error {
		if s.log == nil {
			return nil
		}
		return s.log.Write(synclog.Record{RunID: s.runID, Time: s.now(), Key: d.Key, Operation: "reconcile", Outcome: string(d.Kind), SalesforceID: d.ID})
	}
	if o.Reconcile != ReconcileFix {
		s.drift, err = snap.Reconcile(ctx, s.old, drift, nil)
		if err != nil {
			return fmt.Errorf("--reconcile: %w", err)
		}
		return nil
	}
	fixed, err := s.writeTemp(ctx, o, "reconcile.manifest", func(w *blobio.Writer) error {
		var err error
		s.drift, err = snap.Reconcile(ctx, s.old, drift, w)
		return err
	})
	if err != nil {
		return fmt.Errorf("--reconcile=fix: %w (nothing was sent)", err)
	}
	s.old = fixed
	return nil
}

// Add implements pipeline.Syncer.
func (s *Syncer) Add(row pipeline.Row, origin pipeline.Origin) error {
	return s.differ.Add(row, origin)
}

// ReleasesRows implements pipeline.RowReleaser: Add encodes the row into
// the spool (changes.Differ.Add) and keeps none.
func (s *Syncer) ReleasesRows() bool { return true }

// Diff implements pipeline.Syncer. With delete_missing, the first call
// first counts the keys (a pass over the spool and the manifest) and checks
// max_deletes before passing on anything; without, one pass does both.
// Unchanged rows are passed as nil rows (pipeline.Syncer allows it: they
// are only counted as filtered), so they are not decoded: a sorted run's
// were not even kept (changes.Differ.Expect), and a run that stops or is
// refused filters them as a finished one would, whatever the order its
// rows came in.
func (s *Syncer) Diff(ctx context.Context, emit func(op pipeline.SyncOp, row pipeline.Row, origin pipeline.Origin) error,
	drop func(row pipeline.Row, origin pipeline.Origin, err error) error, del func(key, id string) error) error {
	if !s.diffDone && s.spec.DeleteMissing && s.seed == nil {
		var c changes.Counts
		var err error
		var doubt *inDoubtRun // the run's file of keys in doubt, listed once the guard passes
		if s.mirror && !s.plan {
			c, doubt, err = s.writeInDoubt(ctx)
		} else {
			c, err = s.differ.Diff(ctx, s.old, nil, func(string, pipeline.Row, pipeline.Origin) error { return nil })
		}
		if err != nil {
			return err
		}
		s.counts, s.diffDone = c, true
		// A seeded run deletes nothing.
		if limit := s.spec.DeleteLimit(c.Manifest); c.Missing > limit {
			if doubt != nil {
				blobio.Delete(ctx, s.st.Object("sync", doubt.File)) // best effort: nothing is sent
			}
			return fmt.Errorf("%d of the %d synced keys are no longer in the source, more than max_deletes %s allows (%d); "+
				"nothing was sent or deleted and the manifest is unchanged. If the source is complete and the deletes are "+
				"intended, raise max_deletes for one run; if the source is truncated, fix it first",
				c.Missing, c.Manifest, s.spec.MaxDeletes, limit)
		}
		if err := s.listInDoubt(ctx, doubt); err != nil {
			return err
		}
	}
	if !s.diffDone && s.mirror && !s.plan && s.seed != nil {
		// A seeded run deletes nothing, but the records it creates are
		// bulkflow's: it lists its new keys too. Were it stopped before
		// it commits, the next (seeded again) run would drop from its
		// manifest a record of one whose key left the source, and never
		// delete it; the first run that is not seeded merges them.
		c, doubt, err := s.writeInDoubt(ctx)
		if err != nil {
			return err
		}
		s.counts, s.diffDone = c, true
		if err := s.listInDoubt(ctx, doubt); err != nil {
			return err
		}
	}
	c, err := s.differ.Diff(ctx, s.old, func(op changes.Op, key string, row pipeline.Row, origin pipeline.Origin, oldID string) error {
		switch op {
		case changes.OpNew:
			return emit(pipeline.SyncNew, row, origin)
		case changes.OpChanged:
			return emit(pipeline.SyncChanged, row, origin)
		case changes.OpUnchanged:
			return emit(pipeline.SyncUnchanged, nil, pipeline.Origin{})
		case changes.OpMissing:
			if !s.spec.DeleteMissing || s.seed != nil { // seeded: records bulkflow did not load
				return nil
			}
			// oldID is "" for a key whose record id is not known (a key
			// in doubt, or loaded by a resumed run): the engine finds it
			// by the key (pipeline.KeyResolver).
			return del(key, oldID)
		}
		return fmt.Errorf("sync: unknown op %v", op)
	}, func(key string, row pipeline.Row, origin pipeline.Origin) error {
		s.dups.Add(1)
		return drop(row, origin, &pipeline.RowError{Code: CodeDuplicateKey, Field: s.spec.Key,
			Err: fmt.Errorf("sync key %s=%q appears more than once in this run; the first row with it was kept", s.spec.Key, key)})
	})
	if err == nil && !s.diffDone {
		s.counts, s.diffDone = c, true
	}
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
		switch {
		case err == nil:
			s.loaded.Add(1)
			rec.Outcome = "loaded"
		case codeOf(err) == pipeline.CodeAssumedLoaded:
			// The operator found the row in the destination (its outcome
			// was unknown): the manifest holds it, the sync log says so.
			s.assumed.Add(1)
			rec.Outcome = pipeline.CodeAssumedLoaded
		default:
			s.failed.Add(1)
			rec.Outcome = "failed"
		}
	}
	rec.Key = key
	if err != nil {
		rec.ErrorCode, rec.Error = codeOf(err), err.Error()
	}
	var oerr error
	if s.mirror && err != nil && cop != changes.OpMissing && maybeStored(err) {
		// Kept in the manifest, so that the mirror deletes its record
		// (if there is one) once the key leaves the source.
		oerr = s.differ.OutcomeUnknown(key, cop)
	} else {
		oerr = s.differ.Outcome(key, cop, err == nil || rec.Outcome == pipeline.CodeAssumedLoaded, id)
	}
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

// maybeStored reports whether a row that failed with err may be in the
// destination: its outcome is unknown (a job still running, results that
// do not say, a request that got no answer).
func maybeStored(err error) bool {
	code := codeOf(err)
	switch pipeline.RecoveryOf(code) {
	case pipeline.RecoveryResume, pipeline.RecoveryInspect:
		return true
	}
	return code == pipeline.CodeOutcomeUnknownRetry
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
		Unchanged: s.counts.Unchanged, Missing: s.counts.Missing, Duplicates: s.dups.Load(), Loaded: s.loaded.Load(), AssumedLoaded: s.assumed.Load(),
		Failed: s.failed.Load(), Deleted: s.deleted.Load(), DeleteFailed: s.deleteFailed.Load(), Seed: s.seed, Reconcile: s.drift,
		InKeyOrder: s.differ.Walked(), NotInKeyOrder: s.differ.Unordered(), InDoubt: s.inDoubtMerged}
	if s.old != nil && s.seed == nil {
		sum.ManifestKeys = s.old.Len() - s.inDoubtMerged
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
	if commit && !s.replay && !s.resumed {
		// Recorded first, so that a run stopped between the manifest's
		// write and its commit record is known to have committed
		// (Committed), and that its resume can diff against the manifest
		// it replaced (keptLocation). A resume of a run that committed
		// keeps the run's document: it names the manifest the run
		// replaced, which this one replaces again.
		if err := s.keepManifest(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sync: record the manifest's write: %w", err))
			commit = false
		}
	}
	if commit {
		n, err := s.writeManifest(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			sum.Committed, sum.ManifestAfter = true, n
			if err := s.settleInDoubt(ctx); err != nil {
				errs = append(errs, err)
			}
			if !s.replay {
				if err := s.st.Put(ctx, commitKey(s.stage), Commit{RunID: s.runID, OpenedAt: s.openedAt}); err != nil {
					errs = append(errs, fmt.Errorf("sync: record the manifest's commit: %w", err))
				}
			}
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

// keepManifest copies the manifest the run is about to replace to
// keptLocation and records both in the writingKey document.
//
// What is kept is the manifest the run diffed against: the one it replaces,
// or a mirror's with the keys in doubt added (mergeInDoubt), which a
// resume must diff against to cut the run's chunks.
func (s *Syncer) keepManifest(ctx context.Context) error {
	w := writing{RunID: s.runID}
	var err error
	if w.Before, err = blobio.Stamp(ctx, s.loc); err != nil {
		return err
	}
	if w.Before == "" && !s.merged || s.old == nil {
		return s.st.Put(ctx, writingKey(s.stage), w)
	}
	kept := keptLocation(s.st, s.stage)
	if err := blobio.Copy(ctx, s.old.Location(), kept); err != nil {
		return err
	}
	if w.Kept, err = blobio.Stamp(ctx, kept); err != nil {
		return err
	}
	return s.st.Put(ctx, writingKey(s.stage), w)
}

func (s *Syncer) writeManifest(ctx context.Context) (int64, error) {
	w, err := blobio.NewWriter(ctx, s.loc)
	if err != nil {
		return 0, fmt.Errorf("sync manifest: %w", err)
	}
	// A seeded run drops the records whose keys it did not see: bulkflow
	// did not load them, so a mirror must not delete them later.
	n, err := s.differ.Commit(ctx, s.old, w, s.spec.DeleteMissing && s.seed == nil)
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
	err := s.differ.Close()
	if s.tmpDir != nil {
		if rerr := s.tmpDir.Remove(); rerr != nil && err == nil {
			err = fmt.Errorf("sync: remove temporary manifests: %w", rerr)
		}
		s.tmpDir = nil
	}
	return err
}

var _ pipeline.Syncer = (*Syncer)(nil)
