package salesforcetest_test

import (
	"encoding/csv"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// readResults parses a result CSV into header and rows.
func readResults(t *testing.T, body []byte) ([]string, [][]string) {
	t.Helper()
	if len(body) == 0 {
		return nil, nil
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatalf("parse result CSV %q: %v", body, err)
	}
	return rows[0], rows[1:]
}

func TestRowValidation(t *testing.T) {
	const acct = "001Hs0000000001IAA" // first Account id in a fresh server
	cases := []struct {
		name    string
		object  string
		op      string
		extID   string
		csv     string
		wantErr string // sf__Error of the single row; "" = success
	}{
		{"required missing", "Contact", "insert", "", "FirstName,LastName\nAda,\n",
			"REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"},
		{"required null", "Contact", "insert", "", "FirstName,LastName\nAda,#N/A\n",
			"REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"},
		{"two required", "Lead", "insert", "", "FirstName\nAda\n",
			"REQUIRED_FIELD_MISSING:Required fields are missing: [LastName, Company]:LastName,Company --"},
		{"string too long", "Contact", "insert", "", "LastName\n" + strings.Repeat("X", 81) + "\n",
			"STRING_TOO_LONG:Last Name: data value too large: " + strings.Repeat("X", 81) + " (max length=80):LastName --"},
		{"bad date", "Opportunity", "insert", "", "Name,StageName,External_Id__c,CloseDate\nBig,Prospecting,O-1,2003-04-987654321987654321\n",
			"INVALID_FIELD:Failed to deserialize field at col 3. Due to, '2003-04-987654321987654321' is not a valid value for the type xsd:date:CloseDate --"},
		{"date-only datetime", "Account", "insert", "", "Last_Sync__c,Name\n2018-09-28,A\n",
			"INVALID_FIELD:Failed to deserialize field at col 0. Due to, '2018-09-28' is not a valid value for the type xsd:dateTime:Last_Sync__c --"},
		{"good datetime", "Account", "insert", "", "Name,Last_Sync__c\nA,2025-03-04T12:15:02.000+02:00\n", ""},
		{"bad number", "Opportunity", "insert", "", "Name,StageName,CloseDate,Amount\nBig,Prospecting,2025-01-01,\"1,000\"\n",
			"INVALID_FIELD:Failed to deserialize field at col 3. Due to, '1,000' is not a valid value for the type xsd:double:Amount --"},
		{"bad int", "Account", "insert", "", "Name,NumberOfEmployees\nA,12.5\n",
			"INVALID_FIELD:Failed to deserialize field at col 1. Due to, '12.5' is not a valid value for the type xsd:int:NumberOfEmployees --"},
		{"bad boolean", "Account", "insert", "", "Name,Active__c\nA,yes\n",
			"INVALID_FIELD:Failed to deserialize field at col 1. Due to, 'yes' is not a valid value for the type xsd:boolean:Active__c --"},
		{"restricted picklist", "Account", "insert", "", "Name,Industry\nA,Mining\n",
			"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Mining:Industry --"},
		{"unrestricted picklist", "Account", "insert", "", "Name,Type\nA,Whatever\n", ""},
		{"bad email", "Contact", "insert", "", "LastName,Email\nX,not-an-email\n",
			"INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --"},
		{"duplicate value", "Account", "insert", "", "Name,External_Id__c\nB,A-1\n",
			"DUPLICATE_VALUE:duplicate value found: External_Id__c duplicates value on record with id: " + acct + ":--"},
		{"malformed id", "Contact", "update", "", "Id,LastName\n001900K0001pPuOAAU,X\n",
			"MALFORMED_ID:Contact ID: id value of incorrect type: 001900K0001pPuOAAU:Id --"},
		{"unknown id", "Account", "update", "", "Id,Name\n001Hs0000000zzzIAA,X\n",
			"INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"},
		{"foreign key not found", "Contact", "insert", "", "LastName,Account.Legacy_Id__c\nX,A-999\n",
			"INVALID_FIELD:Foreign key external ID: A-999 not found for field Legacy_Id__c in entity Account:--"},
		{"foreign key found", "Contact", "insert", "", "LastName,Account.External_Id__c\nX,a-1\n", ""},
		{"lookup by raw id", "Contact", "insert", "", "LastName,AccountId\nX," + acct + "\n", ""},
		{"lookup wrong prefix", "Contact", "insert", "", "LastName,AccountId\nX,003Hs0000000001IAA\n",
			"MALFORMED_ID:Account ID: id value of incorrect type: 003Hs0000000001IAA:AccountId --"},
		{"insert with id", "Account", "insert", "", "Id,Name\n" + acct + ",X\n",
			"INVALID_FIELD_FOR_INSERT_UPDATE:cannot specify Id in an insert call:Id --"},
		{"not createable", "Account", "insert", "", "Name,CreatedDate\nX,2025-03-04T10:15:02Z\n",
			"INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: CreatedDate. Please check the security settings of this field and verify that it is read/write for your profile or permission set.:CreatedDate --"},
		{"upsert match", "Account", "upsert", "External_Id__c", "External_Id__c,Name\nA-1,Renamed\n", ""},
		{"upsert missing key", "Account", "upsert", "External_Id__c", "External_Id__c,Name\n,Renamed\n",
			"MISSING_ARGUMENT:External_Id__c not specified:--"},
		{"upsert by Id without column", "Account", "upsert", "Id", "Name\nNew\n", ""},
		{"polymorphic owner", "Lead", "insert", "", "LastName,Company,User:Owner.Username\nX,Y,integration@acme.example\n", ""},
		{"deleted entity", "Account", "delete", "", "Id\n" + acct + "\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTC(t, nil)
			if _, err := c.srv.AddRecord("Account", map[string]string{"Name": "A", "External_Id__c": "A-1"}); err != nil {
				t.Fatal(err)
			}
			req := map[string]any{"object": tc.object, "operation": tc.op}
			if tc.extID != "" {
				req["externalIdFieldName"] = tc.extID
			}
			id := c.runJob(req, tc.csv)
			ji, _ := c.srv.Job(id)
			if ji.State != "JobComplete" {
				t.Fatalf("job state %s (%s), want JobComplete", ji.State, ji.ErrorMessage)
			}
			r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/failedResults", nil), 200)
			_, rows := readResults(t, r.body)
			switch {
			case tc.wantErr == "" && len(rows) != 0:
				t.Fatalf("row failed: %v", rows)
			case tc.wantErr != "" && len(rows) != 1:
				t.Fatalf("failedResults = %q, want one row", r.body)
			case tc.wantErr != "" && rows[0][1] != tc.wantErr:
				t.Errorf("sf__Error = %q\n         want %q", rows[0][1], tc.wantErr)
			}
			wantFailed := int64(0)
			if tc.wantErr != "" {
				wantFailed = 1
			}
			if ji.NumberRecordsProcessed != 1 || ji.NumberRecordsFailed != wantFailed {
				t.Errorf("counters processed=%d failed=%d", ji.NumberRecordsProcessed, ji.NumberRecordsFailed)
			}
		})
	}
}

