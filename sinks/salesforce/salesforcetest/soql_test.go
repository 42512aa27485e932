package salesforcetest_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// query runs soql as a query (or queryAll) job and returns its results
// read page by page with maxRecords, each page's header dropped but the
// first.
func (c *tc) query(op, soql string, maxRecords string) (string, int) {
	c.t.Helper()
	r := c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": op, "query": soql}), 200)
	var ji struct{ ID string }
	json.Unmarshal(r.body, &ji)
	if j := c.awaitTerminal(ji.ID); j.State != "JobComplete" {
		c.t.Fatalf("%s: job %s", soql, j.State)
	}
	var out strings.Builder
	pages, loc := 0, ""
	for {
		path := "/jobs/query/" + ji.ID + "/results?maxRecords=" + maxRecords
		if loc != "" {
			path += "&locator=" + loc
		}
		r := c.expect(c.do("GET", path, nil), 200)
		body := r.String()
		if pages > 0 {
			_, body, _ = strings.Cut(body, "\n")
		}
		out.WriteString(body)
		pages++
		if loc = r.header.Get("Sforce-Locator"); loc == "null" {
			return out.String(), pages
		}
	}
}

// TestSOQLSubset runs the WHERE, ORDER BY and LIMIT forms the emulator
// answers against a small Account table, over HTTP, paging by 2.
func TestSOQLSubset(t *testing.T) {
	clock := newTestClock("2026-01-01T00:00:00Z")
	c := newTC(t, &salesforcetest.Options{Clock: clock.now})
	c.runJob(map[string]any{"object": "Account", "operation": "insert"},
		"Name,Industry,NumberOfEmployees,AnnualRevenue,SLAExpirationDate__c\n"+
			"Acme,Banking,10,100.5,2026-02-01\n"+
			"acme widgets,Energy,200,,2026-03-01\n"+
			"Globex,Energy,,5000,\n"+
			"Initech,Retail,50,70,2026-01-15\n"+
			"Umbrella,,7,9,\n")
	tests := []struct{ soql, want string }{
		{"SELECT Name FROM Account WHERE Name LIKE 'acme%'", "Acme|acme widgets"},
		{"SELECT Name FROM Account WHERE Name LIKE '_lobex'", "Globex"},
		{"SELECT Name FROM Account WHERE Industry IN ('Energy', 'retail')", "acme widgets|Globex|Initech"},
		{"SELECT Name FROM Account WHERE Industry NOT IN ('Energy') AND Industry != null", "Acme|Initech"},
		{"SELECT Name FROM Account WHERE Industry = null", "Umbrella"},
		{"SELECT Name FROM Account WHERE (Industry = 'Energy' OR Industry = 'Retail') AND NOT Name LIKE '%widgets'", "Globex|Initech"},
		{"SELECT Name FROM Account WHERE NumberOfEmployees > 9 AND NumberOfEmployees <= 50", "Acme|Initech"},
		{"SELECT Name FROM Account WHERE AnnualRevenue >= 100.5", "Acme|Globex"},
		{"SELECT Name FROM Account WHERE SLAExpirationDate__c < 2026-02-01", "Initech"},
		{"SELECT Name FROM Account ORDER BY NumberOfEmployees DESC", "acme widgets|Initech|Acme|Umbrella|Globex"},
		{"SELECT Name FROM Account ORDER BY NumberOfEmployees ASC NULLS LAST LIMIT 3", "Umbrella|Acme|Initech"},
		{"SELECT Name FROM Account ORDER BY Industry, Name DESC", "Umbrella|Acme|Globex|acme widgets|Initech"},
		{"SELECT Name FROM Account WHERE Name != 'Acme' LIMIT 2", "acme widgets|Globex"},
	}
	for _, tc := range tests {
		t.Run(tc.soql, func(t *testing.T) {
			c.t = t
			body, _ := c.query("query", tc.soql, "2")
			lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
			if lines[0] != `"Name"` {
				t.Fatalf("header %q", lines[0])
			}
			var names []string
			for _, l := range lines[1:] {
				names = append(names, strings.Trim(l, `"`))
			}
			if got := strings.Join(names, "|"); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSOQLErrors: malformed queries get 400 at create with the contract's
// error codes.
func TestSOQLErrors(t *testing.T) {
	c := newTC(t, nil)
	tests := []struct{ soql, code, msg string }{
		{"SELECT Name FROM Account WHERE (Name = 'a'", "MALFORMED_QUERY", "unexpected end of query"},
		{"SELECT Name FROM Account WHERE Name IN 'a'", "MALFORMED_QUERY", "unexpected token: ''a'"},
		{"SELECT Name FROM Account WHERE Name > null", "MALFORMED_QUERY", "unexpected token: 'null'"},
		{"SELECT Name FROM Account ORDER BY Nope", "INVALID_FIELD", "No such column 'Nope' on entity 'Account'"},
		{"SELECT Name FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY", "unterminated string"},
		{"SELECT Name FROM Account LIMIT x", "MALFORMED_QUERY", "unexpected token: 'x'"},
		{"SELECT Name FROM Account LIMIT", "MALFORMED_QUERY", "unexpected end of query"},
		{"SELECT Account.Nope.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship 'Nope' in field path"},
		{"SELECT Nope.Name FROM Contact", "INVALID_FIELD", "No such column 'Nope.Name' on entity 'Contact'"},
		{"SELECT Account.Parent.Parent.Parent.Parent.Parent.Name FROM Contact", "MALFORMED_QUERY", "at most 5 levels of relationships"},
		// What Bulk API 2.0 queries do not support (contract §6).
		{"SELECT Name FROM Account WHERE Name = 'a' GROUP BY Name", "API_ERROR", "GROUP is not supported by Bulk API 2.0 query jobs"},
		{"SELECT Name FROM Account LIMIT 5 OFFSET 10", "API_ERROR", "OFFSET is not supported"},
		{"SELECT COUNT() FROM Account", "API_ERROR", "COUNT() is not supported"},
		{"SELECT Industry, COUNT(Id) FROM Account", "API_ERROR", "COUNT() is not supported"},
		{"SELECT TYPEOF What WHEN Account THEN Name END FROM Task", "API_ERROR", "TYPEOF is not supported"},
		{"SELECT Name, (SELECT LastName FROM Contacts) FROM Account", "API_ERROR",
			"Aggregate Relationships not supported in Bulk V2 Query with CSV content type."},
	}
	for _, tc := range tests {
		t.Run(tc.soql, func(t *testing.T) {
			c.t = t
			r := c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": "query", "query": tc.soql}), 400)
			var errs []struct{ ErrorCode, Message string }
			if err := json.Unmarshal(r.body, &errs); err != nil || len(errs) != 1 {
				t.Fatalf("body %s", r)
			}
			if errs[0].ErrorCode != tc.code || !strings.Contains(errs[0].Message, tc.msg) {
				t.Errorf("got %s: %s, want %s containing %q", errs[0].ErrorCode, errs[0].Message, tc.code, tc.msg)
			}
		})
	}
}

// TestSystemModstampAndQueryAll: every write moves SystemModstamp;
// queryAll returns deleted records with IsDeleted true, query does not.
func TestSystemModstampAndQueryAll(t *testing.T) {
	clock := newTestClock("2026-01-01T00:00:00Z")
	c := newTC(t, &salesforcetest.Options{Clock: clock.now})
	c.runJob(map[string]any{"object": "Account", "operation": "insert"}, "Name,External_Id__c\nA,x1\nB,x2\nC,x3\n")
	clock.set("2026-01-02T00:00:00Z")
	c.runJob(map[string]any{"object": "Account", "operation": "upsert", "externalIdFieldName": "External_Id__c"}, "External_Id__c,Rating\nx2,Hot\n")
	recs := c.srv.Records("Account")
	clock.set("2026-01-03T00:00:00Z")
	c.runJob(map[string]any{"object": "Account", "operation": "delete"}, "Id\n"+recs[2]["Id"]+"\n")

	body, _ := c.query("query", "SELECT Name, SystemModstamp FROM Account ORDER BY Name", "2")
	want := "\"Name\",\"SystemModstamp\"\n\"A\",\"2026-01-01T00:00:00.000Z\"\n\"B\",\"2026-01-02T00:00:00.000Z\"\n"
	if body != want {
		t.Errorf("query =\n%s\nwant\n%s", body, want)
	}
	body, _ = c.query("query", "SELECT Name FROM Account WHERE SystemModstamp > 2026-01-01T12:00:00.000Z", "2")
	if body != "\"Name\"\n\"B\"\n" {
		t.Errorf("SystemModstamp filter = %q", body)
	}
	body, pages := c.query("queryAll", "SELECT Name, IsDeleted, SystemModstamp FROM Account", "1")
	want = "\"Name\",\"IsDeleted\",\"SystemModstamp\"\n\"A\",\"false\",\"2026-01-01T00:00:00.000Z\"\n" +
		"\"B\",\"false\",\"2026-01-02T00:00:00.000Z\"\n\"C\",\"true\",\"2026-01-03T00:00:00.000Z\"\n"
	if body != want || pages != 3 {
		t.Errorf("queryAll in %d pages =\n%s\nwant 3 pages of\n%s", pages, body, want)
	}
}

// TestSOQLRelationships: child-to-parent fields in SELECT, WHERE and
// ORDER BY, over one and two relationships; a record without the parent
// (or whose parent has no value) gives an empty cell.
func TestSOQLRelationships(t *testing.T) {
	c := newTC(t, nil)
	add := func(object string, rec map[string]string) string {
		t.Helper()
		id, err := c.srv.AddRecord(object, rec)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	owner := add("User", map[string]string{"Username": "ada@example.com", "LastName": "Byron", "FirstName": "Ada", "Email": "ada@example.com"})
	holding := add("Account", map[string]string{"Name": "Holding", "OwnerId": owner})
	acme := add("Account", map[string]string{"Name": "Acme", "ParentId": holding, "OwnerId": owner})
	lone := add("Account", map[string]string{"Name": "Lone"})
	add("Contact", map[string]string{"LastName": "A", "AccountId": acme})
	add("Contact", map[string]string{"LastName": "B", "AccountId": lone})
	add("Contact", map[string]string{"LastName": "C"})
	add("Contact", map[string]string{"LastName": "D", "AccountId": holding})
	tests := []struct{ soql, want string }{
		{"SELECT LastName, Account.Name, Account.Parent.Name, Account.Owner.LastName FROM Contact",
			`"LastName","Account.Name","Account.Parent.Name","Account.Owner.LastName"` + "\n" +
				`"A","Acme","Holding","Byron"` + "\n" + `"B","Lone","",""` + "\n" + `"C","","",""` + "\n" + `"D","Holding","","Byron"` + "\n"},
		{"SELECT LastName FROM Contact WHERE Account.Parent.Name = 'Holding'", `"LastName"` + "\n" + `"A"` + "\n"},
		{"SELECT LastName FROM Contact WHERE account.name != null AND Account.Owner.LastName = null", `"LastName"` + "\n" + `"B"` + "\n"},
		{"SELECT LastName, Account.Name FROM Contact ORDER BY Account.Name DESC NULLS LAST LIMIT 3",
			`"LastName","Account.Name"` + "\n" + `"B","Lone"` + "\n" + `"D","Holding"` + "\n" + `"A","Acme"` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.soql, func(t *testing.T) {
			c.t = t
			if body, _ := c.query("query", tc.soql, "3"); body != tc.want {
				t.Errorf("got\n%s\nwant\n%s", body, tc.want)
			}
		})
	}
}

// TestQueryPaging: maxRecords pages with Sforce-Locator and
// Sforce-NumberOfRecords, locators reusable, LIMIT across pages, the
// header on every page (a 0-record page too), and the 400s for a bad
// locator or maxRecords.
func TestQueryPaging(t *testing.T) {
	c := newTC(t, nil)
	for i := range 5 {
		if _, err := c.srv.AddRecord("Account", map[string]string{"Name": fmt.Sprintf("P%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	job := func(soql string) string {
		r := c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": "query", "query": soql}), 200)
		var ji struct{ ID string }
		json.Unmarshal(r.body, &ji)
		if j := c.awaitTerminal(ji.ID); j.State != "JobComplete" {
			t.Fatalf("%s: %s", soql, j.State)
		}
		return ji.ID
	}
	page := func(id, params string) (body, n, loc string) {
		t.Helper()
		r := c.expect(c.do("GET", "/jobs/query/"+id+"/results?"+params, nil), 200)
		return r.String(), r.header.Get("Sforce-NumberOfRecords"), r.header.Get("Sforce-Locator")
	}
	id := job("SELECT Name FROM Account")
	var bodies, counts []string
	loc := ""
	for range 4 {
		params := "maxRecords=2"
		if loc != "" {
			params += "&locator=" + loc
		}
		body, n, next := page(id, params)
		bodies, counts = append(bodies, body), append(counts, n)
		if loc = next; loc == "null" {
			break
		}
	}
	want := []string{"\"Name\"\n\"P0\"\n\"P1\"\n", "\"Name\"\n\"P2\"\n\"P3\"\n", "\"Name\"\n\"P4\"\n"}
	if strings.Join(bodies, "|") != strings.Join(want, "|") || strings.Join(counts, ",") != "2,2,1" || loc != "null" {
		t.Errorf("pages %q, counts %v, last locator %q; want %q, 2,2,1, null", bodies, counts, loc, want)
	}
	_, _, loc2 := page(id, "maxRecords=2")
	again, _, _ := page(id, "maxRecords=2&locator="+loc2)
	if again2, _, _ := page(id, "maxRecords=2&locator="+loc2); again != want[1] || again2 != want[1] {
		t.Errorf("a locator read twice: %q then %q, want %q", again, again2, want[1])
	}
	// Without maxRecords the server's page size (50,000 by default) holds all.
	if body, n, next := page(id, ""); n != "5" || next != "null" || strings.Count(body, "\n") != 6 {
		t.Errorf("default page: %d lines, %s records, locator %s", strings.Count(body, "\n"), n, next)
	}
	for _, bad := range []struct{ params, code string }{
		{"locator=bm9wZQ", "INVALIDLOCATOR"}, // base64 of "nope"
		{"locator=OTk5", "INVALIDLOCATOR"},   // 999: past the end
		{"locator=%21%21", "INVALIDLOCATOR"}, // not base64
		{"maxRecords=0", "API_ERROR"},
		{"maxRecords=ten", "API_ERROR"},
	} {
		if r := c.expect(c.do("GET", "/jobs/query/"+id+"/results?"+bad.params, nil), 400); errorCode(t, r) != bad.code {
			t.Errorf("%s: %s, want %s", bad.params, r, bad.code)
		}
	}

	// LIMIT across pages, LIMIT 0 and an empty result: the header alone.
	if body, pages := c.query("query", "SELECT Name FROM Account LIMIT 3", "2"); body != "\"Name\"\n\"P0\"\n\"P1\"\n\"P2\"\n" || pages != 2 {
		t.Errorf("LIMIT 3 in %d pages: %q", pages, body)
	}
	for _, soql := range []string{"SELECT Name FROM Account LIMIT 0", "SELECT Name FROM Account WHERE Name = 'none'"} {
		body, n, next := page(job(soql), "maxRecords=2")
		if body != "\"Name\"\n" || n != "0" || next != "null" {
			t.Errorf("%s: %q, %s records, locator %s; want the header alone, 0, null", soql, body, n, next)
		}
	}
}

// TestSystemModstampPerChunk: an ingest job's records are applied in
// chunks, each one transaction whose records share its SystemModstamp (as
// Salesforce stamps a transaction's records with its commit time); later
// chunks are stamped later. The clock here moves on at every reading, so
// a stamp taken per record would give every record its own.
func TestSystemModstampPerChunk(t *testing.T) {
	clock := newTestClock("2026-01-01T00:00:00Z")
	ticking := func() time.Time {
		now := clock.now()
		clock.ns.Add(int64(time.Millisecond))
		return now
	}
	c := newTC(t, &salesforcetest.Options{Clock: ticking})
	var csv strings.Builder
	csv.WriteString("Name,External_Id__c\n")
	for i := range 4500 {
		fmt.Fprintf(&csv, "N%d,x%05d\n", i, i)
	}
	c.runJob(map[string]any{"object": "Account", "operation": "insert"}, csv.String())
	body, _ := c.query("query", "SELECT External_Id__c, SystemModstamp FROM Account ORDER BY External_Id__c", "10000")
	lines := strings.Split(strings.TrimSpace(body), "\n")[1:]
	if len(lines) != 4500 {
		t.Fatalf("%d records, want 4500", len(lines))
	}
	var runs []int // lengths of the runs of one stamp, in key (= insertion) order
	prev := ""
	for _, line := range lines {
		stamp := line[strings.IndexByte(line, ',')+1:]
		switch {
		case stamp == prev:
			runs[len(runs)-1]++
			continue
		case stamp < prev:
			t.Fatalf("stamp %s after %s: a later chunk stamped earlier", stamp, prev)
		}
		runs = append(runs, 1)
		prev = stamp
	}
	if want := []int{2000, 2000, 500}; !slices.Equal(runs, want) {
		t.Errorf("records per SystemModstamp %v, want %v (one stamp per 2,000-record chunk)", runs, want)
	}
}
