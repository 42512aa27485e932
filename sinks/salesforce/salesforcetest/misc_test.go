package salesforcetest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

func TestRoutes(t *testing.T) {
	c := newTC(t, nil)
	r := c.expect(c.do("GET", "/services/data/nope", nil), 404)
	if r.String() != `[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]` {
		t.Errorf("404 body = %s", r)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Errorf("404 content type %q", ct)
	}
	c.expect(c.do("GET", "/totally/unknown", nil), 404)
	if li := c.do("GET", "/limits", nil, "Authorization", "Bearer nope").header.Get("Sforce-Limit-Info"); li == "" {
		t.Error("401 without Sforce-Limit-Info")
	}
	c.expect(c.do("GET", "/services/data/v99.0/limits", nil), 404)
	r = c.expect(c.do("PUT", "/jobs/ingest", nil), 405)
	if errorCode(t, r) != "METHOD_NOT_ALLOWED" {
		t.Errorf("405 body = %s", r)
	}
	r = c.expect(c.do("GET", "/limits", nil), 200)
	if li := r.header.Get("Sforce-Limit-Info"); !strings.HasPrefix(li, "api-usage=") || !strings.HasSuffix(li, "/100000") {
		t.Errorf("Sforce-Limit-Info = %q", li)
	}
	var limits map[string]struct{ Max, Remaining int64 }
	if err := json.Unmarshal(r.body, &limits); err != nil || limits["DailyApiRequests"].Max != 100000 || limits["DailyBulkApiBatches"].Max != 15000 {
		t.Errorf("limits = %s (%v)", r, err)
	}
	r = c.expect(c.do("GET", "/services/data/", nil, "Authorization", ""), 200)
	if !strings.Contains(r.String(), `{"label":"Winter '25","url":"/services/data/v62.0","version":"62.0"}`) {
		t.Errorf("versions = %s", r)
	}
	r = c.expect(c.do("GET", "/sobjects/Contact/describe", nil), 200)
	var d salesforcetest.ObjectDescribe
	if err := json.Unmarshal(r.body, &d); err != nil || d.Name != "Contact" || d.KeyPrefix != "003" {
		t.Fatalf("describe = %v %+v", err, d)
	}
	c.expect(c.do("GET", "/sobjects/Nope/describe", nil), 404)
	r = c.expect(c.do("GET", "/sobjects/User/"+c.srv.UserID(), nil), 200)
	if !strings.Contains(r.String(), `"Username":"integration@acme.example"`) {
		t.Errorf("user = %s", r)
	}
	c.expect(c.do("GET", "/sobjects/User/005Hs0000000zzzIAA", nil), 404)
	r = c.expect(c.do("GET", "/services/oauth2/userinfo", nil), 200)
	if !strings.Contains(r.String(), `"user_id":"`+c.srv.UserID()+`"`) {
		t.Errorf("userinfo = %s", r)
	}
	// Pretty printing.
	r = c.expect(c.do("GET", "/limits", nil, "X-PrettyPrint", "1"), 200)
	if !strings.HasPrefix(r.String(), "{\n  \"DailyApiRequests\" : {\n    \"Max\" : 100000,") {
		t.Errorf("pretty = %s", r)
	}
}

