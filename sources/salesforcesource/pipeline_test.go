package salesforcesource_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/pipeline/state"
	_ "github.com/bulkflow/bulkflow/sinks/filesink"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// exportYAML exports Accounts changed since the last run to one CSV file
// per run.
const exportYAML = `name: sf-export
stages:
  - name: read
    source:
      type: salesforce
      instance_url: %s
      auth: {access_token: %q}
      object: Account
      fields: [Id, Name, NumberOfEmployees, AnnualRevenue, Description, SystemModstamp]
      max_records: 700
      batch_size: 250
      poll_initial: 5ms
    incremental: {cursor: SystemModstamp}
  - name: write
    inputs: [read]
    sink: {type: csv, url: "%s/accounts-{run_id}.csv"}
`

// runExport runs the export once and returns the rows of its file.
func runExport(t *testing.T, srv *salesforcetest.Server, dir string, st *state.Store, runID string) [][]string {
	t.Helper()
	ctx := context.Background()
	g, err := config.Load("sf-export.yaml", []byte(fmt.Sprintf(exportYAML, srv.URL, srv.AccessToken(), dir)), pipeline.DefaultRegistry(), nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	env := &pipeline.Env{RunID: runID, Pipeline: g.Name, BaseDir: dir}
	plan, err := pipeline.Prepare(ctx, pipeline.DefaultRegistry(), g, env)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	c := pipelinetest.NewCollector()
	rep, err := plan.Run(ctx, &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(), State: st})
	if err != nil {
		t.Fatalf("run %s: %v (%v)", runID, err, rep.Errors)
	}
	if !rep.Counts.Balanced() || rep.Counts.DeadLettered != 0 {
		t.Fatalf("run %s: counts %+v, dead letters %v", runID, rep.Counts, c.DeadLetters)
	}
	f, err := os.Open(filepath.Join(dir, "accounts-"+runID+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "Id,Name,NumberOfEmployees,AnnualRevenue,Description,SystemModstamp" {
		t.Fatalf("header %q", recs[0])
	}
	return recs[1:]
}

// TestExportToCSV exports 3,000 emulator Accounts through the source into
// a CSV sink (pages of 700, batches of 250) and compares the file with the
// emulator's records; after 5 records are updated, the next run's cursor
// (pushed into SOQL as SystemModstamp > watermark) exports exactly those.
func TestExportToCSV(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	srv := startEmulatorOpts(t, &salesforcetest.Options{Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	const n = 3000
	for i := range n {
		rec := map[string]string{"Name": fmt.Sprintf("Account %04d, Ltd", i)}
		if i%3 != 0 {
			rec["NumberOfEmployees"] = fmt.Sprint(i)
		}
		if i%5 != 0 {
			rec["AnnualRevenue"] = fmt.Sprintf("%d.%02d", i*100, i%100)
		}
		if i%7 == 0 {
			rec["Description"] = fmt.Sprintf("line 1 of %d\nline 2 with \"quotes\"", i)
		}
		now.Add(int64(time.Millisecond))
		if _, err := srv.AddRecord("Account", rec); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	st, err := state.Open(context.Background(), filepath.Join(dir, "state"), "sf-export")
	if err != nil {
		t.Fatal(err)
	}
	got := runExport(t, srv, dir, st, "r1")
	want := srv.Records("Account")
	if len(got) != len(want) || len(got) != n {
		t.Fatalf("exported %d rows, the emulator holds %d (want %d)", len(got), len(want), n)
	}
	for i, w := range want {
		g := got[i]
		for j, f := range []string{"Id", "Name", "NumberOfEmployees", "AnnualRevenue", "Description"} {
			if g[j] != w[f] {
				t.Errorf("record %d %s: exported %q, emulator %q", i, f, g[j], w[f])
			}
		}
		if !strings.HasPrefix(g[5], "2026-01-01T00:00:") {
			t.Errorf("record %d SystemModstamp exported as %q", i, g[5])
		}
	}

	// Update 5 records a day later: the next run exports just them.
	now.Add(int64(24 * time.Hour))
	var body strings.Builder
	body.WriteString("Id,Name\n")
	changed := map[string]bool{}
	for _, k := range []int{3, 700, 701, 1999, 2999} {
		fmt.Fprintf(&body, "%s,Changed %d\n", want[k]["Id"], k)
		changed[want[k]["Id"]] = true
	}
	ingest(t, srv, "update", body.String())
	got = runExport(t, srv, dir, st, "r2")
	if len(got) != len(changed) {
		t.Fatalf("second run exported %d rows, want the %d updated", len(got), len(changed))
	}
	for _, g := range got {
		if !changed[g[0]] || !strings.HasPrefix(g[1], "Changed ") || !strings.HasPrefix(g[5], "2026-01-02T") {
			t.Errorf("second run exported %q", g)
		}
	}
	var soql string
	for _, j := range srv.Jobs() {
		if j.Query {
			soql = j.SOQL
		}
	}
	if !strings.Contains(soql, "WHERE (SystemModstamp > 2026-01-01T00:00:03.000Z OR SystemModstamp = null)") {
		t.Errorf("the second run's query does not carry the watermark: %s", soql)
	}
	// A third run finds nothing newer.
	if got := runExport(t, srv, dir, st, "r3"); len(got) != 0 {
		t.Errorf("third run exported %d rows, want 0", len(got))
	}
}

func startEmulatorOpts(tb testing.TB, opts *salesforcetest.Options) *salesforcetest.Server {
	tb.Helper()
	srv := salesforcetest.NewServer(opts)
	tb.Cleanup(srv.Close)
	return srv
}

// ingest runs one Bulk API ingest job over plain HTTP and waits for it.
func ingest(t *testing.T, srv *salesforcetest.Server, op, csvBody string) {
	t.Helper()
	base := srv.URL + "/services/data/v62.0/jobs/ingest"
	do := func(method, url, ctype, body string) []byte {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.AccessToken())
		req.Header.Set("Content-Type", ctype)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
		return b
	}
	b := do("POST", base, "application/json", fmt.Sprintf(`{"object":"Account","operation":%q}`, op))
	id := string(b[strings.Index(string(b), `"id":"`)+6:][:18])
	do("PUT", base+"/"+id+"/batches", "text/csv", csvBody)
	do("PATCH", base+"/"+id, "application/json", `{"state":"UploadComplete"}`)
	if err := srv.AwaitJobState(t.Context(), id, "JobComplete"); err != nil {
		t.Fatal(err)
	}
}
