package salesforcesink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestResultMismatch: a proxy in front of the emulator drops the last row
// of every successfulResults file. Those rows were saved but are not
// confirmed, so they must be reported result_mismatch, never loaded.
func TestResultMismatch(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{Compression: salesforcetest.CompressionNever})
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/successfulResults") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		b = bytes.TrimRight(b, "\n")
		if i := bytes.LastIndexByte(b, '\n'); i > 0 {
			b = b[:i]
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	rows := genAccounts(300, 0, "M")
	for _, r := range rows {
		r[4] = "single line" // so the proxy can drop the last record by line
	}
	r := runPipeline(t, context.Background(), accountSchema, rows, fmt.Sprintf(
		"object: Account\nmax_job_rows: 100\ninstance_url: %s\nauth: {access_token: %q}\npoll_initial: 5ms\npoll_max: 20ms\napi: bulk\n", ps.URL, srv.AccessToken()))
	if r.err != nil {
		t.Fatal(r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 3 || countCode(dead, CodeResultMismatch) != 3 {
		t.Fatalf("dead %v %v", dead, dlMessages(r.dl))
	}
	unconfirmed := map[string]bool{}
	for k := range dead {
		unconfirmed[k] = true
	}
	checkStored(t, srv, "Account", rows, dead, unconfirmed)
	if r.rep.Counts.Loaded != 297 {
		t.Errorf("loaded %d", r.rep.Counts.Loaded)
	}
}

// TestDuplicatedResultRow: a successfulResults file that lists a row twice
// fails the job's check: every row of the job is dead-lettered
// result_mismatch (not retryable) and the run does not succeed.
func TestDuplicatedResultRow(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	srv.SetFaults(salesforcetest.Faults{DuplicateResultRow: true})
	rows := genAccounts(250, 0, "D")
	r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 100\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.rep.Status == pipeline.StatusSucceeded || r.rep.Counts.Loaded != 0 {
		t.Errorf("status %s, loaded %d: a job with a duplicated result row counted rows as loaded", r.rep.Status, r.rep.Counts.Loaded)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 250 || countCode(dead, CodeResultMismatch) != 250 {
		t.Fatalf("dead %d, result_mismatch %d", len(dead), countCode(dead, CodeResultMismatch))
	}
	s := r.dl.Schema()
	for i := range r.dl.Len() {
		if row := r.dl.Row(i); row[s.Index("_retryable")] != "false" || !strings.HasPrefix(row[s.Index("_ref")].(string), "750") {
			t.Fatalf("dead letter %v", row)
		}
	}
	for _, j := range r.sink.Jobs() {
		if !strings.Contains(j.Error, "results do not match") {
			t.Errorf("job %s error %q", j.ID, j.Error)
		}
	}
}

// TestSFIDFallback: for delete and update, results that do not echo the Id
// column are matched by sf__Id (18- or 15-character ids uploaded).
func TestSFIDFallback(t *testing.T) {
	for _, tc := range []struct {
		name, op string
		idLen    int
	}{
		{"delete 18", "delete", 18}, {"delete 15", "delete", 15}, {"update 18", "update", 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			rows := genAccounts(120, 0, "F")
			if r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\n"+emulatorYAML(srv)); r.err != nil || r.rep.Counts.Loaded != 120 {
				t.Fatalf("insert: %v %+v", r.err, r.rep.Counts)
			}
			srv.SetFaults(salesforcetest.Faults{OmitIDEcho: true})
			schema := pipeline.MustSchema(pipeline.Field{Name: "Id", Type: pipeline.TypeString})
			if tc.op == "update" {
				schema = pipeline.MustSchema(pipeline.Field{Name: "Id", Type: pipeline.TypeString}, pipeline.Field{Name: "Name", Type: pipeline.TypeString})
			}
			var in []pipeline.Row
			for k, rec := range srv.Records("Account") {
				id := rec["Id"][:tc.idLen]
				if tc.op == "update" {
					in = append(in, pipeline.Row{id, fmt.Sprintf("renamed %d", k)})
				} else {
					in = append(in, pipeline.Row{id})
				}
			}
			r := runPipeline(t, context.Background(), schema, in, "object: Account\noperation: "+tc.op+"\n"+emulatorYAML(srv))
			if r.err != nil || r.rep.Status != pipeline.StatusSucceeded || r.rep.Counts.Loaded != 120 {
				t.Fatalf("%s: %v %s %+v %v", tc.op, r.err, r.rep.Status, r.rep.Counts, dlMessages(r.dl))
			}
			if tc.op == "delete" && len(srv.Records("Account")) != 0 {
				t.Errorf("%d records left", len(srv.Records("Account")))
			}
		})
	}
}
