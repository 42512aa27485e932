package salesforcesink

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// restKillEnv carries the child's settings from TestRESTKillResume to
// TestRESTKillChild: the operation, then the sink YAML.
const restKillEnv = "BULKFLOW_TEST_REST_KILL"

// restKillCase is one operation of TestRESTKillResume: the sink options
// and the rows (the seeded record ids are ids).
type restKillCase struct {
	yaml   string
	schema *pipeline.Schema
	rows   func(ids []string) []pipeline.Row
}

func restKillCases() map[string]restKillCase {
	byID := func(f func(id string, i int) pipeline.Row) func([]string) []pipeline.Row {
		return func(ids []string) []pipeline.Row {
			rows := make([]pipeline.Row, len(ids))
			for i, id := range ids {
				rows[i] = f(id, i)
			}
			return rows
		}
	}
	return map[string]restKillCase{
		"insert": {yaml: "operation: insert\n", schema: accountSchema,
			rows: func([]string) []pipeline.Row { return genAccounts(250, 0, "K") }},
		"upsert": {yaml: "operation: upsert\nexternal_id_field: External_Id__c\n", schema: accountSchema,
			rows: func([]string) []pipeline.Row { return genAccounts(250, 0, "K") }},
		"update": {yaml: "operation: update\n", schema: idUpdateSchema,
			rows: byID(func(id string, i int) pipeline.Row {
				return pipeline.Row{id, fmt.Sprintf("Renamed %d", i), int64(i), "after the crash"}
			})},
		"delete": {yaml: "operation: delete\n", schema: idSchema,
			rows: byID(func(id string, _ int) pipeline.Row { return pipeline.Row{id} })},
	}
}

// TestRESTKillChild is the process TestRESTKillResume kills: it runs the
// pipeline its environment describes (and is skipped otherwise).
func TestRESTKillChild(t *testing.T) {
	env := os.Getenv(restKillEnv)
	if env == "" {
		t.Skip("run by TestRESTKillResume")
	}
	op, y, _ := strings.Cut(env, "\n")
	var ids []string
	if v := os.Getenv(restKillEnv + "_IDS"); v != "" {
		ids = strings.Split(v, ",")
	}
	tc := restKillCases()[op]
	runPipeline(t, context.Background(), tc.schema, tc.rows(ids), y)
	t.Fatal("the run finished: the parent should have killed it while its first REST request was held")
}

// TestRESTKillResume kills (SIGKILL) a process whose first REST request
// (200 of 250 rows) the emulator committed but did not answer, then
// resumes the run from its ledger: an insert's 200 rows are dead-lettered
// outcome_unknown without being sent again and the other 50 are loaded
// (every row stored once); an upsert, update or delete request is sent
// again and every row is loaded once (a delete counts the rows the killed
// attempt deleted, answered ENTITY_IS_DELETED, as deleted).
func TestRESTKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for _, op := range []string{"insert", "upsert", "update", "delete"} {
		t.Run(op, func(t *testing.T) {
			tc := restKillCases()[op]
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			var ids []string
			if op == "update" || op == "delete" {
				ids = seedAccounts(250, "S")(t, srv)
			}
			rows := tc.rows(ids)
			y := "object: Account\nledger: " + t.TempDir() + "\n" + tc.yaml + strings.Replace(emulatorYAML(srv), "api: bulk", "api: auto", 1)
			srv.SetCollectionFaults(salesforcetest.CollectionFaults{CommitThenHoldNext: 1})

			cmd := exec.Command(os.Args[0], "-test.run=^TestRESTKillChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), restKillEnv+"="+op+"\n"+y, restKillEnv+"_IDS="+strings.Join(ids, ","))
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for srv.HeldCollectionRequests() == 0 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("the child sent no REST request in 30 s:\n%s", out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			for srv.HeldCollectionRequests() > 0 {
				time.Sleep(time.Millisecond) // the emulator sees the connection close
			}
			committed := srv.Requests()
			before := 0
			for k, v := range committed {
				if strings.Contains(k, "composite/sobjects") {
					before += v
				}
			}
			if before != 1 {
				t.Fatalf("the killed attempt sent %d REST requests, want 1: %v", before, committed)
			}

			r := runPipeline(t, context.Background(), tc.schema, rows, y)
			after := 0
			for k, v := range srv.Requests() {
				if strings.Contains(k, "composite/sobjects") {
					after += v
				}
			}
			sent := after - before
			key := "External_Id__c"
			if tc.schema != accountSchema {
				key = "Id"
			}
			dead := dlCodes(t, r.dl, key)
			switch op {
			case "insert":
				if len(dead) != 200 || sent != 1 {
					t.Fatalf("resume: %d dead letters, %d REST requests; want the held request's 200 rows outcome_unknown and 1 request for the other 50 (%v)", len(dead), sent, r.err)
				}
				for k, c := range dead {
					if c != pipeline.CodeOutcomeUnknown {
						t.Fatalf("%s: code %s, want %s", k, c, pipeline.CodeOutcomeUnknown)
					}
				}
				extra := map[string]bool{}
				for k := range dead {
					extra[k] = true // committed by the killed attempt
				}
				if n := checkStored(t, srv, "Account", rows, dead, extra); n != 250 {
					t.Errorf("stored %d, want 250 (each once)", n)
				}
			case "upsert":
				if len(dead) != 0 || sent != 2 || r.err != nil {
					t.Fatalf("resume: %d dead letters, %d REST requests (want none and 2), err %v", len(dead), sent, r.err)
				}
				if n := checkStored(t, srv, "Account", rows, nil, nil); n != 250 {
					t.Errorf("stored %d, want 250 (each once)", n)
				}
			case "update":
				if len(dead) != 0 || sent != 2 || r.err != nil {
					t.Fatalf("resume: %d dead letters, %d REST requests (want none and 2), err %v", len(dead), sent, r.err)
				}
				recs := srv.Records("Account")
				for _, rec := range recs {
					if !strings.HasPrefix(rec["Name"], "Renamed ") || rec["Description"] != "after the crash" {
						t.Fatalf("record not updated: %v", rec)
					}
				}
				if len(recs) != 250 {
					t.Errorf("%d records, want 250", len(recs))
				}
			case "delete":
				if len(dead) != 0 || sent != 2 || r.err != nil {
					t.Fatalf("resume: %d dead letters, %d REST requests (want none and 2), err %v", len(dead), sent, r.err)
				}
				if n, d := len(srv.Records("Account")), len(srv.DeletedRecords("Account")); n != 0 || d != 250 {
					t.Errorf("%d records left, %d deleted; want 0 and 250", n, d)
				}
			}
			if got := r.rep.Counts.Loaded; got != int64(250-len(dead)) {
				t.Errorf("loaded %d, want %d", got, 250-len(dead))
			}
		})
	}
}