func TestJobLevelFailures(t *testing.T) {
	cases := []struct {
		name    string
		req     map[string]any
		csv     string
		wantMsg string
	}{
		{"unknown column", map[string]any{"object": "Opportunity", "operation": "insert"},
			"Name,StageName_invalid_field_on_purpose,Bad2\nx,y,z\n",
			"InvalidBatch : Field name not found : StageName_invalid_field_on_purpose"},
		{"BOM unquoted", map[string]any{"object": "Account", "operation": "insert"}, "\uFEFFName\nx\n",
			"InvalidBatch : Field name not found : \uFEFFName"},
		{"BOM quoted", map[string]any{"object": "Account", "operation": "insert"}, "\uFEFF\"Name\"\nx\n",
			"InvalidBatch : Failed to parse CSV. Found unescaped quote. A value with quote should be within a quote"},
		{"CRLF under LF", map[string]any{"object": "Account", "operation": "insert"}, "Name\r\nx\r\n",
			"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"},
		{"LF under CRLF", map[string]any{"object": "Account", "operation": "insert", "lineEnding": "CRLF"}, "Name\nx\n",
			"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is CRLF"},
		{"delete extra column", map[string]any{"object": "Account", "operation": "delete"}, "Id,Name\n001Hs0000000001IAA,x\n",
			"InvalidBatch : The 'delete' batch must contain only ids"},
		{"type on non-polymorphic", map[string]any{"object": "Account", "operation": "insert"}, "Name,Account:Parent.External_Id__c\nx,y\n",
			"InvalidBatch : type is not needed for non polymorphic foreign key references: Parent"},
		{"polymorphic without type", map[string]any{"object": "Lead", "operation": "insert"}, "LastName,Company,Owner.Username\nx,y,z\n",
			"InvalidBatch : Unable to find relationship: Owner"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTC(t, nil)
			id := c.runJob(tc.req, tc.csv)
			ji, _ := c.srv.Job(id)
			if ji.State != "Failed" || ji.ErrorMessage != tc.wantMsg || ji.NumberRecordsProcessed != 0 || ji.NumberRecordsFailed != 0 {
				t.Fatalf("job = %s %q %d/%d, want Failed %q 0/0", ji.State, ji.ErrorMessage, ji.NumberRecordsProcessed, ji.NumberRecordsFailed, tc.wantMsg)
			}
			r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/unprocessedrecords", nil), 200)
			if _, rows := readResults(t, r.body); len(rows) != 1 {
				t.Errorf("unprocessedrecords = %q, want the uploaded row", r.body)
			}
			r = c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil), 200)
			if _, rows := readResults(t, r.body); len(rows) != 0 {
				t.Errorf("successfulResults = %q, want header only", r.body)
			}
		})
	}
}

