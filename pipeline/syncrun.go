package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// syncBatchRows is how many rows a sync stage sends per Write when the
// sink states no BatchPolicy.MaxRows, and how many deletes go per Delete.
const syncBatchRows = 10000

// openSyncState loads the watermarks of incremental sources and opens the
// syncers of sync sinks, before any row moves.
func (r *runner) openSyncState(ctx context.Context) error {
	for _, s := range r.plan.stages {
		switch {
		case s.spec.Kind == KindSource && s.spec.Incremental != nil:
			c, err := openCursor(ctx, r.opts.State, s)
			if err != nil {
				return err
			}
			r.cursors[s] = c
		case s.spec.Kind == KindSink && s.spec.Sync != nil:
			if r.opts.Syncers == nil {
				return &ConfigError{Pos: s.spec.Sync.Pos, Msg: fmt.Sprintf("stage %q: sync needs a state store (a plugin bug: RunOptions.Syncers is nil)", s.spec.Name)}
			}
			if s.spec.Sync.DeleteMissing {
				if _, ok := r.sinks[s].(Deleter); !ok {
					return &ConfigError{Pos: s.spec.Sync.Pos, Msg: fmt.Sprintf("stage %q: sync delete_missing needs a sink that can delete records; sink %q cannot", s.spec.Name, s.spec.Type)}
				}
			}
			sy, err := r.opts.Syncers(ctx, s.spec, s.in)
			if err != nil {
				var ce *ConfigError
				if errors.As(err, &ce) {
					return err
				}
				return &ConfigError{Pos: s.spec.Sync.Pos, Msg: fmt.Sprintf("stage %q: sync: %v", s.spec.Name, err)}
			}
			r.syncers[s] = sy
		}
	}
	return nil
}

func (r *runner) closeSyncers() {
	for s, sy := range r.syncers {
		if err := sy.Close(); err != nil {
			r.log.Warn("sync: cannot remove temporary files", "stage", s.spec.Name, "err", err)
		}
	}
}

// spool hands a batch's rows to the syncer; rows it refuses are
// dead-lettered.
func (r *runner) spool(s *planStage, sy Syncer, b *Batch) {
	var drops []Drop
	for i, row := range b.rows {
		if r.workCtx.Err() != nil {
			drops = append(drops, Drop{Row: row, Origin: b.origins[i], Err: &RowError{Code: r.drainCode(), Retryable: true,
				Err: fmt.Errorf("not processed: %w", context.Cause(r.workCtx))}})
			continue
		}
		if err := sy.Add(row, b.origins[i]); err != nil {
			var re *RowError
			if !errors.As(err, &re) {
				r.fail(fmt.Errorf("stage %q: sync: %w", s.spec.Name, err))
				err = &RowError{Code: CodeAborted, Retryable: true, Err: fmt.Errorf("not processed: %w", err)}
			}
			drops = append(drops, Drop{Row: row, Origin: b.origins[i], Err: err})
		}
	}
	r.settle(s, s.in, drops)
}

// syncDiff runs the syncer's diff once the input is complete: new and
// changed rows go to the sink through add, unchanged rows are filtered,
// duplicates dead-lettered, and missing keys deleted. When the run is
// stopping (or the diff refuses, e.g. past max_deletes), every spooled row
// is drained into the dead letter instead.
func (r *runner) syncDiff(s *planStage, sink Sink, sy Syncer, add func(Row, Origin, SyncOp), flush func()) {
	d := &syncDiffer{r: r, s: s, sy: sy, add: add}
	d.deleter, _ = sink.(Deleter)
	d.resolver, _ = sink.(KeyResolver)
	if r.workCtx.Err() != nil {
		d.stopErr = context.Cause(r.workCtx)
	}
	d.holdFor = r.deadLetteredBefore(s)
	if err := sy.Diff(r.workCtx, d.emit, d.drop, d.onDelete); err != nil {
		if r.workCtx.Err() == nil {
			r.fail(fmt.Errorf("stage %q: sync: %w", s.spec.Name, err))
		}
		d.stopErr = err
		d.drainRest()
	}
	if r.workCtx.Err() == nil && d.stopErr == nil {
		d.sendDeletes()
	}
	if d.held > 0 {
		why := fmt.Sprintf("%d missing keys were not deleted: %d rows were dead-lettered on their way to this stage, "+
			"and a key whose row was dead-lettered cannot be told from a deleted one; the keys stay in the manifest, "+
			"and the next run without such dead letters deletes those still missing", d.held, d.holdFor)
		r.log.Warn("sync: deletes held", "stage", s.spec.Name, "missing", d.held, "dead_lettered", d.holdFor)
		r.mu.Lock()
		if r.deletesHeld == nil {
			r.deletesHeld = map[string]string{}
		}
		r.deletesHeld[s.spec.Name] = why
		r.mu.Unlock()
	}
	d.settle(true)
	flush()
}

