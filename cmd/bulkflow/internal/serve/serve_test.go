package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve/servetest"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/sinks/filesink"

	_ "github.com/bulkflow/bulkflow/sinks/all"
	_ "github.com/bulkflow/bulkflow/sources/all"
	_ "github.com/bulkflow/bulkflow/transforms/all"
)

// engineRunner runs pipeline files on the engine for the server's tests:
// what cmd/bulkflow's runner does for pipelines without Salesforce ledgers
// or state (no provenance to record, no run lock to take; the cmd/bulkflow
// tests run the server with the real runner).
type engineRunner struct{ stateFlag string }

func (engineRunner) Prepare(ctx context.Context, file string, stderr io.Writer) (*pipeline.Plan, *pipeline.Graph, *pipeline.Env, bool) {
	reg := pipeline.DefaultRegistry()
	g, err := config.LoadFile(file, reg)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return nil, nil, nil, false
	}
	env := &pipeline.Env{RunID: pipeline.NewRunID(time.Now()), Pipeline: g.Name, Lookups: g.Lookups,
		Logger: slog.New(redact.Handler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	plan, err := pipeline.Prepare(ctx, reg, g, env)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return nil, nil, nil, false
	}
	return plan, g, env, true
}

func (r engineRunner) StateLocation(g *pipeline.Graph) string {
	if r.stateFlag != "" {
		return r.stateFlag
	}
	if g.State != "" {
		return g.State
	}
	return state.DefaultLocation
}

func (engineRunner) Begin(ctx context.Context, g *pipeline.Graph, env *pipeline.Env, st *state.Store, resumed bool, lost func(error)) (*pipeline.RunOptions, func(), error) {
	return &pipeline.RunOptions{DeadLetters: filesink.DeadLetters, Resumed: resumed}, func() {}, nil
}

// Unfinished: the engine runner's pipelines are never resumed for it.
func (engineRunner) Unfinished(g *pipeline.Graph, rep *pipeline.Report) bool { return false }

// Committed: an in-flight run is always resumed.
func (engineRunner) Committed(context.Context, string, *state.Store, string) bool { return false }

func (engineRunner) WriteReport(ctx context.Context, where string, rep *pipeline.Report) error {
	loc, err := blobio.Parse("", where)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		return err
	}
	return blobio.WriteAll(ctx, loc, b.Bytes())
}

// serveTestServer builds a server on the fixture with hooks reporting
// finished runs on the returned channel.
func serveTestServer(t *testing.T, dir, stateDir string) (*Server, <-chan state.RunRecord, *servetest.SafeBuffer) {
	t.Helper()
	return serveTestServerWith(t, Options{Dir: dir, State: stateDir, Grace: time.Minute})
}

// serveTestServerWith is serveTestServer with options.
func serveTestServerWith(t *testing.T, o Options) (*Server, <-chan state.RunRecord, *servetest.SafeBuffer) {
	t.Helper()
	stderr := &servetest.SafeBuffer{}
	done := make(chan state.RunRecord, 4)
	if o.Runner == nil {
		o.Runner = engineRunner{stateFlag: o.State}
	}
	o.RunDone = func(name string, rec state.RunRecord) { done <- rec }
	s, err := New(context.Background(), o, stderr)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// No run is left at the end of a passing test; after a failing one,
	// cancel at once.
	t.Cleanup(func() { s.Shutdown(0) })
	return s, done, stderr
}

func serveWait(t *testing.T, ch <-chan state.RunRecord) state.RunRecord {
	t.Helper()
	select {
	case rec := <-ch:
		return rec
	case <-time.After(15 * time.Second): // a safety net, not an ordering device
		t.Fatal("run did not finish")
		return state.RunRecord{}
	}
}

