package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestIncrementalLookbackCatchesLateRows: an export whose cursor is
// stamped when a transaction begins gets rows that commit after a run has
// read past their stamp (A3 below, stamped 10:03, shows up only after the
// run that read up to 10:05). A plain incremental run never reads it: its
// watermark is already past it, and the run says succeeded. With lookback
// the run reads the last minutes again: the late row is loaded, the rows
// read again are filtered by the sync's manifest (nothing is sent twice),
// and the watermark only moves forward.
func TestIncrementalLookbackCatchesLateRows(t *testing.T) {
	for _, lookback := range []string{"", "5m"} {
		t.Run("lookback="+lookback, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			inc := incrementalOn("updated_at", lookback)
			p := syncPipelineOf("late", "{type: csv, url: data/accounts.csv, columns: {updated_at: timestamp}}\n    "+inc, `
      External_Id__c: id
      Name: name`, srv, "")
			csvOf := func(rows ...string) string { return "id,name,updated_at\n" + strings.Join(rows, "\n") + "\n" }
			writeFiles(t, map[string]string{"p.yaml": p, "data/accounts.csv": csvOf("A1,Ada,2026-03-04T10:00:00Z", "A2,Bob,2026-03-04T10:05:00Z")})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 2 {
				t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
			}
			// A3 committed late with an earlier stamp; A4 is new.
			writeFiles(t, map[string]string{"data/accounts.csv": csvOf("A1,Ada,2026-03-04T10:00:00Z", "A2,Bob,2026-03-04T10:05:00Z",
				"A3,Cy,2026-03-04T10:03:00Z", "A4,Di,2026-03-04T10:10:00Z")})
			code, rep := runReport(t, "p.yaml")
			if code != exitOK {
				t.Fatalf("run 2: exit %d %+v", code, rep.Counts)
			}
			keys := accountKeys(srv)
			ir := rep.Incremental["read"]
			if lookback == "" {
				// The hazard, as it stands without a lookback.
				if !slices.Equal(keys, []string{"A1", "A2", "A4"}) || rep.Counts.Filtered != 3 {
					t.Fatalf("without lookback: records %v, counts %+v; want A3 never read", keys, rep.Counts)
				}
				return
			}
			// Read from 10:00 (10:05 less 5m): A2 again (unchanged: filtered
			// by the sync), A3 and A4 loaded; A1 filtered by the cursor.
			if !slices.Equal(keys, []string{"A1", "A2", "A3", "A4"}) || rep.Counts.Loaded != 2 || rep.Counts.Filtered != 2 {
				t.Fatalf("records %v, counts %+v; want A3 and A4 loaded, A1 and A2 filtered", keys, rep.Counts)
			}
			if upserted, _, _ := syncSent(t, srv, 1); !slices.Equal(upserted, []string{"A3", "A4"}) {
				t.Errorf("run 2 sent %v, want A3 and A4 only", upserted)
			}
			if ir == nil || ir.After != "2026-03-04T10:05:00Z" || ir.From != "2026-03-04T10:00:00Z" || ir.Max != "2026-03-04T10:10:00Z" || !ir.Committed {
				t.Errorf("report incremental %+v", ir)
			}
			// Run 3, nothing new: the watermark stays at 10:10, nothing is sent.
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 0 || rep.Incremental["read"].Committed || rep.Incremental["read"].After != "2026-03-04T10:10:00Z" {
				t.Fatalf("run 3: exit %d %+v %+v", code, rep.Counts, rep.Incremental["read"])
			}
		})
	}
}

