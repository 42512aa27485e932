package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestMirrorKeysInDoubt: a mirror's run SIGKILLed while its jobs upsert
// 600 new keys leaves records of some of them in the org, and none in the
// manifest. Before the keys in doubt, nothing ever deleted such a record
// when its key left the export, and the runs after said succeeded (the
// soak, seed 52667). Two ways there:
//
//   - gone: the next run's export no longer has the new keys;
//   - failing: the next run's export still has them, but every upsert of
//     theirs fails (UNABLE_TO_LOCK_ROW), and the run after drops them.
//
// Either way the run that drops them deletes every record of theirs,
// found by the key (no id is known), and the org ends with exactly the
// export's keys; the list of keys in doubt is emptied and its files
// removed once a run commits.
//
// With the state on S3 the run that settles them keeps the manifest it
// diffed against (a local temporary file) in the bucket: a copy between
// buckets.
func TestMirrorKeysInDoubt(t *testing.T) {
	bin := buildBulkflow(t)
	for _, tc := range []struct {
		name    string
		failing bool
		store   string // the state's blob store ("": a local folder)
	}{
		{"gone", false, ""},
		{"failing", true, ""},
		{"failing, state on S3", true, "S3"},
	} {
		failing := tc.failing
		t.Run(tc.name, func(t *testing.T) {
			stateURL := func(key string) string { return filepath.Join("state", key) }
			if tc.store != "" {
				stateURL = storeNamed(tc.store).NewBucket(t).URL
			}
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := strings.Replace(syncPipeline(srv, "100%"), "      ledger: \"off\"\n",
				"      ledger: \"off\"\n      max_job_rows: 100\n      concurrency: 2\n", 1)
			y = strings.Replace(y, "state: state/\n", fmt.Sprintf("state: %q\n", stateURL("")), 1)
			var base, grown []string
			for i := range 400 {
				base = append(base, fmt.Sprintf("K%04d,Name %d,111", i, i))
			}
			grown = append(grown, base...)
			for i := range 600 {
				grown = append(grown, fmt.Sprintf("N%04d,New %d,333", i, i))
			}
			writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": syncCSV(base...)})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 400 {
				t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
			}
			writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(grown...)})
			killMidLoad(t, bin, srv, len(srv.Jobs()), os.Kill)
			stored := storedNew(srv)
			if stored == 0 || stored == 600 {
				t.Fatalf("the killed run stored %d of the 600 new keys; the test needs some, not all", stored)
			}
			if doubt := inDoubtFiles(t, stateURL); len(doubt) != 1 {
				t.Fatalf("files of keys in doubt after the kill: %v, want the killed run's", doubt)
			}

			if failing {
				if err := srv.SetFaults(salesforcetest.Faults{LockErrorRate: 1}); err != nil {
					t.Fatal(err)
				}
				code, rep := runReport(t, "p.yaml")
				srv.SetFaults(salesforcetest.Faults{})
				s := syncSummary(t, rep)
				// The new keys the killed run listed are sent as changed;
				// every one fails, and stays in the manifest.
				if code != exitPartial || rep.Counts.DeadLettered != 600 || !s.Committed || s.Changed != 600 || s.New != 0 || s.Failed != 600 {
					t.Fatalf("run with lock errors: exit %d, counts %+v, sync %+v", code, rep.Counts, s)
				}
				if got := storedNew(srv); got != stored {
					t.Fatalf("after the failing run %d new keys are stored, want the %d the killed run stored", got, stored)
				}
				writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(base...)})
			} else {
				writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(base...)})
				// plan says what the run will do with them.
				var out bytes.Buffer
				if code := runPlan(context.Background(), []string{"p.yaml", "--out", "planned"}, &out, &out); code != exitOK ||
					!strings.Contains(out.String(), "sync load: 0 new, 0 changed, 400 unchanged, 600 would be deleted, 600 keys in doubt among them") {
					t.Errorf("plan: exit %d\n%s", code, out.String())
				}
			}

			code, rep := runReport(t, "p.yaml")
			s := syncSummary(t, rep)
			if code != exitOK || rep.Status != pipeline.StatusSucceeded || !s.Committed || s.Missing != 600 || s.Deleted != 600 || s.DeleteFailed != 0 ||
				s.ManifestAfter != 400 {
				t.Fatalf("the run without the new keys: exit %d, status %s, counts %+v, sync %+v", code, rep.Status, rep.Counts, s)
			}
			if got := storedNew(srv); got != 0 {
				t.Errorf("%d records of keys that left the export are still in the org", got)
			}
			if n := len(srv.Records("Account")); n != 400 {
				t.Errorf("%d records in the org, want the export's 400", n)
			}
			if doubt := inDoubtFiles(t, stateURL); len(doubt) != 0 {
				t.Errorf("files of keys in doubt after a committed run: %v", doubt)
			}
			// Settled: the next run sends and deletes nothing.
			_, _, jobs := syncSent(t, srv, 0)
			code, rep = runReport(t, "p.yaml")
			up, del, _ := syncSent(t, srv, jobs)
			if s := syncSummary(t, rep); code != exitOK || len(up) != 0 || del != 0 || s.Unchanged != 400 {
				t.Errorf("the run after: exit %d, upserted %d, deleted %d, sync %+v", code, len(up), del, s)
			}
		})
	}
}

