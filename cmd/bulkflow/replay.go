package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/obs"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sources/csvsource"
	"github.com/bulkflow/bulkflow/transforms/exprenv"
)

// Private plugin types of `bulkflow replay`.
const (
	replaySelectType = "replay-select"
	replayFixType    = "replay-fix"
)

// replayLedgerName is the file, under the pipeline's dead_letter prefix,
// that records which dead-letter files were replayed.
const replayLedgerName = "replayed.json"

const replayUsage = `Usage: bulkflow replay DEAD_LETTER_URL --pipeline FILE [--all] [--map FIELD=EXPR ...] [--report FILE] [--state LOC] [--force | --resume RUN_ID [--settle-unknown ...]]

Re-sends dead-lettered rows through the pipeline that produced them. The
dead-letter file <dead_letter>/<run id>/<stage>.csv is read as a CSV source;
by default only rows whose failure is retryable are kept (_retryable is
true; in files without that column, _error says retryable=true or the
code's recovery is "retry"); --all keeps every row. The others are counted
as filtered. Rows whose job may have run (job_incomplete) are never sent:
only "bulkflow run FILE --resume RUN_ID" settles them (exit 3 when some
were left), and a file holding such rows beside others is refused (exit 2,
unless --force): resume the run first, then replay the dead letters the
resume writes, since a run whose dead letters were replayed is not
resumed. The _ columns
are dropped, --map fixes are applied (FIELD=EXPR, an expression over the
row's fields; other fields pass through; a new FIELD is appended), and the
rows go through <stage> and every stage after it (for a source stage: the
stages after it). The replay writes its own dead letters under the
pipeline's dead_letter with a new run id. Through a sync: stage the rows
are diffed against its manifest (unchanged rows are filtered) and what
loads is committed, but nothing is deleted and keys the replay does not
see stay in the manifest.

Only a live dead-letter file is replayed: one its run's manifest.json
lists in files. Through a sync: that reads the whole source, a file is
refused (exit 2, unless --force) once a run that began after its run ended
has begun that sync (committed or not): that run sent its rows again, or
dead-lettered them again (replay its files), or, if it stopped first, the
sync's next run sends them; the file's values are older. The files of an unfinished run of a pipeline that keeps state and
inserts are refused whatever the flags: resume the run. A file of an attempt that a later --resume of the run
superseded, or of an attempt that has not finished, is refused (exit 2),
even with --force: its rows may be loaded.

A dead-letter file is replayed once: the replaying run id is recorded in
the file's manifest entry (replayed_by) and, with its sha256, in
<dead_letter>/replayed.json, and a second replay of the same file is refused
(exit 2) unless --force. A replay holds the file's lock
(<dead_letter>/replay-locks/<sha256>/) while it runs: a replay of the same
file meanwhile exits 1. A replay whose process died (killed, crashed: its
entry still says "running") is resumed by the next replay of the file
under the same run id, with the same --all and --map flags: like
"bulkflow run --resume", the Salesforce sinks' ledgers re-attach the jobs it
created, so no row is sent twice. --resume RUN_ID resumes a replay of the
file that ended (e.g. to settle its job_incomplete rows), and with
--settle-unknown settles its rows of unknown outcome as a person found them.
A replay of a pipeline that inserts and keeps state is recorded in flight
like a run: until it finishes, every run of the pipeline and every other
replay is refused (exit 2) and names its resume.

Exit codes: 0 every replayed row loaded or filtered; 3 some dead-lettered
again; 1 the run failed, or the file is being replayed by another process;
2 usage, invalid pipeline file, or already replayed.

Flags:`

// mapFlags collects repeated --map FIELD=EXPR flags.
type mapFlags []pipeline.ExprField

// String implements flag.Value.
func (m *mapFlags) String() string {
	var parts []string
	for _, f := range *m {
		parts = append(parts, f.Name+"="+f.Expr)
	}
	return strings.Join(parts, " ")
}

// exprs returns the fixes as FIELD=EXPR, as the ledger records them.
func (m mapFlags) exprs() []string {
	var out []string
	for _, f := range m {
		out = append(out, f.Name+"="+f.Expr)
	}
	return out
}

// Set implements flag.Value.
func (m *mapFlags) Set(v string) error {
	name, expr, ok := strings.Cut(v, "=")
	name, expr = strings.TrimSpace(name), strings.TrimSpace(expr)
	if !ok || name == "" || expr == "" {
		return fmt.Errorf("want FIELD=EXPR, got %q", v)
	}
	for _, f := range *m {
		if f.Name == name {
			return fmt.Errorf("field %s is mapped twice", name)
		}
	}
	*m = append(*m, pipeline.ExprField{Name: name, Expr: expr, Pos: pipeline.Position{File: "--map " + name}})
	return nil
}

