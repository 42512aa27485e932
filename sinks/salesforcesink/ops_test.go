package salesforcesink

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// seed inserts n accounts through the sink and returns External_Id__c → Id.
func seed(t *testing.T, srv *salesforcetest.Server, n int, prefix string) map[string]string {
	t.Helper()
	r := runPipeline(t, context.Background(), accountSchema, genAccounts(n, 0, prefix), "object: Account\n"+emulatorYAML(srv))
	if r.err != nil || r.rep.Counts.Loaded != int64(n) {
		t.Fatalf("seed: %v %+v", r.err, r.rep.Counts)
	}
	ids := map[string]string{}
	for _, rec := range srv.Records("Account") {
		ids[rec["External_Id__c"]] = rec["Id"]
	}
	return ids
}

func TestUpsertEndToEnd(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	seed(t, srv, 500, "U")
	// 1000 rows: the first 500 exist (update), the next 500 are new; every
	// 50th has a bad name; two rows repeat an external id in one job.
	rows := genAccounts(1000, 50, "U")
	for i := range rows {
		if i < 500 {
			rows[i][1] = fmt.Sprintf("Renamed %d", i)
			if i%50 == 49 {
				rows[i][1] = strings.Repeat("y", 256)
			}
		}
	}
	r := runPipeline(t, context.Background(), accountSchema, rows,
		"object: Account\noperation: upsert\nexternal_id_field: External_Id__c\nmax_job_rows: 300\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 20 {
		t.Errorf("dead %d, want 20", len(dead))
	}
	seeded := map[string]bool{} // failed updates of seeded rows stay stored
	for i := range 500 {
		seeded[fmt.Sprintf("U%07d", i)] = true
	}
	if n := checkStored(t, srv, "Account", rows, dead, seeded); n != 990 {
		t.Errorf("stored %d, want 990", n)
	}
	renamed := 0
	for _, rec := range srv.Records("Account") {
		if strings.HasPrefix(rec["Name"], "Renamed") {
			renamed++
		}
	}
	if renamed != 490 || r.rep.Counts.Loaded != 980 {
		t.Errorf("renamed %d, loaded %d", renamed, r.rep.Counts.Loaded)
	}
}

func TestUpdateAndDeleteEndToEnd(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	ids := seed(t, srv, 300, "D")
	updSchema := pipeline.MustSchema(pipeline.Field{Name: "Id"}, pipeline.Field{Name: "Description"})
	var upd []pipeline.Row
	for i := range 300 {
		upd = append(upd, pipeline.Row{ids[fmt.Sprintf("D%07d", i)], fmt.Sprintf("updated %d", i)})
	}
	upd = append(upd, pipeline.Row{"001000000000000AAA", "nobody"}) // unknown id → row error
	r := runPipeline(t, context.Background(), updSchema, upd, "object: Account\noperation: update\n"+emulatorYAML(srv))
	if r.err != nil || r.rep.Counts.Loaded != 300 || r.rep.Counts.DeadLettered != 1 {
		t.Fatalf("update: %v %+v %v", r.err, r.rep.Counts, dlMessages(r.dl))
	}
	for _, rec := range srv.Records("Account") {
		if !strings.HasPrefix(rec["Description"], "updated ") {
			t.Fatalf("not updated: %v", rec)
		}
	}
	delSchema := pipeline.MustSchema(pipeline.Field{Name: "Id"})
	var del, hard []pipeline.Row
	for i := range 300 {
		id := ids[fmt.Sprintf("D%07d", i)]
		if i < 200 {
			del = append(del, pipeline.Row{id})
		} else {
			hard = append(hard, pipeline.Row{id})
		}
	}
	r = runPipeline(t, context.Background(), delSchema, del, "object: Account\noperation: delete\n"+emulatorYAML(srv))
	if r.err != nil || r.rep.Counts.Loaded != 200 {
		t.Fatalf("delete: %v %+v %v", r.err, r.rep.Counts, dlMessages(r.dl))
	}
	r = runPipeline(t, context.Background(), delSchema, hard, "object: Account\noperation: hardDelete\n"+emulatorYAML(srv))
	if r.err != nil || r.rep.Counts.Loaded != 100 {
		t.Fatalf("hardDelete: %v %+v %v", r.err, r.rep.Counts, dlMessages(r.dl))
	}
	if n, d := len(srv.Records("Account")), len(srv.DeletedRecords("Account")); n != 0 || d != 200 {
		t.Errorf("live %d, recycle bin %d; want 0, 200", n, d)
	}
}

func TestContactRelationship(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	ids := seed(t, srv, 10, "P")
	schema := pipeline.MustSchema(pipeline.Field{Name: "External_Id__c"}, pipeline.Field{Name: "LastName"},
		pipeline.Field{Name: "Account.External_Id__c"})
	var rows []pipeline.Row
	for i := range 40 {
		rows = append(rows, pipeline.Row{fmt.Sprintf("C%03d", i), fmt.Sprintf("Last %d", i), fmt.Sprintf("P%07d", i%12)})
	}
	r := runPipeline(t, context.Background(), schema, rows,
		"object: Contact\noperation: upsert\nexternal_id_field: External_Id__c\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatal(r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	// Parents P..10 and P..11 do not exist: 2 of every 12 rows fail.
	if len(dead) != 6 {
		t.Errorf("dead %v", dead)
	}
	for _, c := range dead {
		if c != "INVALID_FIELD" {
			t.Errorf("code %s", c)
		}
	}
	checkStored(t, srv, "Contact", rows, dead, nil)
	for _, rec := range srv.Records("Contact") {
		var n int
		fmt.Sscanf(rec["External_Id__c"], "C%03d", &n)
		if rec["AccountId"] != ids[fmt.Sprintf("P%07d", n%12)] {
			t.Errorf("%v: wrong AccountId", rec)
		}
	}
}
