package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestPostgresSyncKeyOrder syncs integer keys read from PostgreSQL twice,
// changing 10 of 1,200 rows in between, as the README advises: ordered by
// the key's text in byte order (ORDER BY id::text COLLATE "C") the second
// run is diffed as it is read; ordered by the integer it is merged, and
// the report says where the order broke. Both send the same 10 rows.
func TestPostgresSyncKeyOrder(t *testing.T) {
	base := pgTestURL(t)
	ctx := context.Background()
	admin := pgTestSchema(t, base, "keyorder_", "CREATE TABLE ids (id int PRIMARY KEY, name text NOT NULL); "+
		"INSERT INTO ids SELECT i, 'name ' || i FROM generate_series(1, 1200) i")

	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	pipe := func(name, order string) string {
		return syncPipelineOf(name, fmt.Sprintf(`{type: postgres, url: "${BULKFLOW_PG_URL}", query: %q}`, "SELECT id, name FROM ids ORDER BY "+order),
			" {External_Id__c: id, Name: name}", srv, "log: out/sync-log/")
	}
	writeFiles(t, map[string]string{"text.yaml": pipe("by-text", `id::text COLLATE "C"`), "int.yaml": pipe("by-int", "id")})
	for _, file := range []string{"text.yaml", "int.yaml"} {
		if code, rep := runReport(t, file); code != exitOK || rep.Counts.Loaded != 1200 {
			t.Fatalf("%s run 1: exit %d %+v", file, code, rep.Counts)
		}
	}
	if _, err := admin.Exec(ctx, "UPDATE ids SET name = name || ' (new)' WHERE id % 120 = 7"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, unordered string }{
		{"text.yaml", ""},
		{"int.yaml", `row 10: key "10" after "9"`},
	} {
		code, rep := runReport(t, tc.file)
		s := syncSummary(t, rep)
		if code != exitOK || s.Changed != 10 || s.Unchanged != 1190 || s.Loaded != 10 || s.InKeyOrder != (tc.unordered == "") || s.NotInKeyOrder != tc.unordered {
			t.Errorf("%s run 2: exit %d, sync %+v; want 10 changed, walked %v, not_in_key_order %q", tc.file, code, s, tc.unordered == "", tc.unordered)
		}
	}
}
