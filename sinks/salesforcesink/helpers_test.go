package salesforcesink

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

func TestMain(m *testing.M) {
	// Short client backoff so fault tests stay fast.
	testClientOptions = func(o *salesforce.Options) {
		o.InitialBackoff = 5 * time.Millisecond
		o.MaxBackoff = 50 * time.Millisecond
		o.MaxAttempts = 8
	}
	// Sinks opened directly without a ledger option run without one (tests
	// reuse run ids); runPipeline gives every run a fresh ledger.
	defaultLedger = LedgerOff
	RegisterInstanceOpener("emulator", func(ctx context.Context, _ string) (*Instance, error) {
		srv := salesforcetest.NewServer(nil)
		return &Instance{URL: srv.URL, AccessToken: srv.AccessToken(), HTTPClient: srv.Client(), Close: srv.Close}, nil
	})
	code := m.Run()
	os.Exit(code)
}

// accountSchema is what the generator source produces.
var accountSchema = pipeline.MustSchema(
	pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString},
	pipeline.Field{Name: "Name", Type: pipeline.TypeString},
	pipeline.Field{Name: "AnnualRevenue", Type: pipeline.TypeFloat},
	pipeline.Field{Name: "NumberOfEmployees", Type: pipeline.TypeInt},
	pipeline.Field{Name: "Description", Type: pipeline.TypeString},
	pipeline.Field{Name: "SLAExpirationDate__c", Type: pipeline.TypeDate},
	pipeline.Field{Name: "Last_Sync__c", Type: pipeline.TypeTimestamp},
	pipeline.Field{Name: "Active__c", Type: pipeline.TypeBool},
)

// genAccounts returns n Account rows; every badEvery'th row (if > 0) has a
// Name over the 255-character limit (STRING_TOO_LONG).
func genAccounts(n, badEvery int, prefix string) []pipeline.Row {
	rows := make([]pipeline.Row, n)
	base := time.Date(2025, 3, 4, 10, 15, 2, 0, time.UTC)
	for i := range rows {
		name := fmt.Sprintf("Account %d", i)
		if badEvery > 0 && i%badEvery == badEvery-1 {
			name = strings.Repeat("x", 300)
		}
		var desc any = fmt.Sprintf("line one, \"quoted\"\nline two %d", i)
		if i%7 == 0 {
			desc = nil
		}
		rows[i] = pipeline.Row{fmt.Sprintf("%s%07d", prefix, i), name, float64(i) * 1.5, int64(i % 1000), desc,
			time.Date(2026, 1, 1+i%28, 0, 0, 0, 0, time.UTC), base.Add(time.Duration(i) * time.Second), i%2 == 0}
	}
	return rows
}

// sliceSource serves rows in batches.
type sliceSource struct {
	schema *pipeline.Schema
	rows   []pipeline.Row
	batch  int
	next   int
	delay  time.Duration
}

func (s *sliceSource) Schema(ctx context.Context) (*pipeline.Schema, error) { return s.schema, nil }
func (s *sliceSource) Close() error                                         { return nil }
func (s *sliceSource) Read(ctx context.Context) (*pipeline.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.next >= len(s.rows) {
		return nil, io.EOF
	}
	if s.delay > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.delay):
		}
	}
	b := pipeline.NewBatch(s.schema, s.batch)
	for k := 0; k < s.batch && s.next < len(s.rows); k++ {
		b.Append(s.rows[s.next], pipeline.Origin{Object: "mem://gen", Row: int64(s.next + 1)})
		s.next++
	}
	return b, nil
}

// dlPrefixes numbers runPipeline's dead-letter prefixes.
var dlPrefixes atomic.Int64

// run is the outcome of runPipeline.
type run struct {
	rep  *pipeline.Report
	err  error
	dl   *pipeline.Batch // dead letters of the sink stage
	sink *Sink
}

