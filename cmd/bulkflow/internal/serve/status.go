package serve

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// historyRuns is how many runs the status page lists and charts per
// pipeline.
const historyRuns = 20

// listedRuns is how many of them the runs table lists.
const listedRuns = 10

// statusPage is what the status page shows.
type statusPage struct {
	Pipelines []statusPipeline
	CanRun    bool // the viewer may trigger runs
	Session   bool // the viewer logged in with the browser form
	Now       string
}

type statusPipeline struct {
	Name, File, Schedule, Running string
	Next                          string // "never" when the schedule never fires
	NextIn                        string // "in 2h 5m"
	Lease                         leaseView
	Chart                         chart
	Last                          *lastRun // the newest run, nil before the first
	Runs                          []statusRun
	Err                           string // reading the state store failed
}

// leaseView is the pipeline's lease as the page shows it.
type leaseView struct {
	Holder  string // "" when free
	Until   string
	Ours    bool // held by this process
	Unknown string
}

type statusRun struct {
	state.RunRecord
	Seconds     float64
	Report      string // link, "" when no report
	DeadLetters []statusLink
}

type statusLink struct{ Href, Name string }

// lastRun is the newest run with its error groups.
type lastRun struct {
	statusRun
	Groups      []errorGroupView
	GroupsError string // the report could not be read
}

// errorGroupView is one error group of the last run: its code, rows, and
// the code's recovery class from the code table (pipeline.LookupCode).
type errorGroupView struct {
	Code, Recovery, Doc string
	Retryable           bool
	Rows                int64
	Stages              []string
	TopMessage          string
}

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
}).Parse(statusHTML))

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	out := statusPage{CanRun: requestRole(r) >= roleRun, Now: now.UTC().Format("2006-01-02 15:04:05Z")}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" && s.auth.enabled() {
		out.Session = true
	}
	for _, name := range s.names {
		out.Pipelines = append(out.Pipelines, s.pipelineStatus(r.Context(), s.pipelines[name], now))
	}
	var b bytes.Buffer
	if err := statusTmpl.Execute(&b, out); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	redact.Writer(w).Write(b.Bytes())
}

// pipelineStatus gathers what the page shows of one pipeline: schedule,
// lease, run history (chart and table) and the last run's error groups.
func (s *Server) pipelineStatus(ctx context.Context, p *servedPipeline, now time.Time) statusPipeline {
	sp := statusPipeline{Name: p.name, File: p.file, Schedule: p.spec, Running: p.current(), Next: "never"}
	if next := p.sched.Next(now); !next.IsZero() {
		sp.Next = next.Format("2006-01-02 15:04 MST")
		sp.NextIn = "in " + roughDuration(next.Sub(now))
	}
	sp.Lease = s.leaseView(ctx, p, now)
	runs, err := p.store.Runs(ctx, historyRuns)
	if err != nil {
		sp.Err = err.Error()
	}
	sp.Chart = historyChart(runs)
	for i, rec := range runs {
		sr := statusRun{RunRecord: rec, Seconds: rec.FinishedAt.Sub(rec.StartedAt).Seconds()}
		if rec.ReportURL != "" {
			sr.Report = "/reports/" + p.name + "/" + rec.RunID + ".json"
		}
		for i, dl := range rec.DeadLetters {
			sr.DeadLetters = append(sr.DeadLetters, statusLink{Href: fmt.Sprintf("/dead-letters/%s/%s/%d", p.name, rec.RunID, i), Name: deadLetterName(dl)})
		}
		if i == 0 {
			sp.Last = &lastRun{statusRun: sr}
			sp.Last.Groups, sp.Last.GroupsError = p.errorGroups(ctx, rec)
		}
		if i < listedRuns {
			sp.Runs = append(sp.Runs, sr)
		}
	}
	return sp
}

// leaseView reads the pipeline's lease.
func (s *Server) leaseView(ctx context.Context, p *servedPipeline, now time.Time) leaseView {
	le, err := p.store.ReadLease(ctx)
	switch {
	case err != nil:
		return leaseView{Unknown: err.Error()}
	case le.Holder == "" || !now.Before(le.Expires):
		return leaseView{}
	}
	return leaseView{Holder: le.Holder, Until: le.Expires.UTC().Format("2006-01-02 15:04:05Z"), Ours: le.Holder == s.opts.Holder}
}

// roughDuration formats d to the minute ("2h 5m", "3d 4h", "under a
// minute").
func roughDuration(d time.Duration) string {
	m := int64(d / time.Minute)
	switch {
	case m < 1:
		return "under a minute"
	case m < 60:
		return fmt.Sprintf("%dm", m)
	case m < 24*60:
		return fmt.Sprintf("%dh %dm", m/60, m%60)
	}
	return fmt.Sprintf("%dd %dh", m/(24*60), m%(24*60)/60)
}

// errorGroupCache holds the error groups of one run: reports never
// change once recorded, so the page reads the newest run's report once.
type errorGroupCache struct {
	runID  string
	groups []errorGroupView
}

// errorGroups returns the error groups of run rec from its report (the
// report's error_groups; the recovery class comes from the code table).
// The second result says why there are none when the run has dead
// letters but its report cannot tell.
func (p *servedPipeline) errorGroups(ctx context.Context, rec state.RunRecord) ([]errorGroupView, string) {
	if rec.Counts.DeadLettered == 0 {
		return nil, ""
	}
	p.mu.Lock()
	c := p.groups
	p.mu.Unlock()
	if c.runID == rec.RunID {
		return c.groups, ""
	}
	if rec.ReportURL == "" {
		return nil, "the run has no report"
	}
	groups, err := readErrorGroups(ctx, rec.ReportURL)
	if err != nil {
		return nil, err.Error()
	}
	if len(groups) == 0 {
		return nil, "the report has no error groups (written by an older bulkflow)"
	}
	p.mu.Lock()
	p.groups = errorGroupCache{runID: rec.RunID, groups: groups}
	p.mu.Unlock()
	return groups, ""
}