// deadLetteredBefore returns the rows dead-lettered so far by s and by
// every stage whose rows reach s: for a sync stage, once its input has
// ended, the rows that did not reach its diff for an error (s's own are
// those the syncer refused to spool, such as a row without a key).
func (r *runner) deadLetteredBefore(s *planStage) int64 {
	inputs := func(st *StageSpec) []*StageSpec {
		var ins []*StageSpec
		for _, in := range st.Inputs {
			ins = append(ins, r.plan.byName[in].spec)
		}
		return ins
	}
	var n int64
	for _, st := range reachable(s.spec, "", inputs) {
		n += r.counters[r.plan.byName[st.Name]].deadLettered.Load()
	}
	return n
}

// syncDiffer is one syncDiff: the drops not settled yet, the deletes not
// sent yet, why the run stops (rows after it are drained), and how many
// rows the first Diff passed on.
type syncDiffer struct {
	r        *runner
	s        *planStage
	sy       Syncer
	add      func(Row, Origin, SyncOp)
	deleter  Deleter     // nil when the sink cannot delete
	resolver KeyResolver // nil when the sink cannot look records up by field
	// holdFor is the rows dead-lettered on their way to the stage: when
	// not 0 no missing key is deleted (held counts them), since a key
	// whose row was dead-lettered looks missing too.
	holdFor, held int64
	drops         []Drop
	dels          []syncDelete
	stopErr       error
	passed        int   // rows handed to emit or drop by the first Diff
	skipped       int64 // unchanged rows passed as nil (not decoded), not counted yet
	// unresolved are missing keys whose record id the manifest does not
	// hold: they are looked up by the sync key field (resolveKeys) before
	// their records can be deleted.
	unresolved []string
}

// syncDelete is a missing key and the record id to delete.
type syncDelete struct{ key, id string }

// settle settles the drops gathered so far once there are a batch's worth,
// or whatever there is when force.
func (d *syncDiffer) settle(force bool) {
	if d.skipped > 0 && (force || d.skipped >= syncBatchRows) {
		d.r.counters[d.s].filtered.Add(d.skipped)
		d.r.filtered.Add(d.skipped)
		d.skipped = 0
	}
	if len(d.drops) > 0 && (force || len(d.drops) >= syncBatchRows) {
		d.r.settle(d.s, d.s.in, d.drops)
		d.drops = nil
	}
}

// drain dead-letters a row that will not be sent because the run stops.
func (d *syncDiffer) drain(row Row, origin Origin) {
	code, cause := d.r.drainCode(), context.Cause(d.r.workCtx)
	if d.stopErr != nil {
		code, cause = CodeAborted, d.stopErr
	}
	d.drops = append(d.drops, Drop{Row: row, Origin: origin, Err: &RowError{Code: code, Retryable: true, Err: fmt.Errorf("not sent: %w", cause)}})
	d.settle(false)
}

// sendDeletes deletes the gathered missing keys' records, after looking
// up those whose record id is not known, and reports each outcome to the
// syncer.
func (d *syncDiffer) sendDeletes() {
	d.resolveKeys()
	d.deleteIDs()
}

// deleteIDs deletes the gathered records by id (one Delete) and reports
// each outcome to the syncer.
func (d *syncDiffer) deleteIDs() {
	if len(d.dels) == 0 {
		return
	}
	ids := make([]string, len(d.dels))
	for i, del := range d.dels {
		ids[i] = del.id
	}
	errs, err := d.deleter.Delete(d.r.workCtx, ids)
	failed := 0
	for i, del := range d.dels {
		e := err
		if e == nil && i < len(errs) {
			e = errs[i]
		}
		if e != nil {
			failed++
		}
		d.sy.Outcome(SyncMissing, nil, del.key, "", e)
	}
	d.dels = d.dels[:0]
	d.deletesFailed(failed)
}

