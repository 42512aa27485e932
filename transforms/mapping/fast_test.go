package mapping

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkflow/bulkflow/pipeline"
)

// TestApplyEdgeValues runs the `bulkflow bench` mapping (whose fields all
// have fast paths) on nulls, blanks, unicode, bad dates and booleans, and
// values of the wrong type, and checks the output rows and the dead-letter
// messages, which are those the expr VM alone gave before the fast paths.
func TestApplyEdgeValues(t *testing.T) {
	var o Options
	o.SetExprs(cliBenchFields)
	tr, err := New(nil, &o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Check(cliBenchSchema); err != nil {
		t.Fatal(err)
	}
	//                        id, first, last, email, country, signup_date, active, notes
	rows := []pipeline.Row{
		{"1", "Ada", "Lovelace", "", "fr", "2024-02-29", "yes", ""},
		{"2", "Élodie", "Ørsted", "", "ßtraße", " 2024-03-05 ", "N", "called twice,\nsaid \"call back\""},
		{"3", "", "", "", "", "", "", nil},
		{nil, "A", "B", "", "US", "2023-02-29", "true", nil},
		{"5", nil, "B", "", "us", "2024-01-01", "true", nil},
		{"6", "A", "B", "", nil, "2024-01-01", "true", nil},
		{"7", "A", "B", "", "us", nil, "1", nil},
		{"8", "A", "B", "", "us", "2024-1-1", "1", nil},
		{"9", "A", "B", "", "us", "2024-01-01", "maybe", nil},
		{"10", "A", "B", "", "us", "2024-01-01", nil, "x"},
		{int64(11), "A", "B", "", "us", "2024-01-01", "0", nil},
		{"12", int64(1), "B", "", "us", "2024-01-01", "0", nil},
		{"13", "A", "B", "", int64(7), "2024-01-01", "0", nil},
		{"14", "A", "B", "", "us", int64(20240101), "0", nil},
		{"15", "A", "B", "", "us", "2024-01-01", 1.5, nil},
		{"16", "A", "B", "", "us", "2024-01-01", "0", int64(3)},
		{"17", "\xff", "ǅ", "", "ǆ", "2024-12-31", "F", ""},
		{"18", "A", "B", "", "us", "+024-01-01", "0", nil},
	}
	in := pipeline.NewBatch(cliBenchSchema, len(rows))
	for i, r := range rows {
		in.Append(r, pipeline.Origin{Object: "edge.csv", Line: int64(i + 2)})
	}
	out, err := tr.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range out.Len() {
		got = append(got, fmt.Sprintf("%d: %#v", out.Origin(i).Line, out.Row(i)))
	}
	for _, d := range out.Drops() {
		got = append(got, fmt.Sprintf("%d: dropped: %v", d.Origin.Line, d.Err))
	}
	want := []string{
		`2: pipeline.Row{"1", "Ada Lovelace", "FR", "2024-02-29", true, "Warm"}`,
		`3: pipeline.Row{"2", "Élodie Ørsted", "ßTRAßE", "2024-03-05", false, "Hot"}`,
		`4: pipeline.Row{"3", " ", "", interface {}(nil), interface {}(nil), "Warm"}`,
		`8: pipeline.Row{"7", "A B", "US", interface {}(nil), true, "Warm"}`,
		`11: pipeline.Row{"10", "A B", "US", "2024-01-01", interface {}(nil), "Hot"}`,
		`18: pipeline.Row{"17", "\xff ǅ", "Ǆ", "2024-12-31", false, "Warm"}`,
		`5: dropped: field SLAExpirationDate__c: sfDate(signup_date, "2006-01-02"): sfDate: bad value: "2023-02-29" does not match layout "2006-01-02"`,
		`6: dropped: field Name: first_name + " " + last_name: invalid operation: <nil> + string`,
		`7: dropped: field BillingCountry: upper(country): interface conversion: interface {} is nil, not string`,
		`9: dropped: field SLAExpirationDate__c: sfDate(signup_date, "2006-01-02"): sfDate: bad value: "2024-1-1" does not match layout "2006-01-02"`,
		`10: dropped: field Active__c: sfBool(active): sfBool: bad value: "maybe" is not a boolean (want true/false, 1/0, yes/no, y/n or t/f)`,
		`12: dropped: field External_Id__c: id: result 11 is int, want string`,
		`13: dropped: field Name: first_name + " " + last_name: invalid operation: int64 + string`,
		`14: dropped: field BillingCountry: upper(country): interface conversion: interface {} is int64, not string`,
		`15: dropped: field SLAExpirationDate__c: sfDate(signup_date, "2006-01-02"): sfDate: want a string or a time, got int64`,
		`16: dropped: field Active__c: sfBool(active): sfBool: want a string or a bool, got float64`,
		`17: dropped: field Rating: notes == nil || notes == "" ? "Warm" : "Hot": interface conversion: interface {} is int64, not string`,
		`19: dropped: field SLAExpirationDate__c: sfDate(signup_date, "2006-01-02"): sfDate: bad value: "+024-01-01" does not match layout "2006-01-02"`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Apply (-want +got):\n%s\ngot:\n%s", d, strings.Join(got, "\n"))
	}
}
