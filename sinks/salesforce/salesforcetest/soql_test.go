package salesforcetest_test

import (
	"encoding/json"
	"strings"
	"testing"

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
		{"SELECT Name FROM Account WHERE Name = 'a' GROUP BY Name", "MALFORMED_QUERY", "unexpected token: 'GROUP'"},
		{"SELECT Name FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY", "unterminated string"},
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