// runPipeline runs source rows → salesforce sink (options in sinkYAML)
// through the engine and checks the accounting.
func runPipeline(t testing.TB, ctx context.Context, schema *pipeline.Schema, rows []pipeline.Row, sinkYAML string) *run {
	t.Helper()
	return runPipelineWith(t, ctx, schema, rows, sinkYAML, nil)
}

// runPipelineWith is runPipeline with the sink opened by open instead of
// Open (nil: Open).
func runPipelineWith(t testing.TB, ctx context.Context, schema *pipeline.Schema, rows []pipeline.Row, sinkYAML string,
	open func(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) (pipeline.Sink, error)) *run {
	t.Helper()
	return runPipelineDL(t, ctx, schema, rows, sinkYAML, open, nil)
}

// runPipelineDL is runPipelineWith with the dead letters opened through
// wrapDL(the collector's opener) (nil: the collector's opener).
func runPipelineDL(t testing.TB, ctx context.Context, schema *pipeline.Schema, rows []pipeline.Row, sinkYAML string,
	open func(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) (pipeline.Sink, error),
	wrapDL func(pipeline.DeadLetterOpener) pipeline.DeadLetterOpener) *run {
	t.Helper()
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	out := &run{}
	var mu sync.Mutex
	reg.RegisterSource("gen", pipeline.Spec{Summary: "test", Example: ""}, func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) {
		return &sliceSource{schema: schema, rows: rows, batch: 1000}, nil
	})
	reg.RegisterSink("salesforce", pipeline.Spec{Summary: "sf", NewOptions: func() any { return NewOptions() }},
		func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
			if open != nil {
				return open(ctx, env, opts.(*Options), in)
			}
			s, err := Open(ctx, env, opts.(*Options), in)
			mu.Lock()
			out.sink = s
			mu.Unlock()
			return s, err
		})
	if !strings.Contains(sinkYAML, "ledger:") {
		// A fresh ledger per run: every runPipeline uses run id run-1.
		sinkYAML += "\nledger: " + t.TempDir()
	}
	// A dead-letter prefix of its own: a second run under run id run-1 in
	// one prefix would be an attempt of the first.
	dlDir := strconv.FormatInt(dlPrefixes.Add(1), 10) + "/"
	y := "name: t\ndead_letter: mem://dl/" + dlDir + "\nstages:\n  - {name: read, source: {type: gen}}\n  - name: write\n    inputs: [read]\n    sink:\n      type: salesforce\n"
	for _, l := range strings.Split(strings.TrimSpace(sinkYAML), "\n") {
		y += "      " + l + "\n"
	}
	g, err := config.Load("test.yaml", []byte(y), &reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("Load: %v\n%s", err, y)
	}
	plan, err := pipeline.Prepare(ctx, &reg, g, &pipeline.Env{RunID: "run-1"})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	dl := c.DeadLetterOpener()
	if wrapDL != nil {
		dl = wrapDL(dl)
	}
	out.rep, out.err = plan.Run(ctx, &pipeline.RunOptions{DeadLetters: dl})
	if !out.rep.Counts.Balanced() {
		t.Errorf("counts do not balance: %+v", out.rep.Counts)
	}
	if got := out.rep.Counts.Read; got != int64(len(rows)) && out.err == nil && out.rep.Status != pipeline.StatusCancelled {
		t.Errorf("read %d rows, want %d", got, len(rows))
	}
	out.dl = c.DeadLetters[dlDir+"run-1/write.csv"]
	return out
}

// emulatorYAML is the sink connection to srv with fast polling.
func emulatorYAML(srv *salesforcetest.Server) string {
	return fmt.Sprintf("instance_url: %s\nauth: {access_token: %q}\npoll_initial: 5ms\npoll_max: 50ms\napi: bulk\n", srv.URL, srv.AccessToken())
}

