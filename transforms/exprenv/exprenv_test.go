package exprenv

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/bulkflow/bulkflow/pipeline"
)

var testSchema = pipeline.MustSchema(
	pipeline.Field{Name: "s", Type: pipeline.TypeString},
	pipeline.Field{Name: "n", Type: pipeline.TypeInt},
	pipeline.Field{Name: "f", Type: pipeline.TypeFloat},
	pipeline.Field{Name: "b", Type: pipeline.TypeBool},
	pipeline.Field{Name: "d", Type: pipeline.TypeDate},
	pipeline.Field{Name: "ts", Type: pipeline.TypeTimestamp},
	pipeline.Field{Name: "dec", Type: pipeline.TypeDecimal},
	pipeline.Field{Name: "a", Type: pipeline.TypeAny},
	pipeline.Field{Name: "first_name", Type: pipeline.TypeString},
)

var testEnv = &pipeline.Env{
	BaseDir: "testdata",
	Lookups: map[string]pipeline.LookupSpec{
		"countries": {URL: "countries.csv", Key: "code", Value: "name"},
		"regions":   {URL: "countries.csv", Key: "code", Value: "region"},
	},
}

// badEnv adds tables that fail to load.
var badEnv = &pipeline.Env{
	BaseDir: "testdata",
	Lookups: map[string]pipeline.LookupSpec{
		"countries": {URL: "countries.csv", Key: "code", Value: "name"},
		"dups":      {URL: "dup.csv", Key: "code", Value: "name"},
		"badcol":    {URL: "countries.csv", Key: "cod", Value: "name"},
		"missing":   {URL: "nope.csv", Key: "code", Value: "name"},
	},
}

// row builds a testSchema row with the given values by field name.
func row(vals map[string]any) pipeline.Row {
	r := make(pipeline.Row, testSchema.Len())
	for k, v := range vals {
		i := testSchema.Index(k)
		if i < 0 {
			panic(k)
		}
		r[i] = v
	}
	return r
}

// eval compiles src against testSchema and runs it on r.
func eval(t *testing.T, src string, r pipeline.Row) (any, error) {
	t.Helper()
	e := New(testSchema, testEnv)
	p, err := e.Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	run := e.Runner()
	defer run.Release()
	run.Bind(r)
	return run.Run(p)
}

var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	return l
}()

