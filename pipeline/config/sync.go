package config

import (
	"github.com/goccy/go-yaml/ast"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/schedule"
)

// scheduleSpec is the long form of `schedule:`.
type scheduleSpec struct {
	Cron     string `yaml:"cron"`
	TimeZone string `yaml:"timezone"`
}

// schedule decodes `schedule: "*/15 * * * *"` or
// `schedule: {cron: "0 2 * * *", timezone: Europe/Berlin}` and checks that
// it parses.
func (l *loader) schedule(n ast.Node) *pipeline.Schedule {
	var spec scheduleSpec
	if _, ok := n.(*ast.MappingNode); ok {
		if !l.decode(n, &spec, "schedule") {
			return nil
		}
	} else if s, ok := l.scalar(n, "schedule"); ok {
		spec.Cron = s
	} else {
		return nil
	}
	if _, _, err := schedule.Parse(spec.Cron, spec.TimeZone); err != nil {
		l.add(n, "%v", err)
		return nil
	}
	return &pipeline.Schedule{Cron: spec.Cron, TimeZone: spec.TimeZone, Pos: l.pos(n)}
}

type incrementalSpec struct {
	Cursor   string `yaml:"cursor"`
	Lookback string `yaml:"lookback"`
}

// incremental decodes `incremental: {cursor: FIELD}` (the field is checked
// against the source's schema by the engine).
func (l *loader) incremental(mv *ast.MappingValueNode) *pipeline.Incremental {
	var spec incrementalSpec
	if !l.decode(mv.Value, &spec, "incremental") {
		return nil
	}
	if spec.Cursor == "" {
		l.add(mv.Key, "incremental needs cursor: the column whose value grows with every change, e.g. incremental: {cursor: updated_at}")
		return nil
	}
	return &pipeline.Incremental{Cursor: spec.Cursor, Lookback: spec.Lookback, Pos: l.pos(mv.Key)}
}

// sync decodes a sink stage's `sync:` block.
func (l *loader) sync(mv *ast.MappingValueNode) *pipeline.SyncSpec {
	spec := &pipeline.SyncSpec{}
	if !l.decode(mv.Value, spec, "sync") {
		return nil
	}
	spec.Pos = l.pos(mv.Key)
	ok := true
	switch spec.Mode {
	case "changed":
	case "":
		l.add(mv.Key, "sync needs mode: changed (send only new and changed rows)")
		ok = false
	default:
		l.add(mv.Key, "sync mode %q is not known; the only mode is changed", spec.Mode)
		ok = false
	}
	if spec.Key == "" {
		l.add(mv.Key, "sync needs key: the field that identifies a record, e.g. key: External_Id__c")
		ok = false
	}
	switch spec.Seed {
	case "", "salesforce":
	default:
		l.add(mv.Key, "sync seed %q is not known; the only seed is salesforce (build the first manifest from the target object's records)", spec.Seed)
		ok = false
	}
	if spec.MaxDeletes == "" {
		spec.MaxDeletes = "10%"
	}
	if _, _, err := pipeline.ParseMaxDeletes(spec.MaxDeletes); err != nil {
		l.add(mv.Key, "sync: %v", err)
		ok = false
	}
	if !ok {
		return nil
	}
	return spec
}
