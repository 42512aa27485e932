package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// runRecords is what a pipeline remembers of a run id: whether it has any
// record of it (a ledger of one of its sinks, a dead-letter
// manifest, a report, a run-history entry or the in-flight record of its
// state store), and, when it has none, the run ids it knows and where it
// looked.
type runRecords struct {
	found  bool
	ids    map[string]bool
	looked []string
}

// runPlaces are the locations a pipeline keeps run records in.
type runPlaces struct {
	pipeline, baseDir string
	ledgers           []ledgerPlace // one per distinct ledger
	deadLetters       blobio.Location
	store             *state.Store
	errs              []string
}

// ledgerPlace is one ledger of the pipeline's sinks.
type ledgerPlace struct {
	runs   blobio.Location // <ledger>/<pipeline>/: one folder per run id
	ledger pipeline.RunLedger
}

// runLedgers returns the options of g's sink stages that can keep a
// ledger of each run (pipeline.RunLedger), in stage order, whether their
// ledger is on or off.
func runLedgers(g *pipeline.Graph) []pipeline.RunLedger {
	var out []pipeline.RunLedger
	for _, s := range g.Stages {
		if l, ok := s.Options.(pipeline.RunLedger); ok && s.Kind == pipeline.KindSink {
			out = append(out, l)
		}
	}
	return out
}

func placesOf(ctx context.Context, g *pipeline.Graph, env *pipeline.Env, stateLoc, stateName string) runPlaces {
	p := runPlaces{pipeline: g.Name, baseDir: env.BaseDir}
	seen := map[string]bool{}
	for _, l := range runLedgers(g) {
		where := l.LedgerLocation()
		if where == "" || seen[where] {
			continue
		}
		seen[where] = true
		loc, err := blobio.Parse(env.BaseDir, strings.TrimSuffix(where, "/")+"/")
		if err != nil {
			p.errs = append(p.errs, fmt.Sprintf("ledger %s (%v)", where, err))
			continue
		}
		p.ledgers = append(p.ledgers, ledgerPlace{runs: blobio.Join(loc, l.LedgerFolder(g.Name)), ledger: l})
	}
	dl := g.DeadLetter
	if dl == "" {
		dl = "dead-letter/"
	}
	var err error
	if p.deadLetters, err = blobio.Parse(env.BaseDir, dl); err != nil {
		p.errs = append(p.errs, fmt.Sprintf("dead letters %s (%v)", dl, err))
	}
	if p.store, err = state.Open(ctx, stateLoc, stateName); err != nil {
		p.errs = append(p.errs, fmt.Sprintf("state %s (%v)", stateLoc, err))
	}
	return p
}

// exists reports whether an object is at loc.
func exists(ctx context.Context, loc blobio.Location) bool {
	_, err := blobio.List(ctx, loc)
	return err == nil
}

// localDir returns the directory a local location names, or "".
func localDir(loc blobio.Location) string {
	if loc.Scheme != "file" {
		return ""
	}
	u, err := url.Parse(loc.BucketURL)
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.FromSlash(u.Path), filepath.FromSlash(loc.Key))
}

// knownRun looks for records of run id in every place the pipeline keeps
// them. When it finds none, it lists the run ids it does know (for a
// did-you-mean), tolerating places that cannot be listed.
func knownRun(ctx context.Context, g *pipeline.Graph, env *pipeline.Env, stateLoc, stateName, id string) runRecords {
	p := placesOf(ctx, g, env, stateLoc, stateName)
	rr := runRecords{ids: map[string]bool{}, looked: p.errs}
	var history []state.RunRecord
	var in inflight
	rr.found, history, in = p.hasRun(ctx, id)
	if !rr.found {
		rr.listRuns(ctx, p, history, in)
	}
	return rr
}

