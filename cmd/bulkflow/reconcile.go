package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/remote"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
	"github.com/bulkflow/bulkflow/sources/salesforcesource"
)

// sfRemote is the target object of a salesforce sink, read back for
// `sync: {seed: salesforce}` and --reconcile: describe for the field
// types, a Bulk API 2.0 query job (the salesforce source) for the records.
// It is Salesforce's own protocol, not a capability other sinks could
// offer: syncerOptions builds it from the salesforce sink's options.
type sfRemote struct {
	env  *pipeline.Env
	opts *salesforcesink.Options
}

func (r *sfRemote) conn() salesforcesink.Connection { return r.opts.Connection() }

// String names the object and the instance (never a credential).
func (r *sfRemote) String() string { return r.opts.Object + " at " + r.opts.InstanceURL }

// Fields describes names in the sink's object. A relationship column
// (Parent.External_Id__c) is compared as text; a polymorphic one
// (Owner:User.Username) cannot be selected by SOQL and is refused.
func (r *sfRemote) Fields(ctx context.Context, names []string) ([]remote.Field, error) {
	client, stop, err := salesforcesink.Connect(ctx, r.env, r.conn(), r.env.Logger)
	if err != nil {
		return nil, err
	}
	defer stop()
	d, err := client.Describe(ctx, r.opts.Object)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", r, err)
	}
	out := make([]remote.Field, len(names))
	for i, n := range names {
		switch {
		case strings.Contains(n, ":"):
			return nil, fmt.Errorf("column %q is a polymorphic relationship column, which a SOQL query cannot select: "+
				"seed and --reconcile need every sink column readable back; map the parent's id instead", n)
		case strings.Contains(n, "."):
			out[i] = remote.Field{Name: n}
			continue
		}
		f, ok := d.Field(n)
		if !ok {
			return nil, fmt.Errorf("%s has no field %q (a column of the sink's input); check the spelling and the __c of custom fields", r, n)
		}
		out[i] = remote.Field{Name: n, Type: f.Type, Precision: f.Precision, Scale: f.Scale}
	}
	return out, nil
}

// Records reads names and Id of every record with the salesforce source
// (one query job, results page by page).
func (r *sfRemote) Records(ctx context.Context, names []string, fn func(id string, vals pipeline.Row) error) error {
	fields := names
	if !containsFold(names, "Id") {
		fields = append(append([]string(nil), names...), "Id")
	}
	src, err := salesforcesource.Open(ctx, r.env, &salesforcesource.Options{Connection: r.conn(), Object: r.opts.Object, Fields: fields,
		PollInitial: r.opts.PollInitial, PollMax: r.opts.PollMax})
	if err != nil {
		return err
	}
	defer src.Close()
	schema, err := src.Schema(ctx)
	if err != nil {
		return err
	}
	idIdx := -1
	for i, n := range schema.Names() {
		if strings.EqualFold(n, "Id") {
			idIdx = i
		}
	}
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for i := range b.Len() {
			row := b.Row(i)
			if err := fn(pipeline.Text(row[idIdx]), row[:len(names)]); err != nil {
				return err
			}
		}
		for range b.Drops() { // a value its describe does not type: counted as unreadable
			if err := fn("", nil); err != nil {
				return err
			}
		}
	}
}

func containsFold(names []string, s string) bool {
	for _, n := range names {
		if strings.EqualFold(n, s) {
			return true
		}
	}
	return false
}

// syncerOptions returns the syncer options of sync stage stage: the
// target object of a salesforce sink as its Remote (also when `bulkflow
// plan` swapped the sink for its plan sink: a seeded first run's plan
// reads the object too, with one query job). The Remote of `seed:
// salesforce` is Salesforce-specific (describe and a query job through
// the salesforce source), so it is picked by the sink's options type;
// other sinks get none, and the syncer refuses seed and --reconcile.
func syncerOptions(env *pipeline.Env, stage *pipeline.StageSpec, mode syncer.Reconcile) syncer.Options {
	o := syncer.Options{Reconcile: mode}
	if stage == nil {
		return o
	}
	opts := stage.Options
	if po, ok := opts.(*planStageOptions); ok {
		opts = po.Planner
	}
	if so, ok := opts.(*salesforcesink.Options); ok {
		o.Remote = &sfRemote{env: env, opts: so}
	}
	return o
}

