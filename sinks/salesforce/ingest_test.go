package salesforce_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/google/go-cmp/cmp"
)

const uploadCSV = "Legacy_Id__c,FirstName,LastName\nC-0001,Ada,Lovelace\nC-0002,Alan,Turing\n"

func TestIngestHappyPath(t *testing.T) {
	s := newServer(t)
	jobPath := base + "/jobs/ingest/" + jobID
	s.handle("POST "+base+"/jobs/ingest", jsonFile(t, "create_response.json", 200))
	s.handle("PUT "+jobPath+"/batches", status(201))
	s.handle("PATCH "+jobPath, jsonFile(t, "close_response.json", 200))
	s.handle("GET "+jobPath, sequence(jobState("UploadComplete"), jsonFile(t, "job_inprogress.json", 200), jsonFile(t, "job_complete.json", 200)))
	s.handle("GET "+jobPath+"/successfulResults", csvFile(t, "successful.csv", true))
	s.handle("GET "+jobPath+"/failedResults", csvFile(t, "failed.csv", false))
	s.handle("GET "+jobPath+"/unprocessedrecords", csvFile(t, "unprocessed.csv", false))

	sl := newSleeper()
	c := staticClient(t, s, fastOptions(sl, nil))
	ctx := context.Background()

	job, err := c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Contact", Operation: salesforce.OpUpsert,
		ExternalIDFieldName: "Legacy_Id__c", LineEnding: salesforce.LineEndingLF, ColumnDelimiter: salesforce.DelimiterComma})
	if err != nil {
		t.Fatal(err)
	}
	want := &salesforce.JobInfo{
		ID: jobID, Operation: salesforce.OpUpsert, Object: "Contact", CreatedByID: "005Hs00000AbCdEIAV",
		CreatedDate:         salesforce.Timestamp{Time: time.Date(2025, 3, 4, 10, 15, 2, 0, time.UTC)},
		SystemModstamp:      salesforce.Timestamp{Time: time.Date(2025, 3, 4, 10, 15, 2, 0, time.UTC)},
		State:               salesforce.StateOpen,
		ExternalIDFieldName: "Legacy_Id__c", ConcurrencyMode: "Parallel", ContentType: "CSV", APIVersion: "62.0",
		ContentURL: "services/data/v62.0/jobs/ingest/750Hs00000KqZ3mIAF/batches", LineEnding: "LF", ColumnDelimiter: "COMMA",
	}
	if diff := cmp.Diff(want, job, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("CreateJob (-want +got):\n%s", diff)
	}

	if err := c.UploadJobData(ctx, job.ID, salesforce.BytesBody([]byte(uploadCSV))); err != nil {
		t.Fatal(err)
	}
	closed, err := c.CloseJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if closed.State != salesforce.StateUploadComplete {
		t.Errorf("CloseJob state = %s, want UploadComplete", closed.State)
	}
	var polled []salesforce.JobState
	info, err := c.WaitJob(ctx, job.ID, &salesforce.PollOptions{Initial: time.Second, Max: 10 * time.Second,
		OnPoll: func(j *salesforce.JobInfo) { polled = append(polled, j.State) }})
	if err != nil {
		t.Fatal(err)
	}
	if info.State != salesforce.StateJobComplete || info.NumberRecordsProcessed != 8 || info.NumberRecordsFailed != 1 ||
		info.TotalProcessingTime != 478 || info.JobType != "V2Ingest" || info.Err() != nil {
		t.Errorf("WaitJob = %+v", info)
	}
	if diff := cmp.Diff([]salesforce.JobState{"UploadComplete", "InProgress", "JobComplete"}, polled); diff != "" {
		t.Errorf("polled states (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 1500 * time.Millisecond}, sl.Delays()); diff != "" {
		t.Errorf("poll delays (-want +got):\n%s", diff)
	}

	// Results: successful (gzipped), failed, unprocessed.
	rc, err := c.SuccessfulResults(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	rr := salesforce.NewResultReader(rc, "")
	var ids []string
	var created []bool
	for {
		row, err := rr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, row.ID+"/"+row.Values[rr.Index("legacy_id__c")])
		created = append(created, row.Created)
	}
	rc.Close()
	if diff := cmp.Diff([]string{"003Hs00000LmNoPIAV/C-0001", "003Hs00000LmNoQIAV/C-0002"}, ids); diff != "" {
		t.Errorf("successful rows (-want +got):\n%s", diff)
	}
	if !slices.Equal(created, []bool{false, true}) {
		t.Errorf("created = %v", created)
	}

	rc, err = c.FailedResults(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	rr = salesforce.NewResultReader(rc, "")
	row, err := rr.Read()
	if err != nil {
		t.Fatal(err)
	}
	wantErr := salesforce.RowError{Code: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [LastName]", Fields: []string{"LastName"}}
	if diff := cmp.Diff(wantErr, row.RowError()); diff != "" {
		t.Errorf("row error (-want +got):\n%s", diff)
	}
	if _, err := rr.Read(); err != io.EOF {
		t.Errorf("second Read err = %v, want EOF", err)
	}
	rc.Close()

	rc, err = c.UnprocessedRecords(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != string(readTestdata(t, "unprocessed.csv")) {
		t.Errorf("unprocessed = %q", b)
	}

	// Wire checks.
	for _, r := range s.requests("", "") {
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("%s %s Authorization = %q", r.Method, r.Path, got)
		}
		if got := r.Header.Get("Sforce-Call-Options"); got != "client=bulkflow/dev" {
			t.Errorf("%s %s Sforce-Call-Options = %q", r.Method, r.Path, got)
		}
	}
	post := s.requests("POST", base+"/jobs/ingest")[0]
	if diff := cmp.Diff(map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "Legacy_Id__c",
		"contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"}, decodeJSON(t, post.Body)); diff != "" {
		t.Errorf("create body (-want +got):\n%s", diff)
	}
	if ct := post.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("create Content-Type = %q", ct)
	}
	puts := s.requests("PUT", jobPath+"/batches")
	if len(puts) != 1 || string(puts[0].Body) != uploadCSV || puts[0].Header.Get("Content-Type") != "text/csv" {
		t.Errorf("PUTs = %d, body %q, content type %q", len(puts), puts[0].Body, puts[0].Header.Get("Content-Type"))
	}
	patch := s.requests("PATCH", jobPath)[0]
	if diff := cmp.Diff(map[string]any{"state": "UploadComplete"}, decodeJSON(t, patch.Body)); diff != "" {
		t.Errorf("close body (-want +got):\n%s", diff)
	}
	if u, ok := c.APIUsage(); !ok || u != (salesforce.APIUsage{Used: 25, Max: 15000}) {
		t.Errorf("APIUsage = %v, %v", u, ok)
	}
}

