package salesforcesink

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// idSchema is the input of delete jobs: one Id column.
var idSchema = pipeline.MustSchema(pipeline.Field{Name: "Id", Type: pipeline.TypeString})

// Delete deletes records of the sink's object by Salesforce id, in delete
// jobs run exactly like the sink's own jobs (same client, chunking, polling
// and result matching; no ledger: deleting twice is harmless). errs has one
// entry per id, nil when Salesforce reported the record deleted, or
// already deleted (ENTITY_IS_DELETED: someone deleted it first, and a
// delete's aim is met; reported as a failure, the mirror retried it every
// run and never dropped the key). It implements pipeline.Deleter, used by
// `sync: {delete_missing: true}`.
func (s *Sink) Delete(ctx context.Context, ids []string) ([]error, error) {
	d := s.deleter()
	b := pipeline.NewBatch(idSchema, len(ids))
	for i, id := range ids {
		b.Append(pipeline.Row{id}, pipeline.Origin{Object: "delete " + s.opts.Object, Row: int64(i + 1)})
	}
	err := d.Write(ctx, b)
	d.mu.Lock()
	jobs := d.jobs
	d.jobs = nil
	d.mu.Unlock()
	s.mu.Lock()
	s.jobs = append(s.jobs, jobs...)
	s.mu.Unlock()
	errs := make([]error, len(ids))
	var re *pipeline.RowErrors
	switch {
	case err == nil:
	case errors.As(err, &re):
		for _, f := range re.Failures {
			var e *pipeline.RowError
			if errors.As(f.Err, &e) && e.Code == CodeEntityIsDeleted {
				continue // already gone
			}
			errs[f.Index] = f.Err
		}
	default:
		return nil, fmt.Errorf("salesforce sink: delete %d records: %w", len(ids), err)
	}
	return errs, nil
}

// deleter returns the sink's delete twin, creating it on first use.
func (s *Sink) deleter() *Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deletes == nil {
		o := *s.opts
		o.Operation, o.ExternalIDField = string(salesforce.OpDelete), ""
		s.deletes = &Sink{opts: &o, op: salesforce.OpDelete, schema: idSchema, client: s.client, log: s.log.With("deletes", true),
			enc: newEncoder(idSchema, s.delim, o.lineEnding()), delim: s.delim, spool: s.spool, idCol: 0, archive: s.archive,
			runID: s.runID, codes: map[string]int64{}}
	}
	return s.deletes
}