// replayEntry is one replay recorded in replayed.json.
type replayEntry struct {
	SHA256     string          `json:"sha256"`
	DeadLetter string          `json:"dead_letter"`
	Stage      string          `json:"stage"`
	RunID      string          `json:"run_id"`
	Pipeline   string          `json:"pipeline"`
	All        bool            `json:"all,omitempty"`
	Map        []string        `json:"map,omitempty"`
	Forced     bool            `json:"forced,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	Status     string          `json:"status"` // "running" until the replay ends
	Counts     pipeline.Counts `json:"counts"`
	// Attempt counts the processes that ran this replay: 2 and up when it
	// was resumed (its process died, or --resume).
	Attempt int `json:"attempt,omitempty"`
}

// blocks reports whether the entry forbids replaying its file again: any
// replay that may have sent rows (still running or crashed, or rows that
// reached a sink outcome). A replay that only filtered rows, or failed
// before any row reached a sink, does not block.
func (e *replayEntry) blocks() bool {
	return e.Status == "running" || e.Counts.Loaded > 0 || e.Counts.DeadLettered > 0
}

// replayLedger is the content of replayed.json.
type replayLedger struct {
	Replays []replayEntry `json:"replays"`
}

func readLedger(ctx context.Context, loc blobio.Location) (*replayLedger, error) {
	led := &replayLedger{Replays: []replayEntry{}}
	if _, err := blobio.ReadJSON(ctx, loc, led); err != nil {
		return nil, err
	}
	return led, nil
}

func writeLedger(ctx context.Context, loc blobio.Location, led *replayLedger) error {
	data, err := json.MarshalIndent(led, "", "  ")
	if err != nil {
		return err
	}
	return blobio.WriteAll(context.WithoutCancel(ctx), loc, append(data, '\n'))
}

// runReplay implements `bulkflow replay`.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var rf replayFlags
	dlURL, code := rf.parse(args, stderr)
	if dlURL == "" {
		return code
	}
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "bulkflow: replay: "+format+"\n", args...)
		return code
	}

	g, err := config.LoadFile(rf.pipelineFile, pipeline.DefaultRegistry())
	if err != nil {
		cli.PrintError(stderr, err)
		return exitUsage
	}
	dlLoc, st, err := replayStage(g, dlURL, rf.pipelineFile)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}

	sum, data, code, err := replayHeader(ctx, dlLoc, dlURL)
	if err != nil {
		return fail(code, "%v", err)
	}
	// One replay of a file at a time, from reading its records to writing
	// its outcome: two at once would both find it unreplayed (or both
	// resume the same dead replay) and send its rows twice.
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	unlock, err := lockReplay(ctx, g, sum, dlURL, cancelRun)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer unlock()

	book, code, err := replayRecords(ctx, g, dlLoc, dlURL, sum, &rf)
	if err != nil {
		return fail(code, "%v", err)
	}
	// The replay also holds the lock of the run that wrote the dead letter,
	// which `run --resume` of that run takes: a resume would read the
	// run's source again and account afresh for the rows this replay
	// sends. The records are read again under it.
	// The state the run used: --state, else the one its dead-letter
	// manifest names (`run --state` may differ from the file's), else the
	// file's.
	stateLoc, stName := rf.state, stateName(g, pipeline.Shard{})
	if m := book.man.m; m != nil {
		if stateLoc == "" {
			stateLoc = m.State
		}
		if m.StateName != "" { // a --shard run's
			stName = m.StateName
		}
	}
	stateLoc = stateLocation(stateLoc, g)
	var store *state.Store // the run's state, opened once: nil when the pipeline keeps none
	if needsState(g) {
		if store, err = state.Open(ctx, stateLoc, stName); err != nil {
			return fail(exitFailed, "%s: %v", dlURL, err)
		}
	}
	lockLoc, lockName, lockSub := runLockPlace(g, stateLoc, stName)
	dlRun := ""
	if m := book.man.m; m != nil && cli.ValidRunID(m.RunID) {
		dlRun = m.RunID
		unlockDL, err := lockRun(ctx, lockLoc, lockName, lockSub, dlRun, cancelRun)
		if errors.Is(err, errRunLocked) {
			return fail(exitFailed, "%s: run %s, which wrote it, is in progress in another process (it, or a resume of it, may load these rows), "+
				"so nothing was sent; replay its dead letters once it has finished: %v", dlURL, dlRun, err)
		}
		if err != nil {
			return fail(exitFailed, "%s: %v", dlURL, err)
		}
		defer unlockDL()
		if book, code, err = replayRecords(ctx, g, dlLoc, dlURL, sum, &rf); err != nil {
			return fail(code, "%v", err)
		}
	}

	// Rows whose job may have run are settled only by resuming the run
	// that wrote the file, which a replay of its other rows would then
	// refuse (settledByReplay): the resume comes first.
	if m := book.man.m; m != nil && !book.resumed && !rf.force {
		if err := resumeFirst(ctx, dlLoc, dlURL, rf.pipelineFile, m.RunID, book.led); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}
	// An unfinished run of a pipeline that inserts and keeps state is
	// resumed by its next run (unfinished.go), whatever the flags: a
	// replay of its rows first would leave that resume refused and the
	// rows it loaded outside the state, to be inserted again.
	own := ""
	if book.resumed {
		own = book.led.Replays[book.entry].RunID
	}
	if err := unfinishedFirst(ctx, g, store, dlURL, rf.pipelineFile, dlRun, own); err != nil {
		return fail(exitUsage, "%v", err)
	}
	if rf.settle.s != nil && !book.resumed {
		return fail(exitUsage, "--settle-unknown settles the rows of unknown outcome of a replay being resumed: give it with --resume RUN_ID "+
			"(the replay's run id, in its report and dead letters); nothing was sent")
	}
	if dlRun != "" && !book.resumed {
		if !rf.force {
			if err := supersededBySync(ctx, g, store, st, dlURL, book.man.m); err != nil {
				return fail(exitUsage, "%v", err)
			}
		}
	}

	// Type the data columns as the stage saw them, so that nulls, dates
	// and numbers reach the downstream stages as in the original run.
	env := newEnv(g, rf.logs, stderr)
	types := replayTypes(ctx, g, st, env, stderr)
	rcsv, src := replayInput(ctx, env, st, dlURL, data, types)

	ng, err := replayGraph(g, st, src, rf.all, rf.fixes, rcsv != nil)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	var sel *replaySelect
	reg := replayRegistry(rcsv, &sel)
	env = newEnv(g, rf.logs, stderr)
	if book.resumed {
		// The same run id: the Salesforce sinks' ledgers re-attach the
		// jobs the earlier process created (`run --resume`'s mechanism).
		e := book.led.Replays[book.entry]
		if err := resumableSinks(ng, e.RunID, dlURL); err != nil {
			return fail(exitUsage, "%v", err)
		}
		// A replay that ended and whose own dead letters were replayed is
		// settled: resuming it would dead-letter those rows afresh.
		if code, err := settledByReplay(ctx, g, e.RunID, rf.pipelineFile, false); err != nil {
			return fail(code, "%v", err)
		}
		env.RunID, env.Logger = e.RunID, rf.logs.NewLogger(stderr).With("run_id", e.RunID)
		fmt.Fprintf(stderr, "bulkflow: replay: resuming replay run %s of %s (attempt %d; started %s, status %s): "+
			"the jobs it created are read back from the ledger, none is sent twice\n",
			e.RunID, dlURL, max(e.Attempt, 1)+1, e.StartedAt.Format(time.RFC3339), e.Status)
	}
	// A `run --resume` of the replay's id cannot overlap it either.
	if env.RunID != dlRun {
		unlockRun, err := lockRun(ctx, lockLoc, lockName, lockSub, env.RunID, cancelRun)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		defer unlockRun()
	}
	// Sync stages diff the replayed rows against their manifest (a row
	// already loaded unchanged is not sent again) and commit what loads,
	// without deleting anything or dropping the keys the replay does not
	// see.
	opts, err := syncView(ctx, g, ng, env, syncReplay, store, map[string]*partialSyncer{})
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	if needsState(ng) {
		opts.StateLocation, opts.StateName = stateLoc, stName
	}
	opts.Resumed = book.resumed
	// The sinks' resume hints name this replay's resume too, not `run
	// --resume` of its id (which would read the pipeline's source).
	hinted := &replayEntry{RunID: env.RunID, All: rf.all, Map: rf.fixes.exprs()}
	if book.resumed {
		hinted = &book.led.Replays[book.entry]
	}
	for _, s := range ng.Stages {
		if o, ok := s.Options.(interface{ SetResumeCommand(string) }); ok && s.Kind == pipeline.KindSink {
			o.SetResumeCommand(replayCommand(dlURL, rf.pipelineFile, hinted, true))
		}
	}
	plan, err := pipeline.Prepare(ctx, reg, ng, env)
	if err != nil {
		cli.PrintError(stderr, err)
		return exitUsage
	}

	entry := replayEntry{SHA256: sum, DeadLetter: dlURL, Stage: st.Name, RunID: env.RunID, Pipeline: g.Name,
		All: rf.all, Map: rf.fixes.exprs(), Forced: rf.force, StartedAt: time.Now().UTC(), Status: "running"}
	opts.MaybeStored = mayBeStored(&sel)
	if book.resumed {
		if opts.SettleUnknown, err = resumeSettlement(ctx, g, stateLoc, stName, env.RunID, rf.settle.s, env.Logger); err != nil {
			plan.Close()
			return fail(exitFailed, "%v", err)
		}
	}
	// A replay of a pipeline that inserts and keeps state is in flight
	// until it finishes, as a run is (unfinished.go): the pipeline's next
	// run would send again the rows it may have loaded.
	guarded := store != nil && guardsUnfinished(g)
	if guarded {
		pending, err := markInflight(ctx, store, g, env.RunID, replayCommand(dlURL, rf.pipelineFile, hinted, true))
		if err != nil {
			plan.Close()
			return fail(exitFailed, "%v", err)
		}
		if pending != "" {
			// A run started since the check above (a scheduler's).
			plan.Close()
			return fail(exitUsage, "%s: run %s of pipeline %s started meanwhile and is in flight: replay once it has finished; nothing was sent",
				dlURL, pending, g.Name)
		}
	}
	if err := book.start(ctx, entry); err != nil {
		plan.Close()
		if guarded && !book.resumed {
			// Nothing ran, and no replay record names the run to resume.
			if cerr := store.Put(context.WithoutCancel(ctx), inflightKey, inflight{}); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		return fail(exitFailed, "%v", err)
	}
	rep, runErr := plan.Run(ctx, opts)
	if guarded {
		if err := clearInflight(context.WithoutCancel(ctx), store, env.RunID, rep); err != nil {
			fmt.Fprintf(stderr, "bulkflow: replay: %v\n", err)
		}
	}
	if rf.settle.s != nil {
		warnUnsettled(opts.SettleUnknown, env.Logger)
	}
	// Rows refused because their job may have run are neither loaded nor
	// settled: the replay is partial (exit 3), not succeeded.
	refused := sel.refused()
	if refused > 0 && rep.Status == pipeline.StatusSucceeded {
		rep.Status = pipeline.StatusPartial
	}
	// Rows of this replay whose job may have run are settled by resuming
	// the replay, not by `run --resume` of its id (that would read the
	// pipeline's source).
	resume := replayCommand(dlURL, rf.pipelineFile, &book.led.Replays[book.entry], true)
	for i := range rep.NextSteps {
		if rep.NextSteps[i].Recovery == pipeline.RecoveryResume.String() {
			rep.NextSteps[i].Command = resume
		}
	}
	if rep.ResumeCommand != "" {
		rep.ResumeCommand = resume
	}
	if err := book.finish(ctx, rep, stderr); err != nil && runErr == nil {
		runErr = err
	}
	runErr = writeRunReport(ctx, rf.report, rep, runErr, stderr)
	printReplay(stdout, stderr, dlURL, rf.pipelineFile, rf.all, refused, rep, sel, book.led)
	rep.Summary(stderr)
	return exitCode(rep, runErr) // refused rows made the report partial
}

// lockReplay takes the replay lock of the dead-letter file whose content
// has digest sum: a run lock (lockRun: flock(2) in a local directory, a
// lease on a blob store) on <dead_letter>/replay-locks/<sha256>/. A
// replay of the same file in another process makes it fail at once.
func lockReplay(ctx context.Context, g *pipeline.Graph, sum, dlURL string, lost func(error)) (func(), error) {
	dl := cmp.Or(g.DeadLetter, "dead-letter/")
	if !strings.Contains(dl, "://") && !filepath.IsAbs(dl) {
		dl = filepath.Join(g.BaseDir, dl)
	}
	unlock, err := lockRun(ctx, dl, "replay-locks", "", sum, lost)
	if errors.Is(err, errRunLocked) {
		return nil, fmt.Errorf("%s is being replayed by another process right now, and two replays at once could send its rows twice, "+
			"so this one stops before sending anything; let that replay finish (if its process died, replay again: it is resumed). Lock: %w", dlURL, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: take the replay lock: %w", dlURL, err)
	}
	return unlock, nil
}

// resumableSinks checks that every sink of the replay graph ng that can
// keep a ledger of its runs (a Salesforce sink) keeps one: without it, a
// resume of replay runID cannot know what the earlier process loaded and
// would send it again.
func resumableSinks(ng *pipeline.Graph, runID, dlURL string) error {
	for _, s := range ng.Stages {
		if l, ok := s.Options.(interface{ LedgerLocation() string }); ok && s.Kind == pipeline.KindSink && l.LedgerLocation() == "" {
			return fmt.Errorf("replay run %s of %s did not finish, and sink stage %q keeps no ledger (ledger: off, or the embedded emulator), "+
				"so which of its rows reached their target is unknown and a resume could send them twice; look for them there, "+
				"then replay with --force (it sends every row again)", runID, dlURL, s.Name)
		}
	}
	return nil
}

// replayCommand returns the `bulkflow replay` command that repeats replay
// e of the dead letter dlURL (its --all and --map flags), with --resume
// of its run id when resume.
func replayCommand(dlURL, pipelineFile string, e *replayEntry, resume bool) string {
	args := []string{"bulkflow", "replay", dlURL, "--pipeline", pipelineFile}
	if e.All {
		args = append(args, "--all")
	}
	for _, m := range e.Map {
		args = append(args, "--map", m)
	}
	if resume {
		args = append(args, "--resume", e.RunID)
	}
	return pipeline.ShellCommand(args...)
}

// replayFlags are the flags of `bulkflow replay`.
type replayFlags struct {
	pipelineFile, report string
	state                string // --state
	resume               string // --resume RUN_ID
	settle               settleFlag
	all, force           bool
	fixes                mapFlags
	logs                 obs.LogOptions
}

// parse parses args into f and returns the dead-letter URL, or "" with the
// exit code to return (usage printed).
func (f *replayFlags) parse(args []string, stderr io.Writer) (string, int) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.pipelineFile, "pipeline", "", "the pipeline `file` whose run wrote the dead letter (required)")
	fs.BoolVar(&f.all, "all", false, "replay every row, not only those whose failure is retryable")
	fs.BoolVar(&f.force, "force", false, "replay even if this dead-letter file was replayed before (rows may be sent twice)")
	fs.StringVar(&f.report, "report", "", "write the JSON run report to this `path` or blob URL")
	fs.StringVar(&f.state, "state", "", "state `location` of the pipeline's syncs and watermarks; default: the one the run that wrote the file used (its manifest's state), else the pipeline's state:")
	fs.StringVar(&f.resume, "resume", "", "resume the replay of this file with this `RUN_ID` (its jobs are read back from the ledger); a replay whose process died is resumed without it")
	fs.Var(&f.settle, "settle-unknown", "with a resumed replay: settle its rows of unknown outcome as you found them in Salesforce, as `run --settle-unknown` does\n(loaded, absent, JOB_ID=loaded|absent, @FILE)")
	fs.Var(&f.fixes, "map", "`FIELD=EXPR` fix applied to every replayed row (repeatable)")
	obs.AddLogFlags(fs, &f.logs, "warn")
	fs.Usage = func() {
		fmt.Fprintln(stderr, replayUsage)
		fs.PrintDefaults()
	}
	dlURL, err := parseInterspersed(fs, args)
	if err != nil {
		return "", flagExit(err)
	}
	if dlURL == "" || f.pipelineFile == "" {
		fs.Usage()
		return "", exitUsage
	}
	if err := f.logs.Check(); err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return "", exitUsage
	}
	if f.resume != "" && !cli.ValidRunID(f.resume) {
		fmt.Fprintf(stderr, "bulkflow: replay: --resume %q is not a run id (letters, digits, '.', '_' and '-', as in 20260101T120000Z-1a2b3c4d)\n", f.resume)
		return "", exitUsage
	}
	if f.resume != "" && f.force {
		fmt.Fprintln(stderr, "bulkflow: replay: --resume continues a replay and --force starts a new one: pass one of them")
		return "", exitUsage
	}
	return dlURL, exitOK
}

