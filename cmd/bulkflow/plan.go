package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/jobs"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/obs"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

// planSinkType is the sink type `bulkflow plan` substitutes, in its
// private registry, for every sink whose options are a pipeline.Planner.
const planSinkType = "plan"

// planLimitsTimeout bounds the /limits look-up of `bulkflow plan`.
const planLimitsTimeout = 30 * time.Second

// planStageOptions are the options of a planSinkType stage: the
// original sink options and the folder its job files go to.
type planStageOptions struct {
	Planner pipeline.Planner
	Dir     string
}

// newEnv returns the run environment prepare() builds for a graph, with a
// fresh run id and a logger (--log-level, --log-format) that names it.
func newEnv(g *pipeline.Graph, logs obs.LogOptions, stderr io.Writer) *pipeline.Env {
	id := pipeline.NewRunID(time.Now())
	return &pipeline.Env{
		RunID:    id,
		Pipeline: g.Name,
		Lookups:  g.Lookups,
		Logger:   logs.NewLogger(stderr).With("run_id", id),
	}
}

// stageDirName turns a stage name into a folder name.
func stageDirName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// planStage is one planned sink stage (a pipeline.Planner's) and the
// sink that stood in for it.
type planStage struct {
	Stage     string                  `json:"stage"`
	Object    string                  `json:"object"`
	Operation string                  `json:"operation"`
	Dir       string                  `json:"dir"`
	Rows      int64                   `json:"rows"`
	Bytes     int64                   `json:"bytes"`
	Jobs      []pipeline.PlanFile     `json:"jobs"`
	APICalls  salesforcesink.APICalls `json:"api_calls"`
	target    pipeline.PlanTarget     // what the stage writes to
	sink      pipeline.PlanSink       // set when the run opened it
	mu        *sync.Mutex             // guards sink
}

// planLimits is the /limits comparison of a plan.
type planLimits struct {
	Checked   bool   `json:"checked"`
	Reason    string `json:"reason,omitempty"`
	Max       int64  `json:"daily_api_requests_max,omitempty"`
	Remaining int64  `json:"daily_api_requests_remaining,omitempty"`
	Needed    int    `json:"needed_min"`
	Enough    bool   `json:"enough"`
}

// planReport is the JSON written by `bulkflow plan --report`.
type planReport struct {
	Pipeline string                  `json:"pipeline"`
	File     string                  `json:"file"`
	Out      string                  `json:"out"`
	Status   string                  `json:"status"`
	Stages   []*planStage            `json:"stages"`
	APICalls salesforcesink.APICalls `json:"api_calls"`
	Limits   planLimits              `json:"limits"`
	Run      *pipeline.Report        `json:"run"`
}

const planUsage = `Usage: bulkflow plan FILE [--out DIR] [--report FILE] [--json] [--write-files] [--state LOC] [connection flags]

Runs the pipeline's sources and transforms for real, but every "salesforce"
sink writes the exact job CSVs it would upload into DIR/<stage>/job-0001.csv,
job-0002.csv, ... instead of calling Salesforce (same encoder, header,
delimiter, line ending, and split by max_job_rows / max_job_bytes). Dead
letters of the plan run go to DIR/dead-letter/. Prints the jobs and the API
calls the load would make and, when the org is reachable, compares them with
DailyApiRequests from /limits. Nothing is written to Salesforce. The
pipeline's other sinks (csv, jsonl, ...) only count the rows they would
write, unless --write-files. Rows that reach a sink are "planned", never
"loaded".

A plan never writes state: sync: stages diff their rows against the
manifest (max_deletes applies) and say how many keys are new, changed,
unchanged and would be deleted, but commit nothing and write no sync log;
incremental: sources read from the watermark without moving it.

Connection (for /limits only): the flags below, else the pipeline's first
salesforce sink (instance_url "emulator:" is not checked).

Exit codes: 0 planned, 3 some rows would be dead-lettered before any upload,
1 the plan run failed, 2 usage or invalid pipeline file.

Flags:`

