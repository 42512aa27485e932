package exprenv

import (
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// Checked arithmetic.
//
// expr's VM computes + - * on integers with Go's wrapping arithmetic, / in
// float64 (10 / 0 is +Inf) and % with Go's (a zero divisor panics). A
// mapping must never load a wrapped or infinite number, so Compile patches
// every arithmetic node whose operands are numbers (or of a type the
// checker cannot tell) into a call of a checked function: the result is the
// same as expr's whenever it is exact, and otherwise an error wrapping
// ErrArithmetic, which the map and filter transforms dead-letter as
// expr_error. The fast paths call the same functions, so both paths agree by
// construction. Operands of other types (strings, times, durations) are
// left to expr's operators, and so are the functions' operands found at run
// time to be something other than int, int64 or float64 (asInt, asFloat).

// ErrArithmetic is wrapped by the runtime error of an arithmetic operation
// whose exact result is not a number the row can hold: an integer result
// outside int64, a division or modulo by zero, or a float result that is
// infinite or NaN although its operands were finite.
var ErrArithmetic = errors.New("arithmetic error")

// arithFuncs maps an operator to the name of its checked function. The
// names cannot be written in an expression (they are not identifiers).
var arithFuncs = map[string]string{
	"+": "$add", "-": "$sub", "*": "$mul", "/": "$div", "%": "$mod", "**": "$pow", "^": "$pow",
}

// negFunc is the checked function of unary minus.
const negFunc = "$neg"

// arithOptions returns the expr options of checked arithmetic: the
// functions and the patch that calls them.
func arithOptions() []expr.Option {
	binary := func(op string) *builtin.Function {
		return &builtin.Function{
			Name:     arithFuncs[op],
			Func:     func(args ...any) (any, error) { return arith(op, args[0], args[1]) },
			Validate: func(args []reflect.Type) (reflect.Type, error) { return arithType(op, args) },
		}
	}
	return []expr.Option{
		func(c *conf.Config) {
			for fn, op := range arithOps {
				c.Functions[fn] = binary(op)
			}
			c.Functions[negFunc] = &builtin.Function{
				Name:     negFunc,
				Func:     func(args ...any) (any, error) { return negate(args[0]) },
				Validate: func(args []reflect.Type) (reflect.Type, error) { return arithType("neg", args) },
			}
		},
		expr.Patch(arithPatcher{}),
	}
}

var (
	intType     = reflect.TypeOf(0)
	float64Type = reflect.TypeOf(0.0)
)

// numeric reports whether a checked operand type is a plain number or not
// known until run time (nil or an interface). Named types such as
// time.Duration are not numbers here.
func numeric(t reflect.Type) bool {
	if t == nil || t.Kind() == reflect.Interface {
		return true
	}
	if t.PkgPath() != "" {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// arithType is the result type of a checked function, as expr's checker
// types the operator: int for integers, float64 when a float is involved
// (and always for / and **), the operand's type for unary minus, any when
// an operand's type is not known.
func arithType(op string, args []reflect.Type) (reflect.Type, error) {
	want := 2
	if op == "neg" {
		want = 1
	}
	if len(args) != want {
		return nil, fmt.Errorf("operator %s takes %d operands, got %d", op, want, len(args))
	}
	float := false
	for _, t := range args {
		if t == nil || t.Kind() == reflect.Interface {
			if op == "/" || op == "**" {
				return float64Type, nil
			}
			return anyType, nil
		}
		if !numeric(t) {
			return nil, fmt.Errorf("invalid operation: %s on %s", op, t)
		}
		float = float || t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64
	}
	switch {
	case op == "neg":
		return args[0], nil
	case op == "/" || op == "**" || float:
		return float64Type, nil
	}
	return intType, nil
}

// arithPatcher replaces arithmetic on numbers by calls of the checked
// functions. It runs once, after a type check, children first.
type arithPatcher struct{}

// Visit implements ast.Visitor.
func (arithPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		fn, ok := arithFuncs[n.Operator]
		if !ok || !numeric(n.Left.Type()) || !numeric(n.Right.Type()) {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{n.Left, n.Right}})
	case *ast.UnaryNode:
		if n.Operator != "-" || !numeric(n.Node.Type()) {
			return
		}
		switch n.Node.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
			return // a negative literal: nothing to check, and the optimizer folds it
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: negFunc}, Arguments: []ast.Node{n.Node}})
	}
}