// resolveKeys looks the gathered keys without a record id up in the
// destination by the sync key field, in one ResolveKeys call. A key no
// record holds is what the mirror wants: it is reported deleted. A key one
// record holds joins the deletes by id. A key several records hold, and
// every key when the sink cannot look keys up or the lookup failed, is a
// failed delete: the run is partial and the key stays in the manifest.
func (d *syncDiffer) resolveKeys() {
	if len(d.unresolved) == 0 {
		return
	}
	keys := d.unresolved
	field := d.s.spec.Sync.Key
	var ids [][]string
	var err error
	switch {
	case d.resolver == nil:
		err = fmt.Errorf("sink %q cannot look records up by a field", d.s.spec.Type)
	default:
		ids, err = d.resolver.ResolveKeys(d.r.workCtx, field, keys)
		if err == nil && len(ids) != len(keys) {
			err = fmt.Errorf("sink %q answered for %d of %d keys (a plugin bug)", d.s.spec.Type, len(ids), len(keys))
		}
	}
	failed, absent := 0, 0
	if err != nil {
		d.r.log.Warn("sync: missing keys without a record id could not be looked up; their deletes failed",
			"stage", d.s.spec.Name, "keys", len(keys), "field", field, "err", err)
		for _, key := range keys {
			d.sy.Outcome(SyncMissing, nil, key, "", fmt.Errorf("no record id is known for %s=%q (the manifest holds none: "+
				"a resumed or killed run, or an operator's settle, stored the key) and looking its record up by %s failed: %w; "+
				"the key stays in the manifest and the next run tries again", field, key, field, err))
		}
		failed = len(keys)
	} else {
		for i, key := range keys {
			switch n := len(ids[i]); n {
			case 0: // not in the destination: nothing to delete
				absent++
				d.sy.Outcome(SyncMissing, nil, key, "", nil)
			case 1:
				d.dels = append(d.dels, syncDelete{key, ids[i][0]})
				if len(d.dels) >= syncBatchRows {
					d.deleteIDs()
				}
			default:
				failed++
				d.sy.Outcome(SyncMissing, nil, key, "", fmt.Errorf("%d records of %s have %s=%q; bulkflow loaded at most one of "+
					"them and cannot tell which: delete the extra ones by hand, and the next run deletes the one left "+
					"(the key stays in the manifest until then)", n, d.destination(), field, key))
			}
		}
	}
	if absent > 0 {
		d.r.log.Info("sync: missing keys without a record id are not in the destination: nothing had to be deleted",
			"stage", d.s.spec.Name, "keys", absent, "field", field)
	}
	clear(keys) // no key strings kept past their batch
	d.unresolved = keys[:0]
	d.deletesFailed(failed)
}

// destination names the sink stage's destination for messages: its object
// when the sink's options say (Planner), else the stage.
func (d *syncDiffer) destination() string {
	if p, ok := d.s.spec.Options.(Planner); ok {
		if o := p.PlanTarget().Object; o != "" {
			return o
		}
	}
	return fmt.Sprintf("the destination of stage %q", d.s.spec.Name)
}

// deletesFailed counts n failed deletes: the records are still in the
// destination, and the run is partial, not succeeded (the keys stay in
// the manifest, and the next run deletes them again).
func (d *syncDiffer) deletesFailed(n int) {
	if n == 0 {
		return
	}
	d.r.mu.Lock()
	if d.r.deletesFailed == nil {
		d.r.deletesFailed = map[string]int64{}
	}
	d.r.deletesFailed[d.s.spec.Name] += int64(n)
	d.r.mu.Unlock()
}

// emit passes a new or changed row to the sink and filters an unchanged
// one; when the run stops it drains the row instead.
func (d *syncDiffer) emit(op SyncOp, row Row, origin Origin) error {
	d.passed++
	switch {
	case op == SyncUnchanged && row == nil: // not decoded: nothing to send or drain
		d.skipped++
		d.settle(false)
	case d.r.workCtx.Err() != nil || d.stopErr != nil:
		d.drain(row, origin)
	case op == SyncUnchanged:
		d.drops = append(d.drops, Drop{Row: row, Origin: origin})
		d.settle(false)
	default:
		d.add(row, origin, op)
	}
	return nil
}

// drop dead-letters a row the syncer refused (a duplicate key).
func (d *syncDiffer) drop(row Row, origin Origin, err error) error {
	d.passed++
	d.drops = append(d.drops, Drop{Row: row, Origin: origin, Err: err})
	d.settle(false)
	return nil
}