// runPlan implements `bulkflow plan`.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "plan", "`folder` the job files are written to (one sub-folder per sink stage)")
	report := fs.String("report", "", "write the JSON plan report to this `path` or blob URL (- : as --json)")
	asJSON := fs.Bool("json", false, "print the JSON plan report on stdout (the human-readable plan goes to stderr)")
	writeFiles := fs.Bool("write-files", false, "let the pipeline's other sinks (csv, jsonl, ...) write their outputs for real; by default they only count the rows they would write")
	stateFlag := fs.String("state", "", "state `location` the sync and incremental stages read (as run --state); default: the pipeline's state:, else "+state.DefaultLocation)
	var cf jobs.Conn // connection for the /limits check
	cf.RegisterFlags(fs, false)
	var ov overrideFlags // --set (--instance-url is the /limits connection's here)
	ov.register(fs, false)
	var logs obs.LogOptions
	obs.AddLogFlags(fs, &logs, "warn")
	fs.Usage = func() {
		fmt.Fprintln(stderr, planUsage)
		fs.PrintDefaults()
	}
	file, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if file == "" {
		fs.Usage()
		return exitUsage
	}
	if err := logs.Check(); err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitUsage
	}
	explicitConn := cf.Explicit()

	g, err := config.LoadFileWith(file, pipeline.DefaultRegistry(), ov.options())
	if err != nil {
		cli.PrintError(stderr, err)
		return exitUsage
	}
	// Swap every sink that can be planned for a plan sink writing to OUT/<stage>/.
	stages, discarded, err := planStages(g, pipeline.DefaultRegistry(), *out, *writeFiles)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %s: %v\n", file, err)
		return exitUsage
	}
	g.DeadLetter = filepath.Join(*out, "dead-letter") + "/"

	reg := planRegistry(stages)
	env := newEnv(g, logs, stderr)
	// Sync stages diff against their manifest and incremental sources
	// filter by their watermark, read-only: a plan never writes state.
	syncers := map[string]*partialSyncer{}
	var st *state.Store
	if needsState(g) {
		if st, err = state.Open(ctx, stateLocation(*stateFlag, g), stateName(g, env.Shard)); err != nil {
			fmt.Fprintf(stderr, "bulkflow: %v\n", err)
			return exitFailed
		}
	}
	opts, err := syncView(ctx, g, g, env, syncPlan, st, syncers)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitFailed
	}
	plan, err := pipeline.Prepare(ctx, reg, g, env)
	if err != nil {
		cli.PrintError(stderr, err)
		return exitUsage
	}
	rep, runErr := plan.Run(ctx, opts)

	pr := &planReport{Pipeline: g.Name, File: file, Out: *out, Status: rep.Status, Stages: stages, Run: rep}
	planTotals(stages)
	for _, ps := range stages {
		pr.APICalls = pr.APICalls.Add(ps.APICalls) // Bulk jobs and REST requests, one token request per sink
	}
	pr.Limits = planCheckLimits(ctx, &cf, explicitConn, file, stages[0].target, pr.APICalls.Total)

	if *report == "-" {
		*report, *asJSON = "", true
	}
	if *asJSON {
		printPlan(stderr, pr)
		if err := writePlanJSON(stdout, pr); err != nil && runErr == nil {
			runErr = fmt.Errorf("write the plan report to stdout: %w", err)
		}
	} else {
		printPlan(stdout, pr)
	}
	if *report != "" {
		if err := writePlanReport(ctx, *report, pr); err != nil {
			fmt.Fprintf(stderr, "bulkflow: %v\n", err)
			if runErr == nil {
				runErr = err
			}
		}
	}
	planSummary(stderr, rep, syncers, discarded)
	return exitCode(rep, runErr)
}

// planTotals fills each stage's jobs, rows, bytes and API calls from its
// plan sink and returns the number of jobs of all stages.
func planTotals(stages []*planStage) int {
	totalJobs := 0
	for _, ps := range stages {
		ps.mu.Lock()
		if ps.sink != nil {
			ps.Jobs = ps.sink.PlanFiles()
		}
		ps.mu.Unlock()
		if ps.Jobs == nil {
			ps.Jobs = []pipeline.PlanFile{}
		}
		for _, j := range ps.Jobs {
			ps.Rows += int64(j.Rows)
			ps.Bytes += j.Bytes
		}
		ps.APICalls = salesforcesink.PlannedCallsOf(ps.Jobs, 1)
		totalJobs += len(ps.Jobs)
	}
	return totalJobs
}

// planStages swaps every sink of g whose options are a pipeline.Planner
// (the "salesforce" sink's) for the plan sink writing its files under
// out/<stage>/, and, unless writeFiles, every other sink for one that only
// counts rows (discarded). No such sink is an error naming the sink types
// of reg that can be planned.
func planStages(g *pipeline.Graph, reg *pipeline.Registry, out string, writeFiles bool) ([]*planStage, map[string]bool, error) {
	var stages []*planStage
	discarded := map[string]bool{}
	for i := range g.Stages {
		s := &g.Stages[i]
		if s.Kind != pipeline.KindSink {
			continue
		}
		p, ok := s.Options.(pipeline.Planner)
		if !ok {
			if !writeFiles {
				// A plan writes nothing for real: the sink only counts.
				discarded[s.Name] = true
				s.Type, s.Options = planDiscardType, &struct{}{}
			}
			continue
		}
		t := p.PlanTarget()
		ps := &planStage{Stage: s.Name, Object: t.Object, Operation: t.Operation,
			Dir: filepath.Join(out, stageDirName(s.Name)), target: t, mu: &sync.Mutex{}}
		stages = append(stages, ps)
		s.Type = planSinkType
		s.Options = &planStageOptions{Planner: p, Dir: ps.Dir}
	}
	if len(stages) == 0 {
		return nil, nil, fmt.Errorf("the pipeline has no %s sink: nothing to plan", strings.Join(plannableSinks(reg), " or "))
	}
	return stages, discarded, nil
}