func TestListPaging(t *testing.T) {
	c := newTC(t, &salesforcetest.Options{ListPageSize: 2})
	for i := 0; i < 5; i++ {
		c.createJob(map[string]any{"object": "Account", "operation": "insert"})
	}
	seen := 0
	path := "/jobs/ingest"
	for pages := 0; ; pages++ {
		r := c.expect(c.do("GET", path, nil), 200)
		var page struct {
			Done           bool
			Records        []map[string]any
			NextRecordsURL *string
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		seen += len(page.Records)
		if page.Done {
			if page.NextRecordsURL != nil || pages != 2 {
				t.Errorf("last page %d next=%v", pages, page.NextRecordsURL)
			}
			break
		}
		path = *page.NextRecordsURL
		if !strings.HasPrefix(path, "/services/data/v62.0/jobs/ingest?") {
			t.Fatalf("nextRecordsUrl = %s", path)
		}
	}
	if seen != 5 {
		t.Errorf("saw %d jobs", seen)
	}
}

func TestQueryJob(t *testing.T) {
	c := newTC(t, nil)
	c.runJob(map[string]any{"object": "Account", "operation": "insert"}, "Name,External_Id__c,Industry\nAcme,A-1,Banking\nGlobex,A-2,Energy\nInitech,A-3,Banking\n")
	c.runJob(map[string]any{"object": "Contact", "operation": "insert"}, "LastName,Account.External_Id__c\nLovelace,A-1\n")
	r := c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": "query", "query": "SELECT Id, Name FROM Account WHERE Industry = 'banking'"}), 200)
	var ji struct{ ID, State string }
	json.Unmarshal(r.body, &ji)
	if ji.State != "UploadComplete" {
		t.Errorf("query create state %s", ji.State)
	}
	c.awaitTerminal(ji.ID)
	r = c.expect(c.do("GET", "/jobs/query/"+ji.ID+"/results?maxRecords=1", nil), 200)
	if r.header.Get("Sforce-NumberOfRecords") != "1" || r.header.Get("Sforce-Locator") == "null" {
		t.Errorf("page 1 headers %v", r.header)
	}
	if !strings.HasPrefix(r.String(), "\"Id\",\"Name\"\n\"001") {
		t.Errorf("page 1 = %q", r)
	}
	r = c.expect(c.do("GET", "/jobs/query/"+ji.ID+"/results?maxRecords=1&locator="+r.header.Get("Sforce-Locator"), nil), 200)
	if r.header.Get("Sforce-Locator") != "null" || !strings.Contains(r.String(), `"Initech"`) || !strings.HasPrefix(r.String(), "\"Id\",\"Name\"\n") {
		t.Errorf("page 2 = %q %v", r, r.header)
	}
	c.expect(c.do("GET", "/services/data/v63.0/jobs/query/"+ji.ID+"/results", nil), 409)
	r = c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": "query", "query": "SELECT Id, LastName, Account.Name FROM Contact"}), 200)
	json.Unmarshal(r.body, &ji)
	c.awaitTerminal(ji.ID)
	r = c.expect(c.do("GET", "/jobs/query/"+ji.ID+"/results", nil), 200)
	if !strings.Contains(r.String(), `"Lovelace","Acme"`) {
		t.Errorf("relationship query = %q", r)
	}
	r = c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": "query", "query": "SELECT Nope FROM Account"}), 400)
	if errorCode(t, r) != "INVALID_FIELD" {
		t.Errorf("bad field = %s", r)
	}
	c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": "query", "query": "SELECT Id FROM Nope"}), 400)
	r = c.expect(c.do("GET", "/jobs/query/"+ji.ID+"/resultPages", nil), 200)
	if !strings.Contains(r.String(), `"resultPages":[{"resultUrl":"/services/data/v62.0/jobs/query/`+ji.ID+`/results?maxRecords=50000"}],"nextRecordsUrl":null,"done":true`) {
		t.Errorf("resultPages = %s", r)
	}
	c.expect(c.do("DELETE", "/jobs/query/"+ji.ID, nil), 204)
	c.expect(c.do("GET", "/jobs/query/"+ji.ID, nil), 404)
}

func TestFaults(t *testing.T) {
	c := newTC(t, &salesforcetest.Options{Faults: salesforcetest.Faults{RequestLimitNext: 2}})
	for i := 0; i < 2; i++ {
		r := c.expect(c.do("GET", "/limits", nil), 403)
		if r.String() != `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]` {
			t.Errorf("403 body = %s", r)
		}
	}
	c.expect(c.do("GET", "/limits", nil), 200)

	// Admin endpoint: 5xx on every call, then back to normal.
	r := c.expect(c.do("POST", "/__emulator/faults", nil, "Content-Type", "application/json"), 400)
	_ = r
	req, _ := http.NewRequest("POST", c.srv.URL+"/__emulator/faults", strings.NewReader(`{"fail5xxRate":1,"processingDelay":"10ms"}`))
	res, err := c.srv.Client().Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("set faults: %v %v", err, res)
	}
	res.Body.Close()
	if f := c.srv.Faults(); f.FailRate5xx != 1 || f.ProcessingDelay != 10*time.Millisecond {
		t.Errorf("faults = %+v", f)
	}
	r = c.expect(c.do("GET", "/limits", nil), 503)
	if errorCode(t, r) != "SERVER_UNAVAILABLE" {
		t.Errorf("503 body %s", r)
	}
	if err := c.srv.SetFaults(salesforcetest.Faults{DropConnectionRate: 1}); err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", c.srv.URL+"/services/data/v62.0/limits", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	if res, err := c.srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Errorf("dropped connection answered %d", res.StatusCode)
	}
	if err := c.srv.SetFaults(salesforcetest.Faults{FailRate5xx: 2}); err == nil {
		t.Error("SetFaults accepted a rate of 2")
	}
	c.srv.SetFaults(salesforcetest.Faults{})
	c.expect(c.do("GET", "/limits", nil), 200)
	if n := c.srv.Requests()["GET /services/data/vXX.X/limits"]; n < 6 {
		t.Errorf("request counter = %d", n)
	}
}