// replayBook is what a replay records about itself: the dead letter's
// manifest entry, the replay ledger (replayed.json) and its own entry in
// it.
type replayBook struct {
	man     *replayManifest
	led     *replayLedger
	loc     blobio.Location
	entry   int  // this replay's entry in led.Replays (-1 until start)
	resumed bool // entry is an earlier replay's, which this one resumes
}

// start records the replay before any row moves, so that a crash
// mid-replay cannot lead to a second, fresh replay of the file: a fresh
// replay adds entry (with the --map fixes) to the ledger; a resumed one
// counts an attempt in its own. The dead letter's manifest entry names the
// replay (replayed_by).
func (b *replayBook) start(ctx context.Context, entry replayEntry) error {
	if b.resumed {
		e := &b.led.Replays[b.entry]
		e.Attempt, e.Status = max(e.Attempt, 1)+1, "running"
	} else {
		entry.Attempt = 1
		b.led.Replays = append(b.led.Replays, entry)
		b.entry = len(b.led.Replays) - 1
	}
	if err := writeLedger(ctx, b.loc, b.led); err != nil {
		return fmt.Errorf("record the replay in %s: %w", b.loc, err)
	}
	if err := b.man.mark(ctx, b.led.Replays[b.entry].RunID, true); err != nil {
		return fmt.Errorf("record the replay in %s: %w", b.man.loc, err)
	}
	return nil
}

// replayHeader reads the dead letter's digest and header, and returns the
// row's own columns (the header less DeadLetterColumns); an error comes
// with its exit code.
func replayHeader(ctx context.Context, dlLoc blobio.Location, dlURL string) (sum string, data []string, code int, err error) {
	sum, header, err := inspectDeadLetter(ctx, dlLoc)
	if err != nil {
		return "", nil, exitFailed, fmt.Errorf("read %s: %w", dlURL, err)
	}
	dlc := pipeline.DeadLetterColumns()
	n := len(dlc)
	if len(header) < n || !slices.Equal(header[len(header)-n:], dlc) {
		return "", nil, exitUsage, fmt.Errorf("%s is not a dead-letter file: its header does not end with %s", dlURL, strings.Join(dlc, ","))
	}
	return sum, header[:len(header)-n], exitOK, nil
}

// replayInput returns how the dead letter is read. A CSV source's dead
// letter is read as text (rcsv rebuilds the rows it refused from _raw with
// its reader and options, and parses its typed columns after the --map
// fixes, so that a fix can mend a bad_value); other dead letters are read
// typed, as the stage saw them.
func replayInput(ctx context.Context, env *pipeline.Env, st *pipeline.StageSpec, dlURL string, data []string, types map[string]pipeline.Type) (*replayCSV, *csvsource.Options) {
	var rcsv *replayCSV
	if co, ok := st.Options.(*csvsource.Options); ok && st.Kind == pipeline.KindSource {
		rcsv = newReplayCSV(ctx, env, co, types)
	}
	src := &csvsource.Options{URL: dlURL}
	for _, c := range data {
		if t, ok := types[c]; ok && t != pipeline.TypeString && t != pipeline.TypeAny && rcsv == nil {
			src.Columns = append(src.Columns, csvsource.Column{Name: c, Type: t.String()})
		}
	}
	return rcsv, src
}

// refused counts the rows s refused because their job may have run (0 for
// a nil s: the plan never built it).
func (s *replaySelect) refused() int64 {
	if s == nil {
		return 0
	}
	var n int64
	for _, c := range s.needResume {
		n += c
	}
	return n
}

// replayRecords checks that the dead letter at dlLoc may be replayed: it is
// live in its run's manifest and its content (sum) was not replayed before
// (unless --force), or an earlier replay of it is to be resumed (its
// process died, or --resume names it). It returns the manifest and the
// replay ledger beside the run folders; an error comes with its exit code.
func replayRecords(ctx context.Context, g *pipeline.Graph, dlLoc blobio.Location, dlURL, sum string, rf *replayFlags) (*replayBook, int, error) {
	dlPrefix := g.DeadLetter
	if dlPrefix == "" {
		dlPrefix = "dead-letter/"
	}
	prefix, err := blobio.Parse(g.BaseDir, dlPrefix)
	if err != nil {
		return nil, exitUsage, fmt.Errorf("dead_letter: %w", err)
	}
	ledgerLoc := blobio.Join(prefix, replayLedgerName)
	led, err := readLedger(ctx, ledgerLoc)
	if err != nil {
		return nil, exitFailed, fmt.Errorf("read %s: %w", ledgerLoc, err)
	}
	book := &replayBook{led: led, loc: ledgerLoc, entry: -1}
	i, code, err := resumeEntry(led, ledgerLoc, dlURL, sum, rf)
	if err != nil {
		return nil, code, err
	}
	resumeID := ""
	if i >= 0 {
		book.entry, book.resumed, resumeID = i, true, led.Replays[i].RunID
	}
	if book.man, err = liveDeadLetter(ctx, dlLoc, rf.pipelineFile, rf.force, resumeID); err != nil {
		return nil, exitUsage, fmt.Errorf("%s: %w", dlURL, err)
	}
	return book, exitOK, nil
}

