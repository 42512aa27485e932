package salesforcesink

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// processedRows sums the rows every job of srv processed.
func processedRows(srv *salesforcetest.Server) int64 {
	var n int64
	for _, j := range srv.Jobs() {
		n += j.NumberRecordsProcessed
	}
	return n
}

// TestResumeRefusesChangedChunks: an insert run is cancelled after some
// jobs finished; resuming it over the same rows in another order (a
// re-exported source) is refused with a ResumeMismatchError before any
// upload, and the emulator holds no row twice; resuming over the original
// rows then completes with every row stored exactly once.
func TestResumeRefusesChangedChunks(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{ProcessingRate: 3000, BatchSize: 100})
	defer srv.Close()
	rows := genAccounts(3000, 0, "M")
	dir := t.TempDir()
	yaml := "object: Account\noperation: insert\nmax_job_rows: 300\nconcurrency: 2\nledger: " + dir + "\n" + emulatorYAML(srv)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onJobs(ctx, srv, func(jobs []salesforcetest.JobInfo) bool {
		return countJobs(jobs, salesforcetest.StateJobComplete) >= 3
	}, cancel)
	first := runPipeline(t, ctx, accountSchema, rows, yaml)
	if first.rep.Status != pipeline.StatusCancelled {
		t.Fatalf("first attempt: status %s, err %v", first.rep.Status, first.err)
	}
	loaded := first.rep.Counts.Loaded
	if loaded == 0 || loaded == 3000 {
		t.Fatalf("first attempt loaded %d rows; want some, not all", loaded)
	}

	// The source re-exported in another order.
	reversed := slices.Clone(rows)
	slices.Reverse(reversed)
	jobsBefore, processedBefore := len(srv.Jobs()), processedRows(srv)
	r := runPipeline(t, context.Background(), accountSchema, reversed, yaml)
	var me *ResumeMismatchError
	if !errors.As(r.err, &me) {
		t.Fatalf("resume over reordered rows: err = %v, want a ResumeMismatchError", r.err)
	}
	if r.rep.Status == pipeline.StatusSucceeded || r.rep.Status == pipeline.StatusPartial {
		t.Errorf("refused resume reported %s", r.rep.Status)
	}
	msg := me.Error()
	for _, want := range []string{"batch", me.Job, "re-exported", "non-deterministic", "ordered: false", "mapping edited"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if me.NowDigest == me.WasDigest || me.NowRows != 300 {
		t.Errorf("mismatch %+v", me)
	}
	if n := len(srv.Jobs()); n != jobsBefore {
		t.Errorf("the refused resume created %d jobs", n-jobsBefore)
	}
	if p := processedRows(srv); p != processedBefore {
		t.Errorf("the refused resume processed %d rows", p-processedBefore)
	}
	if r.rep.Counts.Loaded != 0 {
		t.Errorf("the refused resume counted %d rows loaded", r.rep.Counts.Loaded)
	}

	// The original input resumes and completes: each row exactly once.
	r = runPipeline(t, context.Background(), accountSchema, rows, yaml)
	if r.err != nil || r.rep.Status != pipeline.StatusSucceeded || r.rep.Counts.Loaded != 3000 {
		t.Fatalf("unchanged resume: %v %s %+v", r.err, r.rep.Status, r.rep.Counts)
	}
	if n := checkStored(t, srv, "Account", rows, nil, nil); n != 3000 {
		t.Errorf("stored %d rows, want 3000", n)
	}
	if p := processedRows(srv); p != 3000 {
		t.Errorf("Salesforce processed %d rows in all, want 3000 (each once)", p)
	}
	t.Logf("first attempt loaded %d; refused: %v", loaded, me)
}

// TestResumeMismatchMessage: the refusal names what changed when the
// first attempt's provenance is known.
func TestResumeMismatchMessage(t *testing.T) {
	was := &Provenance{PipelineFile: "p.yaml", PipelineDigest: "aaaa", Sources: map[string]string{"s3://b/a.csv": "etag=1", "s3://b/b.csv": "etag=2"}}
	for _, tc := range []struct {
		name string
		now  *Provenance
		want []string
	}{
		{"mapping edited", &Provenance{PipelineFile: "p.yaml", PipelineDigest: "bbbb", Sources: was.Sources},
			[]string{"pipeline file p.yaml was edited"}},
		{"re-exported", &Provenance{PipelineDigest: "aaaa", Sources: map[string]string{"s3://b/a.csv": "etag=9", "s3://b/b.csv": "etag=2"}},
			[]string{"source object s3://b/a.csv changed (re-exported?): etag=1, now etag=9"}},
		{"object gone and new", &Provenance{PipelineDigest: "aaaa", Sources: map[string]string{"s3://b/a.csv": "etag=1", "s3://b/c.csv": "etag=3"}},
			[]string{"s3://b/b.csv is gone", "s3://b/c.csv is new"}},
		{"nothing changed", &Provenance{PipelineDigest: "aaaa", Sources: was.Sources},
			[]string{"are unchanged", "non-deterministic function", "ordered: false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &ResumeMismatchError{RunID: "r1", Job: "750x", State: stClosed, Known: true, Changed: was.diff(tc.now)}
			msg := e.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q: %s", w, msg)
				}
			}
		})
	}
}

func TestChunkKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		b    int64
		a, c int
		ok   bool
	}{
		{chunkKey(12, 1, 3), 12, 1, 3, true},
		{"b0.a0.c0", 0, 0, 0, true},
		{"b0.a0.c0.r1", 0, 0, 0, false},
		{"_run", 0, 0, 0, false},
		{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.0", 0, 0, 0, false},
	} {
		b, a, c, ok := parseChunkKey(tc.key)
		if ok != tc.ok || (ok && (b != tc.b || a != tc.a || c != tc.c)) {
			t.Errorf("parseChunkKey(%q) = %d %d %d %v", tc.key, b, a, c, ok)
		}
	}
}

// TestResumeNamesEditedPipeline: with provenance recorded (SetProvenance),
// a resume after the pipeline file changed and the rows with it is refused
// with a message naming the edited file.
func TestResumeNamesEditedPipeline(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	dir := t.TempDir()
	open := func(digest string) *Sink {
		g := &pipeline.Graph{File: "p.yaml", FileHash: digest, Stages: []pipeline.StageSpec{{Options: NewOptions()}}}
		SetProvenance(g, map[string]string{"file:///in.csv": "size=10"})
		o := g.Stages[0].Options.(*Options)
		o.Object, o.InstanceURL, o.Auth.AccessToken, o.Ledger = "Account", srv.URL, srv.AccessToken(), dir
		o.PollInitial, o.PollMax = 5*time.Millisecond, 20*time.Millisecond
		o.API = APIBulk
		s, err := Open(context.Background(), &pipeline.Env{RunID: "r1", Pipeline: "p"}, o, accountSchema)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	write := func(s *Sink, rows []pipeline.Row) error {
		b := pipeline.NewBatch(accountSchema, len(rows))
		for i, r := range rows {
			b.Append(r, pipeline.Origin{Object: "file:///in.csv", Row: int64(i + 1)})
		}
		err := s.Write(context.Background(), b)
		if cerr := s.Close(context.Background()); err == nil {
			err = cerr
		}
		return err
	}
	if err := write(open("aaaa"), genAccounts(50, 0, "E")); err != nil {
		t.Fatal(err)
	}
	err := write(open("bbbb"), genAccounts(50, 0, "X")) // the mapping now makes other rows
	var me *ResumeMismatchError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "the pipeline file p.yaml was edited") {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Jobs()); n != 1 {
		t.Errorf("%d jobs, want 1", n)
	}
}

// TestResumeSameInputWithRefusedRows: resuming a finished run over the same
// input, whose batch was cut into several chunks and has a row refused
// locally (row_too_large), settles every chunk from the ledger: no refusal,
// no job, every row processed once.
func TestResumeSameInputWithRefusedRows(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	rows := genAccounts(20, 0, "T")
	rows[19][4] = strings.Repeat("x", 5000)
	yaml := "object: Account\nmax_job_bytes: 1200\nledger: " + t.TempDir() + "\n" + emulatorYAML(srv)
	for attempt := 1; attempt <= 2; attempt++ {
		r := runPipeline(t, context.Background(), accountSchema, rows, yaml)
		if r.err != nil || r.rep.Counts.Loaded != 19 {
			t.Fatalf("attempt %d: %v %+v", attempt, r.err, r.rep.Counts)
		}
		if dead := dlCodes(t, r.dl, "External_Id__c"); dead["T0000019"] != CodeRowTooLarge {
			t.Errorf("attempt %d: dead %v", attempt, dead)
		}
	}
	if p := processedRows(srv); p != 19 {
		t.Errorf("processed %d rows, want 19", p)
	}
	if n := len(srv.Jobs()); n < 2 {
		t.Errorf("%d jobs: max_job_bytes did not split the batch", n)
	}
}
