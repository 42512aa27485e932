package salesforcesink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestBudgetCountsPolls: with four slow jobs in flight, polling is charged
// to min_api_remaining too: the reserve is kept (the emulator's usage never
// goes below it), and the jobs left running are job_incomplete (resume),
// not retryable.
func TestBudgetCountsPolls(t *testing.T) {
	const limit, reserve = 60, 10
	srv := salesforcetest.NewServer(&salesforcetest.Options{APIRequestLimit: limit})
	defer srv.Close()
	srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 300 * time.Millisecond})
	rows := genAccounts(800, 0, "P")
	r := runPipeline(t, context.Background(), accountSchema, rows,
		"object: Account\nmax_job_rows: 100\nconcurrency: 4\nmin_api_remaining: 10\npoll_initial: 2ms\npoll_max: 5ms\napi: bulk\n"+
			"instance_url: "+srv.URL+"\nauth: {access_token: "+srv.AccessToken()+"}\n")
	if r.err != nil {
		t.Fatal(r.err)
	}
	used, max := srv.APIUsage()
	if max-used < reserve {
		t.Errorf("used %d of %d: the reserve of %d was not kept", used, max, reserve)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	incomplete := map[string]bool{}
	for k, code := range dead {
		switch code {
		case CodeJobIncomplete:
			incomplete[k] = true
		case CodeAPIBudget:
		default:
			t.Errorf("%s: %s", k, code)
		}
	}
	if len(incomplete) == 0 {
		t.Errorf("no job was left to a resume (dead %d): polls were not charged to the reserve", len(dead))
	}
	s := r.dl.Schema()
	for i := range r.dl.Len() {
		row := r.dl.Row(i)
		if row[s.Index("_error_code")] == CodeJobIncomplete && row[s.Index("_retryable")] != "false" {
			t.Fatalf("job_incomplete row retryable: %v", row)
		}
	}
	checkStored(t, srv, "Account", rows, dead, incomplete)
	b, _ := json.Marshal(r.sink.Stats())
	if want := fmt.Sprintf(`"resume":%d`, len(incomplete)); !strings.Contains(string(b), want) {
		t.Errorf("stats %s lack %s", b, want)
	}
	t.Logf("used %d of %d; dead %d (job_incomplete %d)", used, max, len(dead), len(incomplete))
}

// TestRequestLimitNoSpin: a permanent REQUEST_LIMIT_EXCEEDED while jobs
// are polled stops the run's requests after a bounded number: the rows
// are left to a resume (job_incomplete) and the run does not retry for
// poll_timeout.
func TestRequestLimitNoSpin(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	srv.SetFaults(salesforcetest.Faults{ProcessingDelay: time.Hour})
	rows := genAccounts(400, 0, "L")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Once every job is closed, the org's limit runs out for good.
	onJobs(ctx, srv, func(jobs []salesforcetest.JobInfo) bool {
		return countJobs(jobs, salesforcetest.StateUploadComplete) == 4
	}, func() { srv.SetFaults(salesforcetest.Faults{ProcessingDelay: time.Hour, RequestLimitExceeded: true}) })
	start := time.Now()
	r := runPipeline(t, ctx, accountSchema, rows, "object: Account\nmax_job_rows: 100\nconcurrency: 4\npoll_timeout: 10m\n"+emulatorYAML(srv))
	if ctx.Err() != nil {
		t.Fatalf("the run kept polling a refused org for %v", time.Since(start))
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 400 || countCode(dead, CodeJobIncomplete) != 400 {
		t.Errorf("dead %d, job_incomplete %d", len(dead), countCode(dead, CodeJobIncomplete))
	}
	if r.rep.Status == pipeline.StatusSucceeded {
		t.Error("succeeded")
	}
	refused := srv.Requests()
	t.Logf("stopped after %v; requests %v", time.Since(start), refused)
}
