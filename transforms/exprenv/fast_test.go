package exprenv

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"

	"github.com/bulkflow/bulkflow/pipeline"
)

// fastExprs all have a fast path (TestFastMatchesVM checks it).
var fastExprs = []string{
	// field names
	`s`, `n`, `f`, `b`, `d`, `ts`, `dec`, `a`, `first_name`,
	// literals
	`null`, `true`, `"lit"`, `1`, `2.5`, `nil`,
	// concatenation
	`first_name + " " + s`,
	`"<" + s + "|" + first_name + ">"`,
	`s + ""`,
	`a + s`,
	`a + "x"`,
	`dec + "%"`,
	`upper(s) + "/" + lower(first_name) + "/" + sfDate(s, "2006-01-02")`,
	// builtins
	`upper(s)`, `lower(s)`, `upper(a)`, `lower(dec)`, `len(s)`, `len(a)`, `upper(trim(s))`,
	// helpers
	`trim(s)`, `trim(s, " a")`, `trim(a)`, `trim(s, first_name)`,
	`sfDate(s, "2006-01-02")`,
	`sfDate(s, "02/01/2006")`,
	`sfDate(d, "2006-01-02")`,
	`sfDate(ts, "x")`,
	`sfDate(a, "2006-01-02")`,
	`sfDate(s, first_name)`,
	`sfDateTime(s, "2006-01-02", "Europe/Paris")`,
	`sfDateTime(s, "2006-01-02T15:04:05Z07:00", "UTC")`,
	`sfDateTime(ts, "", "UTC")`,
	`sfDateTime(a, "2006-01-02", first_name)`,
	`sfBool(s)`, `sfBool(b)`, `sfBool(n)`, `sfBool(a)`,
	`coalesce(s, first_name, "x")`,
	`coalesce(s, upper(a))`,
	`coalesce(a, n)`,
	`coalesce(n, 7)`,
	`regexReplace(s, "[^a-z]+", "-")`,
	`regexReplace(s, first_name, "$0$0")`,
	`lookup("countries", s)`,
	`lookup("countries", a)`,
	// conditions
	`s == nil || s == "" ? "Warm" : "Hot"`,
	`s != "" && first_name != nil`,
	`s == "" or s == "yes" and b`,
	`!(s == "yes")`,
	`not b`,
	`b ? "y" : "n"`,
	`a ? "y" : "n"`,
	`sfBool(s) ? "y" : "n"`,
	`len(s) > 3 ? "long" : "short"`,
	`f > 1000000 ? "Enterprise" : "SMB"`,
	`n >= 2`, `n < f`, `f <= 1.5`, `n > 1 ? s : null`,
	`a == nil`, `a == "x"`, `a != true`, `a > 2`, `a <= "m"`,
	`s < first_name`, `s >= "m"`, `s == first_name`, `s != a`,
	`dec == "12.50"`, `s == null`, `b == true`, `b != a`,
	`f == 1000000`, `a == 1.5`, `a == f`, `f != f`, `n == 1`, `a == 0`,
	// checked arithmetic (overflow, division by zero: ErrArithmetic)
	`n + 1`, `n - 9223372036854775807`, `n * n`, `n * 9223372036854775807`, `-n`, `n % n`, `n / f`,
	`f * 1e308`, `n ** 2`, `a * 2`, `a + n`, `n * 2 > f`, `(n + 1) * (n - 1)`, `f / 0.5`,
	// float() and int() (issue 23), fixed-width date layouts
	`float(s)`, `float(dec)`, `float(n)`, `float(f)`, `float(a)`, `int(s)`, `int(n)`, `int(f)`, `int(dec)`, `int(a)`,
	`float(dec) >= 1000000 ? "Enterprise" : "SMB"`,
	`dec != nil && dec != "" && float(dec) >= 1000000 ? "Enterprise" : "SMB"`,
	`int(s) > 3 ? s : "small"`, `float(s) < f`, `float(a) == 1.5`,
	`sfDate(s, "01/02/2006")`, `sfDate(a, "01/02/2006")`, `sfDate(s, "2006.01.02")`,
	`sfDateTime(s, "01/02/2006 15:04:05", "UTC")`, `sfDateTime(a, "01/02/2006 15:04:05", "UTC")`,
	`sfDateTime(s, "2006-01-02 15:04", "Europe/Paris")`, `sfDateTime(s, "2006-01-02T15:04:05-07:00", "UTC")`,
	// text forms nested and mixed (RunText), typed float comparisons
	`upper(first_name) + "-" + sfDate(s, "01/02/2006")`, `"at " + sfDateTime(s, "01/02/2006 15:04:05", "UTC")`,
	`upper(first_name + s)`, `lower(s + "X")`, `upper(s) == "ADA"`, `lower(first_name) + upper(a)`,
	`sfDate(s, "01/02/2006") + ""`, `sfDateTime(a, "01/02/2006 15:04:05", "Europe/Paris")`,
	`sfDate(s, "2006-01-02") + "|" + sfDate(d, "2006-01-02")`,
	`float(s) >= 1000000`, `float(s) < 1e6`, `1000000 <= float(dec)`, `float(s) > float(dec)`, `float(a) <= 2.5`,
	`float(n) > 1`, `float(f) >= 1000000.5`, `float(s) >= 9007199254740993`,
	`s != nil && s != "" && float(s) >= 1000000 ? "Enterprise" : "SMB"`,
	`"Open - Not Contacted"`,
}

