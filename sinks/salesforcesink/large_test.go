package salesforcesink

import (
	"context"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// raceEnabled is set by race_test.go under -race.
var raceEnabled bool

// TestLargeLoad loads 250,000 rows in 25 jobs; 60,000 under -race or
// -short (the race detector slows the in-process emulator ~6x).
func TestLargeLoad(t *testing.T) {
	n := 250000
	if testing.Short() || raceEnabled {
		n = 60000
	}
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	rows := genAccounts(n, 10000, "L")
	start := time.Now()
	r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 10000\nconcurrency: 4\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatal(r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != n/10000 {
		t.Errorf("dead %d", len(dead))
	}
	checkStored(t, srv, "Account", rows, dead, nil)
	if jobs := len(r.sink.Jobs()); jobs != n/10000 {
		t.Errorf("%d jobs", jobs)
	}
	t.Logf("%d rows in %v (%d jobs)", n, time.Since(start), len(r.sink.Jobs()))
}
