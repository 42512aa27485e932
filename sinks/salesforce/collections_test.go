package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// collectionCalls counts the emulator's collection requests.
func collectionCalls(srv *salesforcetest.Server) int {
	n := 0
	for k, v := range srv.Requests() {
		if strings.Contains(k, "/composite/sobjects") {
			n += v
		}
	}
	return n
}

func acct(name, ext string, employees any) salesforce.Record {
	r := salesforce.Record{{Name: "External_Id__c", Value: ext}, {Name: "NumberOfEmployees", Value: employees}}
	if name != "-" {
		r = append(salesforce.Record{{Name: "Name", Value: name}}, r...)
	}
	return r
}

// TestWriteCollectionOperations runs every operation against the
// emulator over HTTP: positional results, the Bulk path's error codes and
// fields, nulls, references by external id, upsert's created flag.
func TestWriteCollectionOperations(t *testing.T) {
	ctx := context.Background()
	srv, c := emulatorClient(t, nil, nil)
	res, err := c.WriteCollection(ctx, salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpInsert,
		Records: []salesforce.Record{acct("Acme", "A-1", int64(10)), acct("-", "A-2", int64(20)), acct("Globex", "A-3", json.Number("30"))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || !res[0].Success || res[1].Success || !res[2].Success || res[1].ID != "" || res[0].ID == "" {
		t.Fatalf("insert results = %+v", res)
	}
	if e := res[1].Err(); e.Code != "REQUIRED_FIELD_MISSING" || len(e.Fields) != 1 || e.Fields[0] != "Name" {
		t.Errorf("row 1 error = %+v, want REQUIRED_FIELD_MISSING on Name (as Bulk's sf__Error)", e)
	}
	if got := len(srv.Records("Account")); got != 2 {
		t.Fatalf("accounts = %d, want 2", got)
	}

	// Upsert contacts referencing accounts by external id; null clears.
	up := func(recs ...salesforce.Record) []salesforce.CollectionResult {
		t.Helper()
		r, err := c.WriteCollection(ctx, salesforce.CollectionRequest{Object: "Contact", Operation: salesforce.OpUpsert,
			ExternalIDField: "Legacy_Id__c", Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	day := time.Date(1815, 12, 10, 0, 0, 0, 0, time.UTC)
	c1 := salesforce.Record{{Name: "Legacy_Id__c", Value: "C-1"}, {Name: "LastName", Value: "Lovelace"},
		{Name: "Birthdate", Value: day, DateOnly: true}, {Name: "Account.External_Id__c", Value: "A-1"}}
	c2 := salesforce.Record{{Name: "Legacy_Id__c", Value: "C-2"}, {Name: "LastName", Value: "Turing"},
		{Name: "Account.External_Id__c", Value: "A-404"}}
	r := up(c1, c2)
	if !r[0].Success || !r[0].Created || r[1].Success || r[1].Err().Code != "INVALID_FIELD" {
		t.Fatalf("upsert = %+v", r)
	}
	r = up(salesforce.Record{{Name: "Legacy_Id__c", Value: "C-1"}, {Name: "Birthdate", Value: nil}})
	if !r[0].Success || r[0].Created {
		t.Fatalf("second upsert = %+v, want an update (created false)", r)
	}
	cons := srv.Records("Contact")
	if len(cons) != 1 || cons[0]["Birthdate"] != "" || cons[0]["AccountId"] != res[0].ID {
		t.Fatalf("contacts = %v, want one, Birthdate cleared, AccountId %s", cons, res[0].ID)
	}

	// Update and delete by id; a second delete is ENTITY_IS_DELETED.
	r, err = c.WriteCollection(ctx, salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpUpdate,
		Records: []salesforce.Record{{{Name: "Id", Value: res[0].ID}, {Name: "NumberOfEmployees", Value: 11.0}}}})
	if err != nil || !r[0].Success || r[0].ID != res[0].ID {
		t.Fatalf("update = %+v, %v", r, err)
	}
	del := salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpDelete,
		Records: []salesforce.Record{{{Name: "Id", Value: res[2].ID}}}}
	if r, err = c.WriteCollection(ctx, del); err != nil || !r[0].Success {
		t.Fatalf("delete = %+v, %v", r, err)
	}
	if r, err = c.WriteCollection(ctx, del); err != nil || r[0].Success || r[0].Err().Code != "ENTITY_IS_DELETED" || r[0].ID != res[2].ID {
		t.Fatalf("second delete = %+v, %v", r, err)
	}
	if got := len(srv.DeletedRecords("Account")); got != 1 {
		t.Errorf("deleted accounts = %d, want 1", got)
	}
}

// TestWriteCollectionFaults checks the retry matrix (collections contract
// §3.3) on the emulator's faults: a create is never replayed after an
// answer that may hide a commit, update/upsert/delete are.
func TestWriteCollectionFaults(t *testing.T) {
	tests := []struct {
		name     string
		op       salesforce.Operation
		coll     salesforcetest.CollectionFaults
		faults   salesforcetest.Faults
		expire   bool
		wantErr  error // nil: success
		wantRecs int   // Account records after the call
		wantReqs int   // collection requests sent
	}{
		{name: "insert 500 before processing", op: salesforce.OpInsert, coll: salesforcetest.CollectionFaults{Fail5xxNext: 1},
			wantErr: salesforce.ErrOutcomeUnknown, wantRecs: 0, wantReqs: 1},
		{name: "insert 500 after commit", op: salesforce.OpInsert, coll: salesforcetest.CollectionFaults{CommitThen5xxNext: 1},
			wantErr: salesforce.ErrOutcomeUnknown, wantRecs: 2, wantReqs: 1},
		{name: "insert dropped after commit", op: salesforce.OpInsert, coll: salesforcetest.CollectionFaults{CommitThenDropNext: 1},
			wantErr: salesforce.ErrOutcomeUnknown, wantRecs: 2, wantReqs: 1},
		{name: "insert request limit", op: salesforce.OpInsert, faults: salesforcetest.Faults{RequestLimitNext: 1},
			wantRecs: 2, wantReqs: 2},
		{name: "insert token expired", op: salesforce.OpInsert, expire: true, wantRecs: 2, wantReqs: 2},
		{name: "upsert 500 after commit", op: salesforce.OpUpsert, coll: salesforcetest.CollectionFaults{CommitThen5xxNext: 1},
			wantRecs: 2, wantReqs: 2},
		{name: "upsert dropped after commit", op: salesforce.OpUpsert, coll: salesforcetest.CollectionFaults{CommitThenDropNext: 1},
			wantRecs: 2, wantReqs: 2},
		{name: "upsert 500 every time", op: salesforce.OpUpsert, coll: salesforcetest.CollectionFaults{CommitThen5xxNext: 9},
			wantErr: salesforce.ErrOutcomeUnknown, wantRecs: 2, wantReqs: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := emulatorClient(t, nil, &salesforce.Options{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 3})
			srv.SetCollectionFaults(tt.coll)
			if err := srv.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			if tt.expire {
				srv.ExpireTokens()
			}
			req := salesforce.CollectionRequest{Object: "Account", Operation: tt.op, ExternalIDField: "External_Id__c",
				Records: []salesforce.Record{acct("Acme", "A-1", int64(1)), acct("Globex", "A-2", int64(2))}}
			res, err := c.WriteCollection(context.Background(), req)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (len(res) != 2 || !res[0].Success || !res[1].Success):
				t.Fatalf("results = %+v", res)
			}
			if got := len(srv.Records("Account")); got != tt.wantRecs {
				t.Errorf("accounts = %d, want %d (never twice)", got, tt.wantRecs)
			}
			if got := collectionCalls(srv); got != tt.wantReqs {
				t.Errorf("collection requests = %d, want %d", got, tt.wantReqs)
			}
		})
	}
}

// TestWriteCollectionLockErrors: lock errors are per-row results with
// Bulk's code, other rows of the request commit.
func TestWriteCollectionLockErrors(t *testing.T) {
	srv, c := emulatorClient(t, &salesforcetest.Options{Faults: salesforcetest.Faults{LockErrorRate: 1}}, nil)
	res, err := c.WriteCollection(context.Background(), salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpInsert,
		Records: []salesforce.Record{acct("Acme", "A-1", int64(1))}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Success || res[0].Err().Code != "UNABLE_TO_LOCK_ROW" {
		t.Fatalf("results = %+v", res)
	}
	if n := len(srv.Records("Account")); n != 0 {
		t.Errorf("accounts = %d", n)
	}
}

// TestWriteCollectionRefusals: requests the client refuses itself, and a
// 400 the emulator answers, send nothing twice.
func TestWriteCollectionRefusals(t *testing.T) {
	srv, c := emulatorClient(t, nil, nil)
	many := make([]salesforce.Record, 201)
	for i := range many {
		many[i] = acct("N", "X", int64(i))
	}
	tests := []struct {
		name string
		req  salesforce.CollectionRequest
		want string
	}{
		{"201 records", salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpInsert, Records: many}, "want 1 to 200 records"},
		{"no records", salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpInsert}, "want 1 to 200 records"},
		{"hardDelete", salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpHardDelete, Records: many[:1]}, "not supported"},
		{"insert with Id", salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpInsert,
			Records: []salesforce.Record{{{Name: "Id", Value: "001000000000001AAA"}}}}, "cannot carry Id"},
		{"NaN", salesforce.CollectionRequest{Object: "Account", Operation: salesforce.OpInsert,
			Records: []salesforce.Record{{{Name: "AnnualRevenue", Value: nanValue()}}}}, "NaN"},
		{"unknown object", salesforce.CollectionRequest{Object: "Nope__c", Operation: salesforce.OpInsert, Records: many[:1]}, "400 INVALID_TYPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := collectionCalls(srv)
			_, err := c.WriteCollection(context.Background(), tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if errors.Is(err, salesforce.ErrOutcomeUnknown) {
				t.Errorf("a refusal is not an unknown outcome: %v", err)
			}
			if got := collectionCalls(srv) - before; got > 1 {
				t.Errorf("requests = %d, want at most 1", got)
			}
		})
	}
}