func TestHelpers(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		in      map[string]any
		want    any
		wantErr string
	}{
		// sfDate
		{name: "sfDate string", expr: `sfDate(s, "02/01/2006")`, in: map[string]any{"s": "31/12/2024"}, want: "2024-12-31"},
		{name: "sfDate spaces", expr: `sfDate(s, "2006-01-02")`, in: map[string]any{"s": " 2024-03-05 "}, want: "2024-03-05"},
		{name: "sfDate date", expr: `sfDate(d, "ignored")`, in: map[string]any{"d": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)}, want: "2024-02-29"},
		{name: "sfDate timestamp keeps its date", expr: `sfDate(ts, "")`, in: map[string]any{"ts": time.Date(2024, 2, 29, 23, 30, 0, 0, paris)}, want: "2024-02-29"},
		{name: "sfDate any string", expr: `sfDate(a, "2006-01-02")`, in: map[string]any{"a": "2024-01-09"}, want: "2024-01-09"},
		{name: "sfDate empty", expr: `sfDate(s, "2006-01-02")`, in: map[string]any{"s": ""}, want: nil},
		{name: "sfDate null", expr: `sfDate(s, "2006-01-02")`, want: nil},
		{name: "sfDate bad", expr: `sfDate(s, "2006-01-02")`, in: map[string]any{"s": "31/12/2024"}, wantErr: `sfDate: bad value: "31/12/2024" does not match layout "2006-01-02"`},
		{name: "sfDate bad type", expr: `sfDate(a, "2006-01-02")`, in: map[string]any{"a": int64(3)}, wantErr: "want a string or a time, got int64"},
		{name: "sfDate null layout", expr: `sfDate(s, a)`, in: map[string]any{"s": "2024"}, wantErr: "empty layout"},

		// sfDateTime
		{name: "sfDateTime zone", expr: `sfDateTime(s, "2006-01-02 15:04:05", "Europe/Paris")`, in: map[string]any{"s": "2024-07-01 12:00:00"}, want: "2024-07-01T10:00:00.000Z"},
		{name: "sfDateTime winter", expr: `sfDateTime(s, "2006-01-02 15:04", "Europe/Paris")`, in: map[string]any{"s": "2024-01-01 00:30"}, want: "2023-12-31T23:30:00.000Z"},
		{name: "sfDateTime offset wins", expr: `sfDateTime(s, "2006-01-02T15:04:05Z07:00", "Europe/Paris")`, in: map[string]any{"s": "2024-07-01T12:00:00.123-05:00"}, want: "2024-07-01T17:00:00.123Z"},
		{name: "sfDateTime timestamp", expr: `sfDateTime(ts, "", "UTC")`, in: map[string]any{"ts": time.Date(2024, 7, 1, 12, 0, 0, 5e8, paris)}, want: "2024-07-01T10:00:00.500Z"},
		{name: "sfDateTime blank", expr: `sfDateTime(s, "2006", "UTC")`, in: map[string]any{"s": "  "}, want: nil},
		{name: "sfDateTime null", expr: `sfDateTime(ts, "2006", "UTC")`, want: nil},
		{name: "sfDateTime bad", expr: `sfDateTime(s, "2006-01-02", "UTC")`, in: map[string]any{"s": "yesterday"}, wantErr: "bad value"},
		{name: "sfDateTime zone from field", expr: `sfDateTime(s, "2006-01-02", a)`, in: map[string]any{"s": "2024-01-01", "a": "Mars/Olympus"}, wantErr: `unknown time zone "Mars/Olympus"`},
		{name: "sfDateTime empty zone", expr: `sfDateTime(s, "2006-01-02", a)`, in: map[string]any{"s": "2024-01-01", "a": ""}, wantErr: "empty time zone"},

		// sfBool
		{name: "sfBool yes", expr: `sfBool(s)`, in: map[string]any{"s": "Yes"}, want: true},
		{name: "sfBool Y", expr: `sfBool(s)`, in: map[string]any{"s": " Y "}, want: true},
		{name: "sfBool 1", expr: `sfBool(s)`, in: map[string]any{"s": "1"}, want: true},
		{name: "sfBool TRUE", expr: `sfBool(s)`, in: map[string]any{"s": "TRUE"}, want: true},
		{name: "sfBool t", expr: `sfBool(s)`, in: map[string]any{"s": "t"}, want: true},
		{name: "sfBool no", expr: `sfBool(s)`, in: map[string]any{"s": "NO"}, want: false},
		{name: "sfBool n", expr: `sfBool(s)`, in: map[string]any{"s": "n"}, want: false},
		{name: "sfBool 0", expr: `sfBool(s)`, in: map[string]any{"s": "0"}, want: false},
		{name: "sfBool False", expr: `sfBool(s)`, in: map[string]any{"s": "False"}, want: false},
		{name: "sfBool f", expr: `sfBool(s)`, in: map[string]any{"s": "F"}, want: false},
		{name: "sfBool bool", expr: `sfBool(b)`, in: map[string]any{"b": true}, want: true},
		{name: "sfBool int", expr: `sfBool(n)`, in: map[string]any{"n": int64(0)}, want: false},
		{name: "sfBool empty", expr: `sfBool(s)`, in: map[string]any{"s": ""}, want: nil},
		{name: "sfBool null", expr: `sfBool(s)`, want: nil},
		{name: "sfBool bad", expr: `sfBool(s)`, in: map[string]any{"s": "maybe"}, wantErr: `sfBool: bad value: "maybe" is not a boolean`},
		{name: "sfBool bad int", expr: `sfBool(n)`, in: map[string]any{"n": int64(2)}, wantErr: `"2" is not a boolean`},

		// null
		{name: "null", expr: `null`, want: nil},
		{name: "null compare", expr: `s == null`, want: true},
		{name: "null branch", expr: `n > 1 ? s : null`, in: map[string]any{"n": int64(0), "s": "x"}, want: nil},

		// trim
		{name: "trim", expr: `trim(s)`, in: map[string]any{"s": "  a b \t"}, want: "a b"},
		{name: "trim cutset", expr: `trim(s, "-")`, in: map[string]any{"s": "--a-"}, want: "a"},
		{name: "trim null", expr: `trim(s)`, want: nil},

		// coalesce
		{name: "coalesce first", expr: `coalesce(s, first_name, "x")`, in: map[string]any{"s": "a", "first_name": "b"}, want: "a"},
		{name: "coalesce skips empty", expr: `coalesce(s, first_name, "x")`, in: map[string]any{"s": "", "first_name": "b"}, want: "b"},
		{name: "coalesce default", expr: `coalesce(s, first_name, "x")`, want: "x"},
		{name: "coalesce none", expr: `coalesce(s, first_name)`, want: nil},
		{name: "coalesce zero is a value", expr: `coalesce(n, 7)`, in: map[string]any{"n": int64(0)}, want: int64(0)},
		{name: "coalesce int", expr: `coalesce(n, 7)`, want: int64(7)},

		// regexReplace
		{name: "regexReplace", expr: `regexReplace(s, "[^0-9]+", "")`, in: map[string]any{"s": "+33 (1) 23-45"}, want: "3312345"},
		{name: "regexReplace groups", expr: `regexReplace(s, "(\\w+)@(\\w+)", "$2:$1")`, in: map[string]any{"s": "ada@example"}, want: "example:ada"},
		{name: "regexReplace null", expr: `regexReplace(s, "a", "b")`, want: nil},
		{name: "regexReplace dynamic bad pattern", expr: `regexReplace(s, a, "")`, in: map[string]any{"s": "x", "a": "("}, wantErr: `invalid pattern "("`},

		// lookup
		{name: "lookup", expr: `lookup("countries", s)`, in: map[string]any{"s": "FR"}, want: "France"},
		{name: "lookup other column", expr: `lookup("regions", s)`, in: map[string]any{"s": "US"}, want: "AMER"},
		{name: "lookup int key", expr: `lookup("countries", n)`, in: map[string]any{"n": int64(42)}, want: "Answer"},
		{name: "lookup empty value", expr: `lookup("countries", s)`, in: map[string]any{"s": "EMPTY"}, want: ""},
		{name: "lookup missing", expr: `lookup("countries", s)`, in: map[string]any{"s": "XX"}, want: nil},
		{name: "lookup null key", expr: `lookup("countries", s)`, want: nil},
		{name: "lookup dynamic table", expr: `lookup(a, s)`, in: map[string]any{"a": "countries", "s": "DE"}, want: "Germany"},
		{name: "lookup dynamic unknown", expr: `lookup(a, s)`, in: map[string]any{"a": "planets", "s": "DE"}, wantErr: `unknown lookup table "planets"`},

		// builtins and result types
		{name: "upper", expr: `upper(s)`, in: map[string]any{"s": "fr"}, want: "FR"},
		{name: "len", expr: `len(s)`, in: map[string]any{"s": "abc"}, want: int64(3)},
		{name: "int arithmetic is int64", expr: `n * 2`, in: map[string]any{"n": int64(21)}, want: int64(42)},
		{name: "float", expr: `f / 2`, in: map[string]any{"f": 3.0}, want: 1.5},
		{name: "decimal rename", expr: `dec`, in: map[string]any{"dec": "12.50"}, want: "12.50"},
		{name: "env access", expr: `$env["first_name"]`, in: map[string]any{"first_name": "Ada"}, want: "Ada"},
		{name: "list result", expr: `split(s, ",")`, in: map[string]any{"s": "a,b"}, wantErr: "result of type []string is not a field value"},
		{name: "builtin on null", expr: `upper(s)`, wantErr: "nil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eval(t, tc.expr, row(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s = %#v, %v; want error containing %q", tc.expr, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.expr, err)
			}
			if got != tc.want {
				t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestBadValueIs(t *testing.T) {
	_, err := eval(t, `sfBool(s)`, row(map[string]any{"s": "maybe"}))
	if !errors.Is(err, ErrBadValue) {
		t.Errorf("sfBool(maybe) error %v does not wrap ErrBadValue", err)
	}
}

func TestTypes(t *testing.T) {
	tests := []struct {
		expr string
		want pipeline.Type
	}{
		{`s + "x"`, pipeline.TypeString},
		{`n + 1`, pipeline.TypeInt},
		{`n * 1.5`, pipeline.TypeFloat},
		{`n > 1`, pipeline.TypeBool},
		{`d`, pipeline.TypeDate},
		{`dec`, pipeline.TypeDecimal},
		{`ts`, pipeline.TypeTimestamp},
		{`a`, pipeline.TypeAny},
		{`sfDate(s, "2006")`, pipeline.TypeString},
		{`sfBool(s)`, pipeline.TypeBool},
		{`coalesce(s, "x")`, pipeline.TypeString},
		{`coalesce(s, 1)`, pipeline.TypeAny},
		{`lookup("countries", s)`, pipeline.TypeString},
		{`null`, pipeline.TypeAny},
	}
	e := New(testSchema, testEnv)
	for _, tc := range tests {
		p, err := e.Compile(tc.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tc.expr, err)
		}
		if p.Type != tc.want {
			t.Errorf("Compile(%q).Type = %s, want %s", tc.expr, p.Type, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		opts    []expr.Option
		wantCol int
		wantErr string
	}{
		{name: "misspelled field", expr: `frist_name + " x"`, wantCol: 1, wantErr: `unknown name "frist_name" (did you mean "first_name"?) at column 1 in: frist_name + " x"`},
		{name: "unknown name", expr: `upper(zzz)`, wantCol: 7, wantErr: `unknown name "zzz" at column 7 in: upper(zzz)`},
		{name: "unknown name in a helper call", expr: `trim(frist_name)`, wantCol: 6, wantErr: `unknown name "frist_name" (did you mean "first_name"?) at column 6 in: trim(frist_name)`},
		{name: "unknown name in arithmetic", expr: `n * zzz + 1`, wantCol: 5, wantErr: `unknown name "zzz" at column 5`},
		{name: "unknown name negated", expr: `sfBool(-zzz)`, wantErr: `unknown name "zzz"`},
		{name: "arithmetic on a string", expr: `s * 2`, wantErr: `invalid operation: * (mismatched types string and int)`},
		{name: "multi-line", expr: "s +\n  frist_name", wantCol: 3, wantErr: `unknown name "frist_name" (did you mean "first_name"?) at line 2, column 3 in: s + frist_name`},
		{name: "bad regex literal", expr: `regexReplace(s, "a(", "")`, wantCol: 17, wantErr: `regexReplace: invalid pattern "a(": missing closing ): ` + "`a(`" + ` at column 17`},
		{name: "unknown lookup", expr: `lookup("contries", s)`, wantCol: 8, wantErr: `unknown lookup table "contries" (did you mean "countries"?) (declared: badcol, countries, dups, missing)`},
		{name: "unknown zone", expr: `sfDateTime(s, "2006", "Europe/Pariss")`, wantCol: 23, wantErr: `sfDateTime: unknown time zone "Europe/Pariss"`},
		{name: "wrong argument type", expr: `sfBool(f)`, wantErr: `cannot use float64 as argument`},
		{name: "syntax", expr: `s +`, wantErr: `unexpected token EOF`},
		{name: "empty", expr: `  `, wantErr: `empty expression`},
		{name: "not bool", expr: `s`, opts: []expr.Option{expr.AsBool()}, wantErr: `expected bool, but got string`},
		{name: "lookup duplicate key", expr: `lookup("dups", s)`, wantErr: `lookup table "dups": dup.csv:3: key "FR" appears twice with different values ("France", "Frankreich")`},
		{name: "lookup bad column", expr: `lookup("badcol", s)`, wantErr: `no column "cod" (did you mean "code"?)`},
		{name: "lookup missing file", expr: `lookup("missing", s)`, wantErr: `lookup table "missing"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(testSchema, badEnv).Compile(tc.expr, tc.opts...)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Compile(%q) = %v, want an *Error", tc.expr, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Compile(%q) = %q, want it to contain %q", tc.expr, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Compile(%q) = %q, want one line", tc.expr, err)
			}
			if tc.wantCol != 0 && ce.Col != tc.wantCol {
				t.Errorf("Compile(%q) column = %d, want %d", tc.expr, ce.Col, tc.wantCol)
			}
		})
	}
}

func TestNoLookups(t *testing.T) {
	_, err := New(testSchema, nil).Compile(`lookup("countries", s)`)
	if err == nil || !strings.Contains(err.Error(), "declares no lookups") {
		t.Errorf("Compile = %v, want an error saying no lookups are declared", err)
	}
}

// TestBindOnlyUsed checks that a Runner copies into the VM's variables
// only the fields of the programs the VM runs, all of them when a program
// reads $env, and none for programs answered by their fast path.
func TestBindOnlyUsed(t *testing.T) {
	e := New(testSchema, nil)
	fast, err := e.Compile(`s + first_name`)
	if err != nil {
		t.Fatal(err)
	}
	vmOnly, err := e.Compile(`s matches first_name`)
	if err != nil {
		t.Fatal(err)
	}
	r := e.Runner()
	r.Bind(row(map[string]any{"s": "a", "first_name": "b", "n": int64(1)}))
	if v, err := r.Run(fast); err != nil || v != "ab" || len(r.vars) != 0 {
		t.Errorf("fast path = %v, %v, bound %v; want ab and nothing bound", v, err, r.vars)
	}
	if _, err := r.Run(vmOnly); err != nil || len(r.vars) != 2 {
		t.Errorf("VM run: %v, bound %v; want s and first_name only", err, r.vars)
	}
	// A fallback to the VM (null s) binds the program's fields.
	r.Bind(row(map[string]any{"first_name": "b"}))
	clear(r.vars)
	if v, err := r.Run(fast); err == nil || len(r.vars) != 2 {
		t.Errorf("fallback = %v, %v, bound %v; want an error and s, first_name bound", v, err, r.vars)
	}
	r.Release()
	env, err := e.Compile(`$env["n"]`)
	if err != nil {
		t.Fatal(err)
	}
	r = e.Runner()
	defer r.Release()
	r.Bind(row(map[string]any{"n": int64(1)}))
	if v, err := r.Run(env); err != nil || v != int64(1) {
		t.Errorf("$env[n] = %v, %v", v, err)
	}
	if len(r.vars) != testSchema.Len() {
		t.Errorf("bound %d fields with $env, want all %d", len(r.vars), testSchema.Len())
	}
}

func TestRunnersConcurrent(t *testing.T) {
	e := New(testSchema, testEnv)
	p, err := e.Compile(`lookup("countries", s) + "/" + sfDate(first_name, "2006-01-02") + regexReplace(s, "[A-Z]", "x")`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				r := e.Runner()
				r.Bind(row(map[string]any{"s": "FR", "first_name": "2024-01-02"}))
				v, err := r.Run(p)
				r.Release()
				if err != nil || v != "France/2024-01-02xx" {
					t.Errorf("goroutine %d run %d = %v, %v", g, i, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		typ     pipeline.Type
		want    any
		wantErr bool
	}{
		{"int", 3, pipeline.TypeInt, int64(3), false},
		{"uint8", uint8(3), pipeline.TypeAny, int64(3), false},
		{"float32", float32(1.5), pipeline.TypeFloat, 1.5, false},
		{"int as float", 2, pipeline.TypeFloat, 2.0, false},
		{"nil", nil, pipeline.TypeBool, nil, false},
		{"decimal", "1.20", pipeline.TypeDecimal, "1.20", false},
		{"string for int", "1", pipeline.TypeInt, nil, true},
		{"float for int", 1.5, pipeline.TypeInt, nil, true},
		{"map", map[string]any{}, pipeline.TypeAny, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in, tc.typ)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("Normalize(%#v, %s) = %#v, %v; want %#v, error %v", tc.in, tc.typ, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