// TestCompressedResults reads results from a loopback server that answers
// plainly, always gzips, or gzips only when asked, with each
// ResponseCompression setting and transport: the body decodes every time,
// and the client sends the Accept-Encoding its setting says.
func TestCompressedResults(t *testing.T) {
	want := string(readTestdata(t, "successful.csv"))
	plain := csvFile(t, "successful.csv", false)
	gz := csvFile(t, "successful.csv", true)
	whenAsked := func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			gz(w, r)
			return
		}
		plain(w, r)
	}
	tests := []struct {
		name        string
		server      http.HandlerFunc
		noTransport bool // client transport with DisableCompression
		setting     salesforce.Compression
		wantAE      string // Accept-Encoding sent
	}{
		{"plain", plain, false, "", "identity"},
		{"forced gzip, default transport", gz, false, "", "identity"},
		{"forced gzip, compression disabled in transport", gz, true, "", "identity"},
		{"plain, compression disabled in transport", plain, true, "", "identity"},
		{"auto from loopback", whenAsked, false, salesforce.CompressionAuto, "identity"},
		{"gzip", whenAsked, false, salesforce.CompressionGzip, "gzip"},
		{"gzip, compression disabled in transport", whenAsked, true, salesforce.CompressionGzip, "gzip"},
		{"none", whenAsked, false, salesforce.CompressionNone, "identity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.handle("GET "+base+"/jobs/ingest/"+jobID+"/successfulResults", tc.server)
			opts := fastOptions(newSleeper(), nil)
			if tc.noTransport {
				opts.HTTPClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}
			}
			opts.ResponseCompression = tc.setting
			c := staticClient(t, s, opts)
			rc, err := c.SuccessfulResults(context.Background(), jobID)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != want {
				t.Errorf("body = %q, want %q", b, want)
			}
			reqs := s.requests("GET", base+"/jobs/ingest/"+jobID+"/successfulResults")
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if got := reqs[0].Header.Get("Accept-Encoding"); got != tc.wantAE {
				t.Errorf("Accept-Encoding = %q, want %q", got, tc.wantAE)
			}
		})
	}
}