func TestServeManualRunRecordedAndShown(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, done, stderr := serveTestServer(t, dir, stateDir)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	code, body := servetest.Do(t, "POST", ts.URL+"/run/people")
	if code != http.StatusAccepted {
		t.Fatalf("POST /run/people = %d %s", code, body)
	}
	var started struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(body), &started); err != nil || started.RunID == "" {
		t.Fatalf("POST body %q: %v", body, err)
	}
	rec := serveWait(t, done)
	if rec.RunID != started.RunID || rec.Status != pipeline.StatusSucceeded || rec.Trigger != "manual" {
		t.Fatalf("run = %+v\nstderr:\n%s", rec, stderr.String())
	}
	if c := rec.Counts; c.Read != 3 || c.Loaded != 2 || c.Filtered != 1 || c.DeadLettered != 0 {
		t.Errorf("counts = %+v", c)
	}

	// The state store has the run, its report, and no lease left behind.
	st, err := state.Open(context.Background(), stateDir, "people")
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.Runs(context.Background(), 10)
	if err != nil || len(runs) != 1 || runs[0].RunID != rec.RunID {
		t.Fatalf("state runs = %+v, %v", runs, err)
	}
	if want := filepath.Join(stateDir, "people", "reports", rec.RunID+".json"); runs[0].ReportURL != want {
		t.Errorf("report url = %q, want %q", runs[0].ReportURL, want)
	}
	if le, err := st.ReadLease(context.Background()); err != nil || le.Holder != "" {
		t.Errorf("lease after run = %+v, %v; want released", le, err)
	}
	out, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(stateDir)), "data", "out", "people.csv"))
	if err != nil || !strings.Contains(string(out), "ADA") || strings.Contains(string(out), "BOB") {
		t.Errorf("sink output = %q, %v", out, err)
	}

	// The status page shows it, with a working link to the report.
	code, page := servetest.Do(t, "GET", ts.URL+"/")
	if code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	link := "/reports/people/" + rec.RunID + ".json"
	for _, want := range []string{"people", "CRON_TZ=Europe/Berlin " + servetest.Never, rec.RunID, `class="succeeded"`, `href="` + link + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q:\n%s", want, page)
		}
	}
	code, rep := servetest.Do(t, "GET", ts.URL+link)
	if code != 200 || !strings.Contains(rep, `"run_id": "`+rec.RunID+`"`) {
		t.Errorf("GET %s = %d %s", link, code, rep)
	}
	if code, _ := servetest.Do(t, "GET", ts.URL+"/reports/people/nosuchrun.json"); code != 404 {
		t.Errorf("missing report = %d, want 404", code)
	}

	// Metrics count rows by outcome.
	code, metrics := servetest.Do(t, "GET", ts.URL+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`bulkflow_rows_total{outcome="loaded",pipeline="people"} 2`,
		`bulkflow_rows_total{outcome="filtered",pipeline="people"} 1`,
		`bulkflow_rows_total{outcome="dead_lettered",pipeline="people"} 0`,
		`bulkflow_runs_total{pipeline="people",status="succeeded"} 1`,
		`bulkflow_run_duration_seconds_count{pipeline="people"} 1`,
		`bulkflow_running{pipeline="people"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}

	if code, _ := servetest.Do(t, "POST", ts.URL+"/run/nosuch"); code != http.StatusNotFound {
		t.Errorf("POST /run/nosuch = %d, want 404", code)
	}
	if code, body := servetest.Do(t, "GET", ts.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
}

func TestServeConcurrentTriggerConflicts(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, done, _ := serveTestServer(t, dir, stateDir)
	started := make(chan string, 1)
	release := make(chan struct{})
	s.opts.RunStarted = func(ctx context.Context, name, runID string) {
		started <- runID
		select {
		case <-release:
		case <-ctx.Done(): // only when the test failed early
		}
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	if code, body := servetest.Do(t, "POST", ts.URL+"/run/people"); code != http.StatusAccepted {
		t.Fatalf("first POST = %d %s", code, body)
	}
	runID := <-started
	code, body := servetest.Do(t, "POST", ts.URL+"/run/people")
	if code != http.StatusConflict || !strings.Contains(body, runID) {
		t.Errorf("second POST = %d %s; want 409 naming %s", code, body, runID)
	}
	// The scheduled trigger is refused the same way.
	if _, err := s.trigger("people", "schedule"); err == nil {
		t.Error("scheduled trigger during a run succeeded")
	}
	if _, m := servetest.Do(t, "GET", ts.URL+"/metrics"); !strings.Contains(m, `bulkflow_running{pipeline="people"} 1`) {
		t.Errorf("metrics while running:\n%s", m)
	}
	if _, page := servetest.Do(t, "GET", ts.URL+"/"); !strings.Contains(page, "running</strong> "+runID) {
		t.Errorf("status page does not show the running run:\n%s", page)
	}
	close(release)
	if rec := serveWait(t, done); rec.RunID != runID || rec.Status != pipeline.StatusSucceeded {
		t.Fatalf("run = %+v", rec)
	}
	// Free again once finished.
	if code, body := servetest.Do(t, "POST", ts.URL+"/run/people"); code != http.StatusAccepted {
		t.Fatalf("POST after the run = %d %s", code, body)
	}
	<-started
	serveWait(t, done)
}

// TestServeLeaseHeldElsewhere: another process holding the pipeline's lease
// blocks runs here, until it expires or is released.
func TestServeLeaseHeldElsewhere(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, done, _ := serveTestServer(t, dir, stateDir)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	ctx := context.Background()
	other, err := state.Open(ctx, stateDir, "people")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := other.AcquireLease(ctx, "otherhost:42", time.Hour); !ok || err != nil {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	code, body := servetest.Do(t, "POST", ts.URL+"/run/people")
	if code != http.StatusConflict || !strings.Contains(body, "otherhost:42") {
		t.Errorf("POST with the lease held elsewhere = %d %s", code, body)
	}
	if err := other.ReleaseLease(ctx, "otherhost:42"); err != nil {
		t.Fatal(err)
	}
	if code, body := servetest.Do(t, "POST", ts.URL+"/run/people"); code != http.StatusAccepted {
		t.Fatalf("POST after release = %d %s", code, body)
	}
	serveWait(t, done)
}

// TestServeScheduledJob runs the cron entry's job by hand: the scheduled
// path without waiting for a clock.
func TestServeScheduledJob(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, done, _ := serveTestServer(t, dir, stateDir)
	entries := s.cron.Entries()
	if len(entries) != 1 {
		t.Fatalf("cron entries = %d, want 1", len(entries))
	}
	entries[0].WrappedJob.Run()
	rec := serveWait(t, done)
	if rec.Trigger != "schedule" || rec.Status != pipeline.StatusSucceeded {
		t.Errorf("scheduled run = %+v", rec)
	}
}

// TestServeShutdown: shutdown stops new runs, lets a running one go on
// through the grace period, then cancels it; leases are released.
func TestServeShutdown(t *testing.T) {
	t.Run("run finishes within grace", func(t *testing.T) {
		dir, stateDir := servetest.Fixture(t, "")
		s, done, _ := serveTestServer(t, dir, stateDir)
		started := make(chan struct{})
		release := make(chan struct{})
		s.opts.RunStarted = func(ctx context.Context, name, runID string) {
			close(started)
			select {
			case <-release:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				t.Error("run context cancelled within the grace period")
			}
		}
		ts := httptest.NewServer(s.Handler())
		defer ts.Close()
		if _, err := s.trigger("people", "manual"); err != nil {
			t.Fatal(err)
		}
		<-started
		stopped := make(chan struct{})
		go func() { s.Shutdown(time.Hour); close(stopped) }()
		select {
		case <-stopped:
			t.Fatal("shutdown returned while a run was going on")
		default:
		}
		close(release)
		rec := serveWait(t, done)
		<-stopped
		if rec.Status != pipeline.StatusSucceeded {
			t.Errorf("run = %+v", rec)
		}
		if code, _ := servetest.Do(t, "POST", ts.URL+"/run/people"); code != http.StatusServiceUnavailable {
			t.Errorf("POST after shutdown = %d, want 503", code)
		}
		if code, _ := servetest.Do(t, "GET", ts.URL+"/healthz"); code != http.StatusServiceUnavailable {
			t.Errorf("/healthz after shutdown = %d, want 503", code)
		}
	})
	t.Run("grace over cancels the run", func(t *testing.T) {
		dir, stateDir := servetest.Fixture(t, "")
		s, done, _ := serveTestServer(t, dir, stateDir)
		started := make(chan struct{})
		s.opts.RunStarted = func(ctx context.Context, name, runID string) {
			close(started)
			<-ctx.Done() // only the end of the grace period cancels it
		}
		if _, err := s.trigger("people", "manual"); err != nil {
			t.Fatal(err)
		}
		<-started
		s.Shutdown(time.Millisecond)
		rec := serveWait(t, done)
		if rec.Status != pipeline.StatusCancelled || len(rec.Errors) == 0 {
			t.Errorf("cancelled run = %+v", rec)
		}
		st, _ := state.Open(context.Background(), stateDir, "people")
		if le, err := st.ReadLease(context.Background()); err != nil || le.Holder != "" {
			t.Errorf("lease after shutdown = %+v, %v", le, err)
		}
		if runs, err := st.Runs(context.Background(), 0); err != nil || len(runs) != 1 {
			t.Errorf("runs = %+v, %v; want the cancelled run recorded", runs, err)
		}
	})
}

// TestServeHandlerRefusesForeignRequests: cross-origin POSTs (a web page
// triggering a load) and non-loopback Host headers (DNS rebinding).
func TestServeHandlerRefusesForeignRequests(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, _, _ := serveTestServer(t, dir, stateDir)
	h := s.Handler()

	req := httptest.NewRequest("POST", "http://127.0.0.1:8585/run/people", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Errorf("cross-site POST = %d, want 403", w.Code)
	}

	req = httptest.NewRequest("GET", "http://evil.example:8585/", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusMisdirectedRequest {
		t.Errorf("GET with Host evil.example = %d, want 421", w.Code)
	}
}

// TestServeResumesCrashedRun: a run left in flight by a process that died
// is resumed under its own run id before any new run starts.
func TestServeResumesCrashedRun(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, done, _ := serveTestServer(t, dir, stateDir)
	p := s.pipelines["people"]
	crashed := Inflight{RunID: "20260101T000000Z-deadbeef", Holder: "other-host:42", StartedAt: time.Now().Add(-time.Hour)}
	if err := p.store.Put(context.Background(), InflightKey, crashed); err != nil {
		t.Fatal(err)
	}
	id, err := s.trigger("people", "schedule")
	if err != nil || id != crashed.RunID {
		t.Fatalf("trigger = %q, %v; want the crashed run %s resumed", id, err, crashed.RunID)
	}
	rec := serveWait(t, done)
	if rec.RunID != crashed.RunID || rec.Trigger != "schedule+resume" || rec.Status != pipeline.StatusSucceeded {
		t.Fatalf("resumed run = %+v", rec)
	}
	var in Inflight
	if found, err := p.store.Get(context.Background(), InflightKey, &in); err != nil || !found || in.RunID != "" {
		t.Fatalf("in-flight doc after the run = %+v (found %v, %v); want cleared", in, found, err)
	}
	id, err = s.trigger("people", "manual")
	if err != nil || id == crashed.RunID {
		t.Fatalf("next trigger = %q, %v; want a new run id", id, err)
	}
	if rec := serveWait(t, done); rec.Trigger != "manual" {
		t.Errorf("next run = %+v", rec)
	}
}

// TestServeRefusesWhileReplayInFlight: a replay in flight (Inflight.Replay)
// is finished by its own resume, which reads the dead-letter file: a
// served run would read the pipeline's source and send again what the
// replay may have loaded. The trigger is refused, naming the resume, and
// the document is left as it was.
func TestServeRefusesWhileReplayInFlight(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, _, _ := serveTestServer(t, dir, stateDir)
	p := s.pipelines["people"]
	replay := Inflight{RunID: "20260101T000000Z-0eplay00", Holder: "other-host:42", Replay: "bulkflow replay dl/x/load.csv --pipeline people.yaml --resume 20260101T000000Z-0eplay00"}
	if err := p.store.Put(context.Background(), InflightKey, replay); err != nil {
		t.Fatal(err)
	}
	id, err := s.trigger("people", "schedule")
	if err == nil || !strings.Contains(err.Error(), replay.Replay) {
		t.Fatalf("trigger = %q, %v; want refused, naming %q", id, err, replay.Replay)
	}
	var in Inflight
	if found, err := p.store.Get(context.Background(), InflightKey, &in); err != nil || !found || in != replay {
		t.Fatalf("in-flight doc after the refusal = %+v (found %v, %v); want %+v", in, found, err, replay)
	}
	// The lease was given back: once the replay finished, a run starts.
	if err := p.store.Put(context.Background(), InflightKey, Inflight{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.trigger("people", "manual"); err != nil {
		t.Fatalf("trigger after the replay finished: %v", err)
	}
}

// TestServeFencedAfterTakeover: a run whose process is paused past its
// lease, while another process takes the lease, records nothing when it
// wakes up: its report, run record and in-flight update are refused by the
// lease's fencing, and the other holder's lease stays.
func TestServeFencedAfterTakeover(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, done, stderr := serveTestServer(t, dir, stateDir)
	ctx := context.Background()
	other, err := state.Open(ctx, stateDir, "people")
	if err != nil {
		t.Fatal(err)
	}
	other.Now = func() time.Time { return time.Now().Add(time.Hour) } // sees this process's lease expired
	s.opts.RunStarted = func(ctx context.Context, name, runID string) {
		// This process is "paused" here; the other one takes the lease.
		if ok, err := other.AcquireLease(ctx, "otherhost:42", time.Hour); !ok || err != nil {
			t.Errorf("other process acquire = %v, %v", ok, err)
		}
	}
	runID, err := s.trigger("people", "manual")
	if err != nil {
		t.Fatal(err)
	}
	rec := serveWait(t, done)
	if !strings.Contains(strings.Join(rec.Errors, "\n"), "lease taken over by a newer holder") {
		t.Errorf("run errors = %q; want the fencing refusal", rec.Errors)
	}
	for _, want := range []string{"record run", "clear the in-flight run", "generation 2", "otherhost:42"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
	if runs, err := other.Runs(ctx, 0); err != nil || len(runs) != 0 {
		t.Errorf("runs = %+v, %v; want none recorded by the fenced holder", runs, err)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "people", "reports", runID+".json")); !os.IsNotExist(err) {
		t.Errorf("report of the fenced run: %v; want none", err)
	}
	var in Inflight
	if found, err := other.Get(ctx, InflightKey, &in); err != nil || !found || in.RunID != runID {
		t.Errorf("in-flight doc = %+v (found %v, %v); want the run still in flight for the new holder to resume", in, found, err)
	}
	if le, err := other.ReadLease(ctx); err != nil || le.Holder != "otherhost:42" || le.Generation != 2 {
		t.Errorf("lease = %+v, %v; want otherhost:42's generation 2", le, err)
	}
}

// TestServeTakesOverDeadLocalHolder: a lease held by a process of this
// host that no longer exists is taken at once, and the run it left in
// flight resumed; a holder on another host, or a live local process,
// keeps its lease until it expires.
func TestServeTakesOverDeadLocalHolder(t *testing.T) {
	deadChild := exec.Command("true")
	if err := deadChild.Run(); err != nil { // run and reaped: the pid is gone
		t.Fatal(err)
	}
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	host := localHostname()
	dead := fmt.Sprintf("%s:%d", host, deadChild.Process.Pid)
	tests := []struct {
		name, holder string
		node         string // "" = this process's (state.LocalNode)
		takeOver     bool
	}{
		{"dead local process", dead, "", true},
		{"live local process", fmt.Sprintf("%s:%d", host, live.Process.Pid), "", false},
		{"dead pid on another host", fmt.Sprintf("not-%s:%d", host, deadChild.Process.Pid), "", false},
		{"holder without a pid", host + ":x", "", false},
		{"same host name in another pid namespace", dead, "boot/pid:[1]", false},
		{"holder that recorded no node", dead, "-", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, stateDir := servetest.Fixture(t, "")
			s, done, stderr := serveTestServer(t, dir, stateDir)
			ctx := context.Background()
			crashed, err := state.Open(ctx, stateDir, "people")
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := crashed.AcquireLease(ctx, tc.holder, time.Hour); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if tc.node != "" { // as if written by another namespace (or an older bulkflow)
				le, _ := crashed.ReadLease(ctx)
				le.Node = strings.TrimPrefix(tc.node, "-")
				b, _ := json.Marshal(le)
				if err := os.WriteFile(filepath.Join(stateDir, "people", "lease.json"), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			const crashedRun = "20260101T000000Z-0badf00d"
			if err := crashed.Put(ctx, InflightKey, Inflight{RunID: crashedRun, Holder: tc.holder}); err != nil {
				t.Fatal(err)
			}
			s.resumeInFlight() // what start does
			if !tc.takeOver {
				if id := s.pipelines["people"].current(); id != "" {
					t.Fatalf("a run started (%s) although %s holds the lease", id, tc.holder)
				}
				if !strings.Contains(stderr.String(), "run in flight not resumed at start") || !strings.Contains(stderr.String(), tc.holder) {
					t.Errorf("log:\n%s", stderr.String())
				}
				if _, err := s.trigger("people", "manual"); !errors.Is(err, errAlreadyRunning) {
					t.Errorf("trigger = %v; want already running in %s", err, tc.holder)
				}
				return
			}
			rec := serveWait(t, done)
			if rec.RunID != crashedRun || rec.Trigger != "startup+resume" || rec.Status != pipeline.StatusSucceeded || rec.LeaseGeneration != 2 {
				t.Fatalf("resumed run = %+v\n%s", rec, stderr.String())
			}
			if !strings.Contains(stderr.String(), "took over the lease of a dead process of this host") {
				t.Errorf("log:\n%s", stderr.String())
			}
			if le, err := crashed.ReadLease(ctx); err != nil || le.Holder != "" || le.Generation != 2 {
				t.Errorf("lease after the resumed run = %+v, %v; want released at generation 2", le, err)
			}
		})
	}
}

// The NAME.test.yaml files of `bulkflow test` live beside the pipelines
// they test; serve must not take them for pipelines.
func TestPipelineFilesSkipTestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.yaml", "a.test.yaml", "b.yml", "b.test.yml", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := pipelineFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pipelineFiles = %v, want %v", got, want)
	}
}