// resumeEntry returns the index of the ledger entry of the replay this one
// resumes, or -1 for a fresh replay. --resume RUN_ID names it; otherwise
// it is a replay of the same content (sum) still "running" in the ledger:
// its process died (the caller holds the file's replay lock, so it is not
// running), and only a resume through the sinks' ledgers settles its rows.
// Any other replay that may have sent rows refuses the file (unless
// --force). A resume must repeat the replay's --all and --map flags: the
// error names the exact command.
func resumeEntry(led *replayLedger, ledgerLoc blobio.Location, dlURL, sum string, rf *replayFlags) (int, int, error) {
	found := -1
	if rf.resume != "" {
		var ids []string
		for i, e := range led.Replays {
			if e.SHA256 == sum {
				ids = append(ids, e.RunID)
				if e.RunID == rf.resume {
					found = i
				}
			}
		}
		if found < 0 {
			return -1, exitUsage, fmt.Errorf("--resume %s: %s records no replay of %s (sha256 %s) by that run; its replays: %s",
				rf.resume, ledgerLoc, dlURL, sum[:12], strings.Join(append(ids, "none")[:max(len(ids), 1)], ", "))
		}
	} else if !rf.force {
		for i, e := range led.Replays {
			if e.SHA256 != sum || !e.blocks() {
				continue
			}
			if e.Status != "running" {
				return -1, exitUsage, fmt.Errorf("%s (sha256 %s) was already replayed by run %s at %s (status %s, %d rows loaded); "+
					"replaying it again could send its rows twice. Replay that run's own dead letters instead, or pass --force",
					dlURL, sum[:12], e.RunID, e.StartedAt.Format(time.RFC3339), e.Status, e.Counts.Loaded)
			}
			found = i
		}
	}
	if found < 0 {
		return -1, exitOK, nil
	}
	e := &led.Replays[found]
	if e.All != rf.all || !slices.Equal(e.Map, rf.fixes.exprs()) {
		why := "did not finish (its process died)"
		if rf.resume != "" {
			why = "is resumed"
		}
		return -1, exitUsage, fmt.Errorf("replay run %s of %s %s, and a resume must send the rows it sent, with its flags; run: %s",
			e.RunID, dlURL, why, replayCommand(dlURL, rf.pipelineFile, e, rf.resume != ""))
	}
	return found, exitOK, nil
}

// finish writes the replay's status and counts to its ledger entry, and
// frees the dead letter for another replay when nothing reached a sink. A
// ledger that cannot be written is returned.
func (b *replayBook) finish(ctx context.Context, rep *pipeline.Report, stderr io.Writer) error {
	e := &b.led.Replays[b.entry]
	e.Status, e.Counts = rep.Status, rep.Counts
	var werr error
	if err := writeLedger(ctx, b.loc, b.led); err != nil {
		fmt.Fprintf(stderr, "bulkflow: replay: record the outcome in %s: %v\n", b.loc, err)
		werr = err
	}
	if !e.blocks() {
		// Nothing reached a sink: the file may be replayed again.
		if err := b.man.mark(ctx, rep.RunID, false); err != nil {
			fmt.Fprintf(stderr, "bulkflow: replay: record the outcome in %s: %v\n", b.man.loc, err)
		}
	}
	return werr
}

// replayStage resolves the dead-letter URL and finds the stage of g whose
// dead letter it is (files are named <stage>.csv).
func replayStage(g *pipeline.Graph, dlURL, pipelineFile string) (blobio.Location, *pipeline.StageSpec, error) {
	dlLoc, err := blobio.Parse(g.BaseDir, dlURL)
	if err != nil {
		return dlLoc, nil, err
	}
	base := path.Base(dlLoc.Key)
	if !strings.HasSuffix(base, ".csv") || base == ".csv" {
		return dlLoc, nil, fmt.Errorf("%s: a dead-letter file is named <stage>.csv", dlURL)
	}
	stageName := strings.TrimSuffix(base, ".csv")
	var names []string
	for i := range g.Stages {
		names = append(names, g.Stages[i].Name)
		if stageDirName(g.Stages[i].Name) == stageName {
			return dlLoc, &g.Stages[i], nil
		}
	}
	return dlLoc, nil, fmt.Errorf("%s: pipeline %s has no stage %q (stages: %s)", dlURL, pipelineFile, stageName, strings.Join(names, ", "))
}

// replayTypes returns the column types of the rows stage st dead-letters
// (its input schema; a source's output), learnt by preparing the original
// pipeline. Without them every column is read as a string (with a warning).
func replayTypes(ctx context.Context, g *pipeline.Graph, st *pipeline.StageSpec, env *pipeline.Env, stderr io.Writer) map[string]pipeline.Type {
	types := map[string]pipeline.Type{}
	orig, err := pipeline.Prepare(ctx, pipeline.DefaultRegistry(), g, env)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: replay: warning: cannot open the pipeline's sources to learn column types; "+
			"every dead-letter column is read as a string: %v\n", err)
		return types
	}
	defer orig.Close()
	key := st.Name
	if st.Kind != pipeline.KindSource && len(st.Inputs) > 0 {
		key = st.Inputs[0]
	}
	if sc := orig.Schemas()[key]; sc != nil {
		for _, f := range sc.Fields() {
			types[f.Name] = f.Type
		}
	}
	return types
}

// replayRegistry is the default registry plus replay's private transforms;
// *sel is set to the selecting transform when the plan builds it.
func replayRegistry(rcsv *replayCSV, sel **replaySelect) *pipeline.Registry {
	reg := pipeline.DefaultRegistry().Clone()
	reg.RegisterTransform(replaySelectType, pipeline.Spec{Summary: "keep retryable dead-lettered rows, drop the _ columns"},
		pipeline.TypedTransform(replaySelectType, func(env *pipeline.Env, o *replaySelectOptions) (*replaySelect, error) {
			*sel = &replaySelect{all: o.All, keepRaw: o.KeepRaw, needResume: map[string]int64{}}
			return *sel, nil
		}))
	reg.RegisterTransform(replayRebuildType, pipeline.Spec{Summary: "rebuild source-rejected rows from _raw"},
		func(env *pipeline.Env, opts any) (pipeline.Transform, error) {
			return &replayRebuild{csv: rcsv, env: env}, nil
		})
	reg.RegisterTransform(replayTypeType, pipeline.Spec{Summary: "parse the source's typed columns after the fixes"},
		func(env *pipeline.Env, opts any) (pipeline.Transform, error) {
			return &replayType{csv: rcsv, env: env}, nil
		})
	reg.RegisterTransform(replayFixType, pipeline.Spec{Summary: "apply --map fixes"},
		func(env *pipeline.Env, opts any) (pipeline.Transform, error) {
			return &replayFix{fixes: opts.(mapFlags), penv: env}, nil
		})
	return reg
}

// printReplay says on stdout what happened to the dead letter's rows, and
// on stderr how to recover the rows refused because their job may have run.
func printReplay(stdout, stderr io.Writer, dlURL, pipelineFile string, all bool, refused int64, rep *pipeline.Report, sel *replaySelect, led *replayLedger) {
	for _, s := range rep.Stages {
		if s.Type == replaySelectType {
			what := "not retryable; --all replays them"
			if all {
				what = "none with --all"
			}
			fmt.Fprintf(stdout, "replay %s: %d rows in the dead letter, %d replayed, %d filtered (%s), %d refused (their job may have run); run %s\n",
				dlURL, rep.Counts.Read, s.Out, s.Filtered-refused, what, refused, rep.RunID)
		}
	}
	if sel != nil {
		for id, n := range sel.needResume {
			// A replay's rows are settled by resuming that replay.
			resume := pipeline.ShellCommand("bulkflow", "run", pipelineFile, "--resume", id)
			for i := range led.Replays {
				if e := &led.Replays[i]; e.RunID == id && id != "" {
					resume = replayCommand(e.DeadLetter, pipelineFile, e, true)
				}
			}
			fmt.Fprintf(stderr, "bulkflow: replay: %d rows were not sent: their Salesforce job may have run (job_incomplete), so sending them again "+
				"could load them twice; resume their run, which reads that job's outcome: %s\n", n, resume)
		}
	}
}