func TestCompression(t *testing.T) {
	c := newTC(t, nil)
	id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, "Name\nGzipped\n")
	zw.Close()
	c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", buf.Bytes(), "Content-Encoding", "gzip"), 201)
	c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
	c.awaitTerminal(id)
	if recs := c.srv.Records("Account"); len(recs) != 1 || recs[0]["Name"] != "Gzipped" {
		t.Errorf("records = %v", recs)
	}
	id = c.createJob(map[string]any{"object": "Account", "operation": "insert"})
	r := c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "not gzip", "Content-Encoding", "gzip"), 400)
	if r.String() != `[{"errorCode":"API_ERROR","message":"Unable to decompress request body"}]` {
		t.Errorf("corrupt gzip = %s", r)
	}
	// Explicit Accept-Encoding: the transport does not decompress for us.
	r = c.expect(c.do("GET", "/limits", nil, "Accept-Encoding", "gzip"), 200)
	if r.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("response not gzipped: %v", r.header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); !bytes.HasPrefix(b, []byte(`{"DailyApiRequests"`)) {
		t.Errorf("gunzipped = %s", b)
	}
}

func TestLoadObjects(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "describe.json")
	desc := `{"sobjects":[{"name":"Legacy_Order__c","fields":[
	  {"name":"Id","type":"id","length":18,"nillable":false,"createable":false,"updateable":false},
	  {"name":"Name","type":"string","length":80,"nillable":true,"createable":true,"updateable":true},
	  {"name":"Order_No__c","type":"string","length":20,"nillable":false,"createable":true,"updateable":true,
	   "externalId":true,"idLookup":true,"unique":true,"relationshipName":null,"referenceTo":[]},
	  {"name":"Account__c","type":"reference","length":18,"nillable":true,"createable":true,"updateable":true,
	   "referenceTo":["Account"],"relationshipName":"Account__r"}]},
	 {"name":"Account","keyPrefix":"001","fields":[{"name":"Id","type":"id"},
	  {"name":"Name","type":"string","length":255,"createable":true,"updateable":true},
	  {"name":"Ext__c","type":"string","length":20,"nillable":true,"createable":true,"updateable":true,"externalId":true,"idLookup":true}]}]}`
	if err := os.WriteFile(path, []byte(desc), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := salesforcetest.LoadObjects(path)
	if err != nil {
		t.Fatal(err)
	}
	c := newTC(t, &salesforcetest.Options{Objects: objs})
	if _, err := c.srv.AddRecord("Account", map[string]string{"Name": "Acme", "Ext__c": "E1"}); err != nil {
		t.Fatal(err)
	}
	id := c.runJob(map[string]any{"object": "Legacy_Order__c", "operation": "upsert", "externalIdFieldName": "Order_No__c"},
		"Order_No__c,Name,Account__r.Ext__c\nO-1,First,E1\n,Second,E1\nO-3,Third,E9\n")
	ji, _ := c.srv.Job(id)
	if ji.State != "JobComplete" || ji.NumberRecordsFailed != 2 {
		t.Errorf("job = %+v", ji)
	}
	recs := c.srv.Records("legacy_order__c")
	if len(recs) != 1 || !strings.HasPrefix(recs[0]["Id"], "a0") || !strings.HasPrefix(recs[0]["Account__c"], "001") {
		t.Errorf("records = %v", recs)
	}
	if _, err := salesforcetest.ParseObjects([]byte(`"x"`)); err == nil {
		t.Error("ParseObjects accepted a string")
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	s, err := salesforcetest.NewHandler(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, addr := range []string{":0", "0.0.0.0:0", "192.0.2.1:0"} {
		if ln, err := s.Listen(addr); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded", addr)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	res, err := http.Get(s.URL + "/services/data/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestCountersGrowWhileInProgress(t *testing.T) {
	c := newTC(t, &salesforcetest.Options{ProcessingRate: 20000, BatchSize: 1000})
	id := c.createJob(map[string]any{"object": "Account", "operation": "insert"})
	c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\n"+strings.Repeat("x\n", 2000)), 201)
	c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
	if err := c.srv.AwaitJobState(t.Context(), id, "InProgress"); err != nil {
		t.Fatal(err)
	}
	var mid int64 = -1
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for mid <= 0 {
		r := c.expect(c.do("GET", "/jobs/ingest/"+id, nil), 200)
		var ji struct {
			State                  string
			NumberRecordsProcessed int64
		}
		json.Unmarshal(r.body, &ji)
		if ji.State != "InProgress" {
			break
		}
		mid = ji.NumberRecordsProcessed
		if ctx.Err() != nil {
			t.Fatal("timeout")
		}
	}
	if ji := c.awaitTerminal(id); ji.NumberRecordsProcessed != 2000 {
		t.Errorf("final processed = %d", ji.NumberRecordsProcessed)
	}
	if mid <= 0 || mid >= 2000 {
		t.Logf("mid-flight counter %d (timing dependent)", mid)
	}
}

// TestRecordsFromRowsThenUpdated covers records inserted verbatim from
// upload rows (they point at the row) and then updated, nulled and
// upserted: every read path must see the same values as for copied ones.
func TestRecordsFromRowsThenUpdated(t *testing.T) {
	c := newTC(t, nil)
	id := c.runJob(map[string]any{"object": "Account", "operation": "insert"},
		"Name,AccountNumber,External_Id__c,Active__c\nA,1,e1,true\nB,,e2,TRUE\n")
	r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil), 200)
	var ids []string
	for _, line := range strings.Split(string(r.body), "\n")[1:] {
		ids = append(ids, strings.Trim(strings.Split(line, ",")[0], `"`))
	}
	recs := c.srv.Records("Account")
	if len(recs) != 2 || recs[0]["Name"] != "A" || recs[0]["AccountNumber"] != "1" || recs[0]["Active__c"] != "true" ||
		recs[1]["Name"] != "B" || recs[1]["Active__c"] != "true" || len(recs[1]) != 4 {
		t.Fatalf("after insert: %v", recs)
	}
	c.runJob(map[string]any{"object": "Account", "operation": "update"},
		"Id,AccountNumber,Name\n"+ids[0]+",#N/A,A2\n"+ids[1]+",22,\n")
	c.runJob(map[string]any{"object": "Account", "operation": "upsert", "externalIdFieldName": "External_Id__c"},
		"External_Id__c,Name\ne2,B3\ne3,C\n")
	recs = c.srv.Records("Account")
	want := []map[string]string{
		{"Id": ids[0], "Name": "A2", "External_Id__c": "e1", "Active__c": "true"},
		{"Id": ids[1], "Name": "B3", "AccountNumber": "22", "External_Id__c": "e2", "Active__c": "true"},
	}
	if len(recs) != 3 || !reflect.DeepEqual(recs[:2], want) || recs[2]["Name"] != "C" {
		t.Fatalf("after update and upsert:\n got %v\nwant %v + C", recs, want)
	}
	g := c.expect(c.do("GET", "/sobjects/Account/"+ids[1], nil), 200)
	if !strings.Contains(string(g.body), `"AccountNumber":"22"`) || !strings.Contains(string(g.body), `"Name":"B3"`) {
		t.Errorf("GET record: %s", g.body)
	}
}

// TestResultIDOfGivenIDRecord: a job that updates a record whose id was
// given rather than generated (the seeded integration user) reports that
// id in its successful results, in natural and in shuffled order, and
// the records of the same job that got generated ids keep theirs.
func TestResultIDOfGivenIDRecord(t *testing.T) {
	for _, shuffle := range []bool{false, true} {
		c := newTC(t, &salesforcetest.Options{ShuffleResults: shuffle})
		id := c.runJob(map[string]any{"object": "User", "operation": "upsert", "externalIdFieldName": "Id"},
			"Id,FirstName,LastName,Username,Email\n,Ada,Lovelace,ada@x.example,ada@x.example\n"+
				salesforcetest.DefaultUserID+",Integ,User,,\n,Alan,Turing,alan@x.example,alan@x.example\n")
		got := string(c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil), 200).body)
		var ids []string
		for _, rec := range c.srv.Records("User") {
			if rec["FirstName"] != "Integ" {
				ids = append(ids, rec["Id"])
			}
		}
		for _, want := range []string{
			`"` + salesforcetest.DefaultUserID + `","false","` + salesforcetest.DefaultUserID + `","Integ","User","",""`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("shuffle %v: successfulResults lack the row %s:\n%s", shuffle, want, got)
			}
		}
		if len(ids) != 2 {
			t.Fatalf("shuffle %v: records %v", shuffle, c.srv.Records("User"))
		}
		for _, want := range ids {
			if !strings.Contains(got, `"`+want+`","true"`) {
				t.Errorf("shuffle %v: successfulResults lack the inserted record %s:\n%s", shuffle, want, got)
			}
		}
	}
}