func TestResponseCompressionRefused(t *testing.T) {
	auth, err := salesforce.StaticToken("https://acme.my.salesforce.com", testToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := salesforce.NewClient(context.Background(), auth, &salesforce.Options{ResponseCompression: "br"}); err == nil {
		t.Error(`ResponseCompression "br": NewClient succeeded, want an error`)
	}
}

func TestEmptyGzipBody(t *testing.T) {
	s := newServer(t)
	s.handle("GET "+base+"/jobs/ingest/"+jobID+"/failedResults", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
	})
	opts := fastOptions(newSleeper(), nil)
	opts.HTTPClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}
	c := staticClient(t, s, opts)
	rc, err := c.FailedResults(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rr := salesforce.NewResultReader(rc, "")
	if _, err := rr.Read(); err != io.EOF {
		t.Errorf("Read on 0-byte body = %v, want EOF", err)
	}
}

func TestUploadAmbiguity(t *testing.T) {
	dup := apiError(400, "BULK_API_ERROR", "Found multipe contents for job: <750Hs00000KqZ3m>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.")
	tests := []struct {
		name     string
		put      http.HandlerFunc
		get      http.HandlerFunc
		wantPUTs int
		wantGETs int
		wantErr  error // nil means success
	}{
		{"201 first time", status(201), nil, 1, 0, nil},
		{"hang up, job Open, replay accepted", sequence(hangUp, status(201)), jobState("Open"), 2, 1, nil},
		{"hang up, job Open, replay says first landed", sequence(hangUp, dup), jobState("Open"), 2, 1, nil},
		{"hang up, job already UploadComplete", hangUp, jobState("UploadComplete"), 1, 1, salesforce.ErrUploadUnknown},
		{"hang up, job InProgress", hangUp, jobState("InProgress"), 1, 1, salesforce.ErrUploadUnknown},
		{"503, job Open, replay accepted", sequence(apiError(503, "", "maintenance"), status(201)), jobState("Open"), 2, 1, nil},
		{"rate limited, job Open, replay accepted", sequence(apiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."), status(201)), jobState("Open"), 2, 1, nil},
		{"hang up twice: no third PUT", hangUp, jobState("Open"), 2, 1, io.EOF},
		{"definite 400 is terminal", apiError(400, "INVALIDJOBSTATE", "Uploading data to a job in state UploadComplete not allowed"), nil, 1, 0, salesforce.ErrInvalidJobState},
		{"second upload rejected outright", dup, nil, 1, 0, salesforce.ErrDuplicateUpload},
		{"404", apiError(404, "NOT_FOUND", "The requested resource does not exist"), nil, 1, 0, salesforce.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			p := base + "/jobs/ingest/" + jobID
			s.handle("PUT "+p+"/batches", tc.put)
			if tc.get != nil {
				s.handle("GET "+p, tc.get)
			}
			c := staticClient(t, s, fastOptions(newSleeper(), nil))
			err := c.UploadJobData(context.Background(), jobID, salesforce.BytesBody([]byte(uploadCSV)))
			if tc.wantErr == nil && err != nil {
				t.Fatalf("UploadJobData = %v, want nil", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("UploadJobData = %v, want %v", err, tc.wantErr)
			}
			puts := s.requests("PUT", p+"/batches")
			if len(puts) != tc.wantPUTs {
				t.Errorf("PUTs = %d, want %d", len(puts), tc.wantPUTs)
			}
			for _, r := range puts {
				if string(r.Body) != uploadCSV {
					t.Errorf("PUT body = %q, want the same bytes every time", r.Body)
				}
			}
			if got := len(s.requests("GET", p)); got != tc.wantGETs {
				t.Errorf("GETs = %d, want %d", got, tc.wantGETs)
			}
		})
	}
}

func TestCloseJobReconcile(t *testing.T) {
	tests := []struct {
		name    string
		patch   http.HandlerFunc
		get     http.HandlerFunc
		want    salesforce.JobState
		wantErr error
	}{
		{"hang up then already closed", sequence(hangUp, apiError(400, "INVALIDJOBSTATE", "Changing job state from UploadComplete to UploadComplete not allowed")), jobState("InProgress"), salesforce.StateInProgress, nil},
		{"5xx then ok", sequence(apiError(500, "", "oops"), jobFileHandler(t)), nil, salesforce.StateUploadComplete, nil},
		{"invalid state at once is an error", apiError(400, "INVALIDJOBSTATE", "Changing job state from Aborted to UploadComplete not allowed"), jobState("Aborted"), "", salesforce.ErrInvalidJobState},
		{"hang up then aborted", sequence(hangUp, apiError(400, "INVALIDJOBSTATE", "x")), jobState("Aborted"), "", salesforce.ErrInvalidJobState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			p := base + "/jobs/ingest/" + jobID
			s.handle("PATCH "+p, tc.patch)
			if tc.get != nil {
				s.handle("GET "+p, tc.get)
			}
			c := staticClient(t, s, fastOptions(newSleeper(), nil))
			info, err := c.CloseJob(context.Background(), jobID)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("CloseJob err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.State != tc.want {
				t.Errorf("state = %s, want %s", info.State, tc.want)
			}
		})
	}
}

func jobFileHandler(t *testing.T) http.HandlerFunc { return jsonFile(t, "close_response.json", 200) }

func TestAbortAndDelete(t *testing.T) {
	s := newServer(t)
	p := base + "/jobs/ingest/" + jobID
	s.handle("PATCH "+p, func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(string(s.requests("PATCH", p)[0].Body), `"Aborted"`) {
			t.Errorf("abort body = %s", s.requests("PATCH", p)[0].Body)
		}
		jobState("Aborted")(w, r)
	})
	s.handle("DELETE "+p, sequence(hangUp, apiError(404, "NOT_FOUND", "The requested resource does not exist")))
	c := staticClient(t, s, fastOptions(newSleeper(), nil))
	info, err := c.AbortJob(context.Background(), jobID)
	if err != nil || info.State != salesforce.StateAborted {
		t.Fatalf("AbortJob = %v, %v", info, err)
	}
	if !errors.Is(info.Err(), salesforce.ErrJobAborted) {
		t.Errorf("Err() = %v", info.Err())
	}
	// The first DELETE's answer is lost; the retry's 404 proves it worked.
	if err := c.DeleteJob(context.Background(), jobID); err != nil {
		t.Fatalf("DeleteJob = %v", err)
	}
	if n := len(s.requests("DELETE", p)); n != 2 {
		t.Errorf("DELETEs = %d, want 2", n)
	}
}