// replayManifest is the manifest of the run that wrote a dead-letter file,
// and the file's entry in it.
type replayManifest struct {
	m     *pipeline.Manifest
	loc   blobio.Location
	entry int // index in m.Files; -1 without a manifest (--force)
}

// liveDeadLetter finds the manifest.json of the run folder the dead-letter
// file at loc is in (<dead_letter>/<run id>/, or its attempt-N/ folder) and
// checks that the file is live: listed in the manifest's files, not
// superseded by a later attempt of its run (a resume read the source again
// and accounted for every row afresh, so the rows may be loaded), the run
// not in progress, and not replayed before (unless force, or by
// resumeID only: the replay being resumed). A file with no manifest is
// refused unless force.
func liveDeadLetter(ctx context.Context, loc blobio.Location, pipelineFile string, force bool, resumeID string) (*replayManifest, error) {
	key := loc.Key
	if loc.Scheme == "file" {
		// A local location's bucket is the file's directory: climb from
		// the full path.
		u, err := url.Parse(loc.BucketURL)
		if err != nil {
			return nil, err
		}
		key = path.Join(filepath.ToSlash(u.Path), key)
	}
	dir, rel := path.Dir(key), path.Base(key)
	if b := path.Base(dir); strings.HasPrefix(b, "attempt-") {
		dir, rel = path.Dir(dir), b+"/"+rel
	}
	runFolder := path.Base(dir)
	manLoc := loc.WithKey(path.Join(dir, "manifest.json"))
	if loc.Scheme == "file" {
		var err error
		if manLoc, err = blobio.Parse("", filepath.FromSlash(path.Join(dir, "manifest.json"))); err != nil {
			return nil, err
		}
	}
	m, found, err := pipeline.ReadManifest(ctx, manLoc)
	if err != nil {
		return nil, err
	}
	if !found {
		if force {
			return &replayManifest{loc: manLoc, entry: -1}, nil
		}
		return nil, fmt.Errorf("no %s beside it, so whether its rows are still unloaded cannot be checked; replay a dead-letter file "+
			"in its run folder (<dead_letter>/<run id>/), or pass --force", manLoc)
	}
	tail := runFolder + "/" + rel
	is := func(u string) bool { return u == tail || strings.HasSuffix(u, "/"+tail) }
	resume := fmt.Sprintf("bulkflow run %s --resume %s", pipelineFile, m.RunID)
	for _, f := range m.Superseded {
		if is(f.URL) {
			return nil, fmt.Errorf("superseded: run %s was resumed (attempt %d) after attempt %d wrote this file, and the resume read the source again, "+
				"so these rows are loaded or in the newer attempt's dead letters (%s lists the live files); it is never replayed",
				m.RunID, f.SupersededBy, f.Attempt, manLoc)
		}
	}
	if m.Status == pipeline.ManifestRunning {
		return nil, fmt.Errorf("attempt %d of run %s has not finished (it is running, or its process died): its rows may be loading; "+
			"let it finish or resume it (%s), then replay the dead letters its manifest lists", m.Attempt, m.RunID, resume)
	}
	if m.Attempt > 1 && (m.Status == pipeline.StatusFailed || m.Status == pipeline.StatusCancelled) {
		// The attempt stopped part-way: rows it drained (cancelled,
		// aborted, or refused by a re-cut check) never reached a sink in
		// this attempt, but an earlier attempt's jobs may have loaded them.
		return nil, fmt.Errorf("attempt %d of run %s (a resume) ended %s: rows it did not reach may have been loaded by an earlier attempt, "+
			"so its dead letters are not replayed; resume the run again (%s), which settles them", m.Attempt, m.RunID, m.Status, resume)
	}
	for i, f := range m.Files {
		if !is(f.URL) {
			continue
		}
		resuming := resumeID != "" && !slices.ContainsFunc(f.ReplayedBy, func(id string) bool { return id != resumeID })
		if len(f.ReplayedBy) > 0 && !force && !resuming {
			return nil, fmt.Errorf("already replayed by run %s (recorded in %s); replaying it again could send its rows twice. "+
				"Replay that run's own dead letters instead, or pass --force", strings.Join(f.ReplayedBy, ", "), manLoc)
		}
		return &replayManifest{m: m, loc: manLoc, entry: i}, nil
	}
	var live []string
	for _, f := range m.Files {
		live = append(live, f.URL)
	}
	return nil, fmt.Errorf("not a live dead-letter file of run %s: %s lists %s", m.RunID, manLoc, strings.Join(append(live, "none")[:max(len(live), 1)], ", "))
}

// mark records (add) or takes off the replay run id in the file's
// manifest entry.
func (r *replayManifest) mark(ctx context.Context, runID string, add bool) error {
	if r.entry < 0 {
		return nil
	}
	f := &r.m.Files[r.entry]
	if add {
		if slices.Contains(f.ReplayedBy, runID) {
			return nil // a resumed replay
		}
		f.ReplayedBy = append(f.ReplayedBy, runID)
	} else {
		f.ReplayedBy = slices.DeleteFunc(f.ReplayedBy, func(id string) bool { return id == runID })
	}
	return pipeline.WriteManifest(context.WithoutCancel(ctx), r.loc, r.m)
}

