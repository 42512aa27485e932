package main

import (
	"context"
	"fmt"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/filesink"
)

// stateLocation is where a pipeline's state lives: the --state flag when
// given, else the pipeline file's state:, else state.DefaultLocation.
func stateLocation(flagValue string, g *pipeline.Graph) string {
	switch {
	case flagValue != "":
		return flagValue
	case g.State != "":
		return g.State
	}
	return state.DefaultLocation
}

// needsState reports whether a pipeline keeps state between runs
// (incremental sources or sync sinks).
func needsState(g *pipeline.Graph) bool {
	for _, s := range g.Stages {
		if s.Incremental != nil || s.Sync != nil {
			return true
		}
	}
	return false
}

// stateName is the name a pipeline's state is kept under: its name, plus
// the shard when the run is one shard of several (each shard reads other
// files, so each keeps its own watermarks and manifests).
func stateName(g *pipeline.Graph, shard pipeline.Shard) string {
	if shard.Count > 1 {
		return fmt.Sprintf("%s.shard-%d-of-%d", g.Name, shard.Index, shard.Count)
	}
	return g.Name
}

// runOptions returns the engine options of a run. When the pipeline keeps
// state, st is its store (opened at stateLocation when nil).
func runOptions(ctx context.Context, g *pipeline.Graph, env *pipeline.Env, st *state.Store, stateFlag string) (*pipeline.RunOptions, error) {
	opts := &pipeline.RunOptions{DeadLetters: filesink.DeadLetters}
	if !needsState(g) {
		return opts, nil
	}
	if env.Shard.Count > 1 {
		for _, s := range g.Stages {
			if s.Sync != nil && s.Sync.DeleteMissing {
				return nil, fmt.Errorf("%s: stage %q: sync delete_missing cannot be used with --shard: a shard sees only its own files, "+
					"so keys of other shards would look deleted; run the mirror without --shard", s.Sync.Pos, s.Name)
			}
		}
	}
	if st == nil {
		var err error
		if st, err = state.Open(ctx, stateLocation(stateFlag, g), stateName(g, env.Shard)); err != nil {
			return nil, err
		}
	}
	opts.State = st
	opts.Syncers = func(ctx context.Context, stage *pipeline.StageSpec, in *pipeline.Schema) (pipeline.Syncer, error) {
		return syncer.Open(ctx, st, env, stage, in, syncerOptions(env, stage, syncer.ReconcileOff))
	}
	return opts, nil
}
