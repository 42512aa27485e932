package salesforcetest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// collectionServer returns a server with Account A-100 (Legacy_Id__c) and
// Contact C-0001, and the ids of both.
func collectionServer(t *testing.T) (*tc, string, string) {
	t.Helper()
	c := newTC(t, &salesforcetest.Options{Clock: newTestClock("2025-03-04T10:15:02Z").now})
	a, err := c.srv.AddRecord("Account", map[string]string{"Name": "Analytical Engines Ltd", "Legacy_Id__c": "A-100", "External_Id__c": "E-100"})
	if err != nil {
		t.Fatal(err)
	}
	con, err := c.srv.AddRecord("Contact", map[string]string{"LastName": "Lovelace", "Legacy_Id__c": "C-0001"})
	if err != nil {
		t.Fatal(err)
	}
	return c, a, con
}

// TestCollectionsGolden sends each request of the collections contract's
// cases and compares request and answer with testdata/collections_*.txt
// (go test -run TestCollectionsGolden -update rewrites them). Ids are the
// emulator's deterministic ones; {ACCOUNT} and {CONTACT} stand for the
// seeded records.
func TestCollectionsGolden(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"create_mixed", "POST", "/composite/sobjects", `{"allOrNone":false,"records":[` +
			`{"attributes":{"type":"Account"},"Name":"example.com","NumberOfEmployees":27},` +
			`{"attributes":{"type":"Contact"},"LastName":"Johnson","Account":{"Legacy_Id__c":"A-100"}},` +
			`{"attributes":{"type":"Contact"},"FirstName":"NoLastName"},` +
			`{"attributes":{"type":"Contact"},"LastName":"X","Nope__c":"y"},` +
			`{"attributes":{"type":"Contact"},"LastName":"X","Account.Legacy_Id__c":"A-100"}]}`, 200},
		{"create_all_or_none", "POST", "/composite/sobjects/", `{"allOrNone":true,"records":[` +
			`{"attributes":{"type":"Account"},"Name":"Rolled back"},` +
			`{"attributes":{"type":"Account"},"NumberOfEmployees":"many"}]}`, 200},
		{"update", "PATCH", "/composite/sobjects", `{"allOrNone":false,"records":[` +
			`{"attributes":{"type":"Contact"},"id":"{CONTACT}","Title":"Lead Engineer","Birthdate":null},` +
			`{"attributes":{"type":"Contact"},"Title":"no id"},` +
			`{"attributes":{"type":"Contact"},"id":"001000000000000AAA","Title":"wrong prefix"}]}`, 200},
		{"upsert", "PATCH", "/composite/sobjects/Contact/Legacy_Id__c", `{"allOrNone":false,"records":[` +
			`{"attributes":{"type":"Contact"},"Legacy_Id__c":"C-0001","LastName":"Lovelace","Account":{"Legacy_Id__c":"A-100"}},` +
			`{"attributes":{"type":"Contact"},"Legacy_Id__c":"C-0002","LastName":"Turing","Birthdate":null},` +
			`{"attributes":{"type":"Contact"},"Legacy_Id__c":"C-0003","LastName":"Dup"},` +
			`{"attributes":{"type":"Contact"},"Legacy_Id__c":"C-0003","LastName":"Dup again"},` +
			`{"attributes":{"type":"Contact"},"LastName":"No key"}]}`, 200},
		{"upsert_wrong_type", "PATCH", "/composite/sobjects/Contact/Legacy_Id__c", `{"records":[{"attributes":{"type":"Account"},"Name":"x"}]}`, 400},
		{"upsert_bad_field", "PATCH", "/composite/sobjects/Contact/LastName", `{"records":[{"attributes":{"type":"Contact"},"LastName":"x"}]}`, 404},
		{"delete", "DELETE", "/composite/sobjects?ids={ACCOUNT}%2C001000000000000AAA%2Cbad&allOrNone=false", "", 200},
		{"no_records", "POST", "/composite/sobjects", `{"records":[]}`, 400},
		{"missing_records", "POST", "/composite/sobjects", `{"allOrNone":false}`, 400},
		{"no_type", "POST", "/composite/sobjects", `{"records":[{"Name":"x"}]}`, 400},
		{"bad_json", "POST", "/composite/sobjects", `{"records":[`, 400},
		{"eleven_chunks", "POST", "/composite/sobjects", `{"records":[` + strings.Repeat(
			`{"attributes":{"type":"Account"},"Name":"a"},{"attributes":{"type":"Contact"},"LastName":"c"},`, 5) +
			`{"attributes":{"type":"Account"},"Name":"a"}]}`, 400},
		{"old_version", "POST", "/services/data/v41.0/composite/sobjects", `{"records":[{"attributes":{"type":"Account"},"Name":"a"}]}`, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, account, contact := collectionServer(t)
			fix := strings.NewReplacer("{ACCOUNT}", account, "{CONTACT}", contact)
			unfix := strings.NewReplacer(account, "{ACCOUNT}", contact, "{CONTACT}")
			var body any
			if tt.body != "" {
				body = []byte(fix.Replace(tt.body))
			}
			r := c.expect(c.do(tt.method, fix.Replace(tt.path), body, "Content-Type", "application/json"), tt.status)
			wire := fmt.Sprintf("%s %s\n%s\n\n%d\n%s\n", tt.method, tt.path, tt.body, r.status, unfix.Replace(string(r.body)))
			golden(t, "collections_"+tt.name+".txt", []byte(wire))
		})
	}
}

