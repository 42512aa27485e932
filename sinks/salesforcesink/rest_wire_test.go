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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// wireLog records the collection requests that pass a proxy in front of
// the emulator: method, path and query, body, status and answer.
type wireLog struct {
	mu    sync.Mutex
	calls []wireCall
}

type wireCall struct {
	method, path, query string
	body                []byte
	status              int
	answer              []byte
}

// capture is an http.ResponseWriter that keeps what it writes.
type capture struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (c *capture) WriteHeader(s int)           { c.status = s; c.ResponseWriter.WriteHeader(s) }
func (c *capture) Write(b []byte) (int, error) { c.buf.Write(b); return c.ResponseWriter.Write(b) }

// recordingProxy returns a proxy to srv that logs its collection calls.
func recordingProxy(t *testing.T, srv *salesforcetest.Server) (*httptest.Server, *wireLog) {
	t.Helper()
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	log := &wireLog{}
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/composite/sobjects") {
			proxy.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		c := &capture{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(c, r)
		log.mu.Lock()
		log.calls = append(log.calls, wireCall{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, body: body, status: c.status, answer: c.buf.Bytes()})
		log.mu.Unlock()
	}))
	t.Cleanup(ps.Close)
	return ps, log
}

// wireCase is one operation's small input for the wire golden files: a
// validation failure, a null, a date and a timestamp, an unknown id.
type wireCase struct {
	op, extID string
	schema    *pipeline.Schema
	seed      int
	rows      func(ids []string) []pipeline.Row
}

func wireCases() []wireCase {
	return []wireCase{
		{op: "insert", schema: accountSchema, rows: func([]string) []pipeline.Row { return genAccounts(4, 3, "W") }},
		{op: "upsert", extID: "External_Id__c", schema: accountSchema, seed: 2,
			rows: func([]string) []pipeline.Row { return genAccounts(4, 3, "W") }},
		{op: "update", schema: idUpdateSchema, seed: 2, rows: func(ids []string) []pipeline.Row {
			return []pipeline.Row{{ids[0], "Renamed", int64(7), nil}, {ids[1], strings.Repeat("x", 256), int64(8), "kept"},
				{"001000000000000AAA", "unknown", int64(9), nil}}
		}},
		{op: "delete", schema: idSchema, seed: 2, rows: func(ids []string) []pipeline.Row {
			return []pipeline.Row{{ids[0]}, {ids[1]}, {"001000000000000AAA"}}
		}},
	}
}

// TestRESTWireGolden sends each operation's input through the sink (api
// auto: REST for so few rows) and compares the collection requests and
// answers on the wire, byte for byte, with testdata/rest_<op>.txt (go
// test -run TestRESTWireGolden -update rewrites them); then plans the
// same input and checks that the plan's request files are the bodies sent
// (a delete's: the ids sent) and that its summary names the REST path.
func TestRESTWireGolden(t *testing.T) {
	for _, tc := range wireCases() {
		t.Run(tc.op, func(t *testing.T) {
			srv := salesforcetest.NewServer(&salesforcetest.Options{Seed: 7})
			defer srv.Close()
			var ids []string
			if tc.seed > 0 {
				ids = seedAccounts(tc.seed, "W")(t, srv)
			}
			rows := tc.rows(ids)
			ps, log := recordingProxy(t, srv)
			y := fmt.Sprintf("object: Account\noperation: %s\ninstance_url: %s\nauth: {access_token: %q}\n", tc.op, ps.URL, srv.AccessToken())
			if tc.extID != "" {
				y += "external_id_field: " + tc.extID + "\n"
			}
			r := runPipeline(t, context.Background(), tc.schema, rows, y)
			if r.err != nil && !strings.Contains(r.err.Error(), "partial") {
				t.Fatal(r.err)
			}
			if len(log.calls) == 0 || len(srv.Jobs()) != 0 {
				t.Fatalf("%d collection calls, %d Bulk jobs: want REST only", len(log.calls), len(srv.Jobs()))
			}
			if len(dlCodes(t, r.dl, tc.schema.Field(0).Name)) == 0 {
				t.Errorf("no dead letters: the case has rows Salesforce refuses")
			}
			var wire bytes.Buffer
			for _, c := range log.calls {
				fmt.Fprintf(&wire, "%s %s", c.method, c.path)
				if c.query != "" {
					fmt.Fprintf(&wire, "?%s", c.query)
				}
				fmt.Fprintf(&wire, "\n%s\n\n%d\n%s\n\n", c.body, c.status, c.answer)
			}
			pipelinetest.Golden(t, filepath.Join("testdata", "rest_"+tc.op+".txt"), wire.Bytes(), *update)

			// The plan writes the bodies the sink sent.
			opts := NewOptions()
			opts.Object, opts.Operation, opts.ExternalIDField, opts.InstanceURL = "Account", tc.op, tc.extID, EmulatorURL
			dir := t.TempDir()
			plan, err := OpenPlan(context.Background(), nil, opts, tc.schema, dir)
			if err != nil {
				t.Fatal(err)
			}
			b := pipeline.NewBatch(tc.schema, 0)
			for _, row := range rows {
				b.Append(row, pipeline.Origin{})
			}
			if err := plan.Write(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			if err := plan.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			files := plan.PlanFiles()
			if len(files) != len(log.calls) {
				t.Fatalf("plan wrote %d files, the sink sent %d requests", len(files), len(log.calls))
			}
			for i, f := range files {
				got, err := os.ReadFile(f.File)
				if err != nil {
					t.Fatal(err)
				}
				want := log.calls[i].body
				if tc.op == "delete" {
					q, _ := url.ParseQuery(log.calls[i].query)
					want = []byte(q.Get("ids") + "\n")
				}
				if !bytes.Equal(got, want) {
					t.Errorf("plan file %s differs from the request sent:\n--- plan\n%s\n--- sent\n%s", f.File, got, want)
				}
			}
			st := plan.Stats().(PlanStats)
			want := fmt.Sprintf("REST collections (api auto: at most rest_max_rows %d rows): %d requests (%d records), %d API calls",
				DefaultRestMaxRows, len(files), len(rows), len(files)+1)
			if st.Path != APIREST || st.SummaryLine() != want {
				t.Errorf("plan stats %+v\nsummary %q\nwant    %q", st, st.SummaryLine(), want)
			}
		})
	}
}