// TestPostgresLookbackLateCommit: the late row of
// TestIncrementalLookbackCatchesLateRows made by a real PostgreSQL
// transaction: A2's updated_at defaults to now(), the time its transaction
// began, and it commits only after a run has read A3, stamped later. Read
// without a lookback A2 is never loaded; with one the next run loads it,
// through the source's pushed-down WHERE (updated_at > watermark less the
// lookback).
func TestPostgresLookbackLateCommit(t *testing.T) {
	base := pgTestURL(t)
	for _, lookback := range []string{"", "1m"} {
		t.Run("lookback="+lookback, func(t *testing.T) {
			ctx := context.Background()
			admin := pgTestSchema(t, base, "lookback_", "CREATE TABLE accounts (id text PRIMARY KEY, name text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()); "+
				"INSERT INTO accounts (id, name) VALUES ('A1', 'Ada')")
			late, err := pgx.Connect(ctx, os.Getenv("BULKFLOW_PG_URL"))
			if err != nil {
				t.Fatal(err)
			}
			defer late.Close(ctx)
			tx, err := late.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, "INSERT INTO accounts (id, name) VALUES ('A2', 'Bob')"); err != nil { // stamped now: its transaction's start
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			if _, err := admin.Exec(ctx, "INSERT INTO accounts (id, name) VALUES ('A3', 'Cy')"); err != nil { // stamped later, committed at once
				t.Fatal(err)
			}

			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			inc := incrementalOn("updated_at", lookback)
			writeFiles(t, map[string]string{"p.yaml": syncPipelineOf("pg-late",
				`{type: postgres, url: "${BULKFLOW_PG_URL}", query: "SELECT id, name, updated_at FROM accounts"}`+"\n    "+inc,
				" {External_Id__c: id, Name: name}", srv, "")})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 2 {
				t.Fatalf("run 1: exit %d %+v; want A1 and A3 (A2 is not committed)", code, rep.Counts)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			code, rep := runReport(t, "p.yaml")
			if code != exitOK {
				t.Fatalf("run 2: exit %d %+v", code, rep.Counts)
			}
			keys := accountKeys(srv)
			want := []string{"A1", "A2", "A3"}
			if lookback == "" {
				want = []string{"A1", "A3"} // the hazard: A2 is below the watermark for good
			}
			if !slices.Equal(keys, want) {
				t.Fatalf("records %v after run 2 (%+v), want %v", keys, rep.Counts, want)
			}
		})
	}
}

// incrementalOn is a source stage's incremental: line on cursor, with the
// lookback unless it is "".
func incrementalOn(cursor, lookback string) string {
	if lookback == "" {
		return fmt.Sprintf("incremental: {cursor: %s}", cursor)
	}
	return fmt.Sprintf("incremental: {cursor: %s, lookback: %s}", cursor, lookback)
}

// accountKeys returns the External_Id__c of every Account in srv, sorted.
func accountKeys(srv *salesforcetest.Server) []string { return accountField(srv, "External_Id__c") }

// TestIncrementalLookbackInsertKilledThenResumed: a lookback re-reads rows
// already inserted, which must never be inserted again. An insert keyed by
// AccountNumber (not unique: a second insert is a second record) reads an
// export by an int cursor (seq) with lookback 50. Run 2's export adds
// rows committed late (new keys with seq inside the lookback), changes
// some rows inside it, and adds new rows past it; run 2 is SIGKILLed or
// Ctrl-C'd mid-load and resumed. The emulator must then hold every row
// sent exactly once: each first-run row once, one more record per changed
// row (an insert of a changed key is a new record, as before), one per
// late and new row, none for the unchanged rows read again; the resume
// succeeds, and a further run inserts nothing.
func TestIncrementalLookbackInsertKilledThenResumed(t *testing.T) {
	bin := buildBulkflow(t)
	for _, sig := range []os.Signal{os.Kill, os.Interrupt} {
		t.Run(fmt.Sprint(sig), func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			writeFiles(t, map[string]string{"p.yaml": insertSyncPipeline(srv,
				"{type: csv, url: data/accounts.csv, columns: {seq: int}}\n    "+incrementalOn("seq", "50"))})
			row := func(i, seq int, phone string) string { return fmt.Sprintf("K%06d,Name %d,%s,%d", i, i, phone, seq) }
			csvOf := func(rows []string) string { return "id,name,phone,seq\n" + strings.Join(rows, "\n") + "\n" }
			want := map[string]int{}
			var first []string
			for i := range 1000 { // seq 0..999: the watermark becomes 999
				first = append(first, row(i, i, "111"))
				want[fmt.Sprintf("K%06d 111", i)] = 1
			}
			writeFiles(t, map[string]string{"data/accounts.csv": csvOf(first)})
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 1000 {
				t.Fatalf("run 1: exit %d %+v", code, rep.Counts)
			}
			second := slices.Clone(first)
			for i := 955; i < 960; i++ { // changed inside the lookback (seq > 949)
				second[i] = row(i, i, "222")
				want[fmt.Sprintf("K%06d 222", i)] = 1
			}
			for i := 5000; i < 5020; i++ { // committed late: new keys, seq 960..979
				second = append(second, row(i, i-5000+960, "333"))
				want[fmt.Sprintf("K%06d 333", i)] = 1
			}
			for i := 1000; i < 2200; i++ { // new, past the watermark
				second = append(second, row(i, i, "444"))
				want[fmt.Sprintf("K%06d 444", i)] = 1
			}
			writeFiles(t, map[string]string{"data/accounts.csv": csvOf(second)})
			code, rep, stderr := killThenResume(t, bin, srv, sig)
			if code != exitOK || rep.Status != pipeline.StatusSucceeded || !rep.Counts.Balanced() || rep.Counts.DeadLettered != 0 ||
				rep.Incremental["read"] == nil || rep.Incremental["read"].From != "949" || !rep.Incremental["read"].Committed {
				t.Fatalf("resume: exit %d, status %s, counts %+v, incremental %+v\n%s", code, rep.Status, rep.Counts, rep.Incremental["read"], stderr)
			}
			checkRecordCounts(t, srv, want)
			total := len(srv.Records("Account"))
			if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 0 || len(srv.Records("Account")) != total {
				t.Errorf("the run after: exit %d, counts %+v, records %d -> %d", code, rep.Counts, total, len(srv.Records("Account")))
			}
		})
	}
}
