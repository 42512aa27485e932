package salesforcesink

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestCancelAbortsJobs: cancelling mid-job aborts the running jobs; rows
// Salesforce saved before the abort count as loaded, the rest are
// dead-lettered "cancelled", and no goroutine is left behind.
func TestCancelAbortsJobs(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{ProcessingRate: 4000, BatchSize: 200})
	defer srv.Close()
	before := runtime.NumGoroutine()
	rows := genAccounts(6000, 0, "X")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onJobs(ctx, srv, anyProcessing, cancel)
	r := runPipeline(t, ctx, accountSchema, rows, "object: Account\nmax_job_rows: 3000\nconcurrency: 2\n"+emulatorYAML(srv))
	if r.rep.Status != pipeline.StatusCancelled {
		t.Fatalf("status %s, err %v", r.rep.Status, r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	for k, c := range dead {
		if c != CodeCancelled {
			t.Errorf("%s: code %s", k, c)
		}
	}
	aborted := 0
	for _, j := range srv.Jobs() {
		switch j.State {
		case salesforcetest.StateAborted:
			aborted++
		case salesforcetest.StateJobComplete:
		default:
			t.Errorf("job %s left %s", j.ID, j.State)
		}
	}
	if aborted == 0 {
		t.Error("no job was aborted")
	}
	stored := checkStored(t, srv, "Account", rows[:r.rep.Counts.Read], dead, nil)
	if int64(stored) != r.rep.Counts.Loaded {
		t.Errorf("stored %d, loaded %d", stored, r.rep.Counts.Loaded)
	}
	t.Logf("read %d loaded %d cancelled %d aborted jobs %d", r.rep.Counts.Read, r.rep.Counts.Loaded, len(dead), aborted)
	for _, m := range dlMessages(r.dl)[:1] {
		if !strings.Contains(m, "retryable=true") {
			t.Errorf("message %q", m)
		}
	}
	// No goroutine outlives the run once the emulator is closed.
	srv.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines, %d before", n, before)
	}
}

// TestFirstJobFatal: an unknown column fails the first job, and the run
// stops with an error instead of dead-lettering every batch.
func TestFirstJobFatal(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	schema := pipeline.MustSchema(pipeline.Field{Name: "External_Id__c"}, pipeline.Field{Name: "Name"}, pipeline.Field{Name: "Bogus__c"})
	var rows []pipeline.Row
	for i := range 50 {
		rows = append(rows, pipeline.Row{string(rune('a'+i%26)) + "x", "n", "v"})
	}
	r := runPipeline(t, context.Background(), schema, rows, "object: Account\nmax_job_rows: 10\nconcurrency: 1\n"+emulatorYAML(srv))
	if r.err == nil || !strings.Contains(r.err.Error(), "Field name not found : Bogus__c") {
		t.Fatalf("err = %v", r.err)
	}
	if r.rep.Counts.Loaded != 0 || len(srv.Records("Account")) != 0 {
		t.Errorf("loaded %d", r.rep.Counts.Loaded)
	}
	if n := len(srv.Jobs()); n != 1 {
		t.Errorf("%d jobs, want 1 (the run should stop after the first)", n)
	}
	// A bad object fails at create: also a plain error.
	r = runPipeline(t, context.Background(), schema, rows, "object: Nope\n"+emulatorYAML(srv))
	if r.err == nil || !strings.Contains(r.err.Error(), "Unable to find object") {
		t.Fatalf("err = %v", r.err)
	}
}

// TestCorrelation: results are matched by content even when shuffled,
// with duplicate rows and repeated external ids in one job, and by bytes
// split into several jobs per Write.
func TestCorrelation(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{ShuffleResults: true, Seed: 7})
	defer srv.Close()
	rows := genAccounts(400, 9, "K")
	// Exact duplicates (the second insert of the same ext id fails DUPLICATE_VALUE).
	rows = append(rows, rows[0], rows[1], rows[2])
	r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_bytes: 8000\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatal(r.err)
	}
	jobs := r.sink.Jobs()
	if len(jobs) < 5 {
		t.Errorf("%d jobs: max_job_bytes did not split", len(jobs))
	}
	for _, j := range jobs {
		if j.Bytes > 8000 || j.Succeeded+j.Failed != int64(j.Rows) {
			t.Errorf("job %+v", j)
		}
	}
	if r.dl == nil {
		t.Fatalf("no dead letters: %+v %s", r.rep.Counts, r.rep.Status)
	}
	s := r.dl.Schema()
	codes := map[string]int{}
	for i := range r.dl.Len() {
		codes[r.dl.Row(i)[s.Index("_error_code")].(string)]++
	}
	if codes["STRING_TOO_LONG"] != 44 || codes["DUPLICATE_VALUE"] != 3 || len(codes) != 2 {
		t.Errorf("codes %v", codes)
	}
	if n := len(srv.Records("Account")); int64(n) != r.rep.Counts.Loaded || n != 356 {
		t.Errorf("stored %d loaded %d", n, r.rep.Counts.Loaded)
	}
}

