package salesforcesink

import (
	"context"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Interface guards: the CLI pre-flights and plans "salesforce" sinks
// through these capabilities, never by the sink's type name.
var (
	_ pipeline.Preflighter = (*Options)(nil)
	_ pipeline.Planner     = (*Options)(nil)
	_ pipeline.PlanSink    = (*PlanSink)(nil)
)

// PlanTarget names the object, the operation and the instance_url (see
// pipeline.Planner).
func (o *Options) PlanTarget() pipeline.PlanTarget {
	return pipeline.PlanTarget{Object: o.Object, Operation: o.Operation, Instance: o.InstanceURL}
}

// OpenPlan opens a PlanSink writing job files to dir (see OpenPlan and
// pipeline.Planner).
func (o *Options) OpenPlan(ctx context.Context, env *pipeline.Env, in *pipeline.Schema, dir string) (pipeline.PlanSink, error) {
	p, err := OpenPlan(ctx, env, o, in, dir)
	if err != nil {
		return nil, err // not a typed nil in a non-nil interface
	}
	return p, nil
}

// PlanFiles returns the job files written so far (see pipeline.PlanSink).
func (p *PlanSink) PlanFiles() []pipeline.PlanFile {
	jobs := p.Jobs()
	files := make([]pipeline.PlanFile, len(jobs))
	for i, j := range jobs {
		files[i] = pipeline.PlanFile{File: j.File, Rows: j.Rows, Bytes: j.Bytes}
	}
	return files
}
