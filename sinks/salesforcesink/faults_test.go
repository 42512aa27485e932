package salesforcesink

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

func TestFaults(t *testing.T) {
	faultRows, faultJobRows := 20000, 2000
	if raceEnabled || testing.Short() {
		faultRows, faultJobRows = 10000, 1000
	}
	for _, tc := range []struct {
		name   string
		faults salesforcetest.Faults
		cc     bool            // authenticate with client credentials (renewable)
		codes  map[string]bool // allowed dead-letter codes
		check  func(t *testing.T, r *run, dead map[string]string)
	}{
		{name: "5xx", faults: salesforcetest.Faults{FailRate5xx: 0.1}},
		{name: "dropped_connections", faults: salesforcetest.Faults{DropConnectionRate: 0.05},
			codes: map[string]bool{CodeAPIError: true}},
		{name: "request_limit", faults: salesforcetest.Faults{RequestLimitNext: 3}},
		{name: "token_expiry", faults: salesforcetest.Faults{TokenTTL: time.Second}, cc: true},
		{name: "token_uses", faults: salesforcetest.Faults{TokenMaxUses: 7}, cc: true},
		{name: "lock_errors", faults: salesforcetest.Faults{LockErrorRate: 0.05},
			codes: map[string]bool{CodeLockRow: true},
			check: func(t *testing.T, r *run, dead map[string]string) {
				retries := 0
				for _, j := range r.sink.Jobs() {
					if j.Attempt > 0 {
						retries++
						if j.Rows > faultJobRows/2 {
							t.Errorf("retry job %s has %d rows: not smaller", j.ID, j.Rows)
						}
					}
				}
				if retries == 0 {
					t.Error("no lock retry jobs")
				}
				if locked := countCode(dead, CodeLockRow); locked > 20 {
					t.Errorf("%d rows still locked after retries", locked)
				}
			}},
		{name: "job_fails_half_way", faults: salesforcetest.Faults{FailJobAfterRows: 700},
			codes: map[string]bool{CodeUnprocessed: true},
			check: func(t *testing.T, r *run, dead map[string]string) {
				if n, want := countCode(dead, CodeUnprocessed), faultRows/faultJobRows*(faultJobRows-700); n != want {
					t.Errorf("%d UNPROCESSED rows, want %d", n, want)
				}
				for _, m := range dlMessages(r.dl) {
					if strings.Contains(m, "not processed") && (!strings.Contains(m, "retryable=true") || !strings.Contains(m, "InternalServerError")) {
						t.Errorf("message %q", m)
						break
					}
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(&salesforcetest.Options{Seed: 42, BatchSize: 500})
			defer srv.Close()
			if err := srv.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			rows := genAccounts(faultRows, 500, "F")
			conn := emulatorYAML(srv)
			if tc.cc {
				conn = ccYAML(srv)
			}
			r := runPipeline(t, context.Background(), accountSchema, rows, fmt.Sprintf("object: Account\nmax_job_rows: %d\nconcurrency: 4\n", faultJobRows)+conn)
			if r.err != nil {
				t.Fatalf("run: %v", r.err)
			}
			dead := dlCodes(t, r.dl, "External_Id__c")
			for k, c := range dead {
				if c != "STRING_TOO_LONG" && !tc.codes[c] {
					t.Errorf("%s: unexpected code %s", k, c)
				}
			}
			if n := countCode(dead, "STRING_TOO_LONG"); n > faultRows/500 || (tc.name != "job_fails_half_way" && n != faultRows/500) {
				t.Errorf("%d STRING_TOO_LONG rows, want %d", n, faultRows/500)
			}
			stored := checkStored(t, srv, "Account", rows, dead, nil)
			if int64(stored) != r.rep.Counts.Loaded {
				t.Errorf("stored %d, loaded %d", stored, r.rep.Counts.Loaded)
			}
			if tc.check != nil {
				tc.check(t, r, dead)
			}
			t.Logf("loaded %d, dead %d, jobs %d, requests %v", r.rep.Counts.Loaded, len(dead), len(r.sink.Jobs()), srv.Requests())
		})
	}
}

func countCode(dead map[string]string, code string) int {
	n := 0
	for _, c := range dead {
		if c == code {
			n++
		}
	}
	return n
}

// TestPatience: jobs slower than poll_timeout are reported job_incomplete
// with their job id, not aborted; they finish later on the server.
func TestPatience(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 400 * time.Millisecond})
	rows := genAccounts(3000, 0, "S")
	r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\nmax_job_rows: 1000\npoll_timeout: 100ms\ndelete_jobs: true\n"+emulatorYAML(srv))
	if r.err != nil {
		t.Fatal(r.err)
	}
	dead := dlCodes(t, r.dl, "External_Id__c")
	if len(dead) != 3000 || countCode(dead, CodeJobIncomplete) != 3000 {
		t.Fatalf("dead %d (job_incomplete %d)", len(dead), countCode(dead, CodeJobIncomplete))
	}
	jobs := r.sink.Jobs()
	for _, m := range dlMessages(r.dl)[:1] {
		if !strings.Contains(m, jobs[0].ID[:3]) || !strings.Contains(m, "retryable=false") || !strings.Contains(m, "--resume run-1") {
			t.Errorf("message %q lacks job id / retryable=false / the resume command", m)
		}
	}
	incomplete := map[string]bool{}
	for k := range dead {
		incomplete[k] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, j := range jobs {
		if j.State == "JobComplete" || j.State == "Failed" || j.State == "Aborted" {
			t.Errorf("job %s: state %s, want not terminal at the deadline", j.ID, j.State)
		}
		if err := srv.AwaitJobState(ctx, j.ID, salesforcetest.StateJobComplete); err != nil {
			t.Errorf("job left running did not complete (not deleted, not aborted): %v", err)
		}
	}
	checkStored(t, srv, "Account", rows, dead, incomplete)
}
