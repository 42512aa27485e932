package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// rawQueryPages runs soql as a query job with plain HTTP (not the client)
// and returns its result pages (maxRecords per page) as served.
func rawQueryPages(t *testing.T, srv *salesforcetest.Server, op, soql string, maxRecords int) [][]byte {
	t.Helper()
	base := srv.URL + "/services/data/v62.0/jobs/query"
	call := func(method, url, body string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.AccessToken())
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := call("POST", base, fmt.Sprintf(`{"operation":%q,"query":%q}`, op, soql))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := string(b[strings.Index(string(b), `"id":"`)+6:][:18])
	if err := srv.AwaitJobState(t.Context(), id, "JobComplete"); err != nil {
		t.Fatal(err)
	}
	var pages [][]byte
	loc := ""
	for {
		url := fmt.Sprintf("%s/%s/results?maxRecords=%d", base, id, maxRecords)
		if loc != "" {
			url += "&locator=" + loc
		}
		resp := call("GET", url, "")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("results: %d %s", resp.StatusCode, b)
		}
		pages = append(pages, b)
		if loc = resp.Header.Get("Sforce-Locator"); loc == "null" {
			return pages
		}
	}
}

// TestQueryCommand: `bulkflow query` writes what a query job for the same
// SOQL returns, byte for byte: the first page whole, later pages without
// the header they repeat; to stdout and to a file; queryAll with
// --all-rows; bad SOQL fails with Salesforce's error.
func TestQueryCommand(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	for i := range 25 {
		rec := map[string]string{"Name": fmt.Sprintf("Acct %02d, \"quoted\"", i), "NumberOfEmployees": fmt.Sprint(i * 3)}
		if i%4 == 0 {
			rec["Description"] = "line one\nline two"
		}
		if _, err := srv.AddRecord("Account", rec); err != nil {
			t.Fatal(err)
		}
	}
	recs := srv.Records("Account")
	if _, err := srv.AddRecord("Account", map[string]string{"Name": "gone"}); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--instance-url", srv.URL, "--token", srv.AccessToken()}
	soql := "SELECT Id, Name, NumberOfEmployees, Description FROM Account WHERE Name LIKE 'Acct%' ORDER BY NumberOfEmployees DESC"
	want := func(op string) string {
		var b bytes.Buffer
		for i, p := range rawQueryPages(t, srv, op, soql, 7) {
			if i > 0 {
				p = p[bytes.IndexByte(p, '\n')+1:]
			}
			b.Write(p)
		}
		return b.String()
	}
	wantQuery := want("query")
	if n := strings.Count(wantQuery, "\"Acct "); n != 25 {
		t.Fatalf("the reference pages hold %d records, want 25", n)
	}

	var stdout, stderr bytes.Buffer
	if code := realMain(append([]string{"query", soql, "--max-records", "7"}, conn...), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.String() != wantQuery {
		t.Errorf("stdout differs from the job's pages:\n%s\nwant\n%s", stdout.String(), wantQuery)
	}
	if !strings.Contains(stderr.String(), "25 records") {
		t.Errorf("stderr = %q, want the record count", stderr.String())
	}

	// To a file, with the default page size (one page).
	out := filepath.Join(t.TempDir(), "accounts.csv")
	stdout.Reset()
	stderr.Reset()
	if code := realMain(append([]string{"query", "--out", out, soql}, conn...), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got, _ := os.ReadFile(out); string(got) != wantQuery || stdout.Len() != 0 {
		t.Errorf("file = %q (stdout %q), want %q", got, stdout.String(), wantQuery)
	}

	// The connection of an export pipeline's salesforce source.
	pf := filepath.Join(t.TempDir(), "export.yaml")
	os.WriteFile(pf, []byte(fmt.Sprintf("name: export\nstages:\n  - name: read\n    source: {type: salesforce, instance_url: %s, auth: {access_token: %q}, object: Account, fields: [Id]}\n"+
		"  - name: write\n    inputs: [read]\n    sink: {type: csv, url: out.csv}\n", srv.URL, srv.AccessToken())), 0o600)
	stdout.Reset()
	stderr.Reset()
	if code := realMain([]string{"query", "--pipeline", pf, "--max-records", "7", soql}, &stdout, &stderr); code != exitOK || stdout.String() != wantQuery {
		t.Errorf("--pipeline with a salesforce source: exit %d, stderr %q, output equal: %v", code, stderr.String(), stdout.String() == wantQuery)
	}

	// queryAll sees a deleted record.
	deleteRecords(t, srv, recs[0]["Id"])
	stdout.Reset()
	realMain(append([]string{"query", "--all-rows", "--max-records", "7", soql}, conn...), &stdout, &stderr)
	if got := stdout.String(); got != want("queryAll") || !strings.Contains(got, recs[0]["Id"]) {
		t.Errorf("--all-rows output does not hold the deleted record %s:\n%s", recs[0]["Id"], got)
	}

	// Bad SOQL.
	stderr.Reset()
	if code := realMain(append([]string{"query", "SELECT Nope FROM Account"}, conn...), &stdout, &stderr); code != exitFailed ||
		!strings.Contains(stderr.String(), "INVALID_FIELD: No such column 'Nope'") {
		t.Errorf("bad SOQL: exit %d, stderr %q", code, stderr.String())
	}
	// A job that ends Failed writes nothing and exits 1.
	srv.SetFaults(salesforcetest.Faults{FailJobAfterRows: 3})
	stderr.Reset()
	failed := filepath.Join(t.TempDir(), "failed.csv")
	if code := realMain(append([]string{"query", "--out", failed, soql}, conn...), &stdout, &stderr); code != exitFailed ||
		!strings.Contains(stderr.String(), "ended Failed after 3 records") {
		t.Errorf("failed job: exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(failed); !os.IsNotExist(err) {
		t.Errorf("a failed job left %s (%v)", failed, err)
	}
	if code := realMain([]string{"query"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("no query: exit %d, want %d", code, exitUsage)
	}
}

// deleteRecords deletes ids with a delete ingest job (plain HTTP).
func deleteRecords(t *testing.T, srv *salesforcetest.Server, ids ...string) {
	t.Helper()
	base := srv.URL + "/services/data/v62.0/jobs/ingest"
	do := func(method, url, ctype, body string) []byte {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.AccessToken())
		req.Header.Set("Content-Type", ctype)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
		return b
	}
	b := do("POST", base, "application/json", `{"object":"Account","operation":"delete"}`)
	id := string(b[strings.Index(string(b), `"id":"`)+6:][:18])
	do("PUT", base+"/"+id+"/batches", "text/csv", "Id\n"+strings.Join(ids, "\n")+"\n")
	do("PATCH", base+"/"+id, "application/json", `{"state":"UploadComplete"}`)
	if err := srv.AwaitJobState(t.Context(), id, "JobComplete"); err != nil {
		t.Fatal(err)
	}
}
