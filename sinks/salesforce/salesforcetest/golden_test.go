package salesforcetest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

const contractCSV = "Legacy_Id__c,FirstName,LastName,Email,Account.Legacy_Id__c,Birthdate\n" +
	"C-0001,Ada,Lovelace,ada@example.com,A-100,1815-12-10\n" +
	"C-0002,Alan,Turing,alan@example.com,A-100,#N/A\n" +
	"C-0003,Grace,,grace@example.com,A-100,\n"

// contractServer returns a server seeded like the contract's examples: an
// Account with Legacy_Id__c A-100 and an existing Contact C-0001.
func contractServer(t *testing.T, clock *testClock, faults salesforcetest.Faults) (*tc, string) {
	t.Helper()
	c := newTC(t, &salesforcetest.Options{Clock: clock.now, Faults: faults})
	if _, err := c.srv.AddRecord("Account", map[string]string{"Name": "Analytical Engines Ltd", "Legacy_Id__c": "A-100"}); err != nil {
		t.Fatal(err)
	}
	existing, err := c.srv.AddRecord("Contact", map[string]string{"LastName": "Lovelace", "Legacy_Id__c": "C-0001"})
	if err != nil {
		t.Fatal(err)
	}
	return c, existing
}

func readContract(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var volatileJSON = regexp.MustCompile(`"(systemModstamp|numberRecordsProcessed|numberRecordsFailed|totalProcessingTime|apiActiveProcessingTime)" : [^,\n]+`)

func normalizeVolatile(s string) string { return volatileJSON.ReplaceAllString(s, `"$1" : X`) }

// TestContractExamples compares the emulator's bytes with the examples
// copied verbatim from the contract (testdata/contract_*), replacing only
// generated ids (and, for GET, the counters and timings).
func TestContractExamples(t *testing.T) {
	clock := newTestClock("2025-03-04T10:15:02Z")
	c, existing := contractServer(t, clock, salesforcetest.Faults{})
	pp := []string{"X-PrettyPrint", "1"}
	r := c.expect(c.do("POST", "/jobs/ingest", map[string]any{"object": "Contact", "operation": "upsert",
		"externalIdFieldName": "Legacy_Id__c", "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"}, pp...), 200)
	id := regexp.MustCompile(`"id" : "(750\w{15})"`).FindStringSubmatch(string(r.body))[1]
	fix := strings.NewReplacer(id, "750Hs00000KqZ3mIAF", existing, "003Hs00000LmNoPIAV")
	if got, want := fix.Replace(r.String()), readContract(t, "contract_create.json"); got != want {
		t.Errorf("create:\n got %s\nwant %s", got, want)
	}
	c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", contractCSV), 201)
	clock.set("2025-03-04T10:15:04Z")
	r = c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}, pp...), 200)
	if got, want := fix.Replace(r.String()), readContract(t, "contract_close.json"); got != want {
		t.Errorf("close:\n got %s\nwant %s", got, want)
	}
	c.awaitTerminal(id)
	r = c.expect(c.do("GET", "/jobs/ingest/"+id, nil, pp...), 200)
	if got, want := normalizeVolatile(fix.Replace(r.String())), normalizeVolatile(readContract(t, "contract_get.json")); got != want {
		t.Errorf("get:\n got %s\nwant %s", got, want)
	}
	recs := c.srv.Records("Contact")
	if len(recs) != 2 {
		t.Fatalf("Records(Contact) = %v, want 2 records", recs)
	}
	created := recs[1]["Id"]
	fix = strings.NewReplacer(id, "750Hs00000KqZ3mIAF", existing, "003Hs00000LmNoPIAV", created, "003Hs00000LmNoQIAV")
	r = c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil), 200)
	if got, want := fix.Replace(r.String()), readContract(t, "contract_successful.csv"); got != want {
		t.Errorf("successfulResults:\n got %q\nwant %q", got, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=UTF-8" {
		t.Errorf("results Content-Type = %q", ct)
	}
	r = c.expect(c.do("GET", "/jobs/ingest/"+id+"/failedResults", nil), 200)
	if got, want := r.String(), readContract(t, "contract_failed.csv"); got != want {
		t.Errorf("failedResults:\n got %q\nwant %q", got, want)
	}

	// Unprocessed rows: fail the job after 3 rows of 4.
	c2, _ := contractServer(t, clock, salesforcetest.Faults{FailJobAfterRows: 3})
	id2 := c2.runJob(map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "Legacy_Id__c"},
		contractCSV+"C-0004,Edsger,Dijkstra,ewd@example.com,A-200,1930-05-11\n")
	r = c2.expect(c2.do("GET", "/jobs/ingest/"+id2+"/unprocessedrecords", nil), 200)
	if got, want := r.String(), readContract(t, "contract_unprocessed.csv"); got != want {
		t.Errorf("unprocessedrecords:\n got %q\nwant %q", got, want)
	}
}