// storedNew counts srv's Accounts whose key is one of the test's new keys.
func storedNew(srv *salesforcetest.Server) int {
	n := 0
	for _, r := range srv.Records("Account") {
		if strings.HasPrefix(r["External_Id__c"], "N") {
			n++
		}
	}
	return n
}

// inDoubtFiles lists the files of keys in doubt of the test pipeline's
// stage "load" in the state store at stateURL("").
func inDoubtFiles(t *testing.T, stateURL func(key string) string) []string {
	t.Helper()
	loc, err := blobio.Parse("", stateURL("accounts-sync/sync/load.indoubt.*"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := blobio.List(context.Background(), loc)
	if errors.Is(err, blobio.ErrNoMatch) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Loc.String())
	}
	return out
}

// TestSeededMirrorKeysInDoubt: a seeded mirror's first run (the org holds
// the export's 400 keys; 600 are new) is SIGKILLed while it upserts the
// new keys. Its next run seeds again, since no manifest was committed, and
// drops from the manifest the records it finds whose key the export no
// longer has (the new keys left it): records bulkflow did not load, as
// far as a seed can tell. The first run listed its new keys, so the run
// after that, which is not seeded, deletes every record of theirs, and the
// org ends with the export's 400 keys.
func TestSeededMirrorKeysInDoubt(t *testing.T) {
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	var base, grown []string
	for i := range 400 {
		base = append(base, fmt.Sprintf("K%04d,Name %d,111", i, i))
		if _, err := srv.AddRecord("Account", map[string]string{"External_Id__c": fmt.Sprintf("K%04d", i), "Name": fmt.Sprintf("Name %d", i), "Phone": "111"}); err != nil {
			t.Fatal(err)
		}
	}
	grown = append(grown, base...)
	for i := range 600 {
		grown = append(grown, fmt.Sprintf("N%04d,New %d,333", i, i))
	}
	y := strings.Replace(syncPipeline(srv, "100%"), "      ledger: \"off\"\n", "      ledger: \"off\"\n      max_job_rows: 100\n      concurrency: 2\n", 1)
	y = strings.Replace(y, "sync: {mode: changed, key: External_Id__c, ", "sync: {mode: changed, key: External_Id__c, seed: salesforce, ", 1)
	writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": syncCSV(grown...)})
	killMidLoad(t, bin, srv, len(srv.Jobs()), os.Kill)
	stored := storedNew(srv)
	if stored == 0 || stored == 600 {
		t.Fatalf("the killed run stored %d of the 600 new keys; the test needs some, not all", stored)
	}
	local := func(key string) string { return filepath.Join("state", key) }
	if doubt := inDoubtFiles(t, local); len(doubt) != 1 {
		t.Fatalf("files of keys in doubt after the kill: %v, want the killed seeded run's", doubt)
	}

	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(base...)})
	code, rep := runReport(t, "p.yaml")
	if s := syncSummary(t, rep); code != exitOK || s.Seed == nil || !s.Committed || s.Deleted != 0 || storedNew(srv) != stored {
		t.Fatalf("the seeded run after the kill: exit %d, counts %+v, sync %+v, %d new keys stored (want %d)", code, rep.Counts, s, storedNew(srv), stored)
	}
	if doubt := inDoubtFiles(t, local); len(doubt) != 1 {
		t.Fatalf("files of keys in doubt after a seeded run: %v, want the killed run's still", doubt)
	}

	code, rep = runReport(t, "p.yaml")
	s := syncSummary(t, rep)
	if code != exitOK || s.Seed != nil || s.InDoubt != 600 || s.Missing != 600 || s.Deleted != 600 || s.ManifestAfter != 400 {
		t.Fatalf("the run after: exit %d, status %s, counts %+v, sync %+v", code, rep.Status, rep.Counts, s)
	}
	if got, n := storedNew(srv), len(srv.Records("Account")); got != 0 || n != 400 {
		t.Errorf("%d records of keys that left the export are still in the org (%d records, want 400)", got, n)
	}
	if doubt := inDoubtFiles(t, local); len(doubt) != 0 {
		t.Errorf("files of keys in doubt after a committed run: %v", doubt)
	}
}