// vmOnlyExprs have no fast path; they are run between the others to check
// that the Runner binds what the VM needs.
var vmOnlyExprs = []string{
	`$env["s"]`,
	`s matches "^a"`,
	`first_name in ["Ada", "Grace"]`,
	`len(split(s, "a")) * 2`,
}

// fastValues are the values rows are made of: the schema's types, nulls,
// blanks, unicode, bad dates, and values of the wrong type for every field.
var fastValues = []any{
	nil, "", " ", "ada", "Ada", "  Ada Lovelace \t", "ÉCOLE ß ǅ ﬁ İ", "héllo wörld", "\xff\xfe",
	"2024-03-05", " 2024-03-05 ", "2024-3-5", "+024-01-02", "2024-02-30", "31/12/2024", "05/03/2024",
	"2024-07-01T12:00:00.123-05:00", "yes", "N", "1", "0", "maybe", "FR", "XX", "EMPTY", "12.50",
	"[a-z]", "(", "UTC", "Mars/Olympus", "m", "x",
	"03/05/2024", " 03/05/2024", "12/31/2024 23:59:59", "02/29/2023", "02/29/2024", "13/01/2024", "00/10/2024",
	"3/5/2024", "01/02/2006 1:04:05", "01/02/2006 24:00:00", "01/02/2006 23:60:00", "2024-03-05 10:30",
	"2024-03-29 02:30", "2024-03-05 24:00", "0000-01-01 00:00", "2024-03-05T10:30:00+01:00",
	"1e6", "1_000", "0x1p-2", "NaN", "+5", "-0", " 12", "12.5e3", "9223372036854775808", "١٢",
	"1234567.89", "999999.99", "1000000.00", "1000000", "-12.5", "12.", ".5", "abc", "0.1", "000012.50",
	"123456789012345", "1234567890123456", "12345678.9012345", "0.000000000000001", "+", "-", ".", "1.2.3",
	"13/45/2020", "13/45/2020 10:00:00", "03/05/2024 10:30:00", "12/31/9999 23:59:59", "us", "de", "Us", "uS1",
	"Y", "n", "T", "f", "y ", "YES", "Nope",
	int64(0), int64(1), int64(2), int64(-5), int64(1000001), 0, 1.5, 1e6, 1000000.5, -1.0,
	math.NaN(), math.Inf(1), true, false, int64(math.MaxInt64), int64(math.MinInt64), int64(1 << 32), math.MaxFloat64,
	time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
	time.Date(2024, 2, 29, 23, 30, 0, 0, paris),
	time.Date(12345, 1, 2, 3, 4, 5, 6e8, time.UTC), time.Date(-44, 3, 15, 0, 0, 0, 0, time.UTC),
	time.Date(0, 1, 1, 0, 30, 0, 0, paris), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	[]string{"a"}, map[string]any{}, int32(4), uint8(1),
}

