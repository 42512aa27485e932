package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/filesink"
)

// syncMode is how a command that is not a plain run treats a pipeline's
// sync: and incremental: blocks.
type syncMode int

const (
	// syncPlan: read the state, never write it. Sync stages diff against
	// the manifest (max_deletes applies) but nothing is committed, no sync
	// log is written and deletes are only counted; incremental watermarks
	// are read, not moved.
	syncPlan syncMode = iota + 1
	// syncReplay: the run sees a few rows (a dead letter), not the source.
	// Sync stages diff them against the manifest (unchanged rows are not
	// sent again) and commit what loaded, but keys not in the replay are
	// neither deleted nor dropped from the manifest, and max_deletes does
	// not apply (there are no deletes).
	syncReplay
)

// partialSyncer is the Syncer of a sync stage under a syncMode: it never
// passes a delete on (it counts them), and under syncPlan never commits.
type partialSyncer struct {
	pipeline.Syncer
	commit  bool
	deletes atomic.Int64
}

// Diff passes emit and drop on and counts the deletes instead of making
// them.
func (s *partialSyncer) Diff(ctx context.Context, emit func(op pipeline.SyncOp, row pipeline.Row, origin pipeline.Origin) error,
	drop func(row pipeline.Row, origin pipeline.Origin, err error) error, del func(key, id string) error) error {
	return s.Syncer.Diff(ctx, emit, drop, func(key, id string) error {
		s.deletes.Add(1)
		return nil
	})
}

// Finish commits only when the mode allows it.
func (s *partialSyncer) Finish(ctx context.Context, commit bool) (any, error) {
	return s.Syncer.Finish(ctx, commit && s.commit)
}

// readOnlyState is a state store whose writes are dropped (plan).
type readOnlyState struct{ pipeline.StateStore }

// Put drops the write.
func (readOnlyState) Put(context.Context, string, any) error { return nil }

// syncView prepares graph ng (derived from the pipeline g) and its run
// options for mode: sync stages of ng lose delete_missing (the engine then
// needs no deleting sink and sends no delete), and each is diffed by a
// partialSyncer over the real sync: block of g, with the state st (g's
// store; nil only when ng keeps no state). syncers receives every
// partialSyncer opened, by stage name.
func syncView(ctx context.Context, g, ng *pipeline.Graph, env *pipeline.Env, mode syncMode, st *state.Store, syncers map[string]*partialSyncer) (*pipeline.RunOptions, error) {
	opts := &pipeline.RunOptions{DeadLetters: filesink.DeadLetters}
	if !needsState(ng) {
		return opts, nil
	}
	orig := map[string]*pipeline.SyncSpec{}
	for _, s := range g.Stages {
		if s.Sync != nil {
			orig[s.Name] = s.Sync
		}
	}
	for i := range ng.Stages {
		if sc := ng.Stages[i].Sync; sc != nil {
			c := *sc
			c.DeleteMissing = false
			ng.Stages[i].Sync = &c
		}
	}
	opts.State = st
	if mode == syncPlan {
		opts.State = readOnlyState{st}
	}
	opts.Syncers = func(ctx context.Context, stage *pipeline.StageSpec, in *pipeline.Schema) (pipeline.Syncer, error) {
		o := orig[stage.Name]
		if o == nil {
			return nil, fmt.Errorf("stage %q: no sync block in %s", stage.Name, g.File)
		}
		spec := *stage
		sc := *o
		switch mode {
		case syncPlan:
			sc.Log = ""
		case syncReplay:
			// Keep every key the replay does not see: a mirror keeps the
			// keys it did not delete, and nothing here is deleted.
			sc.DeleteMissing, sc.MaxDeletes = true, "100%"
		}
		spec.Sync = &sc
		so := syncerOptions(env, stageNamed(g, stage.Name), syncer.ReconcileOff)
		so.Replay, so.Plan = mode == syncReplay, mode == syncPlan
		so.ReplayMirror = so.Replay && o.DeleteMissing
		sy, err := syncer.Open(ctx, st, env, &spec, in, so)
		if err != nil {
			return nil, err
		}
		ps := &partialSyncer{Syncer: sy, commit: mode == syncReplay}
		syncers[stage.Name] = ps
		return ps, nil
	}
	return opts, nil
}