// TestCollectionsRecords checks the store after the requests: rollback,
// order, limits and the delete recycle bin.
func TestCollectionsRecords(t *testing.T) {
	c, account, _ := collectionServer(t)
	c.expect(c.do("POST", "/composite/sobjects", []byte(`{"allOrNone":true,"records":[`+
		`{"attributes":{"type":"Account"},"Name":"Rolled back"},{"attributes":{"type":"Account"}}]}`), "Content-Type", "application/json"), 200)
	c.expect(c.do("PATCH", "/composite/sobjects", []byte(`{"allOrNone":true,"records":[`+
		`{"attributes":{"type":"Account"},"id":"`+account+`","Name":"Renamed"},{"attributes":{"type":"Account"},"Name":"no id"}]}`),
		"Content-Type", "application/json"), 200)
	recs := c.srv.Records("Account")
	if len(recs) != 1 || recs[0]["Name"] != "Analytical Engines Ltd" {
		t.Fatalf("accounts after two rolled-back requests = %v", recs)
	}
	// The rolled-back update left the external id indexed: an upsert finds it.
	r := c.expect(c.do("PATCH", "/composite/sobjects/Account/Legacy_Id__c", []byte(`{"records":[`+
		`{"attributes":{"type":"Account"},"Legacy_Id__c":"A-100","Name":"Again"}]}`), "Content-Type", "application/json"), 200)
	if !strings.Contains(r.String(), `"created":false`) || !strings.Contains(r.String(), account) {
		t.Fatalf("upsert after rollback = %s", r)
	}
	var sb strings.Builder
	sb.WriteString(`{"records":[`)
	for i := range 201 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"attributes":{"type":"Account"},"Name":"n%d"}`, i)
	}
	sb.WriteString(`]}`)
	r = c.expect(c.do("POST", "/composite/sobjects", []byte(sb.String()), "Content-Type", "application/json"), 400)
	if !strings.Contains(r.String(), "EXCEEDED_ID_LIMIT") {
		t.Errorf("201 records: %s", r)
	}
	body200 := strings.Replace(sb.String(), `,{"attributes":{"type":"Account"},"Name":"n200"}`, "", 1)
	r = c.expect(c.do("POST", "/composite/sobjects", []byte(body200), "Content-Type", "application/json"), 200)
	if got := strings.Count(r.String(), `"success":true`); got != 200 {
		t.Errorf("200 records: %d successes", got)
	}
	if n := len(c.srv.Records("Account")); n != 201 {
		t.Errorf("accounts = %d, want 201", n)
	}
	c.srv.SetCollectionFaults(salesforcetest.CollectionFaults{MaxBodyBytes: 100})
	c.expect(c.do("POST", "/composite/sobjects", []byte(body200), "Content-Type", "application/json"), 413)
	c.expect(c.do("DELETE", "/composite/sobjects?ids="+account+","+account, nil), 200)
	c.expect(c.do("DELETE", "/composite/sobjects?ids="+account, nil), 200)
	if n := len(c.srv.DeletedRecords("Account")); n != 1 {
		t.Errorf("deleted = %d, want 1 (a duplicate id in one request fails both rows)", n)
	}
}

// TestCollectionsRetrieve: GET and POST retrieve answer one element per id
// in order, null for deleted, unknown or other objects' ids.
func TestCollectionsRetrieve(t *testing.T) {
	c, account, contact := collectionServer(t)
	gone, err := c.srv.AddRecord("Account", map[string]string{"Name": "Gone"})
	if err != nil {
		t.Fatal(err)
	}
	c.expect(c.do("DELETE", "/composite/sobjects?ids="+gone, nil), 200)
	want := `[{"attributes":{"type":"Account","url":"/services/data/v62.0/sobjects/Account/` + account + `"},` +
		`"Id":"` + account + `","Name":"Analytical Engines Ltd","NumberOfEmployees":null},null,null,null]`
	for _, r := range []resp{
		c.expect(c.do("GET", "/composite/sobjects/Account?ids="+account+"%2C"+gone+","+contact+",bad&fields=id,name,numberofemployees", nil), 200),
		c.expect(c.do("POST", "/composite/sobjects/Account", []byte(`{"ids":["`+account+`","`+gone+`","`+contact+`","bad"],"fields":["id","name","numberofemployees"]}`),
			"Content-Type", "application/json"), 200),
	} {
		if r.String() != want {
			t.Errorf("retrieve\n got %s\nwant %s", r, want)
		}
	}
	r := c.expect(c.do("GET", "/composite/sobjects/Account?ids="+account+"&fields=Nope__c", nil), 400)
	if !strings.Contains(r.String(), "INVALID_FIELD") {
		t.Errorf("bad field: %s", r)
	}
	c.expect(c.do("GET", "/composite/sobjects/Account?ids="+strings.Repeat(account+",", 900)+"&fields=Id", nil), 414)
	many := `{"ids":[` + strings.Repeat(`"`+account+`",`, 2000) + `"` + account + `"],"fields":["Id"]}`
	c.expect(c.do("POST", "/composite/sobjects/Account", []byte(many), "Content-Type", "application/json"), 400)
}