func TestOperations(t *testing.T) {
	c := newTC(t, nil)
	c.runJob(map[string]any{"object": "Account", "operation": "insert"},
		"Name,External_Id__c,Industry,AnnualRevenue\nAcme,A-1,Banking,1000.50\nGlobex,A-2,Energy,\n")
	recs := c.srv.Records("Account")
	if len(recs) != 2 || recs[0]["Name"] != "Acme" || recs[0]["AnnualRevenue"] != "1000.5" {
		t.Fatalf("after insert: %v", recs)
	}
	a1, a2 := recs[0]["Id"], recs[1]["Id"]
	if len(a1) != 18 || !strings.HasPrefix(a1, "001") || salesforcetest.To18(a1[:15]) != a1 {
		t.Errorf("bad id %q", a1)
	}
	// update: empty cell leaves the value, #N/A nulls it.
	c.runJob(map[string]any{"object": "Account", "operation": "update"}, "Id,Name,Industry\n"+a1+",,#N/A\n")
	recs = c.srv.Records("Account")
	if recs[0]["Name"] != "Acme" || recs[0]["Industry"] != "" {
		t.Errorf("after update: %v", recs[0])
	}
	if _, ok := recs[0]["Industry"]; ok {
		t.Errorf("Industry should be null: %v", recs[0])
	}
	// upsert: one match, one insert.
	id := c.runJob(map[string]any{"object": "Account", "operation": "upsert", "externalIdFieldName": "External_Id__c"},
		"External_Id__c,Name\nA-2,Globex Corp\nA-3,Initech\n")
	r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil), 200)
	_, rows := readResults(t, r.body)
	if len(rows) != 2 || rows[0][0] != a2 || rows[0][1] != "false" || rows[1][1] != "true" {
		t.Errorf("upsert results: %v", rows)
	}
	// delete, then update the deleted record, then hardDelete.
	c.runJob(map[string]any{"object": "Account", "operation": "delete"}, "Id\n"+a1+"\n")
	if n := len(c.srv.Records("Account")); n != 2 {
		t.Errorf("after delete: %d records", n)
	}
	if n := len(c.srv.DeletedRecords("Account")); n != 1 {
		t.Errorf("recycle bin: %d records", n)
	}
	id = c.runJob(map[string]any{"object": "Account", "operation": "update"}, "Id,Name\n"+a1+",X\n")
	r = c.expect(c.do("GET", "/jobs/ingest/"+id+"/failedResults", nil), 200)
	if _, rows := readResults(t, r.body); len(rows) != 1 || rows[0][1] != "ENTITY_IS_DELETED:entity is deleted:--" || rows[0][0] != a1 {
		t.Errorf("update deleted: %q", r.body)
	}
	c.runJob(map[string]any{"object": "Account", "operation": "hardDelete"}, "Id\n"+a1+"\n"+a2+"\n")
	if n := len(c.srv.DeletedRecords("Account")) + len(c.srv.Records("Account")); n != 1 {
		t.Errorf("after hardDelete: %d records", n)
	}
	// Query what is left.
	r = c.expect(c.do("POST", "/jobs/query", map[string]any{"operation": "query", "query": "SELECT Id, Name FROM Account WHERE External_Id__c = 'A-3'"}), 200)
	_ = r
}

