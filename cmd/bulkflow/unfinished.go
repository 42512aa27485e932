package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
)

// A pipeline that keeps state (a sync manifest, an incremental watermark)
// commits it only when a run finishes. A run that does not (SIGKILL, OOM,
// Ctrl-C or SIGTERM, a failed stage, jobs still running at poll_timeout)
// leaves state that does not hold the rows it loaded, and the next run —
// the scheduler's plain `bulkflow run FILE` — diffs against, or reads past,
// that state and sends those rows again. For an insert that is a second
// record per row, reported succeeded. So, for such pipelines, `run` keeps
// the in-flight document serve keeps (serve.InflightKey in the state
// store) and a plain run resumes the run it names, as serve does at start:
// the Salesforce ledger skips what that run loaded.

// guardsUnfinished reports whether plain runs of g resume a run that did
// not finish: g keeps state, and a sink whose ledger is on stores a row
// sent again twice (pipeline.Resender). Without a ledger a resume cannot
// tell what was loaded; idempotent sinks (upsert, update, delete) apply a
// row sent again to the same record, so their next run may start afresh.
func guardsUnfinished(g *pipeline.Graph) bool {
	if !needsState(g) {
		return false
	}
	for i := range g.Stages {
		if s := &g.Stages[i]; s.Kind == pipeline.KindSink && pipeline.ResumesUnknown(s) {
			return true
		}
	}
	return false
}

// openInflight opens the state store at loc for pipeline name and reads
// its in-flight document (zero when there is none or it names no valid
// run id).
func openInflight(ctx context.Context, loc, name string) (*state.Store, inflight, error) {
	var in inflight
	st, err := state.Open(ctx, loc, name)
	if err != nil {
		return nil, in, fmt.Errorf("state %s: %w", loc, err)
	}
	if _, err := st.Get(ctx, inflightKey, &in); err != nil {
		return nil, inflight{}, fmt.Errorf("state %s: %w", loc, err)
	}
	if !cli.ValidRunID(in.RunID) {
		in = inflight{}
	}
	return st, in, nil
}

// committedRun reports whether run runID of g committed the state that
// tells which rows it loaded: every sync stage's manifest (syncer.Committed)
// or, in a pipeline without sync stages, every incremental source's
// watermark names it. Such a run finished what its state records, and was
// stopped (killed, a crash) before it cleared its in-flight document:
// resuming it would diff its rows against the manifest it wrote itself (or
// read from the watermark it moved), cut other chunks than it did, and be
// refused as a re-cut on every later run (the soak's sync class, seed
// 32066). Its rows that did not load (dead-lettered) are not in the
// manifest, so a new run sends them, once. With sync stages the watermark
// does not matter: one held back (retryable rows) or not yet moved only
// makes the new run read rows the manifest then filters.
//
// A run stopped between two sync stages' commits did not commit them all:
// it is resumed, and its first stage's resume diffs against the manifest
// the run replaced (syncer's keptLocation), so that it cuts the same
// chunks (TestResumeKilledBetweenSyncCommits).
func committedRun(ctx context.Context, st *state.Store, g *pipeline.Graph, runID string) (bool, error) {
	syncs, cursors := 0, 0
	for _, s := range g.Stages {
		if s.Sync == nil {
			continue
		}
		syncs++
		if done, err := syncer.Committed(ctx, st, s.Name, runID); err != nil || !done {
			return false, err
		}
	}
	if syncs > 0 {
		return true, nil
	}
	for _, s := range g.Stages {
		if s.Incremental == nil {
			continue
		}
		cursors++
		wm, found, err := pipeline.LastWatermark(ctx, st, s.Name)
		if err != nil || !found || wm.RunID != runID {
			return false, err
		}
	}
	return cursors > 0, nil
}

// markInflight records run runID of g as in flight in st before any row
// moves, unless the document already names another run (a `--resume` of
// an older run while a newer one is unfinished: that one is resumed next).
// replay is the command that resumes it when the run is a replay ("" for
// a run of the pipeline).
func markInflight(ctx context.Context, st *state.Store, g *pipeline.Graph, runID, replay string) (pending string, err error) {
	var in inflight
	if _, err := st.Get(ctx, inflightKey, &in); err != nil {
		return "", fmt.Errorf("record run %s of %s as in flight: %w", runID, g.Name, err)
	}
	if cli.ValidRunID(in.RunID) && in.RunID != runID {
		return in.RunID, nil
	}
	host, _ := os.Hostname()
	in = inflight{RunID: runID, Holder: fmt.Sprintf("%s:%d", host, os.Getpid()), StartedAt: time.Now().UTC(), Replay: replay}
	if err := st.Put(ctx, inflightKey, in); err != nil {
		return "", fmt.Errorf("record run %s of %s as in flight: %w", runID, g.Name, err)
	}
	return "", nil
}