// ccYAML authenticates with client credentials (renewable tokens).
func ccYAML(srv *salesforcetest.Server) string {
	return fmt.Sprintf("auth: {client_id: %q, client_secret: %q, login_url: %q}\npoll_initial: 5ms\npoll_max: 50ms\napi: bulk\n",
		srv.ClientID(), srv.ClientSecret(), srv.LoginURL())
}

// dlCodes returns dead-lettered rows' key column value → error code.
func dlCodes(t testing.TB, dl *pipeline.Batch, key string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if dl == nil {
		return out
	}
	s := dl.Schema()
	for i := range dl.Len() {
		r := dl.Row(i)
		k := pipeline.Text(r[s.Index(key)])
		if _, dup := out[k]; dup {
			t.Errorf("row %s dead-lettered twice", k)
		}
		out[k] = r[s.Index("_error_code")].(string)
	}
	return out
}

func dlMessages(dl *pipeline.Batch) []string {
	var out []string
	if dl == nil {
		return out
	}
	s := dl.Schema()
	for i := range dl.Len() {
		out = append(out, dl.Row(i)[s.Index("_error")].(string))
	}
	return out
}

// checkStored asserts that the emulator holds exactly the rows that were not
// dead-lettered (by External_Id__c), once each, and returns their count.
// extra lists keys that may additionally be stored (rows of jobs left
// running).
func checkStored(t testing.TB, srv *salesforcetest.Server, object string, rows []pipeline.Row, dead map[string]string, extra map[string]bool) int {
	t.Helper()
	stored := map[string]int{}
	for _, r := range srv.Records(object) {
		stored[r["External_Id__c"]]++
	}
	n := 0
	for _, r := range rows {
		k := r[0].(string)
		_, isDead := dead[k]
		switch {
		case stored[k] > 1:
			t.Errorf("%s stored %d times", k, stored[k])
		case !isDead && stored[k] == 0:
			t.Errorf("%s counted as loaded but not stored", k)
		case isDead && stored[k] == 1 && !extra[k]:
			t.Errorf("%s dead-lettered (%s) but stored", k, dead[k])
		}
		if stored[k] > 0 {
			n++
		}
		delete(stored, k)
	}
	if len(stored) > 0 {
		keys := make([]string, 0, len(stored))
		for k := range stored {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Errorf("%d stored records were never sent: %v", len(keys), keys[:min(5, len(keys))])
	}
	return n
}

// onJobs watches srv's jobs until ctx ends or cond holds for them, then
// calls then once. The goroutine it starts ends with ctx or after then.
func onJobs(ctx context.Context, srv *salesforcetest.Server, cond func(jobs []salesforcetest.JobInfo) bool, then func()) {
	go func() {
		for ctx.Err() == nil {
			if cond(srv.Jobs()) {
				then()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

// countJobs counts the jobs in state.
func countJobs(jobs []salesforcetest.JobInfo, state string) int {
	n := 0
	for _, j := range jobs {
		if j.State == state {
			n++
		}
	}
	return n
}

// anyProcessing reports whether a job is InProgress with rows processed.
func anyProcessing(jobs []salesforcetest.JobInfo) bool {
	for _, j := range jobs {
		if j.State == salesforcetest.StateInProgress && j.NumberRecordsProcessed > 0 {
			return true
		}
	}
	return false
}

// openAccounts opens a Sink of accountSchema into Account on srv (Bulk API,
// no ledger, fast polls), closed when the test ends.
func openAccounts(t testing.TB, ctx context.Context, srv *salesforcetest.Server) *Sink {
	t.Helper()
	opts := NewOptions()
	opts.Object, opts.InstanceURL, opts.Auth.AccessToken, opts.Ledger = "Account", srv.URL, srv.AccessToken(), "off"
	opts.PollInitial, opts.PollMax = 5*time.Millisecond, 50*time.Millisecond
	s, err := Open(ctx, nil, opts, accountSchema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(ctx) })
	return s
}