// onDelete gathers a missing key for deletion, in batches, unless the run
// stops or the sink cannot delete. A key without a record id (id "") is
// gathered apart, to be looked up by the sync key field first
// (resolveKeys).
func (d *syncDiffer) onDelete(key, id string) error {
	if d.r.workCtx.Err() != nil || d.stopErr != nil || d.deleter == nil {
		return nil
	}
	if d.holdFor > 0 {
		d.held++ // no outcome: the manifest keeps the key (mirror mode)
		return nil
	}
	if id == "" {
		d.unresolved = append(d.unresolved, key)
		if len(d.unresolved) >= syncBatchRows {
			d.resolveKeys()
		}
		return nil
	}
	d.dels = append(d.dels, syncDelete{key, id})
	if len(d.dels) >= syncBatchRows {
		d.deleteIDs()
	}
	return nil
}

// drainRest accounts for the rows spooled but never passed on after the
// diff failed: it walks the spool once more (the order is the same every
// time) and drains the rows after the first d.passed. An unchanged row the
// syncer did not keep (a nil row) is filtered, as the first pass would
// have: it is the row the manifest has.
func (d *syncDiffer) drainRest() {
	seen := 0
	rest := func(op SyncOp, row Row, origin Origin) {
		if seen++; seen <= d.passed {
			return
		}
		if op == SyncUnchanged && row == nil {
			d.skipped++
			d.settle(false)
			return
		}
		d.drain(row, origin)
	}
	if err := d.sy.Diff(context.WithoutCancel(d.r.workCtx), func(op SyncOp, row Row, origin Origin) error { rest(op, row, origin); return nil },
		func(row Row, origin Origin, _ error) error { rest(SyncNew, row, origin); return nil },
		func(string, string) error { return nil }); err != nil {
		d.r.fail(fmt.Errorf("stage %q: sync: drain the spool: %w", d.s.spec.Name, err))
	}
}

// syncOutcomes tells the syncer what happened to each row of a written
// batch.
func (r *runner) syncOutcomes(sy Syncer, b *Batch, ops []SyncOp, ids []string, err error) {
	var failed map[int]error
	var rowErrs *RowErrors
	if errors.As(err, &rowErrs) {
		failed = make(map[int]error, len(rowErrs.Failures))
		for _, f := range rowErrs.Failures {
			failed[f.Index] = f.Err
		}
		err = nil
	}
	for i, row := range b.rows {
		e := err
		if e == nil {
			e = failed[i]
		}
		id := ""
		if i < len(ids) {
			id = ids[i]
		}
		op := SyncNew
		if i < len(ops) {
			op = ops[i]
		}
		sy.Outcome(op, row, "", id, e)
	}
}

// finishSync commits (or discards) sync state and watermarks at the end of
// a run. State is committed only when the run did not fail and was not
// cancelled; watermarks also need no retryable dead letters, so that the
// rows that may succeed when sent again are read again.
func (r *runner) finishSync(rep *Report) {
	ctx := context.WithoutCancel(r.userCtx)
	// A run with rows of unknown outcome and a sink that ResumesUnknown is
	// resumed to settle them (cmd/bulkflow's in-flight rule), every sink
	// of it under the same run id.
	resumed := false
	for _, s := range r.plan.stages {
		resumed = resumed || s.spec.Kind == KindSink && ResumesUnknown(s.spec)
	}
	for _, s := range r.plan.stages {
		sy := r.syncers[s]
		if sy == nil {
			continue
		}
		commit := len(r.errs) == 0 && !r.stopped
		if n := r.unknown.Load(); commit && n > 0 && resumed {
			// Committed now, a manifest would hold the rows this attempt
			// loaded through its stage, the resume's diff would leave them
			// out, and that stage's chunks would differ from this
			// attempt's — a re-cut its sink's ledger refuses, on every
			// later run (also for an upsert beside the insert that makes
			// the run resumed). The resume that settles them commits.
			commit = false
			if rep.SyncHeld == nil {
				rep.SyncHeld = map[string]string{}
			}
			rep.SyncHeld[s.spec.Name] = fmt.Sprintf("%d dead-lettered rows have an unknown outcome; the resume that settles them "+
				"commits the manifest (the next plain run resumes this run)", n)
		}
		sum, err := sy.Finish(ctx, commit)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("stage %q: sync: %w", s.spec.Name, err))
		}
		if sum != nil {
			if rep.Sync == nil {
				rep.Sync = map[string]any{}
			}
			rep.Sync[s.spec.Name] = sum
		}
	}
	r.mu.Lock()
	rep.SyncDeletesHeld, rep.SyncDeletesFailed = r.deletesHeld, r.deletesFailed
	r.mu.Unlock()
	for _, s := range r.plan.stages {
		c := r.cursors[s]
		if c == nil {
			continue
		}
		ir := &IncrementalReport{Cursor: c.name, After: textOrEmpty(c.after), Max: textOrEmpty(c.max)}
		if c.from != nil && c.after != nil && compareCursor(c.typ, c.from, c.after) != 0 {
			ir.From = Text(c.from)
		}
		inserts, unledgered := r.insertsWithoutSync(s)
		switch {
		case len(r.errs) > 0 || r.stopped:
			ir.Held = "the run did not finish"
		case r.unknown.Load() > 0 && !unledgered:
			// Moved, a resume would read none of them: a row its job
			// failed would be filtered, in no dead letter.
			ir.Held = fmt.Sprintf("%d dead-lettered rows have an unknown outcome (their job may have loaded them); "+
				"they are read again by the resume that settles them", r.unknown.Load())
		case r.retryable.Load() > 0 && len(inserts) == 0:
			ir.Held = fmt.Sprintf("%d dead-lettered rows are retryable; they are read again next run", r.retryable.Load())
		default:
			if err := c.commit(ctx, r.opts.State, rep.RunID, r.opts.Now()); err != nil {
				r.errs = append(r.errs, err)
				ir.Held = err.Error()
			} else {
				ir.Committed = c.max != nil && (c.after == nil || compareCursor(c.typ, c.max, c.after) > 0)
				if n := r.retryable.Load(); n > 0 {
					ir.Note = fmt.Sprintf("moved past %d retryable dead-lettered rows: sink stage %s inserts without a sync, so reading this run's "+
						"rows again would insert the loaded ones a second time; replay the dead letters to send the retryable rows", n, strings.Join(inserts, ", "))
				}
			}
		}
		if rep.Incremental == nil {
			rep.Incremental = map[string]*IncrementalReport{}
		}
		rep.Incremental[s.spec.Name] = ir
	}
}

func textOrEmpty(v any) string {
	if v == nil {
		return ""
	}
	return Text(v)
}

// IncrementalReport is an incremental source stage's part of the report.
type IncrementalReport struct {
	Cursor string `json:"cursor"`
	// After is the watermark the run started from ("" on the first run).
	After string `json:"after"`
	// From is the bound the run read above, when a lookback put it below
	// After: the rows between were read again.
	From string `json:"read_from,omitempty"`
	// Max is the greatest cursor value read this run.
	Max string `json:"max"`
	// Committed says the watermark moved to Max.
	Committed bool `json:"committed"`
	// Held says why the watermark was not moved, if it was not.
	Held string `json:"held,omitempty"`
	// Note says why the watermark moved although rows were dead-lettered
	// as retryable: a sink the rows reach inserts without a sync
	// (Resender), and the next run would insert again every row this one
	// loaded; the retryable rows wait in the dead letters for replay.
	Note string `json:"note,omitempty"`
}

// ResumesUnknown reports whether sink stage spec stores a row sent again
// twice (Resender) and keeps a ledger (RunLedger): a run that ends with
// rows of unknown outcome, or does not end, is resumed (cmd/bulkflow's
// plain runs and serve do), not run afresh, and its sync manifest waits
// for that resume.
func ResumesUnknown(spec *StageSpec) bool {
	rs, ok := spec.Options.(Resender)
	l, hasLedger := spec.Options.(RunLedger)
	return ok && rs.ResendsDuplicate() && hasLedger && l.LedgerLocation() != ""
}

// insertsWithoutSync returns the names of the sink stages source stage s
// feeds that store a row sent again twice (Resender) and have no sync
// manifest to filter the rows they already hold, and whether one of them
// keeps no ledger (RunLedger): no resume can settle its rows, so a next
// run that read them again would insert again the ones its jobs loaded.
func (r *runner) insertsWithoutSync(s *planStage) (names []string, unledgered bool) {
	readers := func(st *StageSpec) []*StageSpec {
		var out []*StageSpec
		for _, c := range r.plan.byName[st.Name].consumers {
			out = append(out, c.spec)
		}
		return out
	}
	for _, sink := range reachable(s.spec, KindSink, readers) {
		if rs, ok := sink.Options.(Resender); ok && rs.ResendsDuplicate() && sink.Sync == nil {
			names = append(names, sink.Name)
			if l, ok := sink.Options.(RunLedger); !ok || l.LedgerLocation() == "" {
				unledgered = true
			}
		}
	}
	return names, unledgered
}