// hasRun reports whether any place holds a record of run id, and returns
// the state store's run history and in-flight record (empty without a
// store). Exact look-ups only: a run in progress changes its folders
// while we look.
func (p runPlaces) hasRun(ctx context.Context, id string) (found bool, history []state.RunRecord, in inflight) {
	for _, l := range p.ledgers {
		if l.ledger.LedgerHasRun(ctx, p.baseDir, p.pipeline, id) {
			found = true
		}
	}
	if p.deadLetters.BucketURL != "" && exists(ctx, blobio.Join(p.deadLetters, id, "manifest.json")) {
		found = true
	}
	if p.store != nil {
		if exists(ctx, p.store.Object("reports", id+".json")) {
			found = true
		}
		history, _ = p.store.Runs(ctx, 0)
		for _, r := range history {
			found = found || r.RunID == id
		}
		if ok, err := p.store.Get(ctx, inflightKey, &in); err == nil && ok && in.RunID == id {
			found = true
		}
	}
	return found, history, in
}

// listRuns adds the run ids every place of p knows (ledger run folders,
// dead-letter manifests, reports, the run history and the in-flight
// record) to rr.ids, and where it looked to rr.looked.
func (rr *runRecords) listRuns(ctx context.Context, p runPlaces, history []state.RunRecord, in inflight) {
	for _, l := range p.ledgers {
		if d := localDir(l.runs); d != "" {
			rr.listLedgerDir(d)
			continue
		}
		rr.listPrefix(ctx, "ledger", l.runs, firstElem)
	}
	if p.deadLetters.BucketURL != "" {
		rr.listPrefix(ctx, "dead letters", p.deadLetters, func(rest string) string {
			if id, name, _ := strings.Cut(rest, "/"); name == "manifest.json" {
				return id
			}
			return ""
		})
	}
	if p.store != nil {
		rr.listPrefix(ctx, "reports", p.store.Object("reports"), func(rest string) string { return strings.TrimSuffix(rest, ".json") })
		rr.looked[len(rr.looked)-1] += ", the run history and the in-flight record"
		for _, r := range history {
			rr.add(r.RunID)
		}
		rr.add(in.RunID)
	}
}

// add records id as known when it is a valid run id.
func (rr *runRecords) add(id string) {
	if cli.ValidRunID(id) {
		rr.ids[id] = true
	}
}

// listLedgerDir adds the run folders of a local ledger folder (only the
// folders: their spool files come and go).
func (rr *runRecords) listLedgerDir(d string) {
	ents, err := os.ReadDir(d)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		rr.looked = append(rr.looked, fmt.Sprintf("ledger %s (%v)", d, err))
		return
	}
	rr.looked = append(rr.looked, "ledger "+d)
	for _, e := range ents {
		if e.IsDir() {
			rr.add(e.Name())
		}
	}
}

// listPrefix adds the run id idOf finds in the key (after prefix) of each
// object under prefix; what names the place in rr.looked.
func (rr *runRecords) listPrefix(ctx context.Context, what string, prefix blobio.Location, idOf func(rest string) string) {
	if prefix.Key != "" {
		prefix.Key = strings.TrimSuffix(prefix.Key, "/") + "/"
	}
	objs, err := blobio.List(ctx, prefix)
	switch {
	case errors.Is(err, blobio.ErrNoMatch):
		rr.looked = append(rr.looked, fmt.Sprintf("%s %s (empty)", what, prefix))
		return
	case err != nil:
		rr.looked = append(rr.looked, fmt.Sprintf("%s %s (%v)", what, prefix, err))
		return
	}
	rr.looked = append(rr.looked, fmt.Sprintf("%s %s", what, prefix))
	for _, o := range objs {
		rr.add(idOf(strings.TrimPrefix(o.Loc.Key, prefix.Key)))
	}
}

// firstElem returns the first element of a "/"-separated path with more
// than one element, else "".
func firstElem(rest string) string {
	if id, _, ok := strings.Cut(rest, "/"); ok {
		return id
	}
	return ""
}