// TestCancelDuringCreate cancels the run while a job create is on the
// wire: the emulator has created the job, its answer is not back yet. The
// job must not be left Open: the sink takes the answer and aborts the job,
// its rows are dead-lettered cancelled, none is stored, and the run says
// cancelled. A reverse proxy on loopback in front of the emulator cancels
// once the emulator has answered and holds the answer back a moment.
func TestCancelDuringCreate(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var once sync.Once
	rp.ModifyResponse = func(res *http.Response) error {
		if res.Request.Method == http.MethodPost && strings.HasSuffix(res.Request.URL.Path, "/jobs/ingest") {
			once.Do(func() {
				cancel()
				time.Sleep(200 * time.Millisecond)
			})
		}
		return nil
	}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()

	rows := genAccounts(3000, 0, "D")
	conn := fmt.Sprintf("instance_url: %s\nauth: {access_token: %q}\npoll_initial: 5ms\npoll_max: 50ms\napi: bulk\n", proxy.URL, srv.AccessToken())
	r := runPipeline(t, ctx, accountSchema, rows, "object: Account\nmax_job_rows: 1000\nconcurrency: 1\n"+conn)
	if r.rep.Status != pipeline.StatusCancelled {
		t.Fatalf("status %s, err %v", r.rep.Status, r.err)
	}
	jobs := srv.Jobs()
	if len(jobs) == 0 {
		t.Fatal("no job was created: the cancel did not happen during a create")
	}
	for _, j := range jobs {
		if j.State != salesforcetest.StateAborted {
			t.Errorf("job %s left %s, want Aborted", j.ID, j.State)
		}
	}
	if n := len(srv.Records("Account")); n != 0 {
		t.Errorf("%d records stored", n)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	for k, c := range dead {
		if c != CodeCancelled {
			t.Errorf("%s: code %s", k, c)
		}
	}
	if int64(len(dead)) != r.rep.Counts.Read || r.rep.Counts.Loaded != 0 {
		t.Errorf("read %d, dead-lettered %d, loaded %d", r.rep.Counts.Read, len(dead), r.rep.Counts.Loaded)
	}
}

// TestResumedCancelIsUnsettled: in a resumed attempt (the ledger holds the
// first attempt's chunks), rows the sink gives up on because the run was
// cancelled are unsettled, not cancelled: the first attempt may have
// loaded them, so a replay could load them twice and only another resume
// can tell. In a first attempt they stay cancelled (retryable).
func TestResumedCancelIsUnsettled(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	ledger := t.TempDir()
	open := func() *Sink {
		opts := NewOptions()
		opts.Object = "Account"
		opts.InstanceURL, opts.Auth.AccessToken = srv.URL, srv.AccessToken()
		opts.PollInitial, opts.PollMax = 5*time.Millisecond, 50*time.Millisecond
		opts.API, opts.MaxJobRows, opts.Ledger = APIBulk, 100, ledger
		s, err := Open(context.Background(), &pipeline.Env{RunID: "resumed-cancel"}, opts, accountSchema)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	batch := func(rows []pipeline.Row) *pipeline.Batch {
		b := pipeline.NewBatch(accountSchema, len(rows))
		for _, r := range rows {
			b.Append(r, pipeline.Origin{})
		}
		return b
	}
	rows := genAccounts(300, 0, "R")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		attempt string
		want    string
	}{{"first", CodeCancelled}, {"resumed", pipeline.CodeUnsettled}} {
		s := open()
		if tc.attempt == "first" {
			// The first attempt loads batch 0, then is cancelled.
			if err := s.Write(pipeline.WithBatchSeq(context.Background(), 0), batch(rows[:100])); err != nil {
				t.Fatal(err)
			}
		}
		err := s.Write(pipeline.WithBatchSeq(cancelled, 1), batch(rows[100:]))
		codes := failedIndexes(t, err)
		if len(codes) != 200 {
			t.Fatalf("%s attempt: %d rows failed, want 200 (err %v)", tc.attempt, len(codes), err)
		}
		for i, c := range codes {
			if c != tc.want {
				t.Fatalf("%s attempt: row %d %s, want %s", tc.attempt, i, c, tc.want)
			}
		}
		s.Close(context.Background())
	}
}

// TestLateCancelInsert is a Ctrl-C that lands after every stage has
// finished, while the run closes its dead-letter files (insert against
// the emulator): the run reports what it did (partial, no error), every
// row it counts as loaded is stored once, none it dead-lettered is
// stored, and its manifest says what its report says.
func TestLateCancelInsert(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	rows := genAccounts(500, 9, "L")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var closes atomic.Int32
	wrap := func(open pipeline.DeadLetterOpener) pipeline.DeadLetterOpener {
		return pipelinetest.OnDeadLetterClose(open, func() { closes.Add(1); cancel() })
	}
	r := runPipelineDL(t, ctx, accountSchema, rows, "object: Account\noperation: insert\nmax_job_rows: 100\n"+emulatorYAML(srv), nil, wrap)
	if closes.Load() == 0 || ctx.Err() == nil {
		t.Fatal("no dead-letter file was closed: nothing was cancelled")
	}
	if r.err != nil || r.rep.Status != pipeline.StatusPartial {
		t.Fatalf("status %s, err %v; want partial, nil (every row was settled before the Ctrl-C)", r.rep.Status, r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 55 || r.rep.Counts.DeadLettered != 55 {
		t.Errorf("%d rows dead-lettered (%d counted), want the 55 the emulator rejects", len(dead), r.rep.Counts.DeadLettered)
	}
	if n := checkStored(t, srv, "Account", rows, dead, nil); int64(n) != r.rep.Counts.Loaded {
		t.Errorf("stored %d, counted loaded %d", n, r.rep.Counts.Loaded)
	}
	loc, err := blobio.Parse("", r.rep.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	m, found, err := pipeline.ReadManifest(context.Background(), loc)
	if err != nil || !found || m.Status != r.rep.Status {
		t.Errorf("manifest %s: found %v, status %v, err %v; the report says %s", r.rep.Manifest, found, m, err, r.rep.Status)
	}
}