// inspectDeadLetter returns the sha256 (hex) and the CSV header of a
// dead-letter file.
func inspectDeadLetter(ctx context.Context, loc blobio.Location) (string, []string, error) {
	r, err := blobio.NewReader(ctx, loc)
	if err != nil {
		return "", nil, err
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	r.Close()
	if err != nil {
		return "", nil, fmt.Errorf("header: %w", err)
	}
	r, err = blobio.NewReader(ctx, loc)
	if err != nil {
		return "", nil, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), header, nil
}

// replayGraph builds the replay graph: the dead-letter CSV source, the
// row selection, the optional fixes, then the dead-letter stage (unless it
// is a source) and every stage downstream of it, reading only from stages
// of the replay.
func replayGraph(g *pipeline.Graph, st *pipeline.StageSpec, src *csvsource.Options, all bool, fixes mapFlags, rebuild bool) (*pipeline.Graph, error) {
	down := map[string]bool{st.Name: true}
	for changed := true; changed; {
		changed = false
		for _, s := range g.Stages {
			if down[s.Name] {
				continue
			}
			for _, in := range s.Inputs {
				if down[in] {
					down[s.Name], changed = true, true
					break
				}
			}
		}
	}
	used := map[string]bool{}
	for _, s := range g.Stages {
		used[s.Name] = true
	}
	unique := func(n string) string {
		for used[n] {
			n += "_"
		}
		used[n] = true
		return n
	}
	readName, selectName := unique("replay"), unique("replay-select")
	ng := &pipeline.Graph{Name: g.Name, File: g.File, FileHash: g.FileHash, DeadLetter: g.DeadLetter,
		Lookups: g.Lookups, BaseDir: g.BaseDir}
	pos := st.Pos
	ng.Stages = append(ng.Stages,
		pipeline.StageSpec{Name: readName, Kind: pipeline.KindSource, Type: "csv", Options: src, Pos: pos},
		pipeline.StageSpec{Name: selectName, Kind: pipeline.KindTransform, Type: replaySelectType,
			Options: &replaySelectOptions{All: all, KeepRaw: rebuild}, Inputs: []string{readName}, Pos: pos})
	last := selectName
	if rebuild {
		name := unique("replay-rebuild")
		ng.Stages = append(ng.Stages, pipeline.StageSpec{Name: name, Kind: pipeline.KindTransform, Type: replayRebuildType,
			Inputs: []string{last}, Pos: pos})
		last = name
	}
	if len(fixes) > 0 {
		fixName := unique("replay-fix")
		ng.Stages = append(ng.Stages, pipeline.StageSpec{Name: fixName, Kind: pipeline.KindTransform, Type: replayFixType,
			Options: fixes, Inputs: []string{last}, Pos: pos})
		last = fixName
	}
	if rebuild {
		name := unique("replay-type")
		ng.Stages = append(ng.Stages, pipeline.StageSpec{Name: name, Kind: pipeline.KindTransform, Type: replayTypeType,
			Inputs: []string{last}, Pos: pos})
		last = name
	}
	for _, s := range g.Stages {
		if !down[s.Name] || (s.Name == st.Name && s.Kind == pipeline.KindSource) {
			continue
		}
		c := s
		c.Inputs = nil
		if s.Name == st.Name {
			c.Inputs = []string{last}
		} else {
			for _, in := range s.Inputs {
				switch {
				case in == st.Name && st.Kind == pipeline.KindSource:
					c.Inputs = append(c.Inputs, last)
				case down[in]:
					c.Inputs = append(c.Inputs, in)
				}
			}
		}
		ng.Stages = append(ng.Stages, c)
	}
	if err := ng.Check(); err != nil {
		return nil, fmt.Errorf("build the replay graph: %w", err)
	}
	return ng, nil
}

// replaySelectOptions configures the replay-select transform: All keeps
// every row, KeepRaw keeps the _raw column (last) for replay-rebuild.
type replaySelectOptions struct{ All, KeepRaw bool }

// replaySelect keeps the dead-lettered rows to replay (all, or only the
// retryable ones; the others are filtered) without the _ columns.
type replaySelect struct {
	all, keepRaw             bool
	keep                     []int
	code, message, retryable int // columns; retryable is -1 in older files
	runID                    int // the _run_id column, -1 if none
	out                      *pipeline.Schema

	mu         sync.Mutex
	needResume map[string]int64 // run id -> rows refused because only a resume settles them
	// maybeStored holds the origins (Origin.String) of the rows sent
	// whose code says an earlier send may have written them
	// (outcome_unknown_retry): RunOptions.MaybeStored.
	maybeStored sync.Map
}

// mayBeStored is RunOptions.MaybeStored for the replay t selects rows of
// (nil until the plan builds it).
func mayBeStored(t **replaySelect) func(pipeline.Origin) bool {
	return func(o pipeline.Origin) bool {
		if *t == nil {
			return false
		}
		_, ok := (*t).maybeStored.Load(o.String())
		return ok
	}
}

// Check finds the _error_code and _error columns and returns the data
// columns' schema.
func (t *replaySelect) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	t.code, t.message, t.retryable, t.runID = in.Index("_error_code"), in.Index("_error"), in.Index("_retryable"), in.Index("_run_id")
	if t.code < 0 || t.message < 0 {
		return nil, errors.New("not a dead-letter file: no _error_code and _error columns")
	}
	var fields []pipeline.Field
	dlc := pipeline.DeadLetterColumns()
	for i, f := range in.Fields() {
		if !slices.Contains(dlc, f.Name) {
			t.keep = append(t.keep, i)
			fields = append(fields, f)
		}
	}
	if raw := in.Index("_raw"); t.keepRaw && raw >= 0 {
		t.keep = append(t.keep, raw)
		fields = append(fields, in.Field(raw))
	}
	out, err := pipeline.NewSchema(fields...)
	if err != nil {
		return nil, err
	}
	t.out = out
	return out, nil
}

// Apply keeps or filters each row.
func (t *replaySelect) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	out := pipeline.NewBatch(t.out, in.Len())
	for i := range in.Len() {
		row := in.Row(i)
		code, _ := row[t.code].(string)
		msg, _ := row[t.message].(string)
		if pipeline.RecoveryOf(code) == pipeline.RecoveryResume {
			// The row's job may have run: never sent by replay, even with
			// --all (older files said _retryable=true).
			id := ""
			if t.runID >= 0 {
				id, _ = row[t.runID].(string)
			}
			t.mu.Lock()
			t.needResume[id]++
			t.mu.Unlock()
			out.Drop(pipeline.Drop{Row: row, Origin: in.Origin(i)})
			continue
		}
		if pipeline.RecoveryOf(code) == pipeline.RecoverySettled {
			// Settled as in the destination (run --settle-unknown=loaded):
			// never sent again, even with --all.
			out.Drop(pipeline.Drop{Row: row, Origin: in.Origin(i)})
			continue
		}
		// Files without _retryable said retryable=true in the message.
		retry := pipeline.RetryableCode(code) || strings.Contains(msg, "retryable=true")
		if t.retryable >= 0 {
			flag, _ := row[t.retryable].(string)
			retry = flag == "true"
		}
		if !t.all && !retry {
			out.Drop(pipeline.Drop{Row: row, Origin: in.Origin(i)})
			continue
		}
		r := make(pipeline.Row, len(t.keep))
		for j, c := range t.keep {
			r[j] = row[c]
		}
		if code == pipeline.CodeOutcomeUnknownRetry {
			t.maybeStored.Store(in.Origin(i).String(), true)
		}
		out.Append(r, in.Origin(i))
	}
	return out, nil
}

// replayFix applies --map fixes: each named field is replaced by (or, if
// new, appended as) its expression; the other fields pass through.
type replayFix struct {
	fixes mapFlags
	penv  *pipeline.Env
	env   *exprenv.Env
	progs []*exprenv.Program // per output field; nil passes the input field through
	src   []int              // input index of pass-through fields
	out   *pipeline.Schema
}

