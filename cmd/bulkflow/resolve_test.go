package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/changes"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// manifestEntry is a row of syncPipeline's export as a run loaded it, and
// the record id the run recorded ("" when it recorded none).
type manifestEntry struct{ id, name, phone, recordID string }

// writeManifest replaces the manifest of syncPipeline's stage load (in
// the working directory's state/) with one holding entries, written with
// the changes package as a run that loaded those rows would write it:
// the same hashes, and the record ids given. An entry without one is what
// a resumed run (whose ledger skipped the row) or an operator's settle
// leaves.
func writeManifest(t *testing.T, entries ...manifestEntry) {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, "state/", "accounts-sync")
	if err != nil {
		t.Fatal(err)
	}
	schema := pipeline.MustSchema(pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString},
		pipeline.Field{Name: "Name", Type: pipeline.TypeString}, pipeline.Field{Name: "Phone", Type: pipeline.TypeString})
	d, err := changes.NewDiffer(schema, "External_Id__c", changes.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, e := range entries {
		if err := d.Add(pipeline.Row{e.id, e.name, e.phone}, pipeline.Origin{Object: "test", Row: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Diff(ctx, nil, func(changes.Op, string, pipeline.Row, pipeline.Origin, string) error { return nil },
		func(string, pipeline.Row, pipeline.Origin) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := d.Outcome(e.id, changes.OpNew, true, e.recordID); err != nil {
			t.Fatal(err)
		}
	}
	w, err := blobio.NewWriter(ctx, syncer.ManifestLocation(st, "load"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(ctx, nil, w, false); err != nil {
		w.Abort()
		w.Close()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// accountIDs returns srv's Accounts as External_Id__c → Id.
func accountIDs(srv *salesforcetest.Server) map[string]string {
	ids := map[string]string{}
	for _, r := range srv.Records("Account") {
		ids[r["External_Id__c"]] = r["Id"]
	}
	return ids
}

// TestSyncMirrorResolvesKeysWithoutID: a mirror's missing key whose
// record id the manifest does not hold is looked up by the sync key with
// a query job and its record deleted; a key no record holds counts as
// deleted (the run succeeds and drops it). When the lookup fails (the
// query job fails) the deletes fail: the run is partial, the records and
// the keys stay, and the next run deletes them. Before, such keys failed
// every run with "no Salesforce id is known for this key".
func TestSyncMirrorResolvesKeysWithoutID(t *testing.T) {
	srv := startMirror(t) // A1-A3 loaded, ids in the manifest
	ids := accountIDs(srv)
	// A2's id is not known, A8 was never stored; both leave the export.
	writeManifest(t, manifestEntry{"A1", "Ada", "111", ids["A1"]}, manifestEntry{"A2", "Bob", "222", ""},
		manifestEntry{"A3", "Cy", "333", ids["A3"]}, manifestEntry{"A8", "Hal", "888", ""})
	writeFiles(t, map[string]string{"data/accounts.csv": syncCSV("A1,Ada,111", "A3,Cy,333")})
	before := len(srv.Jobs())
	code, rep := runReport(t, "p.yaml")
	s := syncSummary(t, rep)
	if code != exitOK || rep.Status != pipeline.StatusSucceeded || s.Unchanged != 2 || s.Missing != 2 || s.Deleted != 2 ||
		s.DeleteFailed != 0 || s.ManifestAfter != 2 || rep.SyncDeletesFailed != nil {
		t.Fatalf("run 2: exit %d, status %s, sync %+v, deletes failed %v; want A2 and A8 deleted", code, rep.Status, s, rep.SyncDeletesFailed)
	}
	if got := accountIDs(srv); len(got) != 2 || got["A1"] != ids["A1"] || got["A3"] != ids["A3"] {
		t.Errorf("records after run 2: %v; want A1 and A3", got)
	}
	if d := srv.DeletedRecords("Account"); len(d) != 1 || d[0]["Id"] != ids["A2"] {
		t.Errorf("deleted records %v; want A2's", d)
	}
	var queries []string
	for _, j := range srv.Jobs()[before:] {
		if j.Query {
			queries = append(queries, j.SOQL)
		}
	}
	if want := "SELECT Id, External_Id__c FROM Account WHERE External_Id__c IN ('A2', 'A8')"; !slices.Equal(queries, []string{want}) {
		t.Errorf("query jobs %q; want one: %s", queries, want)
	}

	// A4 and A5 are in the org, their ids not known; the query job fails.
	for _, k := range []string{"A4", "A5"} {
		if _, err := srv.AddRecord("Account", map[string]string{"Name": k, "External_Id__c": k}); err != nil {
			t.Fatal(err)
		}
	}
	writeManifest(t, manifestEntry{"A1", "Ada", "111", ids["A1"]}, manifestEntry{"A3", "Cy", "333", ids["A3"]},
		manifestEntry{"A4", "Di", "444", ""}, manifestEntry{"A5", "Ed", "555", ""})
	if err := srv.SetFaults(salesforcetest.Faults{FailJobAfterRows: 1}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code = runRun(context.Background(), []string{"p.yaml", "--progress", "none", "--report", "out/run.json"}, &stdout, &stderr)
	rep = *readReport(t, "out/run.json")
	s = syncSummary(t, rep)
	if code != exitPartial || rep.Status != pipeline.StatusPartial || s.Deleted != 0 || s.DeleteFailed != 2 || s.ManifestAfter != 4 ||
		rep.SyncDeletesFailed["load"] != 2 || !strings.Contains(stderr.String(), "load: 2 deletes failed") {
		t.Fatalf("run 3 (query job fails): exit %d, status %s, sync %+v, deletes failed %v; want partial with A4 and A5 kept\n%s",
			code, rep.Status, s, rep.SyncDeletesFailed, stderr.String())
	}
	t.Logf("run 3:\n%s", stderr.String())
	if got := accountIDs(srv); len(got) != 4 {
		t.Errorf("records after run 3: %v; want A1, A3, A4 and A5", got)
	}
	if strings.Contains(stderr.String(), srv.AccessToken()) {
		t.Errorf("the access token is in the output:\n%s", stderr.String())
	}

	// Run 4, the query job runs: A4 and A5 are deleted, their keys dropped.
	if err := srv.SetFaults(salesforcetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	code, rep = runReport(t, "p.yaml")
	if s := syncSummary(t, rep); code != exitOK || s.Deleted != 2 || s.DeleteFailed != 0 || s.ManifestAfter != 2 {
		t.Fatalf("run 4: exit %d, sync %+v; want A4 and A5 deleted", code, s)
	}
	if got := accountIDs(srv); len(got) != 2 || got["A1"] == "" || got["A3"] == "" {
		t.Errorf("records after run 4: %v; want A1 and A3", got)
	}
}
