package exprenv

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
)

// TestCheckedArithmetic runs arithmetic on the fast path and on the VM
// alone: exact results are expr's, and overflow, division or modulo by
// zero and non-finite results of finite floats are ErrArithmetic errors,
// never a wrapped or infinite value.
func TestCheckedArithmetic(t *testing.T) {
	const maxInt, minInt = int64(math.MaxInt64), int64(math.MinInt64)
	tests := []struct {
		expr    string
		in      map[string]any
		want    any
		wantErr string // "" for a value; ErrArithmetic must be wrapped
	}{
		// exact results keep expr's types
		{expr: `n + 1`, in: map[string]any{"n": int64(41)}, want: int64(42)},
		{expr: `n - 1`, in: map[string]any{"n": minInt + 1}, want: minInt},
		{expr: `n * -1`, in: map[string]any{"n": maxInt}, want: -maxInt},
		{expr: `n % 7`, in: map[string]any{"n": int64(-15)}, want: int64(-1)},
		{expr: `n % -1`, in: map[string]any{"n": minInt}, want: int64(0)},
		{expr: `n / 4`, in: map[string]any{"n": int64(10)}, want: 2.5},
		{expr: `-n`, in: map[string]any{"n": maxInt}, want: -maxInt},
		{expr: `n ** 2`, in: map[string]any{"n": int64(3)}, want: 9.0},
		{expr: `f * 2`, in: map[string]any{"f": math.Inf(1)}, want: math.Inf(1)}, // not finite already: kept
		{expr: `f - f`, in: map[string]any{"f": 1e308}, want: 0.0},
		{expr: `a + 1`, in: map[string]any{"a": int64(1)}, want: int64(2)},
		{expr: `a + "x"`, in: map[string]any{"a": "y"}, want: "yx"},
		{expr: `-3 + n`, in: map[string]any{"n": int64(3)}, want: int64(0)},
		{expr: `(ts - d).Hours()`, in: map[string]any{"ts": time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), "d": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, want: 24.0},
		// issue 15 item 11
		{expr: `n * 9223372036854775807`, in: map[string]any{"n": int64(5)}, wantErr: "integer overflow: 5 * 9223372036854775807 is outside the 64-bit range"},
		{expr: `10 / 0`, wantErr: "division by zero: 10 / 0"},
		{expr: `n / 0`, in: map[string]any{"n": int64(1)}, wantErr: "division by zero"},
		{expr: `f / n`, in: map[string]any{"f": 1.5, "n": int64(0)}, wantErr: "division by zero"},
		{expr: `n % 0`, in: map[string]any{"n": int64(7)}, wantErr: "division by zero: 7 % 0"},
		{expr: `n + 1`, in: map[string]any{"n": maxInt}, wantErr: "integer overflow"},
		{expr: `n - 1`, in: map[string]any{"n": minInt}, wantErr: "integer overflow"},
		{expr: `1 - n`, in: map[string]any{"n": minInt}, wantErr: "integer overflow"},
		{expr: `n * n`, in: map[string]any{"n": int64(1) << 32}, wantErr: "integer overflow"},
		{expr: `n * -1`, in: map[string]any{"n": minInt}, wantErr: "integer overflow"},
		{expr: `-1 * n`, in: map[string]any{"n": minInt}, wantErr: "integer overflow"},
		{expr: `-n`, in: map[string]any{"n": minInt}, wantErr: "integer overflow: -(-9223372036854775808)"},
		{expr: `(n + 1) * 2 > 0`, in: map[string]any{"n": maxInt}, wantErr: "integer overflow"},
		{expr: `a * 2`, in: map[string]any{"a": maxInt}, wantErr: "integer overflow"},
		{expr: `f * 10`, in: map[string]any{"f": math.MaxFloat64}, wantErr: "is not a finite number"},
		{expr: `10 ** n`, in: map[string]any{"n": int64(400)}, wantErr: "is not a finite number"},
		{expr: `0 ^ -1`, wantErr: "is not a finite number"},
	}
	for _, tc := range tests {
		fast, slow, fp, sp := compileBoth(t, []string{tc.expr})
		for _, c := range []struct {
			mode string
			env  *Env
			p    *Program
		}{{"fast", fast, fp[0]}, {"vm", slow, sp[0]}} {
			r := c.env.Runner()
			r.Bind(row(tc.in))
			got, err := r.Run(c.p)
			r.Release()
			switch {
			case tc.wantErr != "":
				if err == nil || !errors.Is(err, ErrArithmetic) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("%s (%s) = %#v, %v; want an ErrArithmetic error containing %q", tc.expr, c.mode, got, err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("%s (%s): %v", tc.expr, c.mode, err)
			case sameOutcome(got, nil, tc.want, nil) != "":
				t.Errorf("%s (%s) = %#v, want %#v", tc.expr, c.mode, got, tc.want)
			}
		}
	}
}

// TestArithmeticTypes checks that checked arithmetic keeps the static
// result types pre-flight and the output schema rely on.
func TestArithmeticTypes(t *testing.T) {
	e := New(testSchema, testEnv)
	for _, tc := range []struct {
		expr string
		want pipeline.Type
	}{
		{`n + 1`, pipeline.TypeInt}, {`n * n`, pipeline.TypeInt}, {`n % 2`, pipeline.TypeInt}, {`-n`, pipeline.TypeInt},
		{`n / 2`, pipeline.TypeFloat}, {`n * 1.5`, pipeline.TypeFloat}, {`f - 1`, pipeline.TypeFloat}, {`n ** 2`, pipeline.TypeFloat},
		{`-f`, pipeline.TypeFloat}, {`a + 1`, pipeline.TypeAny}, {`a / 2`, pipeline.TypeFloat}, {`len(s) * 2`, pipeline.TypeInt},
	} {
		p, err := e.Compile(tc.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tc.expr, err)
		}
		if p.Type != tc.want {
			t.Errorf("Compile(%q).Type = %s, want %s", tc.expr, p.Type, tc.want)
		}
	}
	for _, src := range []string{`s * 2`, `b + 1`, `d + 1`} {
		if _, err := e.Compile(src); err == nil {
			t.Errorf("Compile(%q) succeeded, want a type error", src)
		}
	}
}