// Check compiles the fixes against the replayed rows' schema.
func (t *replayFix) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	t.env = exprenv.New(in, t.penv)
	byName := map[string]pipeline.ExprField{}
	for _, f := range t.fixes {
		byName[f.Name] = f
	}
	var fields []pipeline.Field
	add := func(name string, srcIdx int, expr string) error {
		var p *exprenv.Program
		typ := pipeline.TypeAny
		if expr != "" {
			var err error
			if p, err = t.env.Compile(expr); err != nil {
				return fmt.Errorf("--map %s=%s: %v", name, expr, err)
			}
			typ = p.Type
		} else {
			typ = in.Field(srcIdx).Type
		}
		t.progs = append(t.progs, p)
		t.src = append(t.src, srcIdx)
		fields = append(fields, pipeline.Field{Name: name, Type: typ})
		return nil
	}
	for i, f := range in.Fields() {
		fx, ok := byName[f.Name]
		if err := add(f.Name, i, fx.Expr); err != nil {
			return nil, err
		}
		if ok {
			delete(byName, f.Name)
		}
	}
	for _, f := range t.fixes {
		if _, ok := byName[f.Name]; ok {
			if err := add(f.Name, -1, f.Expr); err != nil {
				return nil, err
			}
		}
	}
	out, err := pipeline.NewSchema(fields...)
	if err != nil {
		return nil, err
	}
	t.out = out
	return out, nil
}

// Apply evaluates the fixes; a row a fix fails on is dead-lettered with
// code expr_error.
func (t *replayFix) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	out := pipeline.NewBatch(t.out, in.Len())
	r := t.env.Runner()
	defer r.Release()
rows:
	for i := range in.Len() {
		row := in.Row(i)
		r.Bind(row)
		dst := make(pipeline.Row, len(t.progs))
		for j, p := range t.progs {
			if p == nil {
				dst[j] = row[t.src[j]]
				continue
			}
			v, err := r.Run(p)
			if err != nil {
				out.Drop(pipeline.Drop{Row: row, Origin: in.Origin(i), Err: &pipeline.RowError{
					Code: "expr_error", Field: t.out.Field(j).Name, Err: fmt.Errorf("--map %s: %w", p.Expr, err)}})
				continue rows
			}
			dst[j] = v
		}
		out.Append(dst, in.Origin(i))
	}
	return out, nil
}

// resumeFirst refuses the dead letter at loc, written by run runID, when
// it holds both rows whose job may have run (their recovery is a resume:
// job_incomplete, unsettled) and rows a replay would send: replaying the
// latter first would make the resume that settles the former refuse to
// run (a resume reads the source again and would dead-letter afresh the
// rows the replay loaded), leaving them unsettled. The error names the
// resume to run first; nothing has been sent.
func resumeFirst(ctx context.Context, loc blobio.Location, dlURL, pipelineFile, runID string, led *replayLedger) error {
	r, err := blobio.NewReader(ctx, loc)
	if err != nil {
		return fmt.Errorf("read %s: %w", dlURL, err)
	}
	defer r.Close()
	cr := csv.NewReader(r)
	cr.FieldsPerRecord, cr.ReuseRecord = -1, true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read %s: %w", dlURL, err)
	}
	code := slices.Index(header, "_error_code")
	if code < 0 {
		return nil // not a dead letter: replaySelect says so
	}
	var unsettled, others int64
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", dlURL, err)
		}
		if code < len(rec) && pipeline.RecoveryOf(rec[code]) == pipeline.RecoveryResume {
			unsettled++
		} else {
			others++
		}
	}
	if unsettled == 0 || others == 0 {
		return nil
	}
	resume := pipeline.ShellCommand("bulkflow", "run", pipelineFile, "--resume", runID)
	for i := range led.Replays {
		if e := &led.Replays[i]; e.RunID == runID {
			resume = replayCommand(e.DeadLetter, pipelineFile, e, true)
		}
	}
	return fmt.Errorf("%s holds %d rows whose Salesforce job may have run (job_incomplete) beside %d others; only a resume of run %s settles "+
		"the former, and it could not run after a replay of the latter (it reads the source again and would dead-letter afresh the rows the replay loads). "+
		"Nothing was sent: resume the run first (%s), then replay the dead letters it writes", dlURL, unsettled, others, runID, resume)
}

// supersededBySync refuses the replay of dead-letter file dlURL, written
// at stage st by the run of manifest m (whose state is store), when a later run has resent its
// rows: every sink the stage feeds has a sync: that reads the whole
// source (no incremental: source feeds it), and a run that began after m's
// attempt ended committed its manifest. That run sent each row of the
// file again with the values the source had then, dead-lettered it again
// in its own dead letters, or found it gone from the source; a replay
// would send the older values over newer ones (for an insert, a second
// record).
func supersededBySync(ctx context.Context, g *pipeline.Graph, store *state.Store, st *pipeline.StageSpec, dlURL string, m *pipeline.Manifest) error {
	dlRun := m.RunID
	sinks := g.Downstream(st, pipeline.KindSink)
	if len(sinks) == 0 || store == nil {
		return nil
	}
	var by []string
	for _, sink := range sinks {
		if sink.Sync == nil || len(incrementalSources(g, sink)) > 0 {
			return nil
		}
		// The last run that began the sync, whether or not it committed
		// (a cancelled one): state of earlier releases has only commits.
		c, found, err := syncer.LastStart(ctx, store, sink.Name)
		if err == nil && !found {
			c, found, err = syncer.LastCommit(ctx, store, sink.Name)
		}
		if err != nil {
			return fmt.Errorf("%s: sync stage %q: %w", dlURL, sink.Name, err)
		}
		after := c.RunID != dlRun && c.OpenedAt.After(m.FinishedAt)
		if m.FinishedAt.IsZero() { // a manifest of an earlier release
			after = laterRun(c.RunID, dlRun)
		}
		if !found || !after {
			return nil
		}
		by = append(by, fmt.Sprintf("run %s began a sync of stage %q", c.RunID, sink.Name))
	}
	return fmt.Errorf("%s: superseded: after run %s, which wrote it, %s, reading the whole source: each row of this file was sent "+
		"again with the values the source had then, dead-lettered again in that run's own dead letters (replay those), had left the "+
		"source, or, where that run stopped first, is sent by the sync's next run (its manifest does not hold the row); replaying this "+
		"file would send older values over newer ones (a second record for an insert); nothing was sent (--force sends it anyway)",
		dlURL, dlRun, strings.Join(by, ", "))
}

// incrementalSources returns the incremental source stages that feed s.
func incrementalSources(g *pipeline.Graph, s *pipeline.StageSpec) []*pipeline.StageSpec {
	var out []*pipeline.StageSpec
	for _, src := range g.Upstream(s, pipeline.KindSource) {
		if src.Incremental != nil {
			out = append(out, src)
		}
	}
	return out
}

// laterRun reports whether run a started in a later second than run b, by
// the UTC time their ids begin with (runs of the same second are not
// ordered: the replay is let through, as before).
func laterRun(a, b string) bool {
	const stamp = len("20060102T150405Z")
	return cli.ValidRunID(a) && cli.ValidRunID(b) && a[:stamp] > b[:stamp]
}