// TestInsertMirrorKilledThenRunAgain: a mirror that inserts (keyed by
// AccountNumber, not unique, so a row inserted twice is two records) with
// its ledger on. Its run adding 400 keys is SIGKILLed mid-load; the next
// plain run resumes it. The resume adds the killed attempt's keys in doubt
// to its manifest, so they come back as changed rather than new: the same
// rows in the same chunks, which the ledger skips where they were loaded.
// Every key ends stored exactly once, the run after sends nothing, and a
// run whose export drops 200 of the new keys deletes exactly those.
func TestInsertMirrorKilledThenRunAgain(t *testing.T) {
	bin := buildBulkflow(t)
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	y := strings.Replace(insertSyncPipeline(srv, "{type: csv, url: data/accounts.csv}"), "sync: {mode: changed, key: AccountNumber, ",
		"sync: {mode: changed, key: AccountNumber, delete_missing: true, max_deletes: \"100%\", ", 1)
	row := func(i int) string { return fmt.Sprintf("K%06d,Name %d,111", i, i) }
	var base, grown []string
	want := map[string]int{}
	for i := range 1000 {
		if i < 600 {
			base = append(base, row(i))
		}
		grown = append(grown, row(i))
		want[fmt.Sprintf("K%06d 111", i)] = 1
	}
	writeFiles(t, map[string]string{"p.yaml": y, "data/accounts.csv": syncCSV(base...)})
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 600 {
		t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
	}
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(grown...)})
	runID := killRun(t, bin, srv, os.Kill)

	code, rep := runReport(t, "p.yaml")
	s := syncSummary(t, rep)
	if code != exitOK || rep.RunID != runID || rep.Status != pipeline.StatusSucceeded || !s.Committed || s.InDoubt != 400 || s.New != 0 ||
		s.Changed != 400 || s.Unchanged != 600 || rep.Counts.DeadLettered != 0 {
		t.Fatalf("the plain run after the kill: exit %d, run %s (killed %s), status %s, counts %+v, sync %+v", code, rep.RunID, runID, rep.Status, rep.Counts, s)
	}
	checkRecordCounts(t, srv, want)

	_, _, jobs := syncSent(t, srv, 0)
	code, rep = runReport(t, "p.yaml")
	if up, del, _ := syncSent(t, srv, jobs); code != exitOK || len(srv.Jobs()) != jobs || up != nil || del != 0 || syncSummary(t, rep).Unchanged != 1000 {
		t.Fatalf("the run after: exit %d, %d jobs, sync %+v", code, len(srv.Jobs())-jobs, syncSummary(t, rep))
	}

	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV(grown[:800]...)})
	code, rep = runReport(t, "p.yaml")
	if s := syncSummary(t, rep); code != exitOK || s.Missing != 200 || s.Deleted != 200 || s.ManifestAfter != 800 {
		t.Fatalf("the run without 200 keys: exit %d, sync %+v", code, s)
	}
	for i := 800; i < 1000; i++ {
		delete(want, fmt.Sprintf("K%06d 111", i))
	}
	checkRecordCounts(t, srv, want)
}