func TestWaitJobPatience(t *testing.T) {
	s := newServer(t)
	p := base + "/jobs/ingest/" + jobID
	s.handle("GET "+p, jsonFile(t, "job_inprogress.json", 200))
	sl := newSleeper()
	c := staticClient(t, s, fastOptions(sl, nil))

	info, err := c.WaitJob(context.Background(), jobID, &salesforce.PollOptions{Initial: time.Second, Max: 4 * time.Second, Multiplier: 2, Timeout: 20 * time.Second})
	if !errors.Is(err, salesforce.ErrPollTimeout) {
		t.Fatalf("WaitJob err = %v, want ErrPollTimeout", err)
	}
	if errors.Is(err, salesforce.ErrJobFailed) {
		t.Errorf("a timeout must not look like a failed job: %v", err)
	}
	if info == nil || info.State != salesforce.StateInProgress {
		t.Fatalf("last info = %+v, want InProgress", info)
	}
	if diff := cmp.Diff([]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second, 1 * time.Second}, sl.Delays()); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}

	// Cancelled context: same contract, and ctx.Err() is visible.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	info, err = c.WaitJob(ctx, jobID, nil)
	if !errors.Is(err, salesforce.ErrPollTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("WaitJob(cancelled) err = %v", err)
	}
	_ = info
}