// stageNamed returns g's stage called name (nil when there is none).
func stageNamed(g *pipeline.Graph, name string) *pipeline.StageSpec {
	for i := range g.Stages {
		if g.Stages[i].Name == name {
			return &g.Stages[i]
		}
	}
	return nil
}

// reconcileFlag is `--reconcile` (report drift, send nothing) or
// `--reconcile=fix` (report it and send the rows that correct it).
type reconcileFlag struct{ mode syncer.Reconcile }

// String implements flag.Value.
func (f *reconcileFlag) String() string {
	switch f.mode {
	case syncer.ReconcileReport:
		return "report"
	case syncer.ReconcileFix:
		return "fix"
	}
	return ""
}

// Set implements flag.Value: "true" (the bare flag) or "report" reports,
// "fix" fixes, "false" turns it off.
func (f *reconcileFlag) Set(s string) error {
	switch s {
	case "true", "report":
		f.mode = syncer.ReconcileReport
	case "fix":
		f.mode = syncer.ReconcileFix
	case "false":
		f.mode = syncer.ReconcileOff
	default:
		return fmt.Errorf("want --reconcile (report drift) or --reconcile=fix (also send the rows that correct it), not %q", s)
	}
	return nil
}

// IsBoolFlag lets the flag stand alone.
func (f *reconcileFlag) IsBoolFlag() bool { return true }

// reconcileUsage is the help text of --reconcile.
const reconcileUsage = "compare each seeded sync's manifest with its Salesforce object and report the drift (records changed\n" +
	"or deleted in Salesforce since the last sync) without running the pipeline or sending anything (exit 3 when\n" +
	"there is drift); --reconcile=fix runs the pipeline and also sends the rows that correct the drift"

// applyReconcile prepares a run for mode: for ReconcileReport it compares
// every sync stage with its object, prints and writes the report and
// returns done with the exit code (the pipeline does not run); for
// ReconcileFix it makes opts open syncers that resend the drifted keys.
func applyReconcile(ctx context.Context, mode syncer.Reconcile, plan *pipeline.Plan, g *pipeline.Graph, env *pipeline.Env,
	opts *pipeline.RunOptions, reportTo string, stderr io.Writer) (code int, done bool) {
	if mode == syncer.ReconcileOff {
		return exitOK, false
	}
	st, _ := opts.State.(*state.Store)
	if st == nil || opts.Syncers == nil || !hasSync(g) {
		fmt.Fprintf(stderr, "bulkflow: --reconcile: pipeline %s has no sync stage (a salesforce sink with sync: {mode: changed, seed: salesforce})\n", g.Name)
		return exitUsage, true
	}
	for _, s := range g.Stages {
		if s.Sync != nil && s.Sync.Seed == "" {
			fmt.Fprintf(stderr, "bulkflow: %s: stage %q: --reconcile needs seed: salesforce in the sync block: drift is found by comparing "+
				"the manifest's hashes with the records' normalised values, and only a seeded sync hashes so. Add seed: salesforce "+
				"(the next run sends once the rows whose normalised text differs), then reconcile; nothing was read or sent\n", s.Sync.Pos, s.Name)
			plan.Close()
			return exitUsage, true
		}
	}
	if mode == syncer.ReconcileFix {
		opts.Syncers = func(ctx context.Context, stage *pipeline.StageSpec, in *pipeline.Schema) (pipeline.Syncer, error) {
			return syncer.Open(ctx, st, env, stage, in, syncerOptions(env, stage, syncer.ReconcileFix))
		}
		return exitOK, false
	}
	defer plan.Close()
	return reconcileReport(ctx, st, plan, g, env, reportTo, stderr), true
}