// maxReport bounds the part of a report read for its error groups.
const maxReport = 32 << 20

// readErrorGroups reads the error_groups section of the report at u. The
// report is read through its JSON form, as the metrics read sinks'
// sections.
func readErrorGroups(ctx context.Context, u string) ([]errorGroupView, error) {
	loc, err := blobio.Parse("", u)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", u, err)
	}
	rc, err := blobio.NewReader(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", u, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxReport))
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", u, err)
	}
	var rep struct {
		Groups []struct {
			Code        string   `json:"code"`
			Rows        int64    `json:"rows"`
			Stages      []string `json:"stages"`
			TopMessages []struct {
				Message string `json:"message"`
			} `json:"top_messages"`
		} `json:"error_groups"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("report %s: %w", u, err)
	}
	var out []errorGroupView
	for _, g := range rep.Groups {
		v := errorGroupView{Code: g.Code, Rows: g.Rows, Stages: g.Stages}
		rec := pipeline.RecoveryOf(g.Code)
		v.Recovery, v.Retryable = rec.String(), rec.Retryable()
		if info, ok := pipeline.LookupCode(g.Code); ok {
			v.Doc = info.Doc
		}
		if len(g.TopMessages) > 0 {
			v.TopMessage = g.TopMessages[0].Message
		}
		out = append(out, v)
	}
	return out, nil
}

// chart is a server-rendered SVG of a pipeline's run history: per run,
// oldest left, a bar of rows loaded with the rows dead-lettered stacked
// on it, and below it a bar of the run's duration.
type chart struct {
	Width, Height int
	Bars          []chartBar
	Labels        []chartLabel
	Runs          int
	From, To      string // start of the oldest and the newest run charted
}

type chartBar struct {
	X, Y, W, H float64
	Class      string // "bar loaded", "bar dead", "bar duration"
	Title      string // the tooltip
}

type chartLabel struct {
	X, Y   float64
	Anchor string
	Text   string
}

// Chart geometry, in SVG user units.
const (
	chartSlot     = 26  // width per run
	chartBarWidth = 18  // bar width within the slot
	chartLeft     = 56  // room for the axis labels
	chartRowsH    = 110 // height of the rows panel
	chartGap      = 26  // between the panels
	chartDurH     = 50  // height of the duration panel
	chartTop      = 14
	chartMinSlots = 10 // the chart is at least this many runs wide
)

// historyChart lays out the chart of runs (newest first, as state.Runs
// returns them).
func historyChart(runs []state.RunRecord) chart {
	c := chart{Runs: len(runs), Width: chartLeft + max(len(runs), chartMinSlots)*chartSlot + 8, Height: chartTop + chartRowsH + chartGap + chartDurH + 8}
	var maxRows int64
	var maxSecs float64
	for _, r := range runs {
		maxRows = max(maxRows, r.Counts.Loaded+r.Counts.DeadLettered)
		maxSecs = max(maxSecs, r.FinishedAt.Sub(r.StartedAt).Seconds())
	}
	rowsBase := float64(chartTop + chartRowsH)
	durBase := rowsBase + chartGap + chartDurH
	c.Labels = []chartLabel{
		{chartLeft - 6, chartTop + 4, "end", fmt.Sprintf("%d rows", maxRows)},
		{chartLeft - 6, rowsBase, "end", "0"},
		{chartLeft - 6, rowsBase + chartGap + 4, "end", seconds(maxSecs)},
		{chartLeft - 6, durBase, "end", "0"},
	}
	for i := range runs {
		r := runs[len(runs)-1-i] // oldest first
		x := float64(chartLeft + i*chartSlot + (chartSlot-chartBarWidth)/2)
		secs := r.FinishedAt.Sub(r.StartedAt).Seconds()
		hLoaded := scale(float64(r.Counts.Loaded), float64(maxRows), chartRowsH)
		hDead := scale(float64(r.Counts.DeadLettered), float64(maxRows), chartRowsH)
		hDur := scale(secs, maxSecs, chartDurH)
		c.Bars = append(c.Bars,
			chartBar{x, rowsBase - hLoaded, chartBarWidth, hLoaded, "bar loaded", fmt.Sprintf("%s (%s): %d rows loaded", r.RunID, r.Status, r.Counts.Loaded)},
			chartBar{x, rowsBase - hLoaded - hDead, chartBarWidth, hDead, "bar dead", fmt.Sprintf("%s (%s): %d rows dead-lettered", r.RunID, r.Status, r.Counts.DeadLettered)},
			chartBar{x, durBase - hDur, chartBarWidth, hDur, "bar duration " + r.Status, fmt.Sprintf("%s (%s): %.1f s", r.RunID, r.Status, secs)})
	}
	if len(runs) > 0 {
		c.From, c.To = shortTime(runs[len(runs)-1].StartedAt), shortTime(runs[0].StartedAt)
	}
	return c
}

// scale maps v in [0, top] to [0, height], at least one unit when v > 0
// (a run with one dead letter among a million rows still shows).
func scale(v, top, height float64) float64 {
	if v <= 0 || top <= 0 {
		return 0
	}
	return max(v/top*height, 1)
}

// seconds formats a duration axis label: two decimals under 10 s.
func seconds(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2fs", v)
	}
	return fmt.Sprintf("%.0fs", v)
}

func shortTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }
