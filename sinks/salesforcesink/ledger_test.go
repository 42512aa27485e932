package salesforcesink

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestLedgerRoundTrip: every state survives a reopen, the last record of a
// chunk wins, and a torn last line is ignored and cut before new records.
func TestLedgerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := openLedger(ctx, "", dir, "p/x", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if l.resuming() {
		t.Fatal("new ledger resuming")
	}
	states := []string{stCreating, stCreated, stUploading, stUploaded, stClosed, stFinished, stAborted}
	for i := range states {
		k := fmt.Sprintf("chunk%d.0", i)
		// Walk every chunk through the states up to its own.
		for _, s := range states[:i+1] {
			rec := ledgerRecord{Chunk: k, State: s, Rows: 3, Bytes: 42, Job: "750x" + fmt.Sprint(i)}
			if s == stFinished {
				rec.JobState, rec.Processed, rec.Succeeded, rec.Loaded = "JobComplete", 3, 3, 3
			}
			if err := l.append(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "p_x", "run-1", ledgerFile)
	// A torn last line, as a SIGKILL mid-write leaves it.
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"chunk":"chunk0.0","state":"fini`)
	f.Close()

	l2, err := openLedger(ctx, "", dir, "p/x", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.close()
	if !l2.resuming() {
		t.Fatal("not resuming")
	}
	for i, st := range states {
		rec, ok := l2.last(fmt.Sprintf("chunk%d.0", i))
		if !ok || rec.State != st || rec.Rows != 3 || rec.Job != "750x"+fmt.Sprint(i) {
			t.Errorf("chunk%d: %+v %v, want state %s", i, rec, ok, st)
		}
		if st == stFinished && (rec.JobState != "JobComplete" || rec.Loaded != 3) {
			t.Errorf("finished record %+v", rec)
		}
	}
	// New records start on a line of their own.
	if err := l2.append(ctx, ledgerRecord{Chunk: "chunk0.0", State: stCreated, Job: "750new"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var rec ledgerRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d %q: %v", n+1, line, err)
		}
	}
	m, _, good := parseLedger(strings.NewReader(string(data) + `{"chunk":"chunk0.0","state":"clo`))
	if good != len(data) || m["chunk0.0"].Job != "750new" {
		t.Errorf("good %d of %d, %+v", good, len(data), m["chunk0.0"])
	}
	// Occurrence suffixes keep identical chunks apart.
	if a, b := l2.key("d"), l2.key("d"); a != "d.0" || b != "d.1" {
		t.Errorf("keys %s %s", a, b)
	}
}

// TestLedgerBlob: on a blob store every record is its own object.
func TestLedgerBlob(t *testing.T) {
	ctx := context.Background()
	where := "mem://ledger-test-" + fmt.Sprint(time.Now().UnixNano()) + "/l/"
	l, err := openLedger(ctx, "", where, "p", "r")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{stCreating, stCreated, stUploading} {
		if err := l.append(ctx, ledgerRecord{Chunk: "c.0", State: st, Job: "750a"}); err != nil {
			t.Fatal(err)
		}
	}
	// mem:// buckets live per URL within the process.
	l2, err := openLedger(ctx, "", where, "p", "r")
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := l2.last("c.0"); !ok || rec.State != stUploading {
		t.Fatalf("reopened blob ledger: last record of c.0 = %+v, %v; want state %s", rec, ok, stUploading)
	}
	if !l2.resuming() || l2.chunks() != 1 {
		t.Errorf("reopened blob ledger: resuming %v, %d chunks", l2.resuming(), l2.chunks())
	}
	logLoc := blobio.Join(mustParse(t, where), "p", "r", "log")
	logLoc.Key += "/"
	objs, err := blobio.List(ctx, logLoc)
	if err != nil || len(objs) != 3 {
		t.Errorf("log objects: %d, %v; want one per record (3)", len(objs), err)
	}
}

func mustParse(t *testing.T, u string) blobio.Location {
	t.Helper()
	loc, err := blobio.Parse("", u)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// resumeScenario prepares, on a fresh emulator, the job an earlier
// process left behind for the first chunk of the run, and returns the
// ledger state and job id to record.
type resumeScenario struct {
	name string
	// setup creates the job from the chunk's CSV and returns its id and
	// the ledger state to record ("" id for no job).
	setup func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (state, id string)
	// uploads is how many jobs may carry the first chunk's rows.
	wantDead int
}

func createJob(t *testing.T, c *salesforce.Client) string {
	info, err := c.CreateJob(context.Background(), salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func uploadJob(t *testing.T, c *salesforce.Client, id string, csv []byte) {
	if err := c.UploadJobData(context.Background(), id, salesforce.BytesBody(csv)); err != nil {
		t.Fatal(err)
	}
}

func closeJob(t *testing.T, c *salesforce.Client, id string) {
	if _, err := c.CloseJob(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

// TestResumeEveryState runs a 600-row load once to learn its chunks, then
// for every ledger state replays "a crash at that point" on a fresh
// emulator and resumes: every row must be stored exactly once, and a chunk
// whose job may have been processed is never uploaded again.
func TestResumeEveryState(t *testing.T) {
	rows := genAccounts(600, 0, "R")
	first := salesforcetest.NewServer(nil)
	defer first.Close()
	dir0 := t.TempDir()
	r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 300\nconcurrency: 1\nledger: "+dir0+"\n"+emulatorYAML(first))
	if r.err != nil || r.rep.Counts.Loaded != 600 {
		t.Fatalf("first run: %v %+v", r.err, r.rep.Counts)
	}
	l, err := openLedger(context.Background(), "", dir0, "", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	l.close()
	var key, job, digest string
	for k, rec := range l.prior {
		if k == runKey {
			continue
		}
		if rec.State != stFinished || rec.Loaded != 300 {
			t.Fatalf("record %+v", rec)
		}
		if csv := first.UploadedCSV(rec.Job); strings.Contains(string(csv), "R0000000,") {
			key, job, digest = k, rec.Job, rec.Digest
		}
	}
	csv := first.UploadedCSV(job)
	if key == "" || len(csv) == 0 {
		t.Fatal("first chunk not found")
	}
	scenarios := []resumeScenario{
		{name: "creating", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			return stCreating, ""
		}},
		{name: "created-open", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			return stCreated, createJob(t, c)
		}},
		{name: "created-gone", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			return stCreated, "750000000000000AAA"
		}},
		{name: "uploading-landed-open", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			id := createJob(t, c)
			uploadJob(t, c, id, csv)
			return stUploading, id
		}},
		{name: "uploading-closed", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			// The PUT and the close happened; the ledger lagged.
			id := createJob(t, c)
			uploadJob(t, c, id, csv)
			closeJob(t, c, id)
			return stUploading, id
		}},
		{name: "uploading-unknown", wantDead: 300, setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			return stUploading, "750000000000000AAA" // cannot be read: never re-sent
		}},
		{name: "uploaded-open", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			id := createJob(t, c)
			uploadJob(t, c, id, csv)
			return stUploaded, id
		}},
		{name: "closed-running", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 200 * time.Millisecond})
			id := createJob(t, c)
			uploadJob(t, c, id, csv)
			closeJob(t, c, id)
			return stClosed, id
		}},
		{name: "closed-aborted", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			// A cancelled run aborted the job before it was processed.
			srv.SetFaults(salesforcetest.Faults{ProcessingDelay: time.Hour})
			id := createJob(t, c)
			uploadJob(t, c, id, csv)
			closeJob(t, c, id)
			if _, err := c.AbortJob(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			srv.SetFaults(salesforcetest.Faults{})
			return stClosed, id
		}},
		{name: "finished", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			id := createJob(t, c)
			uploadJob(t, c, id, csv)
			closeJob(t, c, id)
			if err := srv.AwaitJobState(context.Background(), id, salesforcetest.StateJobComplete); err != nil {
				t.Fatal(err)
			}
			return stFinished, id
		}},
		{name: "aborted", setup: func(t *testing.T, c *salesforce.Client, srv *salesforcetest.Server, csv []byte) (string, string) {
			id := createJob(t, c)
			if _, err := c.AbortJob(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			return stAborted, id
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			auth, _ := salesforce.StaticToken(srv.URL, srv.AccessToken())
			c, err := salesforce.NewClient(context.Background(), auth, &salesforce.Options{HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			state, id := sc.setup(t, c, srv, csv)
			rec := ledgerRecord{Chunk: key, Digest: digest, State: state, Job: id, Rows: 300}
			if state == stFinished {
				rec.JobState, rec.Processed, rec.Succeeded, rec.Loaded = "JobComplete", 300, 300, 300
			}
			dir := t.TempDir()
			l, err := openLedger(context.Background(), "", dir, "", "run-1")
			if err != nil {
				t.Fatal(err)
			}
			l.append(context.Background(), rec)
			l.close()
			before := srv.Requests()
			r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 300\nconcurrency: 1\nledger: "+dir+"\n"+emulatorYAML(srv))
			if r.err != nil {
				t.Fatalf("resume: %v", r.err)
			}
			dead := dlCodes(t, r.dl, "External_Id__c")
			if len(dead) != sc.wantDead {
				t.Errorf("%d dead-lettered, want %d: %v", len(dead), sc.wantDead, dead)
			}
			for k, code := range dead {
				if code != CodeJobIncomplete {
					t.Errorf("%s: %s", k, code)
				}
			}
			checkStored(t, srv, "Account", rows, dead, nil)
			// No row was processed twice.
			var processed int64
			for _, j := range srv.Jobs() {
				processed += j.NumberRecordsProcessed
			}
			if want := int64(600 - sc.wantDead); processed != want {
				t.Errorf("processed %d rows in all, want %d", processed, want)
			}
			st := r.sink.Stats()
			b, _ := json.Marshal(st)
			if !strings.Contains(string(b), `"resumed_chunks":1`) && state != stCreating && state != stAborted {
				t.Errorf("stats %s", b)
			}
			if state == stFinished {
				// Nothing to ask Salesforce about the finished chunk.
				after := srv.Requests()
				if n := after["PUT /services/data/vXX.X/jobs/ingest/{id}/batches"] - before["PUT /services/data/vXX.X/jobs/ingest/{id}/batches"]; n != 1 {
					t.Errorf("%d uploads, want 1 (the second chunk)", n)
				}
			}
			if n := r.rep.Counts.Loaded; n != int64(600-sc.wantDead) {
				t.Errorf("loaded %d", n)
			}
		})
	}
}

// TestAPIBudget: below min_api_remaining no job is created; the rows come
// back as api_budget (retryable) and the stats count them.
func TestAPIBudget(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{APIRequestLimit: 40})
	defer srv.Close()
	rows := genAccounts(1000, 0, "B")
	r := runPipeline(t, context.Background(), accountSchema, rows,
		"object: Account\nmax_job_rows: 100\nconcurrency: 1\nmin_api_remaining: 20\n"+emulatorYAML(srv))
	if r.rep.Status != pipeline.StatusPartial {
		t.Fatalf("status %s err %v", r.rep.Status, r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	for k, code := range dead {
		if code != CodeAPIBudget {
			t.Fatalf("%s: %s", k, code)
		}
	}
	if len(dead) == 0 || len(dead) == 1000 {
		t.Fatalf("%d rows api_budget", len(dead))
	}
	checkStored(t, srv, "Account", rows, dead, nil)
	if used, max := srv.APIUsage(); max-used < 20-8 {
		t.Errorf("used %d of %d: the reserve was not kept", used, max)
	}
	if m := dlMessages(r.dl)[0]; !strings.Contains(m, "--resume run-1") || !strings.Contains(m, "retryable=true") {
		t.Errorf("message %q", m)
	}
	b, _ := json.Marshal(r.sink.Stats())
	if !strings.Contains(string(b), fmt.Sprintf(`"api_budget":%d`, len(dead))) || !strings.Contains(string(b), `"api_calls":`) {
		t.Errorf("stats %s", b)
	}
	var calls struct {
		APICalls int64 `json:"api_calls"`
	}
	json.Unmarshal(b, &calls)
	if used, _ := srv.APIUsage(); calls.APICalls != used {
		t.Errorf("api_calls %d, emulator counted %d", calls.APICalls, used)
	}
}

// TestCancelThenResume: a cancelled run aborts its jobs; resuming the same
// run id loads every row exactly once (the aborted jobs' unprocessed rows
// are sent again, nothing else is).
func TestCancelThenResume(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{ProcessingRate: 4000, BatchSize: 200})
	defer srv.Close()
	rows := genAccounts(6000, 0, "C")
	dir := t.TempDir()
	yaml := "object: Account\nmax_job_rows: 1000\nconcurrency: 2\nledger: " + dir + "\n" + emulatorYAML(srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onJobs(ctx, srv, anyProcessing, cancel)
	r := runPipeline(t, ctx, accountSchema, rows, yaml)
	if r.rep.Status != pipeline.StatusCancelled {
		t.Fatalf("status %s, err %v", r.rep.Status, r.err)
	}
	first := r.rep.Counts.Loaded
	r = runPipeline(t, context.Background(), accountSchema, rows, yaml)
	if r.err != nil || r.rep.Counts.Loaded != 6000 || r.dl != nil && r.dl.Len() > 0 {
		t.Fatalf("resume: %v %+v", r.err, r.rep.Counts)
	}
	if n := checkStored(t, srv, "Account", rows, nil, nil); n != 6000 {
		t.Errorf("stored %d", n)
	}
	var processed int64
	for _, j := range srv.Jobs() {
		processed += j.NumberRecordsProcessed
	}
	if processed != 6000 {
		t.Errorf("%d rows processed in all jobs, want 6000", processed)
	}
	t.Logf("loaded %d before the cancel; resumed chunks %v", first, r.sink.Stats())
}

// TestResumeRefusesOtherOptions: resuming with options that cut the rows
// into other chunks is refused (it could load rows twice).
func TestResumeRefusesOtherOptions(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	rows := genAccounts(100, 0, "O")
	dir := t.TempDir()
	r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 50\nledger: "+dir+"\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatal(r.err)
	}
	o := NewOptions()
	o.Object, o.MaxJobRows, o.Ledger, o.InstanceURL, o.Auth.AccessToken = "Account", 40, dir, srv.URL, srv.AccessToken()
	o.API = APIBulk // as emulatorYAML
	_, err := Open(context.Background(), &pipeline.Env{RunID: "run-1"}, o, accountSchema)
	if err == nil || !strings.Contains(err.Error(), "other sink options") {
		t.Fatalf("err = %v", err)
	}
	o.MaxJobRows = 50 // the original options resume fine
	s, err := Open(context.Background(), &pipeline.Env{RunID: "run-1"}, o, accountSchema)
	if err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	if n := len(srv.Records("Account")); n != 100 {
		t.Errorf("stored %d", n)
	}
}

// TestLedgerRun: the CLI finds a run's ledger where the sink writes it.
func TestLedgerRun(t *testing.T) {
	dir := t.TempDir()
	o := NewOptions()
	o.Ledger = dir
	loc, on, err := o.LedgerRun("", "my/pipe", "run-9")
	if err != nil || !on {
		t.Fatalf("LedgerRun: %v %v", on, err)
	}
	l, err := openLedger(context.Background(), "", dir, "my/pipe", "run-9")
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if want := filepath.Join(dir, "my_pipe", "run-9"); l.dir != want || !strings.HasSuffix(loc.String(), "my_pipe/run-9") {
		t.Errorf("ledger %s, LedgerRun %s, want %s", l.dir, loc, want)
	}
	o.Ledger = LedgerOff
	if _, on, _ := o.LedgerRun("", "p", "r"); on {
		t.Error("ledger off reported on")
	}
	o.Ledger, o.InstanceURL = "", EmulatorURL
	if _, on, _ := o.LedgerRun("", "p", "r"); on {
		t.Error("emulator ledger reported on")
	}
}

// TestLedgerHasRun: a run is recorded once the sink opened its ledger and
// wrote to it, locally and on a blob store; a run folder holding only the
// run's lock, another run id, and a ledger that is off hold no record.
func TestLedgerHasRun(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, where string }{
		{"local", t.TempDir()},
		{"blob", "mem://ledger-has-run/ledgers/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			o.Ledger = tc.where
			var rl pipeline.RunLedger = o
			if rl.LedgerHasRun(ctx, "", "my/pipe", "run-1") {
				t.Fatal("a run no sink opened has a record")
			}
			if run, _, _ := o.LedgerRun("", "my/pipe", "run-1"); run.Scheme == "file" {
				// The CLI's run lock lives in the run folder too.
				dir, err := localRunDir(run)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "run.lock"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				if rl.LedgerHasRun(ctx, "", "my/pipe", "run-1") {
					t.Fatal("a run folder holding only run.lock has a record")
				}
			}
			l, err := openLedger(ctx, "", tc.where, "my/pipe", "run-1")
			if err != nil {
				t.Fatal(err)
			}
			defer l.close()
			if err := l.append(ctx, ledgerRecord{Chunk: runKey, State: "opened"}); err != nil {
				t.Fatal(err)
			}
			if !rl.LedgerHasRun(ctx, "", "my/pipe", "run-1") {
				t.Errorf("run-1 has no record after the sink wrote its ledger in %s", l.where)
			}
			if rl.LedgerHasRun(ctx, "", "my/pipe", "run-2") || rl.LedgerHasRun(ctx, "", "other", "run-1") {
				t.Error("another run id or pipeline has run-1's record")
			}
			o.Ledger = LedgerOff
			if rl.LedgerHasRun(ctx, "", "my/pipe", "run-1") {
				t.Error("a ledger that is off has a record")
			}
		})
	}
}

// TestRunLedgerOptions: the folder of a pipeline's runs is one path
// element, and SetProvenance records what the attempt reads, also with the
// ledger off (resume hints name the file).
func TestRunLedgerOptions(t *testing.T) {
	o := NewOptions()
	o.Ledger = LedgerOff
	var rl pipeline.RunLedger = o
	for in, want := range map[string]string{"p": "p", "my/pipe": "my_pipe", `a\b:c`: "a_b_c", "": "default"} {
		if got := rl.LedgerFolder(in); got != want {
			t.Errorf("LedgerFolder(%q) = %q, want %q", in, got, want)
		}
	}
	if rl.LedgerLocation() != "" {
		t.Errorf("ledger off: location %q", rl.LedgerLocation())
	}
	rl.SetProvenance("load.yaml", "abc", nil)
	if p := o.Provenance; p == nil || p.PipelineFile != "load.yaml" || p.PipelineDigest != "abc" || p.Sources != nil {
		t.Errorf("provenance %+v", p)
	}
}

// TestResumeUnseenChunks: a resume whose input no longer holds the rows
// of a chunk an earlier attempt sent (a sync's manifest holds them, or the
// input shrank) neither sends nor counts them. That is fine when the
// chunk's job confirmed every row loaded. Otherwise rows of it may be
// stored or not, in no dead letter of the resume: the resume used to log
// that and report succeeded; it now fails, naming the jobs.
func TestResumeUnseenChunks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		api      string
		badEvery int // every badEvery'th row is refused (0: none)
		wantErr  bool
	}{
		{"bulk/every row of the chunk loaded", "bulk", 0, false},
		{"bulk/rows of the chunk refused", "bulk", 100, true},
		{"rest/every row of the request loaded", "rest", 0, false},
		{"rest/rows of the request refused", "rest", 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			dir := t.TempDir()
			rows := genAccounts(400, tc.badEvery, "U")
			sinkYAML := "object: Account\nmax_job_rows: 200\nconcurrency: 1\nledger: " + dir + "\n" +
				strings.Replace(emulatorYAML(srv), "api: bulk", "api: "+tc.api, 1)
			sent := func() int {
				if tc.api == "rest" {
					return srv.Requests()["POST /services/data/vXX.X/composite/sobjects"]
				}
				return len(srv.Jobs())
			}
			if r := runPipeline(t, context.Background(), accountSchema, rows, sinkYAML); r.err != nil || sent() != 2 {
				t.Fatalf("first attempt: %v, %d jobs or requests", r.err, sent())
			}
			r := runPipeline(t, context.Background(), accountSchema, rows[:200], sinkYAML)
			if sent() != 2 {
				t.Errorf("the resume sent %d jobs or requests, want none", sent()-2)
			}
			// Every row is stored once, but the refused ones (too long a
			// Name), which are stored nowhere.
			refused := map[string]string{}
			for _, row := range rows {
				if len(row[1].(string)) > 255 {
					refused[row[0].(string)] = "STRING_TOO_LONG"
				}
			}
			if n := checkStored(t, srv, "Account", rows, refused, nil); n != len(rows)-len(refused) {
				t.Errorf("%d rows stored, want %d", n, len(rows)-len(refused))
			}
			if !tc.wantErr {
				if r.err != nil || r.rep.Status == pipeline.StatusFailed {
					t.Fatalf("resume: %v (status %s), want no error", r.err, r.rep.Status)
				}
				return
			}
			second := "rest:run-1/"
			for _, j := range srv.Jobs() {
				if strings.Contains(string(srv.UploadedCSV(j.ID)), "U0000200,") {
					second = j.ID
				}
			}
			if r.err == nil || r.rep.Status != pipeline.StatusFailed || second == "" || !strings.Contains(r.err.Error(), second) ||
				!strings.Contains(r.err.Error(), "not produced again") {
				t.Fatalf("resume: %v (status %s): want it failed, naming the second chunk's job %s", r.err, r.rep.Status, second)
			}
		})
	}
}