func hasSync(g *pipeline.Graph) bool {
	for _, s := range g.Stages {
		if s.Sync != nil {
			return true
		}
	}
	return false
}

// reconcileReport compares every sync stage with its object and reports
// the drift: exit 0 without drift, 3 with drift, 1 when a stage could not
// be compared.
func reconcileReport(ctx context.Context, st *state.Store, plan *pipeline.Plan, g *pipeline.Graph, env *pipeline.Env, reportTo string, stderr io.Writer) int {
	rep := &pipeline.Report{RunID: env.RunID, Pipeline: g.Name, File: g.File, FileHash: g.FileHash, StartedAt: time.Now().UTC(),
		Sync: map[string]any{}, Errors: []string{}, Stages: []pipeline.StageReport{}, DeadLetters: []string{}}
	schemas := plan.Schemas()
	var errs []error
	var drifted int64
	for i := range g.Stages {
		s := &g.Stages[i]
		if s.Sync == nil {
			continue
		}
		sum, err := reconcileStage(ctx, st, env, s, schemas[s.Name])
		if err != nil {
			errs = append(errs, fmt.Errorf("stage %q: %w", s.Name, err))
			fmt.Fprintf(stderr, "bulkflow: reconcile %s: %v\n", s.Name, err)
			continue
		}
		rep.Sync[s.Name] = sum
		r := sum.Reconcile
		drifted += r.Drifted()
		fmt.Fprintf(stderr, "bulkflow: reconcile %s: %d records read, %d in sync, %d changed in Salesforce, %d missing in Salesforce, %d not synced by this pipeline, %d pending (failed last run, sent again next run)\n",
			s.Name, r.Read, r.InSync, r.Changed, r.Missing, r.NotSynced, r.Pending)
		if len(r.Examples) > 0 {
			more := ""
			if int64(len(r.Examples)) < r.Drifted() {
				more = fmt.Sprintf(" and %d more", r.Drifted()-int64(len(r.Examples)))
			}
			fmt.Fprintf(stderr, "bulkflow: reconcile %s: drifted keys: %s%s\n", s.Name, strings.Join(r.Examples, ", "), more)
		}
		if sum.Log != "" {
			fmt.Fprintf(stderr, "bulkflow: reconcile %s: every drifted key is in the sync log %s\n", s.Name, sum.Log)
		}
	}
	rep.FinishedAt = time.Now().UTC()
	rep.Seconds = rep.FinishedAt.Sub(rep.StartedAt).Seconds()
	err := errors.Join(errs...)
	switch {
	case err != nil:
		rep.Status = pipeline.StatusFailed
		rep.Errors = append(rep.Errors, err.Error())
	case drifted > 0:
		rep.Status = pipeline.StatusPartial
		fmt.Fprintf(stderr, "bulkflow: reconcile: %d drifted records; nothing was sent. `bulkflow run %s --reconcile=fix` sends the rows that correct them\n", drifted, g.File)
	default:
		rep.Status = pipeline.StatusSucceeded
		fmt.Fprintf(stderr, "bulkflow: reconcile: no drift\n")
	}
	err = writeRunReport(ctx, reportTo, rep, err, stderr)
	return exitCode(rep, err)
}

// reconcileStage compares one sync stage's manifest with its object; the
// manifest is not changed.
func reconcileStage(ctx context.Context, st *state.Store, env *pipeline.Env, s *pipeline.StageSpec, in *pipeline.Schema) (*syncer.Summary, error) {
	if in == nil {
		return nil, errors.New("no input schema")
	}
	sy, err := syncer.Open(ctx, st, env, s, in, syncerOptions(env, s, syncer.ReconcileReport))
	if err != nil {
		return nil, err
	}
	defer sy.Close()
	v, err := sy.Finish(ctx, false)
	if err != nil {
		return nil, err
	}
	sum, _ := v.(*syncer.Summary)
	if sum == nil || sum.Reconcile == nil {
		return nil, errors.New("internal error: the syncer did not reconcile")
	}
	return sum, nil
}