func TestWaitJobFailed(t *testing.T) {
	s := newServer(t)
	p := base + "/jobs/ingest/" + jobID
	s.handle("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"750Hs00000KqZ3mIAF","state":"Failed","numberRecordsProcessed":0,"numberRecordsFailed":0,
			"errorMessage":"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"}`))
	})
	c := staticClient(t, s, fastOptions(newSleeper(), nil))
	info, err := c.WaitJob(context.Background(), jobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	jerr := info.Err()
	var je *salesforce.JobError
	if !errors.As(jerr, &je) || !errors.Is(jerr, salesforce.ErrJobFailed) {
		t.Fatalf("Err() = %v", jerr)
	}
	want := &salesforce.JobError{JobID: jobID, Code: "ClientInputError", Message: "LineEnding is invalid on user data. Current LineEnding setting is LF"}
	if diff := cmp.Diff(want, je); diff != "" {
		t.Errorf("JobError (-want +got):\n%s", diff)
	}
}

func TestListJobsPaging(t *testing.T) {
	s := newServer(t)
	s.handle("GET "+base+"/jobs/ingest", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("queryLocator") {
		case "":
			jsonFile(t, "joblist_page1.json", 200)(w, r)
		case "01gHs000001AbCdIAK-1000":
			jsonFile(t, "joblist_page2.json", 200)(w, r)
		default:
			t.Errorf("unexpected query %q", r.URL.RawQuery)
			w.WriteHeader(400)
		}
	})
	c := staticClient(t, s, fastOptions(newSleeper(), nil))
	var got []string
	for j, err := range c.ListJobs(context.Background(), &salesforce.ListJobsOptions{JobType: "V2Ingest"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, j.ID+":"+string(j.State))
	}
	if diff := cmp.Diff([]string{"750Hs00000KqZ3mIAF:JobComplete", "750Hs00000KqZ4nIAF:Failed"}, got); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
	if reqs := s.requests("GET", base+"/jobs/ingest"); len(reqs) != 2 || reqs[0].RawQuery != "jobType=V2Ingest" {
		t.Errorf("pages fetched = %d (first query %q), want 2", len(reqs), reqs[0].RawQuery)
	}

	// A nextRecordsUrl pointing elsewhere is refused.
	if _, err := c.ListJobsPage(context.Background(), nil, "https://evil.example.com/services/data/v62.0/jobs/ingest"); err == nil {
		t.Error("ListJobsPage followed a foreign host")
	}
	// Early break stops fetching.
	for range c.ListJobs(context.Background(), nil) {
		break
	}
	if n := len(s.requests("GET", base+"/jobs/ingest")); n != 3 {
		t.Errorf("pages fetched after early break = %d, want 3", n)
	}
}

func TestQueryJobLocatorPaging(t *testing.T) {
	s := newServer(t)
	qid := "750Hs00000KqZ4nIAF"
	qp := base + "/jobs/query/" + qid
	s.handle("POST "+base+"/jobs/query", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"750Hs00000KqZ4nIAF","operation":"query","object":"Contact","state":"UploadComplete","apiVersion":62.0,"query":"SELECT Id, Name FROM Contact"}`))
	})
	s.handle("GET "+qp, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"750Hs00000KqZ4nIAF","operation":"query","object":"Contact","state":"JobComplete","jobType":"V2Query","numberRecordsProcessed":3}`))
	})
	pages := map[string]struct{ next, body string }{
		"":        {"MTAwMDA", "\"Id\",\"Name\"\n\"003A\",\"Ada\"\n\"003B\",\"Alan\"\n"},
		"MTAwMDA": {"null", "\"Id\",\"Name\"\n\"003C\",\"Grace\"\n"},
	}
	s.handle("GET "+qp+"/results", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("maxRecords") != "2" {
			t.Errorf("maxRecords = %q", r.URL.Query().Get("maxRecords"))
		}
		pg, ok := pages[r.URL.Query().Get("locator")]
		if !ok {
			apiError(400, "INVALID_LOCATOR", "bad")(w, r)
			return
		}
		w.Header().Set("Sforce-Locator", pg.next)
		w.Header().Set("Sforce-NumberOfRecords", "2")
		w.Write([]byte(pg.body))
	})
	c := staticClient(t, s, fastOptions(newSleeper(), nil))
	ctx := context.Background()
	job, err := c.CreateQueryJob(ctx, salesforce.CreateQueryJobRequest{Query: "SELECT Id, Name FROM Contact"})
	if err != nil {
		t.Fatal(err)
	}
	body := decodeJSON(t, s.requests("POST", base+"/jobs/query")[0].Body)
	if body["operation"] != "query" || body["contentType"] != "CSV" {
		t.Errorf("create query body = %v", body)
	}
	if info, err := c.WaitQueryJob(ctx, job.ID, nil); err != nil || info.State != salesforce.StateJobComplete {
		t.Fatalf("WaitQueryJob = %v, %v", info, err)
	}
	var rows []string
	locator := ""
	for n := 0; ; n++ {
		if n > 5 {
			t.Fatal("locator loop did not end")
		}
		page, err := c.QueryResults(ctx, job.ID, locator, 2)
		if err != nil {
			t.Fatal(err)
		}
		rr := salesforce.NewResultReader(page.Body, "")
		for {
			row, err := rr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, strings.Join(row.Values, "|"))
		}
		page.Body.Close()
		if page.NumberOfRecords != 2 {
			t.Errorf("NumberOfRecords = %d", page.NumberOfRecords)
		}
		if page.NextLocator == "" {
			break
		}
		locator = page.NextLocator
	}
	if diff := cmp.Diff([]string{"003A|Ada", "003B|Alan", "003C|Grace"}, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestLimitsAndDescribe(t *testing.T) {
	s := newServer(t)
	s.handle("GET "+base+"/limits", jsonFile(t, "limits.json", 200))
	s.handle("GET "+base+"/sobjects/Contact/describe", jsonFile(t, "describe_contact.json", 200))
	s.handle("GET "+base+"/sobjects/Nope__c/describe", apiError(404, "NOT_FOUND", "The requested resource does not exist"))
	c := staticClient(t, s, fastOptions(newSleeper(), nil))
	ctx := context.Background()
	l, err := c.Limits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := l["DailyApiRequests"]; got != (salesforce.Limit{Max: 100000, Remaining: 89982}) {
		t.Errorf("DailyApiRequests = %+v", got)
	}
	if got, ok := l.BulkBatches(); !ok || got.Remaining != 14997 {
		t.Errorf("BulkBatches = %+v, %v", got, ok)
	}
	d, err := c.Describe(ctx, "Contact")
	if err != nil {
		t.Fatal(err)
	}
	f, ok := d.Field("legacy_id__c")
	if !ok || !f.ExternalID || f.Length != 40 || f.RelationshipName != "" {
		t.Errorf("Legacy_Id__c = %+v", f)
	}
	if f, _ := d.Field("OwnerId"); !f.Polymorphic() || f.RequiredOnInsert() {
		t.Errorf("OwnerId = %+v", f)
	}
	if f, _ := d.Field("LastName"); !f.RequiredOnInsert() {
		t.Errorf("LastName = %+v", f)
	}
	if _, err := c.Describe(ctx, "Nope__c"); !errors.Is(err, salesforce.ErrNotFound) {
		t.Errorf("Describe(Nope__c) = %v, want ErrNotFound", err)
	}
}

func TestUploadBodiesReplay(t *testing.T) {
	file := filepath.Join(t.TempDir(), "chunk.csv")
	if err := os.WriteFile(file, []byte(uploadCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	fb, err := salesforce.FileBody(file)
	if err != nil {
		t.Fatal(err)
	}
	streamed := salesforce.UploadBody{Size: -1, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(uploadCSV)), nil
	}}
	bodies := map[string]salesforce.UploadBody{
		"file":     fb,
		"readerAt": salesforce.ReaderAtBody(strings.NewReader(uploadCSV), int64(len(uploadCSV))),
		"bytes":    salesforce.BytesBody([]byte(uploadCSV)),
		"streamed": streamed,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			s := newServer(t)
			p := base + "/jobs/ingest/" + jobID
			s.handle("PUT "+p+"/batches", sequence(hangUp, status(201)))
			s.handle("GET "+p, jobState("Open"))
			c := staticClient(t, s, fastOptions(newSleeper(), nil))
			if err := c.UploadJobData(context.Background(), jobID, body); err != nil {
				t.Fatal(err)
			}
			puts := s.requests("PUT", p+"/batches")
			if len(puts) != 2 {
				t.Fatalf("PUTs = %d, want 2", len(puts))
			}
			for _, r := range puts {
				if string(r.Body) != uploadCSV {
					t.Errorf("body = %q", r.Body)
				}
			}
		})
	}
	if _, err := salesforce.FileBody(filepath.Join(t.TempDir(), "missing.csv")); err == nil {
		t.Error("FileBody on a missing file succeeded")
	}
}