// unknownRunMessage explains that id has no record, naming the closest
// known ids and where the search looked.
func unknownRunMessage(id string, rr runRecords) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--resume %s: this pipeline has no record of that run (no ledger, dead-letter manifest, report, run history or in-flight record); "+
		"resuming it would start a fresh run under that id and send every row again. ", id)
	ids := make([]string, 0, len(rr.ids))
	for k := range rr.ids {
		ids = append(ids, k)
	}
	if len(ids) == 0 {
		b.WriteString("The pipeline has no recorded runs at all: run it without --resume.")
	} else {
		if c := pipeline.Closest(id, ids); c != "" {
			fmt.Fprintf(&b, "Did you mean %s? ", c)
		}
		// Run ids start with their UTC start time: newest first.
		slices.Sort(ids)
		slices.Reverse(ids)
		more := ""
		if len(ids) > 5 {
			more = fmt.Sprintf(" (and %d older)", len(ids)-5)
			ids = ids[:5]
		}
		fmt.Fprintf(&b, "Known runs, newest first: %s%s.", strings.Join(ids, ", "), more)
	}
	fmt.Fprintf(&b, "\nbulkflow: looked in: %s", strings.Join(rr.looked, "; "))
	return b.String()
}

// lockSeq numbers the lock acquisitions of the process.
var lockSeq atomic.Int64

// errRunLocked is returned (wrapped) by lockRun when another process holds
// the run.
var errRunLocked = errors.New("the run is in progress in another process")

// runLockTTL is the lease of a run on a blob state store: renewed every
// third of it while the run lasts; a holder that died loses it when it
// expires.
var runLockTTL = 2 * time.Minute

// runLockPlace returns where the lock of a run of the pipeline lives: a
// location (a directory or blob URL prefix), the folder name under it and
// the sub-folder of run folders. It is the first sink ledger (a
// pipeline.RunLedger that is on: what a resume reads and writes,
// <ledger>/<pipeline>/<run id>/run.lock beside the run's records), else
// the state store when the pipeline keeps state
// (STATE/PIPELINE/run-locks/<run id>/run.lock); "" when the pipeline has
// neither, and so nothing that two runs of one id could corrupt (each
// would send every row, like two fresh runs).
func runLockPlace(g *pipeline.Graph, stateLoc, stateName string) (loc, name, sub string) {
	for _, l := range runLedgers(g) {
		if where := l.LedgerLocation(); where != "" {
			return where, l.LedgerFolder(g.Name), ""
		}
	}
	if needsState(g) {
		return stateLoc, stateName, "run-locks"
	}
	return "", "", ""
}

// lockRun takes the lock of run runID at the place runLockPlace returns,
// so that two processes never run (or resume) the same run id at once. In
// a local directory it is an exclusive flock(2) on
// LOC/NAME/[SUB/]RUNID/run.lock, which the kernel releases when the
// process exits, even on kill -9. On a blob store it is a lease taken with
// the state store's compare-and-swap (state.Store's AcquireLease, on the
// folder LOC/NAME.run-RUNID/), renewed while the run lasts; a holder killed
// with kill -9 keeps it until it expires (runLockTTL). lost is called if a
// renewal finds the lease taken over. The returned function releases the
// lock. An empty loc takes no lock.
func lockRun(ctx context.Context, loc, name, sub, runID string, lost func(error)) (func(), error) {
	if loc == "" {
		return func() {}, nil
	}
	stateLoc, stateName := loc, name
	root, err := blobio.Parse("", stateLoc)
	if err != nil {
		return nil, fmt.Errorf("run lock: state location: %w", err)
	}
	host, _ := os.Hostname()
	// host:pid names the process; the suffix makes each acquisition its
	// own holder (a lease already held by the same holder is extended).
	holder := fmt.Sprintf("%s:%d/%x", host, os.Getpid(), lockSeq.Add(1))
	if root.Scheme == "file" && haveFlock {
		u, err := url.Parse(root.BucketURL)
		if err != nil {
			return nil, fmt.Errorf("run lock: %w", err)
		}
		dir := filepath.Join(filepath.FromSlash(u.Path), filepath.FromSlash(root.Key), stateName, sub, runID)
		return flockRun(filepath.Join(dir, "run.lock"), holder, runID)
	}
	st, err := state.Open(ctx, stateLoc, stateName+".run-"+runID)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	bg := context.WithoutCancel(ctx)
	got, err := st.AcquireLease(bg, holder, runLockTTL)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	if !got {
		le, _ := st.ReadLease(bg)
		return nil, fmt.Errorf("run %s: %w (%s holds its lease in %s until %s; a holder that died loses it then)",
			runID, errRunLocked, le.Holder, stateLoc, le.Expires.Format(time.RFC3339))
	}
	stopRenewing := st.KeepLease(bg, holder, runLockTTL, func(err error) {
		if errors.Is(err, state.ErrLeaseLost) {
			lost(fmt.Errorf("run %s: lost its lock: %w", runID, err))
		}
	})
	return func() {
		stopRenewing()
		st.ReleaseLease(bg, holder)
	}, nil
}