// typedValues are a field's values most rows have, by pipeline type.
var typedValues = map[pipeline.Type][]any{
	pipeline.TypeString:    {"ada", "Ada", "yes", "no", "2024-03-05", "31/12/2024", "FR", "", "ÉCOLE ß", "x"},
	pipeline.TypeInt:       {int64(0), int64(1), int64(2), int64(-7), int64(1 << 40), int64(math.MaxInt64), int64(math.MinInt64)},
	pipeline.TypeFloat:     {0.0, 1.5, 1e6, 1000000.5, -3.25},
	pipeline.TypeBool:      {true, false},
	pipeline.TypeDate:      {time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
	pipeline.TypeTimestamp: {time.Date(2024, 7, 1, 12, 0, 0, 5e8, paris), time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)},
	pipeline.TypeDecimal:   {"12.50", "0", "-1.5", "1250000.00"},
	pipeline.TypeAny:       {"x", "yes", int64(3), 1.5, true, "2024-03-05"},
}

// randomRow returns a testSchema row: mostly values of the field's type,
// often a null, sometimes anything.
func randomRow(r *rand.Rand) pipeline.Row {
	row := make(pipeline.Row, testSchema.Len())
	for i, f := range testSchema.Fields() {
		switch k := r.IntN(10); {
		case k < 5:
			vs := typedValues[f.Type]
			row[i] = vs[r.IntN(len(vs))]
		case k < 6:
			row[i] = nil
		default:
			row[i] = fastValues[r.IntN(len(fastValues))]
		}
	}
	return row
}

// compileBoth compiles srcs into one Env with fast paths and one without.
func compileBoth(t testing.TB, srcs []string, opts ...expr.Option) (fast, slow *Env, fp, sp []*Program) {
	t.Helper()
	compile := func(vmOnly bool) (*Env, []*Program) {
		forceVM = vmOnly
		defer func() { forceVM = false }()
		e := New(testSchema, testEnv)
		ps := make([]*Program, len(srcs))
		for i, src := range srcs {
			p, err := e.Compile(src, opts...)
			if err != nil {
				t.Fatalf("Compile(%q): %v", src, err)
			}
			if vmOnly && p.fast != nil {
				t.Fatalf("Compile(%q) with forceVM has a fast path", src)
			}
			ps[i] = p
		}
		return e, ps
	}
	fast, fp = compile(false)
	slow, sp = compile(true)
	return fast, slow, fp, sp
}

// sameOutcome reports how two (value, error) results differ, or "".
func sameOutcome(v1 any, err1 error, v2 any, err2 error) string {
	switch {
	case (err1 == nil) != (err2 == nil):
		return fmt.Sprintf("%#v, %v vs %#v, %v", v1, err1, v2, err2)
	case err1 != nil:
		if err1.Error() != err2.Error() || errors.Is(err1, ErrBadValue) != errors.Is(err2, ErrBadValue) {
			return fmt.Sprintf("error %q vs %q", err1, err2)
		}
		if v1 != nil || v2 != nil {
			return fmt.Sprintf("value with error: %#v vs %#v", v1, v2)
		}
		return ""
	}
	if reflect.TypeOf(v1) != reflect.TypeOf(v2) {
		return fmt.Sprintf("%#v (%T) vs %#v (%T)", v1, v1, v2, v2)
	}
	if f1, ok := v1.(float64); ok && math.IsNaN(f1) && math.IsNaN(v2.(float64)) {
		return ""
	}
	if !reflect.DeepEqual(v1, v2) {
		return fmt.Sprintf("%#v vs %#v", v1, v2)
	}
	return ""
}