func nanValue() float64 { z := 0.0; return z / z }

// TestEncodeCollectionBody pins the JSON of each value kind.
func TestEncodeCollectionBody(t *testing.T) {
	ts := time.Date(2025, 3, 4, 10, 15, 2, 5e6, time.FixedZone("x", 3600))
	b, err := salesforce.EncodeCollectionBody(salesforce.CollectionRequest{Object: "Task", Operation: salesforce.OpUpdate,
		Records: []salesforce.Record{{{Name: "Id", Value: "00T000000000001AAA"}, {Name: "Subject", Value: nil},
			{Name: "IsReminderSet", Value: true}, {Name: "Amount__c", Value: json.Number("1234.50")},
			{Name: "ActivityDate", Value: ts}, {Name: "Lead:Who.Email", Value: "a@b.c"},
			{Name: "Account.External_Id__c", Value: int64(7)}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"allOrNone":false,"records":[{"attributes":{"type":"Task"},"id":"00T000000000001AAA","Subject":null,` +
		`"IsReminderSet":true,"Amount__c":1234.50,"ActivityDate":"2025-03-04T09:15:02.005Z",` +
		`"Who":{"attributes":{"type":"Lead"},"Email":"a@b.c"},"Account":{"External_Id__c":7}}]}`
	if string(b) != want {
		t.Errorf("body\n got %s\nwant %s", b, want)
	}
}

// TestWriteCollectionPolymorphic: a polymorphic reference by external id
// is sent with its attributes.type (Type:Rel.Field) and resolves; without
// the type the row fails.
func TestWriteCollectionPolymorphic(t *testing.T) {
	srv, c := emulatorClient(t, nil, nil)
	res, err := c.WriteCollection(context.Background(), salesforce.CollectionRequest{Object: "Lead", Operation: salesforce.OpInsert,
		Records: []salesforce.Record{
			{{Name: "LastName", Value: "Hopper"}, {Name: "Company", Value: "Navy"}, {Name: "User:Owner.Username", Value: srv.Username()}},
			{{Name: "LastName", Value: "Typeless"}, {Name: "Company", Value: "Navy"}, {Name: "Owner.Username", Value: srv.Username()}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Success || res[1].Success || res[1].Err().Code != "INVALID_FIELD" {
		t.Fatalf("results = %+v", res)
	}
	leads := srv.Records("Lead")
	if len(leads) != 1 || leads[0]["OwnerId"] != srv.UserID() {
		t.Errorf("leads = %v, want one owned by %s", leads, srv.UserID())
	}
}
