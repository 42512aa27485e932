package salesforcesink

import (
	"context"
	"errors"
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

// TestPreflightTypesNamesID: Preflight refuses a value type the field
// cannot take, suggests the closest object and field names, and refuses an
// Id column on insert, all as a *pipeline.PreflightError; an unreachable org is a
// plain error.
func TestPreflightTypesNamesID(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	str := func(n string) pipeline.Field { return pipeline.Field{Name: n, Type: pipeline.TypeString} }
	for _, tc := range []struct {
		name, object, op string
		fields           []pipeline.Field
		want             []string // "" = no problem
	}{
		{"valid", "Account", "insert", []pipeline.Field{str("Name"), {Name: "AnnualRevenue", Type: pipeline.TypeFloat}}, nil},
		{"string to currency", "Account", "insert", []pipeline.Field{str("Name"), str("AnnualRevenue")},
			[]string{"column AnnualRevenue: the value is string but Account.AnnualRevenue is currency", "float(x)"}},
		{"string to int", "Account", "insert", []pipeline.Field{str("Name"), str("NumberOfEmployees")}, []string{"Account.NumberOfEmployees is int"}},
		{"bool to date", "Account", "insert", []pipeline.Field{str("Name"), {Name: "SLAExpirationDate__c", Type: pipeline.TypeBool}}, []string{"is date"}},
		{"any passes", "Account", "insert", []pipeline.Field{str("Name"), {Name: "AnnualRevenue", Type: pipeline.TypeAny}}, nil},
		{"object typo", "Acount", "insert", []pipeline.Field{str("Name")}, []string{"object Acount: the org has no such object (did you mean Account?)"}},
		{"field typo", "Account", "insert", []pipeline.Field{str("Nmae")}, []string{"column Nmae: Account has no such field (did you mean Name?)"}},
		{"Id on insert", "Account", "insert", []pipeline.Field{str("Id"), str("Name")}, []string{"column Id: insert creates records"}},
		{"Id on update", "Account", "update", []pipeline.Field{str("Id"), str("Name")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			o.Object, o.Operation, o.InstanceURL, o.Auth.AccessToken = tc.object, tc.op, srv.URL, srv.AccessToken()
			err := Preflight(context.Background(), nil, o, pipeline.MustSchema(tc.fields...))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Preflight: %v", err)
				}
				return
			}
			var pe *pipeline.PreflightError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *pipeline.PreflightError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
	o := NewOptions()
	o.Object, o.InstanceURL, o.Auth.AccessToken = "Account", "http://127.0.0.1:1", "tok"
	var pe *pipeline.PreflightError
	if err := Preflight(context.Background(), nil, o, pipeline.MustSchema(str("Name"))); err == nil || errors.As(err, &pe) {
		t.Errorf("unreachable org: err = %v, want a plain error", err)
	}
}