// TestGolden pins the emulator's default (compact) wire bytes.
func TestGolden(t *testing.T) {
	clock := newTestClock("2025-03-04T10:15:02Z")
	c, _ := contractServer(t, clock, salesforcetest.Faults{FailJobAfterRows: 3})
	req := map[string]any{"object": "Contact", "operation": "upsert", "externalIdFieldName": "Legacy_Id__c"}
	r := c.expect(c.do("POST", "/jobs/ingest", req), 200)
	golden(t, "create.json", r.body)
	id := c.srv.Jobs()[0].ID
	r = c.expect(c.do("GET", "/jobs/ingest/"+id, nil), 200)
	golden(t, "get_open.json", r.body)
	c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", contractCSV+"C-0004,Edsger,Dijkstra,ewd@example.com,A-200,1930-05-11\n"), 201)
	clock.set("2025-03-04T10:15:04Z")
	r = c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
	golden(t, "close.json", r.body)
	c.awaitTerminal(id)
	r = c.expect(c.do("GET", "/jobs/ingest/"+id, nil), 200)
	golden(t, "get_failed.json", r.body)
	r = c.expect(c.do("GET", "/jobs/ingest", nil), 200)
	golden(t, "list.json", r.body)
	for _, kind := range []string{"successfulResults", "failedResults", "unprocessedrecords"} {
		r = c.expect(c.do("GET", "/jobs/ingest/"+id+"/"+kind, nil), 200)
		golden(t, kind+".csv", r.body)
	}

	// Error bodies, one per line.
	var errs strings.Builder
	add := func(name string, r resp) {
		fmt.Fprintf(&errs, "%s %d %s\n", name, r.status, r.body)
	}
	add("not_found", c.do("GET", "/jobs/ingest/750Hs0000000099AAA", nil))
	add("abort_completed", c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "Aborted"}))
	add("bad_operation", c.do("POST", "/jobs/ingest", map[string]any{"object": "Account", "operation": ""}))
	add("bad_object", c.do("POST", "/jobs/ingest", map[string]any{"object": "Nope", "operation": "insert"}))
	add("bad_extid", c.do("POST", "/jobs/ingest", map[string]any{"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"}))
	open := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
	add("early_results", c.do("GET", "/jobs/ingest/"+open+"/successfulResults", nil))
	add("delete_open", c.do("DELETE", "/jobs/ingest/"+open, nil))
	c.expect(c.do("PUT", "/jobs/ingest/"+open+"/batches", "Name\nx\n"), 201)
	add("second_put", c.do("PUT", "/jobs/ingest/"+open+"/batches", "Name\nx\n"))
	add("bad_state", c.do("PATCH", "/jobs/ingest/"+open, map[string]string{"state": "Closed"}))
	c.token = "bogus"
	add("invalid_session", c.do("GET", "/jobs/ingest", nil))
	golden(t, "errors.txt", []byte(errs.String()))
}