func TestDailyRecordLimit(t *testing.T) {
	c := newTC(t, &salesforcetest.Options{DailyRecordLimit: 5, BatchSize: 3})
	id := c.runJob(map[string]any{"object": "Account", "operation": "insert"}, "Name\na\nb\nc\nd\ne\nf\ng\n")
	ji, _ := c.srv.Job(id)
	if ji.State != "Failed" || ji.NumberRecordsProcessed != 3 || !strings.HasPrefix(ji.ErrorMessage, "ExceededQuota : ") {
		t.Fatalf("job = %+v", ji)
	}
	r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/unprocessedrecords", nil), 200)
	if _, rows := readResults(t, r.body); len(rows) != 4 {
		t.Errorf("unprocessed = %q", r.body)
	}
}

func TestLockErrorsAndAbort(t *testing.T) {
	c := newTC(t, &salesforcetest.Options{Seed: 7, Faults: salesforcetest.Faults{LockErrorRate: 0.5}})
	id := c.runJob(map[string]any{"object": "Account", "operation": "insert"}, "Name\n"+strings.Repeat("x\n", 100))
	ji, _ := c.srv.Job(id)
	if ji.NumberRecordsFailed < 20 || ji.NumberRecordsFailed > 80 {
		t.Errorf("lock failures = %d of 100", ji.NumberRecordsFailed)
	}
	r := c.expect(c.do("GET", "/jobs/ingest/"+id+"/failedResults", nil), 200)
	if _, rows := readResults(t, r.body); !strings.HasPrefix(rows[0][1], "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record") {
		t.Errorf("lock error = %q", rows[0][1])
	}

	// Abort while InProgress: the rest is unprocessed.
	c = newTC(t, &salesforcetest.Options{ProcessingRate: 400, BatchSize: 200})
	id = c.createJob(map[string]any{"object": "Account", "operation": "insert"})
	c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", "Name\n"+strings.Repeat("x\n", 1000)), 201)
	c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
	if err := c.srv.AwaitJobState(t.Context(), id, "InProgress"); err != nil {
		t.Fatal(err)
	}
	c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "Aborted"}), 200)
	ji = c.awaitTerminal(id)
	s := c.expect(c.do("GET", "/jobs/ingest/"+id+"/successfulResults", nil), 200)
	u := c.expect(c.do("GET", "/jobs/ingest/"+id+"/unprocessedrecords", nil), 200)
	_, srows := readResults(t, s.body)
	_, urows := readResults(t, u.body)
	if ji.State != "Aborted" || len(srows)+len(urows) != 1000 || len(urows) == 0 {
		t.Errorf("aborted job %s: %d successful + %d unprocessed", ji.State, len(srows), len(urows))
	}
}
