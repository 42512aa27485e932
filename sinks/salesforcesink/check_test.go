package salesforcesink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

func TestCheck(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	open := func(object, op, ext string, names ...string) *Sink {
		o := NewOptions()
		o.Object, o.Operation, o.ExternalIDField, o.InstanceURL, o.Auth.AccessToken = object, op, ext, srv.URL, srv.AccessToken()
		o.PollInitial = 5 * time.Millisecond
		var fs []pipeline.Field
		for _, n := range names {
			fs = append(fs, pipeline.Field{Name: n})
		}
		s, err := Open(context.Background(), nil, o, pipeline.MustSchema(fs...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	}
	ctx := context.Background()
	if err := open("Contact", "upsert", "External_Id__c", "External_Id__c", "LastName", "Account.External_Id__c").Check(ctx, nil); err != nil {
		t.Errorf("valid contact upsert: %v", err)
	}
	err := open("Contact", "insert", "", "FirstName", "Bogus__c", "Account.Name", "CreatedDate", "Owner.Username").Check(ctx, nil)
	for _, want := range []string{"Bogus__c: Contact has no such field", "Account.Name is neither", "CreatedDate is not createable",
		"requires LastName"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err := open("Account", "upsert", "Name", "Name").Check(ctx, nil); err == nil || !strings.Contains(err.Error(), "not an External ID") {
		t.Errorf("upsert on Name: %v", err)
	}
	if err := open("Lead", "insert", "", "LastName", "Company", "Owner.Username").Check(ctx, nil); err == nil || !strings.Contains(err.Error(), "polymorphic") {
		t.Errorf("polymorphic owner: %v", err)
	}
	if err := open("Nope", "insert", "", "Name").Check(ctx, nil); err == nil {
		t.Error("unknown object passed")
	}
}
