package salesforcetest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// jobInState returns a server and an ingest job in the given state.
func jobInState(t *testing.T, state string) (*tc, string) {
	t.Helper()
	opts := &salesforcetest.Options{}
	if state == salesforcetest.StateInProgress {
		opts.ProcessingRate = 1 // 10 rows at 1 row/s: InProgress for ~10 s
	}
	c := newTC(t, opts)
	insert := map[string]any{"object": "Account", "operation": "insert"}
	csv := "Name\n" + strings.Repeat("Acme\n", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := c.createJob(insert)
	switch state {
	case salesforcetest.StateOpen:
		return c, id
	case salesforcetest.StateFailed:
		csv = "Nope\nx\n"
	case salesforcetest.StateUploadComplete:
		if err := c.srv.SetFaults(salesforcetest.Faults{ProcessingDelay: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", csv), 201)
	if state == salesforcetest.StateAborted {
		c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "Aborted"}), 200)
	} else {
		c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
	}
	if err := c.srv.AwaitJobState(ctx, id, state); err != nil {
		t.Fatal(err)
	}
	return c, id
}

type apiErr struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

func errorCode(t *testing.T, r resp) string {
	t.Helper()
	var errs []apiErr
	if err := json.Unmarshal(r.body, &errs); err != nil || len(errs) != 1 {
		t.Fatalf("error body %q is not a one-element JSON array: %v", r.body, err)
	}
	return errs[0].ErrorCode
}

func TestStateMachine(t *testing.T) {
	states := []string{"Open", "UploadComplete", "InProgress", "JobComplete", "Failed", "Aborted"}
	type want struct {
		status int
		code   string
	}
	ok := func(s int) want { return want{s, ""} }
	bad := func(code string) want { return want{400, code} }
	notDone := want{412, "JOB_NOT_COMPLETE"}
	ops := []struct {
		name   string
		method string
		path   string
		body   any
		want   []want // per state, in the order of states
	}{
		{"PUT batches", "PUT", "/batches", "Name\nx\n", []want{
			bad("BULK_API_ERROR"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE")}},
		{"PATCH UploadComplete", "PATCH", "", map[string]string{"state": "UploadComplete"}, []want{
			ok(200), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE")}},
		{"PATCH Aborted", "PATCH", "", map[string]string{"state": "Aborted"}, []want{
			ok(200), ok(200), ok(200), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE")}},
		{"PATCH Open", "PATCH", "", map[string]string{"state": "Open"}, []want{
			bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE")}},
		{"PATCH missing state", "PATCH", "", map[string]string{"id": "x"}, []want{
			bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE"), bad("INVALIDJOBSTATE")}},
		{"DELETE", "DELETE", "", nil, []want{
			bad("API_ERROR"), ok(204), bad("API_ERROR"), ok(204), ok(204), ok(204)}},
		{"GET", "GET", "", nil, []want{ok(200), ok(200), ok(200), ok(200), ok(200), ok(200)}},
		{"GET successfulResults", "GET", "/successfulResults", nil, []want{notDone, notDone, notDone, ok(200), ok(200), ok(200)}},
		{"GET failedResults", "GET", "/failedResults/", nil, []want{notDone, notDone, notDone, ok(200), ok(200), ok(200)}},
		{"GET unprocessedRecords", "GET", "/unprocessedRecords", nil, []want{notDone, notDone, notDone, ok(200), ok(200), ok(200)}},
	}
	for _, op := range ops {
		for i, state := range states {
			t.Run(op.name+"/"+state, func(t *testing.T) {
				t.Parallel()
				c, id := jobInState(t, state)
				if state == "Open" && op.method == "PUT" {
					c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\nx\n"), 201)
				}
				r := c.do(op.method, "/jobs/ingest/"+id+op.path, op.body)
				w := op.want[i]
				if r.status != w.status {
					t.Fatalf("%s in %s: status %d, want %d; body %s", op.name, state, r.status, w.status, r.body)
				}
				if w.code != "" {
					if got := errorCode(t, r); got != w.code {
						t.Errorf("%s in %s: errorCode %s, want %s", op.name, state, got, w.code)
					}
				}
				if op.method == "DELETE" && r.status == 204 {
					c.expect(c.do("GET", "/jobs/ingest/"+id, nil), 404)
				}
			})
		}
	}
}

func TestStateErrorTexts(t *testing.T) {
	c, id := jobInState(t, "JobComplete")
	r := c.expect(c.do("PATCH", "/jobs/ingest/"+id+"/", map[string]string{"id": "ignored", "state": "Aborted"}), 400)
	if want := `[{"errorCode":"INVALIDJOBSTATE","message":"Aborting already Completed Job not allowed"}]`; r.String() != want {
		t.Errorf("abort completed = %s, want %s", r, want)
	}
	r = c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches/", "Name\nx\n"), 400)
	if want := `[{"errorCode":"INVALIDJOBSTATE","message":"Uploading data to a job in state JobComplete not allowed"}]`; r.String() != want {
		t.Errorf("put after close = %s, want %s", r, want)
	}
	r = c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 400)
	if want := `[{"errorCode":"INVALIDJOBSTATE","message":"Changing job state from JobComplete to UploadComplete not allowed"}]`; r.String() != want {
		t.Errorf("close completed = %s, want %s", r, want)
	}
	c2, id2 := jobInState(t, "Open")
	r = c2.expect(c2.do("PATCH", "/jobs/ingest/"+id2, map[string]any{}), 400)
	if want := `[{"errorCode":"INVALIDJOBSTATE","message":"Changing job state from Open to  not allowed"}]`; r.String() != want {
		t.Errorf("missing state = %s, want %s", r, want)
	}
}

func TestUploadSwitches(t *testing.T) {
	t.Run("INVALIDJOB code", func(t *testing.T) {
		c := newTC(t, &salesforcetest.Options{SecondUploadErrorCode: "INVALIDJOB"})
		id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
		c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\nx\n"), 201)
		if code := errorCode(t, c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\nx\n"), 400)); code != "INVALIDJOB" {
			t.Errorf("code = %s", code)
		}
	})
	t.Run("fail at close", func(t *testing.T) {
		c := newTC(t, &salesforcetest.Options{SecondUploadFailsAtClose: true})
		id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
		c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\nx\n"), 201)
		c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\nx\n"), 201)
		r := c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 400)
		if !strings.Contains(r.String(), "Found multipe contents for job: <"+id[:15]+">") {
			t.Errorf("close body = %s", r)
		}
	})
	t.Run("close without upload", func(t *testing.T) {
		c := newTC(t, nil)
		id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
		c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
		if ji := c.awaitTerminal(id); ji.State != "JobComplete" || ji.NumberRecordsProcessed != 0 {
			t.Errorf("job = %+v", ji)
		}
		r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil), 200)
		if r.String() != `"sf__Id","sf__Created"` {
			t.Errorf("results = %q", r)
		}
		c = newTC(t, &salesforcetest.Options{RejectCloseWithoutUpload: true})
		id = c.createJob(map[string]any{"object": "Account", "operation": "insert"})
		c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 400)
	})
	t.Run("content type", func(t *testing.T) {
		c := newTC(t, nil)
		id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
		r := c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\nx\n", "Content-Type", "application/octet-stream"), 415)
		if want := `[{"errorCode":"UNSUPPORTED_MEDIA_TYPE","message":"Content-Type application/octet-stream not supported, use text/csv"}]`; r.String() != want {
			t.Errorf("415 body = %s", r)
		}
		c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\nx\n", "Content-Type", "Text/CSV; charset=UTF-8", "Accept", "text/csv"), 201)
	})
	t.Run("15-char id", func(t *testing.T) {
		c := newTC(t, nil)
		id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
		c.expect(c.do("PUT", "/jobs/ingest/"+id[:15]+"/batches/", "Name\nx\n"), 201)
		r := c.expect(c.do("GET", "/jobs/ingest/"+id[:15]+"/", nil), 200)
		if !strings.Contains(r.String(), `"id":"`+id+`"`) {
			t.Errorf("GET by 15-char id = %s", r)
		}
		c.expect(c.do("GET", "/jobs/ingest/"+strings.ToLower(id[:15]), nil), 404)
	})
	t.Run("multipart create", func(t *testing.T) {
		c := newTC(t, nil)
		body := "--B\r\nContent-Type: application/json\r\nContent-Disposition: form-data; name=\"job\"\r\n\r\n" +
			`{"object":"Contact","contentType":"CSV","operation":"insert","lineEnding":"LF"}` +
			"\r\n--B\r\nContent-Type: text/csv\r\nContent-Disposition: form-data; name=\"content\"; filename=\"content\"\r\n\r\n" +
			"FirstName,LastName,MailingCity\nAstro,Nomical,San Francisco\n\r\n--B--\r\n"
		r := c.expect(c.do("POST", "/jobs/ingest/", body, "Content-Type", "multipart/form-data; boundary=B"), 200)
		if !strings.Contains(r.String(), `"state":"UploadComplete"`) || strings.Contains(r.String(), "contentUrl") {
			t.Errorf("multipart create = %s", r)
		}
		id := c.srv.Jobs()[0].ID
		if ji := c.awaitTerminal(id); ji.State != "JobComplete" || ji.NumberRecordsProcessed != 1 {
			t.Errorf("job = %+v", ji)
		}
		if recs := c.srv.Records("Contact"); len(recs) != 1 || recs[0]["MailingCity"] != "San Francisco" {
			t.Errorf("records = %v", recs)
		}
	})
}