// finished reports whether a run's state holds everything it loaded, so
// that nothing is left for a resume: it ended succeeded or partial and no
// dead-lettered row's outcome is unknown — neither one a resume settles
// (job_incomplete, unsettled) nor one whose job's results contradict the
// upload (result_mismatch: the row may be stored). A sync's next run
// sends every row its manifest does not hold, so a row of unknown outcome
// would be inserted again; the resume reads the job's results once more
// (a contradiction that persists keeps the run partial until a person has
// looked, as the code table says).
func finished(rep *pipeline.Report) bool {
	if rep == nil || rep.Status != pipeline.StatusSucceeded && rep.Status != pipeline.StatusPartial {
		return false
	}
	for _, eg := range rep.ErrorGroups {
		if eg.Recovery == pipeline.RecoveryResume.String() || eg.Recovery == pipeline.RecoveryInspect.String() {
			return false
		}
	}
	return true
}

// clearInflight clears the in-flight document in st when it names runID
// and the run finished; otherwise the next plain run resumes it.
func clearInflight(ctx context.Context, st *state.Store, runID string, rep *pipeline.Report) error {
	if !finished(rep) {
		return nil
	}
	var in inflight
	if _, err := st.Get(ctx, inflightKey, &in); err != nil || in.RunID != runID {
		return err
	}
	if err := st.Put(ctx, inflightKey, inflight{}); err != nil {
		return fmt.Errorf("clear the in-flight run %s: %w", runID, err)
	}
	return nil
}

// unfinishedFirst refuses the replay of dead-letter file dlURL of run
// dlRun while that run is unfinished (guardsUnfinished: the in-flight
// document in the pipeline's state st names it): resuming it settles its
// rows and records in the state the rows it loaded; once its dead letters
// were replayed it could not be resumed (settledByReplay), and a new run
// would insert those rows again.
//
// Another run or replay in flight refuses it too (own, the replay's own
// run id when it resumes itself, is let through): a replay in flight is
// finished by its resume, and an unfinished run's resume must diff against
// the state it began with.
func unfinishedFirst(ctx context.Context, g *pipeline.Graph, st *state.Store, dlURL, pipelineFile, dlRun, own string) error {
	if !guardsUnfinished(g) {
		return nil
	}
	var in inflight
	if _, err := st.Get(ctx, inflightKey, &in); err != nil {
		return fmt.Errorf("%s: cannot tell whether run %s, which wrote it, finished: %w; nothing was sent", dlURL, dlRun, err)
	}
	switch {
	case !cli.ValidRunID(in.RunID), own != "" && in.RunID == own:
		return nil
	case in.Replay != "":
		return fmt.Errorf("%s: replay %s of pipeline %s did not finish (killed, cancelled, failed, or rows of unknown outcome), and the "+
			"pipeline inserts and keeps state: resume that replay first (add --settle-unknown once you have looked at its rows of unknown "+
			"outcome): %s; nothing was sent", dlURL, in.RunID, g.Name, in.Replay)
	case in.RunID != dlRun:
		return fmt.Errorf("%s: run %s of pipeline %s did not finish, and the pipeline inserts and keeps state: its resume must diff against "+
			"the state it began with, which this replay would change; resume it first (the next plain `bulkflow run %s` does), then "+
			"replay; nothing was sent", dlURL, in.RunID, g.Name, pipelineFile)
	}
	return fmt.Errorf("%s: run %s, which wrote it, did not finish (killed, cancelled or failed, or rows of unknown outcome), and pipeline %s "+
		"inserts and keeps state: resuming the run settles these rows and records in the state the rows it loaded — the next plain "+
		"`bulkflow run %s` does, or `bulkflow run %s --resume %s` — whereas after a replay it could not be resumed and a new run would "+
		"insert those rows again; nothing was sent", dlURL, dlRun, g.Name, pipelineFile, pipelineFile, dlRun)
}