// plannableSinks returns the sink types of reg whose options are a
// pipeline.Planner.
func plannableSinks(reg *pipeline.Registry) []string {
	var names []string
	for _, n := range reg.Names(pipeline.KindSink) {
		if o, err := reg.NewOptions(pipeline.KindSink, n); err == nil {
			if _, ok := o.(pipeline.Planner); ok {
				names = append(names, n)
			}
		}
	}
	return names
}

// planRegistry is the default registry plus the plan's private sinks: the
// one that writes job CSVs (recorded in its stage for the report) and the
// one that only counts rows.
func planRegistry(stages []*planStage) *pipeline.Registry {
	reg := pipeline.DefaultRegistry().Clone()
	reg.RegisterSink(planSinkType, pipeline.Spec{Summary: "write the files a sink would send (bulkflow plan)"},
		pipeline.TypedSink(planSinkType, func(ctx context.Context, env *pipeline.Env, po *planStageOptions, in *pipeline.Schema) (pipeline.PlanSink, error) {
			sk, err := po.Planner.OpenPlan(ctx, env, in, po.Dir)
			if err != nil {
				return nil, err
			}
			for _, ps := range stages {
				if ps.Dir == po.Dir {
					ps.mu.Lock()
					ps.sink = sk
					ps.mu.Unlock()
				}
			}
			return sk, nil
		}))
	reg.RegisterSink(planDiscardType, pipeline.Spec{Summary: "count the rows a sink would write (bulkflow plan without --write-files)"},
		pipeline.TypedSink(planDiscardType, func(context.Context, *pipeline.Env, *struct{}, *pipeline.Schema) (*discardSink, error) {
			return &discardSink{}, nil
		}))
	return reg
}

// planDiscardType is the sink type `bulkflow plan` substitutes for every
// sink it does not plan, unless --write-files.
const planDiscardType = "plan-discard"

// discardSink counts the rows a sink would write and writes nothing.
type discardSink struct{ rows atomic.Int64 }

// Write counts the batch.
func (d *discardSink) Write(ctx context.Context, b *pipeline.Batch) error {
	d.rows.Add(int64(b.Len()))
	return nil
}

// Close does nothing.
func (d *discardSink) Close(context.Context) error { return nil }

// Stats reports the rows the sink would have written.
func (d *discardSink) Stats() any {
	return map[string]any{"planned_rows": d.rows.Load(), "written": false}
}

// planSummary is the plan's counterpart of Report.Summary: rows that
// reached a sink are "planned", never "loaded"; each sync stage's diff is
// shown with the deletes it would make, and nothing is committed.
func planSummary(w io.Writer, rep *pipeline.Report, syncers map[string]*partialSyncer, discarded map[string]bool) {
	w = redact.Writer(w)
	fmt.Fprintf(w, "plan %s of %q: %s in %.2fs (nothing was loaded, deleted or committed)\n", rep.RunID, rep.Pipeline, rep.Status, rep.Seconds)
	c := rep.Counts
	fmt.Fprintf(w, "  read %d, planned %d, filtered %d, dead-lettered %d\n", c.Read, c.Loaded, c.Filtered, c.DeadLettered)
	for _, st := range rep.Stages {
		if discarded[st.Name] {
			fmt.Fprintf(w, "  %s: %d rows would be written (not written: --write-files writes them)\n", st.Name, st.Loaded)
		}
		if l, ok := rep.Sinks[st.Name].(pipeline.SummaryLiner); ok && l.SummaryLine() != "" {
			fmt.Fprintf(w, "  %s: %s\n", st.Name, l.SummaryLine()) // e.g. the path a salesforce sink would take
		}
	}
	names := make([]string, 0, len(syncers))
	for n := range syncers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		var sum syncer.Summary
		if b, err := json.Marshal(rep.Sync[n]); err == nil && json.Unmarshal(b, &sum) == nil {
			doubt := ""
			if sum.InDoubt > 0 {
				// Keys an unfinished run may have loaded: sent again
				// (changed) or deleted (see the README's mirror deletes).
				doubt = fmt.Sprintf(", %d keys in doubt among them", sum.InDoubt)
			}
			fmt.Fprintf(w, "  sync %s: %d new, %d changed, %d unchanged, %d would be deleted%s (manifest of %d keys not changed)\n",
				n, sum.New, sum.Changed, sum.Unchanged, syncers[n].deletes.Load(), doubt, sum.ManifestKeys)
		}
	}
	rep.ErrorGroupsSummary(w) // what would be dead-lettered before any upload, by code
	for _, d := range rep.DeadLetters {
		fmt.Fprintf(w, "  dead letters: %s\n", d)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}

