package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	_ "github.com/bulkflow/bulkflow/sinks/salesforcesink"
	_ "github.com/bulkflow/bulkflow/transforms/filter"
	_ "github.com/bulkflow/bulkflow/transforms/mapping"
)

const repoRoot = "../.."

// loadExample loads pipelines/pg-accounts-sync.yaml with BULKFLOW_PG_URL
// set to pgURL, the emulator srv in place of "emulator:", and edit applied
// to the text.
func loadExample(t *testing.T, pgURL string, srv *salesforcetest.Server, edit func(string) string) *pipeline.Graph {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "pipelines", "pg-accounts-sync.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(data), `instance_url: "emulator:"`, fmt.Sprintf("instance_url: %s\n      auth: {access_token: %q}", srv.URL, srv.AccessToken()), 1)
	if edit != nil {
		y = edit(y)
	}
	env := func(k string) (string, bool) {
		if k == "BULKFLOW_PG_URL" {
			return pgURL, true
		}
		return "", false
	}
	g, err := config.Load("pg-accounts-sync.yaml", []byte(y), pipeline.DefaultRegistry(), env)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return g
}

// runExample runs the example pipeline once with the state store st.
func runExample(t *testing.T, pgURL string, srv *salesforcetest.Server, st *state.Store, runID string) *pipeline.Report {
	t.Helper()
	ctx := context.Background()
	g := loadExample(t, pgURL, srv, nil)
	env := &pipeline.Env{RunID: runID, Pipeline: g.Name, BaseDir: t.TempDir()}
	plan, err := pipeline.Prepare(ctx, pipeline.DefaultRegistry(), g, env)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	c := pipelinetest.NewCollector()
	rep, err := plan.Run(ctx, &pipeline.RunOptions{
		DeadLetters: c.DeadLetterOpener(),
		State:       st,
		Syncers: func(ctx context.Context, stage *pipeline.StageSpec, in *pipeline.Schema) (pipeline.Syncer, error) {
			return syncer.Open(ctx, st, env, stage, in, syncer.Options{})
		},
	})
	if err != nil {
		t.Fatalf("run %s: %v (%v)", runID, err, rep.Errors)
	}
	if !rep.Counts.Balanced() || rep.Counts.DeadLettered != 0 {
		t.Fatalf("run %s: counts %+v, dead letters %v", runID, rep.Counts, c.DeadLetters)
	}
	return rep
}

// TestExamplePipeline runs pipelines/pg-accounts-sync.yaml against the
// test server and the Salesforce emulator three times: everything, then
// only what was updated and the example's 5-minute lookback below the
// watermark (read in SQL) and of that only what changed (sent), then
// only the lookback again, of which nothing is sent.
func TestExamplePipeline(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, `CREATE TABLE accounts (account_id text PRIMARY KEY, company text, country text,
		annual_revenue numeric(14,2), status text, updated_at timestamptz NOT NULL)`)
	exec(t, admin, `INSERT INTO accounts SELECT 'A-' || lpad(g::text, 4, '0'), ' Company ' || g || ' ', 'de',
		g * 1000.5, CASE WHEN g % 10 = 0 THEN 'deleted' ELSE 'active' END, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
		FROM generate_series(1, 120) g`)
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	st, err := state.Open(context.Background(), "file://"+t.TempDir()+"/", "pg-accounts-sync")
	if err != nil {
		t.Fatal(err)
	}

	rep := runExample(t, u, srv, st, "run-1")
	if rep.Counts.Read != 120 || rep.Counts.Loaded != 108 || rep.Counts.Filtered != 12 {
		t.Errorf("run 1: counts %+v, want 120 read, 108 loaded, 12 filtered (deleted)", rep.Counts)
	}
	recs := srv.Records("Account")
	if len(recs) != 108 {
		t.Fatalf("run 1: %d accounts in the org, want 108", len(recs))
	}
	byID := map[string]map[string]string{}
	for _, r := range recs {
		byID[r["External_Id__c"]] = r
	}
	if r := byID["A-0007"]; r["Name"] != "Company 7" || r["BillingCountry"] != "DE" || r["AnnualRevenue"] != "7003.5" {
		t.Errorf("run 1: A-0007 = %v", r)
	}

	// A-0003: renamed; A-0005: only updated_at touched; A-0121: new.
	exec(t, admin, `UPDATE accounts SET company = 'Renamed', updated_at = now() WHERE account_id = 'A-0003';
		UPDATE accounts SET updated_at = now() WHERE account_id = 'A-0005';
		INSERT INTO accounts VALUES ('A-0121', 'New Co', 'fr', 1, 'active', now())`)
	rep = runExample(t, u, srv, st, "run-2")
	if rep.Counts.Read != 8 {
		t.Errorf("run 2: read %d rows, want the 3 updated since run 1 and the 5 stamped 01:56-02:00 (the lookback below the 02:00 watermark) (counts %+v)", rep.Counts.Read, rep.Counts)
	}
	if rep.Counts.Loaded != 2 {
		t.Errorf("run 2: loaded %d, want 2 (A-0005 did not change) (counts %+v)", rep.Counts.Loaded, rep.Counts)
	}
	recs = srv.Records("Account")
	byID = map[string]map[string]string{}
	for _, r := range recs {
		byID[r["External_Id__c"]] = r
	}
	if len(recs) != 109 || byID["A-0003"]["Name"] != "Renamed" || byID["A-0121"]["BillingCountry"] != "FR" {
		t.Errorf("run 2: %d accounts, A-0003 %v, A-0121 %v", len(recs), byID["A-0003"], byID["A-0121"])
	}

	rep = runExample(t, u, srv, st, "run-3")
	if rep.Counts.Read != 3 || rep.Counts.Loaded != 0 {
		t.Errorf("run 3: counts %+v, want the 3 rows updated before run 2 read again (within the lookback) and none sent", rep.Counts)
	}
}

// TestExampleValidate: preparing the example (what validate does) checks
// a mapping against the query's described columns with a did-you-mean
// (TestSchemaReadsNoRow shows the describe reads no row).
func TestExampleValidate(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, `CREATE TABLE accounts (account_id text, company text, country text, annual_revenue numeric, status text, updated_at timestamptz)`)
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	g := loadExample(t, u+"&application_name=validate_example", srv, func(y string) string {
		return strings.Replace(y, "Name: trim(company)", "Name: trim(compnay)", 1)
	})
	plan, err := pipeline.Prepare(context.Background(), pipeline.DefaultRegistry(), g, &pipeline.Env{RunID: "v", BaseDir: t.TempDir()})
	if err == nil {
		plan.Close()
		t.Fatal("Prepare accepted a mapping of an unknown column")
	}
	if msg := err.Error(); !strings.Contains(msg, "compnay") || !strings.Contains(msg, `"company"`) {
		t.Errorf("error %q: want it to name compnay and suggest company", msg)
	}
}