// settledByReplay returns why run id may not be resumed because of
// `bulkflow replay`, with its exit code, or nil: id is a replay's run
// (resumed by `bulkflow replay --resume`, never by `run --resume`, which
// would read the pipeline's source), or id's last attempt ended and a live
// dead-letter file of it was replayed (or is being, or its replay died).
// A resume reads the source again and accounts for every row afresh: the
// rows a replay loaded would be dead-lettered again as live rows, which a
// second replay could load twice, and the run's report and manifest would
// say unloaded what is loaded. byRun is true for `run --resume`, false
// for a replay that resumes replay run id.
func settledByReplay(ctx context.Context, g *pipeline.Graph, id, pipelineFile string, byRun bool) (int, error) {
	what := "--resume " + id
	if !byRun {
		what = "resume of replay run " + id
	}
	prefix, err := blobio.Parse(g.BaseDir, cmp.Or(g.DeadLetter, "dead-letter/"))
	if err != nil {
		return exitUsage, fmt.Errorf("%s: dead_letter: %w", what, err)
	}
	ledgerLoc := blobio.Join(prefix, replayLedgerName)
	led, err := readLedger(ctx, ledgerLoc)
	if err != nil {
		return exitFailed, fmt.Errorf("%s: read %s to check that no replay settled the run: %w", what, ledgerLoc, err)
	}
	byID := map[string]*replayEntry{}
	for i := range led.Replays {
		byID[led.Replays[i].RunID] = &led.Replays[i]
	}
	if e := byID[id]; e != nil && byRun {
		return exitUsage, fmt.Errorf("%s: run %s is a replay of %s, not a run of the pipeline's source: resuming it with run would read the source "+
			"and send its rows again; resume the replay: %s", what, id, e.DeadLetter, replayCommand(e.DeadLetter, pipelineFile, e, true))
	}
	manLoc := blobio.Join(prefix, id, "manifest.json")
	m, found, err := pipeline.ReadManifest(ctx, manLoc)
	if err != nil {
		return exitFailed, fmt.Errorf("%s: %w", what, err)
	}
	if !found || m.Status == pipeline.ManifestRunning {
		return exitOK, nil // not finished: the resume settles it
	}
	var done, unfinished []string
	for _, f := range m.Files {
		for _, r := range f.ReplayedBy {
			e := byID[r]
			switch {
			case e == nil:
				done = append(done, fmt.Sprintf("%s by run %s", f.URL, r))
			case e.Status == "running":
				unfinished = append(unfinished, fmt.Sprintf("replay %s of %s did not finish (it is running, or its process died): resume it: %s",
					r, f.URL, replayCommand(e.DeadLetter, pipelineFile, e, true)))
			default:
				done = append(done, fmt.Sprintf("%s by replay %s (%s, %d rows loaded, %d dead-lettered again)",
					f.URL, r, e.Status, e.Counts.Loaded, e.Counts.DeadLettered))
			}
		}
	}
	if len(done)+len(unfinished) == 0 {
		return exitOK, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: run %s already finished (%s, attempt %d) and its dead letters were replayed, so nothing was sent: "+
		"a resume would read the source again and dead-letter afresh the rows a replay loaded, and a replay of those could load them twice. ",
		what, id, m.Status, m.Attempt)
	if len(unfinished) > 0 {
		fmt.Fprintf(&b, "%s. ", strings.Join(unfinished, "; "))
	}
	if len(done) > 0 {
		fmt.Fprintf(&b, "Replayed: %s. Its rows are settled: what a replay dead-lettered again is in that replay's own dead letters (%s), "+
			"which replay sends.", strings.Join(done, "; "), blobio.Join(prefix, "RUN_ID"))
	}
	return exitUsage, errors.New(b.String())
}
