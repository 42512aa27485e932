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

// TestApplyLeadMatchesRun runs the bench's 15-field Lead mapping (renames,
// a constant and built strings that Apply stores without a Run each) on
// rows like the bench's CSV and on bad values (null, "abc" revenue,
// 13/45/2020, wrong types, unicode), and checks every output value and
// dead-letter message against Runner.Run of each field's program, which
// exprenv's tests check against the expr VM.
func TestApplyLeadMatchesRun(t *testing.T) {
	tr, err := New(nil, &Options{Fields: leadBenchFields})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Check(leadBenchSchema); err != nil {
		t.Fatal(err)
	}
	in := leadBenchBatch(300)
	good := in.Row(0)
	edits := []map[int]any{
		{9: "abc"}, {9: nil}, {9: ""}, {9: "1e6"}, {9: "NaN"}, {9: "1000000"}, {9: "999999.999"}, {9: int64(5)},
		{10: "13/45/2020"}, {10: "02/29/2023"}, {10: " 02/29/2024 "}, {10: ""}, {10: nil}, {10: "2024-02-29"}, {10: 1.5},
		{11: "13/45/2020 10:00:00"}, {11: "01/02/2006 24:00:00"}, {11: nil}, {11: "01/02/2006 1:04:05"},
		{8: "ßtraße"}, {8: "US"}, {8: nil}, {8: int64(1)}, {8: "\xff"},
		{1: nil}, {2: int64(3)}, {1: "Élodie", 2: "Ørsted"}, {0: int64(11)}, {0: nil},
		{12: "maybe"}, {12: " y "}, {12: nil}, {12: true},
	}
	for k, e := range edits {
		row := append(pipeline.Row(nil), good...)
		for i, v := range e {
			row[i] = v
		}
		in.Append(row, pipeline.Origin{Object: "edge.csv", Line: int64(k + 2)})
	}
	drops := checkMatchesRun(t, tr, in)
	if out := in.Len() - drops; drops < 10 || out < 300 {
		t.Errorf("%d rows, %d dropped: the edge rows should drop some, and the bench rows none", out, drops)
	}
}

// checkMatchesRun checks tr.Apply's output rows and dead letters on in
// against Runner.Run of each field's program, field by field, and returns
// the number of rows dropped.
func checkMatchesRun(t *testing.T, tr *Transform, in *pipeline.Batch) int {
	t.Helper()
	out, err := tr.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for i := range out.Len() {
		got = append(got, fmt.Sprintf("%s:%d: %#v", out.Origin(i).Object, out.Origin(i).Line, out.Row(i)))
	}
	for _, d := range out.Drops() {
		got = append(got, fmt.Sprintf("%s:%d: dropped: %v", d.Origin.Object, d.Origin.Line, d.Err))
	}
	r := tr.env.Runner()
	defer r.Release()
	var drops []string
	for i := range in.Len() {
		r.Bind(in.Row(i))
		o := in.Origin(i)
		row := make(pipeline.Row, len(tr.progs))
		var failed error
		for j, p := range tr.progs {
			v, err := r.Run(p)
			if err != nil {
				failed = &pipeline.RowError{Code: CodeExprError, Field: tr.fields[j].Name, Err: fmt.Errorf("%s: %w", p.Expr, err)}
				break
			}
			row[j] = v
		}
		if failed != nil {
			drops = append(drops, fmt.Sprintf("%s:%d: dropped: %v", o.Object, o.Line, failed))
			continue
		}
		want = append(want, fmt.Sprintf("%s:%d: %#v", o.Object, o.Line, row))
	}
	want = append(want, drops...)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Apply (-Run +Apply):\n%s", d)
	}
	return len(drops)
}

// TestApplyPlanMatchesRun checks eval's plan (renames copied, constants
// stored, without a Run) against Runner.Run on typed columns: renames of
// string, float, int, bool and any fields holding their own type, null
// and other types, and constants of several types.
func TestApplyPlanMatchesRun(t *testing.T) {
	schema := pipeline.MustSchema(
		pipeline.Field{Name: "s", Type: pipeline.TypeString},
		pipeline.Field{Name: "f", Type: pipeline.TypeFloat},
		pipeline.Field{Name: "i", Type: pipeline.TypeInt},
		pipeline.Field{Name: "b", Type: pipeline.TypeBool},
		pipeline.Field{Name: "a", Type: pipeline.TypeAny},
	)
	fields := []pipeline.ExprField{
		{Name: "S", Expr: "s"}, {Name: "F", Expr: "f"}, {Name: "I", Expr: "i"},
		{Name: "B", Expr: "b"}, {Name: "A", Expr: "a"}, {Name: "S2", Expr: "s"},
		{Name: "K1", Expr: `"const"`}, {Name: "K2", Expr: "42"}, {Name: "K3", Expr: "null"},
		{Name: "K4", Expr: "1.5"}, {Name: "K5", Expr: "true"},
	}
	tr, err := New(nil, &Options{Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Check(schema); err != nil {
		t.Fatal(err)
	}
	kinds := map[stepKind]int{}
	for _, st := range tr.steps {
		kinds[st.kind]++
	}
	if kinds[stepRename] != 6 || kinds[stepConst] != 5 {
		t.Fatalf("plan: %v, want 6 renames and 5 constants", kinds)
	}
	good := pipeline.Row{"x", 1.5, int64(2), true, "any"}
	values := []any{nil, "", "text", 2.5, int64(7), 7, true, float32(1.25), []int{1}, map[string]any{}}
	in := pipeline.NewBatch(schema, 64)
	in.Append(good, pipeline.Origin{Object: "plan.csv", Line: 1})
	for c := range good {
		for k, v := range values {
			row := append(pipeline.Row(nil), good...)
			row[c] = v
			in.Append(row, pipeline.Origin{Object: "plan.csv", Line: int64(2 + c*len(values) + k)})
		}
	}
	if drops := checkMatchesRun(t, tr, in); drops == 0 || drops == in.Len() {
		t.Errorf("%d of %d rows dropped: the wrong types should drop some, and the right ones none", drops, in.Len())
	}
}

// TestApplyAllocsPerBatch checks that the Lead mapping's allocations are
// per batch, not per row or value: a batch of 2048 rows costs no more
// than one of 256 plus the arena's chunks (128 KiB each).
func TestApplyAllocsPerBatch(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector (sync.Pool drops Runners at random)")
	}
	tr, err := New(nil, &Options{Fields: leadBenchFields})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Check(leadBenchSchema); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	allocs := func(n int) float64 {
		in := leadBenchBatch(n)
		return testing.AllocsPerRun(20, func() {
			if out, err := tr.Apply(ctx, in); err != nil || out.Len() != n {
				t.Fatalf("Apply: %v, %d rows", err, out.Len())
			}
		})
	}
	small, large := allocs(256), allocs(2048)
	t.Logf("allocations per batch: %v for 256 rows, %v for 2048", small, large)
	if small > 8 || large > small+2 {
		t.Errorf("allocations per batch: %v for 256 rows, %v for 2048; want at most 8, and 2 more at most for 8 times the rows", small, large)
	}
}
