package salesforcesink

import (
	"context"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

func TestInsertEndToEnd(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	rows := genAccounts(2500, 100, "I")
	r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 1000\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatalf("run: %v (%v)", r.err, r.rep.Errors)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 25 {
		t.Errorf("dead-lettered %d rows, want 25", len(dead))
	}
	for k, code := range dead {
		if code != "STRING_TOO_LONG" {
			t.Errorf("%s: code %s, want STRING_TOO_LONG", k, code)
		}
	}
	if got := checkStored(t, srv, "Account", rows, dead, nil); got != 2475 {
		t.Errorf("stored %d", got)
	}
	if r.rep.Counts.Loaded != 2475 || r.rep.Status != pipeline.StatusPartial {
		t.Errorf("report %+v %s", r.rep.Counts, r.rep.Status)
	}
	if n := len(r.sink.Jobs()); n != 3 {
		t.Errorf("%d jobs, want 3", n)
	}
	t.Log(dlMessages(r.dl)[0])
}
