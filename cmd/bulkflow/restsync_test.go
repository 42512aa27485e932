package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestSyncSmallChangeAutoVsBulk is issue 20's measurement: a
// change-detecting sync (sync: {mode: changed}) over 200 accounts, 40 of
// which changed since the last run, on an emulator whose Bulk jobs wait
// 5 s in the queue (ProcessingDelay), run once with api auto (the
// default: REST collections for so few rows) and once with api bulk, each
// against its own emulator loaded alike. The sink's polling is its
// default (poll_initial 1s, poll_max 30s). API calls are the emulator's
// count (Sforce-Limit-Info), wall time is the whole `bulkflow run`. It
// fails unless auto takes at least 5x less time and 3x fewer calls. With
// auto, a last run drops five keys, which the sync deletes through REST.
//
//	go test ./cmd/bulkflow -run TestSyncSmallChangeAutoVsBulk -v
func TestSyncSmallChangeAutoVsBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a Bulk job's 5 s queue delay")
	}
	const total, changed = 200, 40
	type measure struct {
		wall     time.Duration
		calls    int64
		requests int
		jobs     int
	}
	got := map[string]measure{}
	for _, api := range []string{"auto", "bulk"} {
		t.Run(api, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			p := syncPipeline(srv, "50%")
			p = strings.Replace(p, "      api: bulk\n", "      api: "+api+"\n", 1)
			p = strings.Replace(p, "      poll_initial: 5ms\n      poll_max: 50ms\n", "", 1) // the defaults
			rows := make([]string, total)
			for i := range rows {
				rows[i] = fmt.Sprintf("K%04d,Account %d,555-%04d", i, i, i)
			}
			writeFiles(t, map[string]string{"p.yaml": p, "data/accounts.csv": syncCSV(rows...)})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != total {
				t.Fatalf("first run: exit %d counts %+v", code, rep.Counts)
			}
			for i := range changed {
				rows[i*5] = fmt.Sprintf("K%04d,Account %d,666-%04d", i*5, i*5, i*5)
			}
			writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(rows...)})
			if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
			calls0, _ := srv.APIUsage()
			req0, jobs0 := srv.Requests()["total"], len(srv.Jobs())
			start := time.Now()
			code, rep := runReport(t, "p.yaml")
			wall := time.Since(start)
			calls, _ := srv.APIUsage()
			m := measure{wall: wall, calls: calls - calls0, requests: srv.Requests()["total"] - req0, jobs: len(srv.Jobs()) - jobs0}
			s := syncSummary(t, rep)
			if code != exitOK || s.Changed != changed || s.Unchanged != total-changed || s.Loaded != changed || rep.Counts.Loaded != changed {
				t.Fatalf("changed run: exit %d summary %+v counts %+v", code, s, rep.Counts)
			}
			phones := map[string]string{}
			for _, r := range srv.Records("Account") {
				phones[r["External_Id__c"]] = r["Phone"]
			}
			for i := range total {
				want := fmt.Sprintf("555-%04d", i)
				if i%5 == 0 && i/5 < changed {
					want = fmt.Sprintf("666-%04d", i)
				}
				if k := fmt.Sprintf("K%04d", i); phones[k] != want {
					t.Fatalf("%s: Phone %q, want %q (%d records)", k, phones[k], want, len(phones))
				}
			}
			if len(phones) != total {
				t.Fatalf("%d records, want %d", len(phones), total)
			}
			if wantJobs := map[string]int{"auto": 0, "bulk": 1}[api]; m.jobs != wantJobs {
				t.Fatalf("api %s created %d Bulk jobs, want %d", api, m.jobs, wantJobs)
			}
			got[api] = m
			if api != "auto" {
				return
			}
			// Five keys leave the source: the sync deletes their records
			// through REST too (max_deletes 50%).
			if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(rows[5:]...)})
			code, rep = runReport(t, "p.yaml")
			if s := syncSummary(t, rep); code != exitOK || s.Deleted != 5 || s.Changed != 0 || len(srv.Jobs()) != jobs0 {
				t.Fatalf("delete run: exit %d summary %+v, %d Bulk jobs (want none)", code, s, len(srv.Jobs())-jobs0)
			}
			if n, d := len(srv.Records("Account")), len(srv.DeletedRecords("Account")); n != total-5 || d != 5 {
				t.Fatalf("after the delete run: %d records, %d deleted; want %d and 5", n, d, total-5)
			}
		})
	}
	a, b := got["auto"], got["bulk"]
	if a.calls == 0 || b.calls == 0 {
		t.Fatalf("no measurement: auto %+v, bulk %+v", a, b)
	}
	timeRatio, callRatio := float64(b.wall)/float64(a.wall), float64(b.calls)/float64(a.calls)
	t.Logf("sync of %d changed rows out of %d, Bulk queue delay 5s: auto %v, %d API calls (%d HTTP requests); bulk %v, %d API calls (%d HTTP requests): %.0fx less time, %.1fx fewer calls",
		changed, total, a.wall.Round(time.Millisecond), a.calls, a.requests, b.wall.Round(time.Millisecond), b.calls, b.requests, timeRatio, callRatio)
	if timeRatio < 5 || callRatio < 3 {
		t.Errorf("auto takes %.1fx less time with %.1fx fewer API calls than bulk, want >= 5x and >= 3x", timeRatio, callRatio)
	}
}