// runText runs p with r.RunText as a map transform does (r bound to row):
// a rename or a constant taken directly, a built string as RunText boxed
// it. It returns what Run would.
func runText(r *Runner, p *Program, row pipeline.Row) (any, error) {
	if i := p.Field(); i >= 0 {
		if v, err := Normalize(row[i], p.Type); err == nil {
			return v, nil
		}
	} else if v, ok := p.Constant(); ok {
		return v, nil
	}
	v, built, err := r.RunText(p)
	if built {
		if _, ok := v.(string); !ok || err != nil {
			return nil, fmt.Errorf("RunText built %#v, %v: want a string", v, err)
		}
		if !p.Builds() {
			return nil, fmt.Errorf("RunText built %q but Builds is false", v)
		}
	}
	return v, err
}

// TestFastMatchesVM runs every fast-path expression through its fast path
// and through the VM, as the programs of one map transform would be run
// (one Runner, one Bind per row, VM-only programs in between), over rows
// of typed values, nulls and values of the wrong type, and checks that
// results and errors are identical.
func TestFastMatchesVM(t *testing.T) {
	srcs := append(append([]string(nil), fastExprs...), vmOnlyExprs...)
	fastEnv, slowEnv, fp, sp := compileBoth(t, srcs)
	for i, p := range fp {
		if want := i < len(fastExprs); (p.fast != nil) != want {
			t.Errorf("Compile(%q): fast path %v, want %v", p.Expr, p.fast != nil, want)
		}
	}
	fr, sr := fastEnv.Runner(), slowEnv.Runner()
	defer fr.Release()
	defer sr.Release()

	rng := rand.New(rand.NewPCG(1, 2))
	rows := []pipeline.Row{make(pipeline.Row, testSchema.Len())} // all null
	for range 2000 {
		rows = append(rows, randomRow(rng))
	}
	hits := make([]int, len(fp))
	errs := make([]int, len(fp))
	for _, row := range rows {
		fr.Bind(row)
		sr.Bind(row)
		// Reversed for some rows, so that VM-only programs run both
		// before and after the fast ones.
		reverse := rng.IntN(2) == 0
		for k := range fp {
			j := k
			if reverse {
				j = len(fp) - 1 - k
			}
			v1, err1 := fr.Run(fp[j])
			v2, err2 := sr.Run(sp[j])
			if d := sameOutcome(v1, err1, v2, err2); d != "" {
				t.Errorf("%s on %#v: fast %s (VM)", fp[j].Expr, row, d)
			}
			v1, err1 = runText(fr, fp[j], row)
			if d := sameOutcome(v1, err1, v2, err2); d != "" {
				t.Errorf("%s on %#v: RunText %s (VM)", fp[j].Expr, row, d)
			}
			if fp[j].fast != nil {
				if _, ok := fp[j].fast(row); ok {
					hits[j]++
				}
			}
			if err2 != nil {
				errs[j]++
			}
		}
	}
	for j, p := range fp[:len(fastExprs)] {
		if hits[j] == 0 {
			t.Errorf("%s: the fast path never answered", p.Expr)
		}
		t.Logf("%-70s fast %4d/%d, errors %4d", p.Expr, hits[j], len(rows), errs[j])
	}
}

// TestFastMatchesVMEachValue runs the one-field expressions on every value
// of fastValues in turn, the other fields holding typical values.
func TestFastMatchesVMEachValue(t *testing.T) {
	fastEnv, slowEnv, fp, sp := compileBoth(t, fastExprs)
	base := make(pipeline.Row, testSchema.Len())
	for i, f := range testSchema.Fields() {
		base[i] = typedValues[f.Type][0]
	}
	fr, sr := fastEnv.Runner(), slowEnv.Runner()
	defer fr.Release()
	defer sr.Release()
	for i := range testSchema.Fields() {
		for _, v := range fastValues {
			row := append(pipeline.Row(nil), base...)
			row[i] = v
			fr.Bind(row)
			sr.Bind(row)
			for j := range fp {
				v1, err1 := fr.Run(fp[j])
				v2, err2 := sr.Run(sp[j])
				if d := sameOutcome(v1, err1, v2, err2); d != "" {
					t.Errorf("%s with %s = %#v: fast %s (VM)", fp[j].Expr, testSchema.Field(i).Name, v, d)
				}
				v1, err1 = runText(fr, fp[j], row)
				if d := sameOutcome(v1, err1, v2, err2); d != "" {
					t.Errorf("%s with %s = %#v: RunText %s (VM)", fp[j].Expr, testSchema.Field(i).Name, v, d)
				}
			}
		}
	}
}

