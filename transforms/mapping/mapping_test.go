package mapping

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkflow/bulkflow/pipeline"
)

var inSchema = pipeline.MustSchema(
	pipeline.Field{Name: "id", Type: pipeline.TypeInt},
	pipeline.Field{Name: "first_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "last_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "country", Type: pipeline.TypeString},
	pipeline.Field{Name: "active", Type: pipeline.TypeString},
)

var lookupEnv = &pipeline.Env{
	BaseDir: "testdata",
	Lookups: map[string]pipeline.LookupSpec{"countries": {URL: "countries.csv", Key: "iso", Value: "name"}},
}

func pos(line int) pipeline.Position { return pipeline.Position{File: "p.yaml", Line: line, Col: 11} }

func newChecked(t testing.TB, fields ...pipeline.ExprField) *Transform {
	t.Helper()
	var o Options
	o.SetExprs(fields)
	tr, err := New(lookupEnv, &o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Check(inSchema); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		fields  []pipeline.ExprField
		wantErr string
	}{
		{name: "ok", fields: []pipeline.ExprField{{Name: "a", Expr: "1"}, {Name: "b", Expr: "2"}}},
		{name: "none", wantErr: "at least one field"},
		{name: "no name", fields: []pipeline.ExprField{{Expr: "1"}}, wantErr: "map field 1 has no name"},
		{name: "no expr", fields: []pipeline.ExprField{{Name: "a"}}, wantErr: `map field "a" has no expression`},
		{name: "duplicate", fields: []pipeline.ExprField{{Name: "a", Expr: "1", Pos: pos(3)}, {Name: "a", Expr: "2", Pos: pos(4)}},
			wantErr: `p.yaml:4:11: map field "a" appears twice (first at p.yaml:3:11)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := (&Options{Fields: tc.fields}).Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tr := newChecked(t,
		pipeline.ExprField{Name: "Id", Expr: "id"},
		pipeline.ExprField{Name: "Name", Expr: `first_name + " " + last_name`},
		pipeline.ExprField{Name: "Active", Expr: "sfBool(active)"},
		pipeline.ExprField{Name: "Score", Expr: "id * 1.5"},
		pipeline.ExprField{Name: "Any", Expr: "id > 1 ? country : 3"},
	)
	want := "Id:int, Name:string, Active:bool, Score:float, Any:any"
	if got := tr.out.String(); got != want {
		t.Errorf("Check schema = %s, want %s", got, want)
	}
}

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		wantErr string
	}{
		{name: "misspelled field", expr: `frist_name + " " + last_name`,
			wantErr: `p.yaml:7:11: map field "Name": unknown name "frist_name" (did you mean "first_name"?) at column 1 in: frist_name + " " + last_name`},
		{name: "bad regex literal", expr: `regexReplace(country, "[a-", "")`,
			wantErr: `p.yaml:7:11: map field "Name": regexReplace: invalid pattern "[a-": missing closing ]: ` + "`[a-`" + ` at column 23 in: regexReplace(country, "[a-", "")`},
		{name: "unknown lookup table", expr: `lookup("contries", country)`,
			wantErr: `p.yaml:7:11: map field "Name": unknown lookup table "contries" (did you mean "countries"?) (declared: countries) at column 8 in: lookup("contries", country)`},
		{name: "type error", expr: `id + first_name`,
			wantErr: `p.yaml:7:11: map field "Name": invalid operation: + (mismatched types int64 and string) at column 4 in: id + first_name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(lookupEnv, &Options{Fields: []pipeline.ExprField{{Name: "Name", Expr: tc.expr, Pos: pos(7)}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tr.Check(inSchema)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Check() = %v, want a *pipeline.ConfigError", err)
			}
			if ce.Pos != pos(7) {
				t.Errorf("Check() position = %v, want %v", ce.Pos, pos(7))
			}
			if err.Error() != tc.wantErr {
				t.Errorf("Check() =\n  %s\nwant\n  %s", err, tc.wantErr)
			}
		})
	}
}

func TestApply(t *testing.T) {
	tr := newChecked(t,
		pipeline.ExprField{Name: "Id", Expr: "id"},
		pipeline.ExprField{Name: "Name", Expr: `first_name + " " + last_name`},
		pipeline.ExprField{Name: "Country", Expr: `lookup("countries", country) ?? country`},
		pipeline.ExprField{Name: "Active", Expr: "sfBool(active)"},
	)
	in := pipeline.NewBatch(inSchema, 4)
	in.Append(pipeline.Row{int64(1), "Ada", "Lovelace", "FR", "yes"}, pipeline.Origin{Object: "a.csv", Line: 2})
	in.Append(pipeline.Row{int64(2), "Alan", "Turing", "UK", "maybe"}, pipeline.Origin{Object: "a.csv", Line: 3})
	in.Append(pipeline.Row{int64(3), "Grace", "Hopper", "DE", ""}, pipeline.Origin{Object: "a.csv", Line: 4})
	in.Append(pipeline.Row{int64(4), nil, "X", "US", "0"}, pipeline.Origin{Object: "a.csv", Line: 5})
	out, err := tr.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Settled() != in.Len() {
		t.Fatalf("Apply settled %d rows, want %d", out.Settled(), in.Len())
	}
	var rows []pipeline.Row
	var origins []pipeline.Origin
	for i := range out.Len() {
		rows = append(rows, out.Row(i))
		origins = append(origins, out.Origin(i))
	}
	wantRows := []pipeline.Row{
		{int64(1), "Ada Lovelace", "France", true},
		{int64(3), "Grace Hopper", "Germany", nil},
	}
	if d := cmp.Diff(wantRows, rows); d != "" {
		t.Errorf("Apply rows (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]pipeline.Origin{in.Origin(0), in.Origin(2)}, origins); d != "" {
		t.Errorf("Apply origins (-want +got):\n%s", d)
	}
	drops := out.Drops()
	if len(drops) != 2 {
		t.Fatalf("Apply drops = %v, want 2", drops)
	}
	for i, want := range []struct {
		line  int64
		field string
		msg   string
	}{
		{3, "Active", `sfBool(active): sfBool: bad value: "maybe" is not a boolean`},
		{5, "Name", `first_name + " " + last_name: invalid operation: <nil> + string`},
	} {
		d := drops[i]
		var re *pipeline.RowError
		if !errors.As(d.Err, &re) {
			t.Fatalf("drop %d: Err = %v, want a *pipeline.RowError", i, d.Err)
		}
		if d.Origin.Line != want.line || re.Code != "expr_error" || re.Field != want.field || !strings.HasPrefix(re.Err.Error(), want.msg) {
			t.Errorf("drop %d = line %d, %q, %q, %q; want line %d, expr_error, %q, %q", i, d.Origin.Line, re.Code, re.Field, re.Err, want.line, want.field, want.msg)
		}
		if d.Row == nil || d.Row[0] != in.Row(int(want.line - 2))[0] {
			t.Errorf("drop %d row = %v, want the input row", i, d.Row)
		}
	}
}

func TestApplyWrongType(t *testing.T) {
	tr := newChecked(t, pipeline.ExprField{Name: "Parts", Expr: `split(first_name, " ")`})
	in := pipeline.NewBatch(inSchema, 1)
	in.Append(pipeline.Row{int64(1), "a b", "", "", ""}, pipeline.Origin{Row: 1})
	out, err := tr.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 || len(out.Drops()) != 1 || !strings.Contains(out.Drops()[0].Err.Error(), "not a field value") {
		t.Errorf("Apply = %d rows, drops %v; want the row dropped for its result type", out.Len(), out.Drops())
	}
}

func TestApplyConcurrent(t *testing.T) {
	tr := newChecked(t,
		pipeline.ExprField{Name: "Name", Expr: `upper(first_name) + "-" + string(id)`},
		pipeline.ExprField{Name: "Country", Expr: `lookup("countries", country)`},
		pipeline.ExprField{Name: "Active", Expr: `sfBool(active)`},
	)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for k := range 20 {
				in := pipeline.NewBatch(inSchema, 50)
				for i := range 50 {
					active := "yes"
					if i%7 == 0 {
						active = "bad"
					}
					in.Append(pipeline.Row{int64(i), fmt.Sprintf("g%d", g), "", "DE", active}, pipeline.Origin{Row: int64(i + 1)})
				}
				out, err := tr.Apply(context.Background(), in)
				if err != nil {
					t.Error(err)
					return
				}
				if out.Settled() != 50 || len(out.Drops()) != 8 {
					t.Errorf("goroutine %d batch %d: %d rows, %d drops; want 42, 8", g, k, out.Len(), len(out.Drops()))
					return
				}
				for i := range out.Len() {
					r := out.Row(i)
					want := fmt.Sprintf("G%d-%d", g, out.Origin(i).Row-1)
					if r[0] != want || r[1] != "Germany" || r[2] != true {
						t.Errorf("goroutine %d: row %v, want %s Germany true", g, r, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestRegistered(t *testing.T) {
	reg := pipeline.DefaultRegistry()
	opts, err := reg.NewOptions(pipeline.KindTransform, "map")
	if err != nil {
		t.Fatal(err)
	}
	opts.(pipeline.ExprSetter).SetExprs([]pipeline.ExprField{{Name: "Name", Expr: "first_name"}})
	tr, err := reg.NewTransform(nil, "map", opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.Check(inSchema)
	if err != nil || out.String() != "Name:string" {
		t.Errorf("Check() = %v, %v; want Name:string", out, err)
	}
}

func ExampleTransform() {
	in := pipeline.MustSchema(
		pipeline.Field{Name: "first", Type: pipeline.TypeString},
		pipeline.Field{Name: "last", Type: pipeline.TypeString},
		pipeline.Field{Name: "signup", Type: pipeline.TypeString},
		pipeline.Field{Name: "active", Type: pipeline.TypeString},
	)
	var opts Options
	opts.SetExprs([]pipeline.ExprField{
		{Name: "Name", Expr: `first + " " + upper(last)`},
		{Name: "Signup__c", Expr: `sfDate(signup, "02/01/2006")`},
		{Name: "Active__c", Expr: `sfBool(active)`},
	})
	tr, err := New(nil, &opts)
	if err != nil {
		panic(err)
	}
	out, err := tr.Check(in)
	if err != nil {
		panic(err)
	}
	fmt.Println(out)

	b := pipeline.NewBatch(in, 2)
	b.Append(pipeline.Row{"Ada", "Lovelace", "10/12/2024", "yes"}, pipeline.Origin{Object: "people.csv", Line: 2})
	b.Append(pipeline.Row{"Alan", "Turing", "23/06/2024", "perhaps"}, pipeline.Origin{Object: "people.csv", Line: 3})
	res, err := tr.Apply(context.Background(), b)
	if err != nil {
		panic(err)
	}
	for i := range res.Len() {
		fmt.Println(res.Origin(i), res.Row(i))
	}
	for _, d := range res.Drops() {
		fmt.Println(d.Origin, d.Err)
	}
	// Output:
	// Name:string, Signup__c:string, Active__c:bool
	// people.csv:2 [Ada LOVELACE 2024-12-10 true]
	// people.csv:3 field Active__c: sfBool(active): sfBool: bad value: "perhaps" is not a boolean (want true/false, 1/0, yes/no, y/n or t/f)
}

// TestApplyArithmeticErrors checks that integer overflow and division or
// modulo by zero dead-letter the row as expr_error naming the field and the
// expression (issue 15 item 11), instead of loading a wrapped or infinite
// value, while the same expressions on other rows load exact values.
func TestApplyArithmeticErrors(t *testing.T) {
	tests := []struct {
		expr    string
		id      int64
		want    any    // when wantErr is ""
		wantErr string // the error's text after "FIELD expression: "
	}{
		{expr: `id * 9223372036854775807`, id: 1, want: int64(9223372036854775807)},
		{expr: `id * 9223372036854775807`, id: 5, wantErr: "arithmetic error: integer overflow: 5 * 9223372036854775807 is outside the 64-bit range"},
		{expr: `10 / id`, id: 4, want: 2.5},
		{expr: `10 / id`, id: 0, wantErr: "arithmetic error: division by zero: 10 / 0"},
		{expr: `10 / 0`, id: 1, wantErr: "arithmetic error: division by zero: 10 / 0"},
		{expr: `id % 0`, id: 3, wantErr: "arithmetic error: division by zero: 3 % 0"},
		{expr: `-id`, id: -9223372036854775808, wantErr: "arithmetic error: integer overflow: -(-9223372036854775808)"},
		{expr: `id + 1`, id: 9223372036854775807, wantErr: "arithmetic error: integer overflow"},
		{expr: `id - 1`, id: -9223372036854775808, wantErr: "arithmetic error: integer overflow"},
	}
	for _, tc := range tests {
		tr := newChecked(t, pipeline.ExprField{Name: "Id", Expr: "id"}, pipeline.ExprField{Name: "Amount__c", Expr: tc.expr})
		in := pipeline.NewBatch(inSchema, 1)
		in.Append(pipeline.Row{tc.id, "Ada", "Lovelace", "FR", "yes"}, pipeline.Origin{Object: "a.csv", Line: 2})
		out, err := tr.Apply(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if out.Settled() != 1 {
			t.Fatalf("%s: settled %d rows, want 1", tc.expr, out.Settled())
		}
		if tc.wantErr == "" {
			if out.Len() != 1 || out.Row(0)[1] != tc.want {
				t.Errorf("%s with id %d: %d rows, drops %v; want the value %v", tc.expr, tc.id, out.Len(), out.Drops(), tc.want)
			}
			continue
		}
		var re *pipeline.RowError
		if out.Len() != 0 || len(out.Drops()) != 1 || !errors.As(out.Drops()[0].Err, &re) {
			t.Fatalf("%s with id %d: %d rows, drops %v; want the row dead-lettered", tc.expr, tc.id, out.Len(), out.Drops())
		}
		if re.Code != CodeExprError || re.Field != "Amount__c" || !strings.HasPrefix(re.Err.Error(), tc.expr+": "+tc.wantErr) {
			t.Errorf("%s with id %d: dead letter %q, field %q, %q; want expr_error, Amount__c, %q", tc.expr, tc.id, re.Code, re.Field, re.Err, tc.expr+": "+tc.wantErr)
		}
	}
}
