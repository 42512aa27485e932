package filter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

var inSchema = pipeline.MustSchema(
	pipeline.Field{Name: "amount", Type: pipeline.TypeFloat},
	pipeline.Field{Name: "status", Type: pipeline.TypeString},
	pipeline.Field{Name: "active", Type: pipeline.TypeString},
	pipeline.Field{Name: "extra", Type: pipeline.TypeAny},
)

var at = pipeline.Position{File: "p.yaml", Line: 9, Col: 9}

func newChecked(t testing.TB, src string) *Transform {
	t.Helper()
	var o Options
	o.SetExprs([]pipeline.ExprField{{Expr: src, Pos: at}})
	tr, err := New(nil, &o)
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
		exprs   []pipeline.ExprField
		wantErr string
	}{
		{name: "ok", exprs: []pipeline.ExprField{{Expr: "true"}}},
		{name: "none", wantErr: "filter needs an expression"},
		{name: "empty", exprs: []pipeline.ExprField{{Expr: "", Pos: at}}, wantErr: "p.yaml:9:9: filter needs an expression"},
		{name: "two", exprs: []pipeline.ExprField{{Expr: "true", Pos: at}, {Expr: "false"}}, wantErr: "p.yaml:9:9: filter takes exactly one expression, got 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o Options
			o.SetExprs(tc.exprs)
			err := o.Validate()
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

func TestCheckErrors(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		wantErr string
	}{
		{name: "not bool", expr: `status`, wantErr: `p.yaml:9:9: filter: expected bool, but got string in: status`},
		{name: "not bool arithmetic", expr: `amount * 2`, wantErr: `p.yaml:9:9: filter: expected bool, but got float64 in: amount * 2`},
		{name: "misspelled field", expr: `amout > 0`, wantErr: `p.yaml:9:9: filter: unknown name "amout" (did you mean "amount"?) at column 1 in: amout > 0`},
		{name: "bad regex literal", expr: `regexReplace(status, "(", "") == ""`, wantErr: `p.yaml:9:9: filter: regexReplace: invalid pattern "(": missing closing ): ` + "`(`" + ` at column 22 in: regexReplace(status, "(", "") == ""`},
		{name: "unknown lookup table", expr: `lookup("statuses", status) == "x"`, wantErr: `p.yaml:9:9: filter: unknown lookup table "statuses" (the pipeline declares no lookups) at column 8 in: lookup("statuses", status) == "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(nil, &Options{Expr: pipeline.ExprField{Expr: tc.expr, Pos: at}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tr.Check(inSchema)
			var ce *pipeline.ConfigError
			if !errors.As(err, &ce) || ce.Pos != at {
				t.Fatalf("Check() = %#v, want a *pipeline.ConfigError at %v", err, at)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("Check() =\n  %s\nwant\n  %s", err, tc.wantErr)
			}
		})
	}
}

func TestCheckAny(t *testing.T) {
	// An expression the checker cannot type compiles; a non-bool result
	// dead-letters the row at run time.
	tr := newChecked(t, `extra`)
	in := pipeline.NewBatch(inSchema, 2)
	in.Append(pipeline.Row{1.0, "", "", true}, pipeline.Origin{Row: 1})
	in.Append(pipeline.Row{1.0, "", "", "yes"}, pipeline.Origin{Row: 2})
	out, err := tr.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Len() != 1 || len(out.Drops()) != 1 || out.Drops()[0].Err == nil {
		t.Errorf("Apply = %d rows, drops %v; want 1 row and 1 dead letter", out.Len(), out.Drops())
	}
}

func TestApply(t *testing.T) {
	tr := newChecked(t, `amount > 0 && status != "closed" && sfBool(active)`)
	in := pipeline.NewBatch(inSchema, 5)
	in.Append(pipeline.Row{10.0, "open", "yes", nil}, pipeline.Origin{Object: "o.csv", Line: 2})  // kept
	in.Append(pipeline.Row{0.0, "open", "yes", nil}, pipeline.Origin{Object: "o.csv", Line: 3})   // filtered: amount
	in.Append(pipeline.Row{5.0, "closed", "yes", nil}, pipeline.Origin{Object: "o.csv", Line: 4}) // filtered: status
	in.Append(pipeline.Row{5.0, "open", "perhaps", nil}, pipeline.Origin{Object: "o.csv", Line: 5})
	in.Append(pipeline.Row{5.0, "open", "", nil}, pipeline.Origin{Object: "o.csv", Line: 6})  // filtered: sfBool null
	in.Append(pipeline.Row{7.0, "open", "n", nil}, pipeline.Origin{Object: "o.csv", Line: 7}) // filtered: inactive
	out, err := tr.Apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.Settled() != in.Len() {
		t.Fatalf("Apply settled %d rows, want %d", out.Settled(), in.Len())
	}
	if out.Len() != 1 || out.Origin(0).Line != 2 || out.Row(0)[1] != "open" || out.Schema() != inSchema {
		t.Errorf("Apply kept %d rows (first %v), want the row of line 2", out.Len(), out.Origin(0))
	}
	var got []string
	for _, d := range out.Drops() {
		s := fmt.Sprintf("%d:", d.Origin.Line)
		var re *pipeline.RowError
		switch {
		case d.Err == nil:
			s += "filtered"
		case errors.As(d.Err, &re) && re.Code == "expr_error":
			s += "expr_error"
		default:
			s += d.Err.Error()
		}
		got = append(got, s)
	}
	want := "3:filtered 4:filtered 5:expr_error 6:filtered 7:filtered"
	if strings.Join(got, " ") != want {
		t.Errorf("Apply drops = %s, want %s", strings.Join(got, " "), want)
	}
}

func TestApplyConcurrent(t *testing.T) {
	tr := newChecked(t, `int(status) % 3 == 0`)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for range 20 {
				in := pipeline.NewBatch(inSchema, 90)
				for i := range 90 {
					in.Append(pipeline.Row{1.0, fmt.Sprint(i), "", nil}, pipeline.Origin{Row: int64(i)})
				}
				out, err := tr.Apply(context.Background(), in)
				if err != nil || out.Len() != 30 || len(out.Drops()) != 60 {
					t.Errorf("goroutine %d: %d rows, %d drops, %v; want 30, 60", g, out.Len(), len(out.Drops()), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRegistered(t *testing.T) {
	reg := pipeline.DefaultRegistry()
	opts, err := reg.NewOptions(pipeline.KindTransform, "filter")
	if err != nil {
		t.Fatal(err)
	}
	opts.(pipeline.ExprSetter).SetExprs([]pipeline.ExprField{{Expr: "amount > 1"}})
	tr, err := reg.NewTransform(nil, "filter", opts)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := tr.Check(inSchema); err != nil || out != inSchema {
		t.Errorf("Check() = %v, %v; want the input schema", out, err)
	}
}

func ExampleTransform() {
	in := pipeline.MustSchema(
		pipeline.Field{Name: "amount", Type: pipeline.TypeFloat},
		pipeline.Field{Name: "status", Type: pipeline.TypeString},
	)
	var opts Options
	opts.SetExprs([]pipeline.ExprField{{Expr: `amount > 0 && status != "closed"`}})
	tr, err := New(nil, &opts)
	if err != nil {
		panic(err)
	}
	if _, err := tr.Check(in); err != nil {
		panic(err)
	}
	b := pipeline.NewBatch(in, 3)
	b.Append(pipeline.Row{120.0, "open"}, pipeline.Origin{Object: "deals.csv", Line: 2})
	b.Append(pipeline.Row{0.0, "open"}, pipeline.Origin{Object: "deals.csv", Line: 3})
	b.Append(pipeline.Row{75.5, "closed"}, pipeline.Origin{Object: "deals.csv", Line: 4})
	res, err := tr.Apply(context.Background(), b)
	if err != nil {
		panic(err)
	}
	for i := range res.Len() {
		fmt.Println("kept", res.Origin(i), res.Row(i))
	}
	for _, d := range res.Drops() {
		fmt.Println("filtered", d.Origin, d.Err == nil)
	}
	// Output:
	// kept deals.csv:2 [120 open]
	// filtered deals.csv:3 true
	// filtered deals.csv:4 true
}

// TestApplyArithmeticErrors checks that a condition whose arithmetic
// overflows or divides by zero dead-letters the row as expr_error with the
// expression, instead of comparing a wrapped or infinite value.
func TestApplyArithmeticErrors(t *testing.T) {
	tests := []struct {
		expr   string
		amount float64
		extra  any
		want   string // "kept", "filtered" or the start of the error
	}{
		{expr: `100 / amount > 1`, amount: 50, want: "kept"},
		{expr: `100 / amount > 1`, amount: 0, want: "100 / amount > 1: arithmetic error: division by zero: 100 / 0"},
		{expr: `amount * 1e308 > 0`, amount: 10, want: "amount * 1e308 > 0: arithmetic error: 10 * 1e+308 is not a finite number"},
		{expr: `extra * 2 > 0`, extra: int64(4611686018427387904), want: "extra * 2 > 0: arithmetic error: integer overflow"},
		{expr: `extra * 2 > 0`, extra: int64(-3), want: "filtered"},
		{expr: `extra % 0 == 1`, extra: int64(3), want: "extra % 0 == 1: arithmetic error: division by zero"},
	}
	for _, tc := range tests {
		tr := newChecked(t, tc.expr)
		in := pipeline.NewBatch(inSchema, 1)
		in.Append(pipeline.Row{tc.amount, "open", "yes", tc.extra}, pipeline.Origin{Object: "o.csv", Line: 2})
		out, err := tr.Apply(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got := "kept"
		if len(out.Drops()) == 1 {
			got = "filtered"
			var re *pipeline.RowError
			if d := out.Drops()[0]; errors.As(d.Err, &re) && re.Code == CodeExprError {
				got = re.Err.Error()
			} else if d.Err != nil {
				got = d.Err.Error()
			}
		}
		if out.Settled() != 1 || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s with amount %v, extra %v: %s (settled %d), want %s", tc.expr, tc.amount, tc.extra, got, out.Settled(), tc.want)
		}
	}
}