// TestFastAsBool checks the fast paths of filter conditions (expr.AsBool
// casts the result: null is false).
func TestFastAsBool(t *testing.T) {
	srcs := []string{`s == "yes"`, `sfBool(s)`, `b`, `a`, `n > 1 && s != ""`, `s == nil || upper(s) == "FR"`}
	fastEnv, slowEnv, fp, sp := compileBoth(t, srcs, expr.AsBool())
	for _, p := range fp {
		if p.fast == nil {
			t.Errorf("Compile(%q, AsBool): no fast path", p.Expr)
		}
	}
	fr, sr := fastEnv.Runner(), slowEnv.Runner()
	defer fr.Release()
	defer sr.Release()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		row := randomRow(rng)
		fr.Bind(row)
		sr.Bind(row)
		for j := range fp {
			v1, err1 := fr.Run(fp[j])
			v2, err2 := sr.Run(sp[j])
			if d := sameOutcome(v1, err1, v2, err2); d != "" {
				t.Errorf("%s on %#v: fast %s (VM)", fp[j].Expr, row, d)
			}
		}
	}
}

// TestNoFastPathForOtherCasts checks that a program whose result expr
// casts (AsInt, AsFloat64) is left to the VM.
func TestNoFastPathForOtherCasts(t *testing.T) {
	e := New(testSchema, testEnv)
	for _, opt := range []expr.Option{expr.AsInt64(), expr.AsFloat64()} {
		p, err := e.Compile(`n`, opt)
		if err != nil {
			t.Fatal(err)
		}
		if p.fast != nil {
			t.Errorf("Compile(n) with a cast has a fast path")
		}
	}
	p, err := e.Compile(`s == "" || b`, expr.DisableShortCircuit())
	if err != nil {
		t.Fatal(err)
	}
	if p.fast != nil {
		t.Errorf("Compile without short-circuit has a fast path")
	}
}

// TestSFDateCanonical checks that sfDate hands back an input already in
// Salesforce form, and formats every other accepted input.
func TestSFDateCanonical(t *testing.T) {
	tests := []struct {
		in, layout string
		want       any
	}{
		{"2024-03-05", "2006-01-02", "2024-03-05"},
		{" 2024-03-05", "2006-01-02", "2024-03-05"},
		{"2024-3-5", "2006-1-2", "2024-03-05"},
		{"05/03/2024", "02/01/2006", "2024-03-05"},
	}
	for _, tc := range tests {
		got, err := sfDateOf(tc.in, tc.layout)
		if err != nil || got != tc.want {
			t.Errorf("sfDate(%q, %q) = %#v, %v; want %#v", tc.in, tc.layout, got, err, tc.want)
		}
	}
}