// arith computes a op b: exactly on integers (an int result, as expr's),
// in float64 otherwise, failing with ErrArithmetic where expr would wrap,
// panic or return an infinity or NaN from finite operands. Operands that are
// not numbers go to expr's own operator.
func arith(op string, a, b any) (any, error) {
	x, xi := asInt(a)
	y, yi := asInt(b)
	if xi && yi && op != "/" && op != "**" {
		var r int64
		ok := true
		switch op {
		case "+":
			r = x + y
			ok = (r > x) == (y > 0)
		case "-":
			r = x - y
			ok = (r < x) == (y > 0)
		case "*":
			r = x * y
			ok = x == 0 || r/x == y && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64)
		case "%":
			if y == 0 {
				return nil, fmt.Errorf("%w: division by zero: %d %% 0", ErrArithmetic, x)
			}
			r = x % y
		}
		if !ok {
			return nil, fmt.Errorf("%w: integer overflow: %d %s %d is outside the 64-bit range", ErrArithmetic, x, op, y)
		}
		return int(r), nil
	}
	fx, xf := asFloat(a)
	fy, yf := asFloat(b)
	if !xf || !yf || op == "%" {
		return fallback(op, a, b), nil
	}
	var r float64
	switch op {
	case "+":
		r = fx + fy
	case "-":
		r = fx - fy
	case "*":
		r = fx * fy
	case "/":
		if fy == 0 {
			return nil, fmt.Errorf("%w: division by zero: %v / %v", ErrArithmetic, a, b)
		}
		r = fx / fy
	case "**":
		r = math.Pow(fx, fy)
	}
	if (math.IsInf(r, 0) || math.IsNaN(r)) && !math.IsInf(fx, 0) && !math.IsNaN(fx) && !math.IsInf(fy, 0) && !math.IsNaN(fy) {
		return nil, fmt.Errorf("%w: %v %s %v is not a finite number", ErrArithmetic, a, op, b)
	}
	return r, nil
}

// fallback applies expr's own operator (which panics, as the VM would,
// on operands it does not support).
func fallback(op string, a, b any) any {
	switch op {
	case "+":
		return runtime.Add(a, b)
	case "-":
		return runtime.Subtract(a, b)
	case "*":
		return runtime.Multiply(a, b)
	case "/":
		return runtime.Divide(a, b)
	case "%":
		return runtime.Modulo(a, b)
	}
	return runtime.Exponent(a, b)
}

// negate computes -v, failing with ErrArithmetic for the smallest int64
// (whose negation wraps to itself).
func negate(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		if x == math.MinInt64 {
			return nil, fmt.Errorf("%w: integer overflow: -(%d) is outside the 64-bit range", ErrArithmetic, x)
		}
		return -x, nil
	case int:
		if x == math.MinInt {
			return nil, fmt.Errorf("%w: integer overflow: -(%d) is outside the 64-bit range", ErrArithmetic, x)
		}
		return -x, nil
	}
	return runtime.Negate(v), nil
}

// arithOps maps a checked function's name to its operator: the inverse of
// arithFuncs, ^ written as **.
var arithOps = func() map[string]string {
	m := make(map[string]string, len(arithFuncs))
	for op, fn := range arithFuncs {
		if op != "^" {
			m[fn] = op
		}
	}
	return m
}()

// errNotNumbers tells a fast path that the VM must decide: an operand is
// not an int, int64 or float64 (expr's operator may accept it, or panic).
var errNotNumbers = errors.New("operands are not numbers")

// arithFast is arith for the fast paths: operands that are not numbers
// (integers for %) are left to the VM instead of expr's operator.
func arithFast(op string, a, b any) (any, error) {
	number := asFloat
	if op == "%" {
		number = func(v any) (float64, bool) { _, ok := asInt(v); return 0, ok }
	}
	_, xok := number(a)
	_, yok := number(b)
	if !xok || !yok {
		return nil, errNotNumbers
	}
	return arith(op, a, b)
}

// negateFast is negate for the fast paths.
func negateFast(v any) (any, error) {
	if _, ok := asFloat(v); !ok {
		return nil, errNotNumbers
	}
	return negate(v)
}