// planCheckLimits compares the estimated calls with DailyApiRequests of
// the org the flags (or else the pipeline's first planned sink) name.
// It only reads (/limits, after the auth flow's token request).
func planCheckLimits(ctx context.Context, cf *jobs.Conn, explicit bool, file string, first pipeline.PlanTarget, needed int) planLimits {
	l := planLimits{Needed: needed}
	if !explicit {
		if first.Instance == salesforcesink.EmulatorURL {
			l.Reason = `instance_url is "emulator:" (an in-process emulator has no limits to compare); pass --instance-url and --token to check an org`
			return l
		}
		cf.UsePipeline(file)
	}
	ctx, cancel := context.WithTimeout(ctx, planLimitsTimeout)
	defer cancel()
	client, err := cf.Connect(ctx)
	if err != nil {
		l.Reason = "not checked: " + jobs.DescribeErr(err)
		return l
	}
	lim, err := client.Limits(ctx)
	if err != nil {
		l.Reason = "not checked: " + jobs.DescribeErr(err)
		return l
	}
	d, ok := lim["DailyApiRequests"]
	if !ok {
		l.Reason = "not checked: /limits has no DailyApiRequests"
		return l
	}
	l.Checked, l.Max, l.Remaining = true, d.Max, d.Remaining
	l.Enough = d.Remaining >= int64(needed)
	return l
}

// printPlan prints the job table, the API call estimate and the limits.
func printPlan(w io.Writer, pr *planReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "stage\tfile\trows\tbytes\t\n")
	for _, ps := range pr.Stages {
		for _, j := range ps.Jobs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t\n", ps.Stage, j.File, j.Rows, j.Bytes)
		}
		fmt.Fprintf(tw, "%s\t(total: %s %s, %d jobs)\t%d\t%d\t\n", ps.Stage, ps.Operation, ps.Object, len(ps.Jobs), ps.Rows, ps.Bytes)
	}
	tw.Flush()
	c := pr.APICalls
	fmt.Fprintf(w, "\nAPI calls the load would make (estimate; polls of slow jobs and lock_retries re-drives add more):\n")
	fmt.Fprintf(w, "  %d jobs x (create 1 + upload 1 + close 1 + poll >=1 + results 3) = %d\n", c.Jobs, c.Total-c.Auth-c.REST)
	if c.REST > 0 {
		fmt.Fprintf(w, "  %d REST collections requests x 1 = %d\n", c.REST, c.REST)
	}
	fmt.Fprintf(w, "  auth: %d token request(s), one per sink\n", c.Auth)
	fmt.Fprintf(w, "  total: at least %d\n", c.Total)
	if pr.Limits.Checked {
		verdict := "enough"
		if !pr.Limits.Enough {
			verdict = "NOT enough"
		}
		fmt.Fprintf(w, "limits: DailyApiRequests remaining %d of %d: %s for at least %d calls\n",
			pr.Limits.Remaining, pr.Limits.Max, verdict, pr.Limits.Needed)
	} else {
		fmt.Fprintf(w, "limits: %s\n", pr.Limits.Reason)
	}
	fmt.Fprintf(w, "Nothing was sent to Salesforce; the job files are under %s\n", pr.Out)
}

func writePlanReport(ctx context.Context, where string, pr *planReport) error {
	loc, err := blobio.Parse("", where)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	data, err := planJSON(pr)
	if err != nil {
		return err
	}
	return blobio.WriteAll(context.WithoutCancel(ctx), loc, data)
}

// writePlanJSON writes the plan report to w (--json, --report -).
func writePlanJSON(w io.Writer, pr *planReport) error {
	data, err := planJSON(pr)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// planJSON is the plan report as indented JSON, secrets masked.
func planJSON(pr *planReport) ([]byte, error) {
	data, err := json.MarshalIndent(pr, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(redact.Redact(string(data))), '\n'), nil
}