// TestFastPathAllocs checks the per-row allocations of typical fast paths.
func TestFastPathAllocs(t *testing.T) {
	tests := []struct {
		expr string
		max  float64
	}{
		{`s`, 0},
		{`s == nil || s == "" ? "Warm" : "Hot"`, 0},
		{`sfBool(s)`, 0},
		{`sfDate(first_name, "2006-01-02")`, 0}, // already canonical
		{`upper(s)`, 2},
		{`first_name + " " + s`, 2},
	}
	e := New(testSchema, testEnv)
	r := e.Runner()
	defer r.Release()
	row := row(map[string]any{"s": "yes", "first_name": "2024-03-05"})
	for _, tc := range tests {
		p, err := e.Compile(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		r.Bind(row)
		if _, err := r.Run(p); err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(100, func() {
			r.Bind(row)
			r.Run(p)
		})
		if n > tc.max {
			t.Errorf("%s: %v allocations per run, want at most %v", tc.expr, n, tc.max)
		}
	}
}

// TestRunTextAllocs checks that RunText builds the bench mapping's
// strings (and evaluates its other fields) without an allocation per
// value: only the arena's chunks, one per 128 KiB of text.
func TestRunTextAllocs(t *testing.T) {
	srcs := []string{
		`first_name + " " + s`, `upper(s)`, `sfDate(dec, "01/02/2006")`, `sfDateTime(a, "01/02/2006 15:04:05", "UTC")`,
		`sfDate(d, "01/02/2006")`, `sfDateTime(ts, "01/02/2006 15:04:05", "UTC")`, // typed (Parquet)
		`sfBool(first_name)`, `s != nil && s != "" && float(s) >= 1000000 ? "Enterprise" : "SMB"`,
	}
	e := New(testSchema, testEnv)
	r := e.Runner()
	defer r.Release()
	row := row(map[string]any{"s": "us", "first_name": "Y", "dec": "03/05/2024", "a": "12/31/2024 23:59:59",
		"d": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "ts": time.Date(2024, 7, 1, 12, 0, 0, 5e8, paris)})
	for i, src := range srcs {
		if i == len(srcs)-1 {
			row[testSchema.Index("s")] = "1234567.89"
		}
		p, err := e.Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		r.Bind(row)
		n := testing.AllocsPerRun(2000, func() {
			if _, _, err := r.RunText(p); err != nil {
				t.Fatal(err)
			}
		})
		if n > 0.01 {
			t.Errorf("%s: %v allocations per RunText, want none but the arena's chunks", src, n)
		}
	}
	p, _ := e.Compile(srcs[len(srcs)-1])
	r.Bind(row)
	if v, _, err := r.RunText(p); v != "Enterprise" || err != nil {
		t.Errorf("tier of 1234567.89: %#v, %v", v, err)
	}
}

// TestPresentNumber checks which conditions compile to presentNumber's
// single function (the others keep the general fast paths).
func TestPresentNumber(t *testing.T) {
	e := New(testSchema, testEnv)
	for src, want := range map[string]bool{
		`dec != nil && dec != "" && float(dec) >= 1000000`: true,
		`s != null && s != "" && float(s) < 2.5`:           true,
		`s != nil && s != "" && float(s) >= float(dec)`:    false,
		`s != nil && first_name != "" && float(s) >= 1`:    false,
		`s != nil && s != "" && float(first_name) >= 1`:    false,
		`s != nil && s != "x" && float(s) >= 1`:            false,
		`s != nil || s != "" && float(s) >= 1`:             false,
	} {
		p, err := e.Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := p.prog.Node().(*ast.BinaryNode)
		if !ok {
			t.Fatalf("%s: not a binary node", src)
		}
		c := &fastCompiler{env: e, shortCircuit: true}
		if got := c.presentNumber(n) != nil; got != want {
			t.Errorf("%s: presentNumber %v, want %v", src, got, want)
		}
		if p.fast == nil {
			t.Errorf("%s: no fast path", src)
		}
	}
}

// TestIsSFDate checks the shortcut of sfDate for dates already in
// Salesforce form against time.Parse and Format, over every day of a few
// years (leap or not) and malformed variants.
func TestIsSFDate(t *testing.T) {
	check := func(s string) {
		t.Helper()
		tm, err := time.Parse(SFDateLayout, s)
		want := err == nil && tm.Format(SFDateLayout) == s
		if got := isSFDate(s); got != want {
			t.Errorf("isSFDate(%q) = %v, want %v (Parse: %v)", s, got, want, err)
		}
	}
	for _, year := range []int{0, 1, 4, 100, 400, 1900, 1999, 2000, 2023, 2024, 2100, 9999} {
		for month := 0; month <= 13; month++ {
			for day := 0; day <= 32; day++ {
				check(fmt.Sprintf("%04d-%02d-%02d", year, month, day))
			}
		}
	}
	for _, s := range []string{"", "2024-1-05", "2024-01-5 ", " 2024-01-05", "2024/01/05", "+024-01-05", "-024-01-05",
		"2024-+1-05", "2024-01-+5", "2024-01-0a", "２０２４-01-05", "20240-01-05", "2024-01-050", "2024-00-00", "abcd-ef-gh"} {
		check(s)
	}
}

// TestNoFastPathWithOtherFunctions checks that extra options that change
// the functions leave the program to the VM.
func TestNoFastPathWithOtherFunctions(t *testing.T) {
	e := New(testSchema, testEnv)
	for _, opt := range []expr.Option{
		expr.Function("shout", func(args ...any) (any, error) { return args[0], nil }),
		expr.DisableBuiltin("lower"),
	} {
		p, err := e.Compile(`upper(s)`, opt)
		if err != nil {
			t.Fatal(err)
		}
		if p.fast != nil {
			t.Errorf("Compile(upper(s)) with other functions has a fast path")
		}
	}
}

// FuzzFastMatchesVM puts fuzzed text in the text fields (and a) of a row
// and checks that every fast-path expression gives, through Run and
// RunText, the VM's result or error.
func FuzzFastMatchesVM(f *testing.F) {
	for _, v := range fastValues {
		if s, ok := v.(string); ok {
			f.Add(s, "Ada")
		}
	}
	f.Add("12/31/2024 23:59:59", "1000000.01")
	fastEnv, slowEnv, fp, sp := compileBoth(f, fastExprs)
	f.Fuzz(func(t *testing.T, x, y string) {
		fr, sr := fastEnv.Runner(), slowEnv.Runner()
		defer fr.Release()
		defer sr.Release()
		for _, row := range []pipeline.Row{
			row(map[string]any{"s": x, "first_name": y, "dec": y, "a": x, "n": int64(3), "f": 1.5, "b": true}),
			row(map[string]any{"s": y, "first_name": x, "dec": x, "a": y}),
		} {
			fr.Bind(row)
			sr.Bind(row)
			for j := range fp {
				v2, err2 := sr.Run(sp[j])
				v1, err1 := fr.Run(fp[j])
				if d := sameOutcome(v1, err1, v2, err2); d != "" {
					t.Errorf("%s on %#v: fast %s (VM)", fp[j].Expr, row, d)
				}
				v1, err1 = runText(fr, fp[j], row)
				if d := sameOutcome(v1, err1, v2, err2); d != "" {
					t.Errorf("%s on %#v: RunText %s (VM)", fp[j].Expr, row, d)
				}
			}
		}
	})
}

// TestRunTextKeepsStrings checks that the strings RunText writes in place
// into its chunks stay as built while it hands out more: short and long
// ones (longer than a chunk's spare room, so that append moves the
// chunk), empty ones, across several chunks, with results that are not
// built (a value, a failure the VM decides) in between, and each string
// equal to what Run returns.
func TestRunTextKeepsStrings(t *testing.T) {
	e := New(testSchema, testEnv)
	r := e.Runner()
	defer r.Release()
	concat, err := e.Compile(`first_name + "-" + s`)
	if err != nil {
		t.Fatal(err)
	}
	up, err := e.Compile(`upper(s)`)
	if err != nil {
		t.Fatal(err)
	}
	type handed struct{ got, want string }
	var all []handed
	for i := range 3000 {
		s := fmt.Sprintf("v%d", i)
		switch {
		case i%97 == 0:
			s = strings.Repeat("x", minTextRoom+i) // longer than the room left
		case i%13 == 0:
			s = "UPPER" // upper(s) is s itself: not built
		}
		first := any(fmt.Sprint(i))
		if i%11 == 0 {
			first = nil // the VM decides (and fails)
		}
		row := row(map[string]any{"s": s, "first_name": first})
		for _, p := range []*Program{concat, up} {
			r.Bind(row)
			want, wantErr := r.Run(p)
			v, built, err := r.RunText(p)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s on %#v: RunText error %v, Run %v", p.Expr, row, err, wantErr)
			}
			if err != nil {
				continue
			}
			if !built {
				if v != want {
					t.Fatalf("%s on %#v: RunText %#v, Run %#v", p.Expr, row, v, want)
				}
				continue
			}
			all = append(all, handed{v.(string), want.(string)})
		}
	}
	for i, h := range all {
		if h.got != h.want {
			t.Fatalf("string %d of %d handed out: now %.40q, built as %.40q", i, len(all), h.got, h.want)
		}
	}
}
