package exprenv

import (
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Fast paths.
//
// Most mapping expressions are a field name, a helper applied to a field,
// or a concatenation; running them through the expr VM costs a variables map
// entry per field, a []any of arguments per call and the VM's dispatch. For
// a subset of the checked AST, Compile builds a tree of Go closures instead
// that reads the row directly.
//
// A fast path never decides an outcome the VM would decide differently. It
// only ever returns a successful value, and only when its inputs have the
// exact types it was written for (a string where a string is expected, and
// so on); in every other case (a null where expr would panic, a value of
// another type, a helper error such as a bad date) it reports !ok and the
// Runner evaluates the program on the VM, which produces the result or the
// error. Helpers are called through the very functions the VM calls
// (sfDateOf, sfBoolOf, ...), so their results are the same by construction.
//
// Supported nodes: field names, null/nil, string, bool, int and float
// literals; + on strings; ==, != on strings, bools, numbers and nil; <, >,
// <=, >= on numbers and strings; &&, ||, ! on bools; c ? a : b; the builtins
// upper, lower and len (of a string), float and int (of a string or a
// number); the helpers sfDate, sfDateTime,
// sfBool, trim, coalesce, regexReplace and lookup; the checked arithmetic
// of arith.go on int, int64 and float64 operands.

// fastFn evaluates a program, or part of one, on a row. ok is false when the
// VM must decide.
type fastFn func(row pipeline.Row) (v any, ok bool)

// boolFn is a fastFn whose result is a bool.
type boolFn func(row pipeline.Row) (v bool, ok bool)

// forceVM makes Compile build no fast paths; the tests set it to compare
// the fast paths with the VM.
var forceVM bool

// fastCompiler builds the fast path of one program.
type fastCompiler struct {
	env *Env
	// shortCircuit mirrors expr's option: && and || skip their right side.
	shortCircuit bool
}

// fastPath returns the fast path of the checked tree n, or nil when some
// node is not supported.
func (e *Env) fastPath(n ast.Node, shortCircuit bool) fastFn {
	if forceVM {
		return nil
	}
	c := &fastCompiler{env: e, shortCircuit: shortCircuit}
	return c.value(n)
}

// field returns the schema index of the field identifier n names, or -1.
func (c *fastCompiler) field(n ast.Node) int {
	id, ok := n.(*ast.IdentifierNode)
	if !ok {
		return -1
	}
	return c.env.schema.Index(id.Value)
}

// constant returns the value the VM pushes for a literal node.
func (c *fastCompiler) constant(n ast.Node) (v any, ok bool) {
	switch n := n.(type) {
	case *ast.NilNode:
		return nil, true
	case *ast.IdentifierNode:
		// null is declared in the checker's environment but never bound:
		// the VM reads a missing map entry, nil.
		if n.Value == "null" && c.env.schema.Index("null") < 0 {
			return nil, true
		}
	case *ast.StringNode:
		return n.Value, true
	case *ast.BoolNode:
		return n.Value, true
	case *ast.IntegerNode:
		// The compiler converts the literal to its checked type; only
		// plain ints are handled here.
		if t := n.Type(); t == nil || t.Kind() == reflect.Int {
			return n.Value, true
		}
	case *ast.FloatNode:
		if t := n.Type(); t != nil && t.Kind() == reflect.Float64 {
			return n.Value, true
		}
	case *ast.ConstantNode:
		switch n.Value.(type) {
		case nil, string, bool, int, float64:
			return n.Value, true
		}
	}
	return nil, false
}

// value compiles n, or returns nil.
func (c *fastCompiler) value(n ast.Node) fastFn {
	if v, ok := c.constant(n); ok {
		return func(pipeline.Row) (any, bool) { return v, true }
	}
	switch n := n.(type) {
	case *ast.IdentifierNode:
		i := c.field(n)
		if i < 0 {
			return nil
		}
		return func(row pipeline.Row) (any, bool) { return row[i], true }
	case *ast.BinaryNode:
		if n.Operator == "+" {
			return stringValue(c.concatText(n))
		}
		return c.boolValue(n)
	case *ast.UnaryNode:
		return c.boolValue(n)
	case *ast.ConditionalNode:
		return c.conditional(n)
	case *ast.BuiltinNode:
		return c.builtin(n)
	case *ast.CallNode:
		return c.call(n)
	}
	return nil
}

// boolValue compiles a boolean node as a value.
func (c *fastCompiler) boolValue(n ast.Node) fastFn {
	f := c.boolean(n)
	if f == nil {
		return nil
	}
	return func(row pipeline.Row) (any, bool) {
		b, ok := f(row)
		return b, ok
	}
}

// boolean compiles a node whose value the VM needs as a bool (a condition,
// an operand of && or ||); the result is !ok unless the value is a bool.
func (c *fastCompiler) boolean(n ast.Node) boolFn {
	switch n := n.(type) {
	case *ast.BoolNode:
		v := n.Value
		return func(pipeline.Row) (bool, bool) { return v, true }
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil
		}
		f := c.boolean(n.Node)
		if f == nil {
			return nil
		}
		return func(row pipeline.Row) (bool, bool) {
			b, ok := f(row)
			return !b, ok
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "and":
			if f := c.presentNumber(n); f != nil {
				return f
			}
			return c.logical(n)
		case "||", "or":
			return c.logical(n)
		case "==", "!=":
			return c.equal(n)
		case "<", ">", "<=", ">=":
			return c.compare(n)
		}
		return nil
	}
	f := c.value(n)
	if f == nil {
		return nil
	}
	return func(row pipeline.Row) (bool, bool) {
		v, ok := f(row)
		b, isBool := v.(bool)
		return b, ok && isBool
	}
}

// logical compiles && and ||. With short-circuiting the VM leaves the
// right operand's value, whatever its type, as the result; requiring a bool
// there too keeps the result a bool.
func (c *fastCompiler) logical(n *ast.BinaryNode) boolFn {
	l, r := c.boolean(n.Left), c.boolean(n.Right)
	if l == nil || r == nil || !c.shortCircuit {
		return nil
	}
	or := n.Operator == "||" || n.Operator == "or"
	return func(row pipeline.Row) (bool, bool) {
		a, ok := l(row)
		if !ok {
			return false, false
		}
		if a == or {
			return a, true
		}
		return r(row)
	}
}

// presentNumber compiles the guarded numeric test of a text column,
// x != nil && x != "" && float(x) op K (op one of < > <= >=, K a number
// literal), into one function: it reads x once, and parses and compares
// it unboxed. For a null or blank x the result is false, as && stops
// there; for a string it is the comparison, when float() reads it; for
// any other value, or text float() refuses, the VM decides (and writes
// the error).
func (c *fastCompiler) presentNumber(n *ast.BinaryNode) boolFn {
	first, ok := n.Left.(*ast.BinaryNode)
	if !ok || (first.Operator != "&&" && first.Operator != "and") || !c.shortCircuit {
		return nil
	}
	// notConst returns the field of x != K, or -1.
	notConst := func(n ast.Node, want any) int {
		b, ok := n.(*ast.BinaryNode)
		if !ok || b.Operator != "!=" {
			return -1
		}
		if k, ok := c.constant(b.Right); !ok || k != want {
			return -1
		}
		return c.field(b.Left)
	}
	i := notConst(first.Left, nil)
	if i < 0 || notConst(first.Right, "") != i {
		return nil
	}
	cmpNode, ok := n.Right.(*ast.BinaryNode)
	if !ok {
		return nil
	}
	call, ok := cmpNode.Left.(*ast.BuiltinNode)
	if !ok || call.Name != "float" || len(call.Arguments) != 1 || c.field(call.Arguments[0]) != i {
		return nil
	}
	if _, isCall := c.number(cmpNode.Left); !isCall {
		return nil
	}
	k, isCall := c.number(cmpNode.Right)
	if k == nil || isCall {
		return nil
	}
	bound, _ := k(nil)
	cmp := floatCmp(cmpNode.Operator)
	if cmp == nil {
		return nil
	}
	return func(row pipeline.Row) (bool, bool) {
		v := row[i]
		if v == nil {
			return false, true
		}
		s, isStr := v.(string)
		switch {
		case !isStr:
			return false, false
		case s == "":
			return false, true
		}
		f, ok := floatOf(s)
		return ok && cmp(f, bound), ok
	}
}

// equal compiles == and !=. The compiler emits OpEqualString (a.(string) ==
// b.(string), which panics on nil) when both sides are checked as strings,
// else OpEqual (runtime.Equal); the fast path follows the same choice.
func (c *fastCompiler) equal(n *ast.BinaryNode) boolFn {
	l, r := c.value(n.Left), c.value(n.Right)
	if l == nil || r == nil {
		return nil
	}
	strict := kindOf(n.Left) == reflect.String && kindOf(n.Right) == reflect.String &&
		simple(n.Left) && simple(n.Right)
	if kindOf(n.Left) == reflect.Int && kindOf(n.Right) == reflect.Int && simple(n.Left) && simple(n.Right) {
		return nil // OpEqualInt
	}
	neg := n.Operator == "!="
	if i := c.field(n.Left); i >= 0 {
		if k, ok := c.constant(n.Right); ok {
			// field == literal (revenue != ""), the common condition:
			// read the row and compare, without the operands' calls.
			return func(row pipeline.Row) (bool, bool) {
				eq, ok := equalValues(row[i], k, strict)
				return eq != neg, ok
			}
		}
	}
	return func(row pipeline.Row) (bool, bool) {
		a, ok := l(row)
		if !ok {
			return false, false
		}
		b, ok := r(row)
		if !ok {
			return false, false
		}
		eq, ok := equalValues(a, b, strict)
		return eq != neg, ok
	}
}

// equalValues is runtime.Equal (or OpEqualString when strict) for the
// value types the fast path handles.
func equalValues(a, b any, strict bool) (eq, ok bool) {
	if x, isStr := a.(string); isStr {
		y, isStr := b.(string)
		if isStr {
			return x == y, true
		}
		return false, !strict && b == nil
	}
	if strict {
		return false, false
	}
	if a == nil {
		switch b.(type) {
		case nil, string:
			return b == nil, true
		}
		return false, false
	}
	if b == nil {
		switch a.(type) {
		case bool, int, int64, float64:
			return false, true
		}
		return false, false
	}
	if x, isBool := a.(bool); isBool {
		y, isBool := b.(bool)
		return x == y, isBool
	}
	cmp, ok := compareNumbers(a, b)
	return cmp == cmpEqual, ok
}

// Outcomes of compareNumbers.
const (
	cmpLess = iota
	cmpEqual
	cmpMore
	cmpUnordered // a NaN
)

// compareNumbers compares two numbers the way expr's runtime does: as int
// when both are integers, else as float64. ok is false for other types.
func compareNumbers(a, b any) (cmp int, ok bool) {
	ai, aInt := asInt(a)
	bi, bInt := asInt(b)
	if aInt && bInt {
		switch {
		case ai < bi:
			return cmpLess, true
		case ai > bi:
			return cmpMore, true
		}
		return cmpEqual, true
	}
	af, aNum := asFloat(a)
	bf, bNum := asFloat(b)
	if !aNum || !bNum {
		return 0, false
	}
	switch {
	case af < bf:
		return cmpLess, true
	case af > bf:
		return cmpMore, true
	case af == bf:
		return cmpEqual, true
	}
	return cmpUnordered, true
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// compare compiles <, >, <= and >= on numbers and strings.
func (c *fastCompiler) compare(n *ast.BinaryNode) boolFn {
	if f := c.compareFloat(n); f != nil {
		return f
	}
	l, r := c.value(n.Left), c.value(n.Right)
	if l == nil || r == nil {
		return nil
	}
	op := n.Operator
	return func(row pipeline.Row) (bool, bool) {
		a, ok := l(row)
		if !ok {
			return false, false
		}
		b, ok := r(row)
		if !ok {
			return false, false
		}
		var cmp int
		if x, isStr := a.(string); isStr {
			y, isStr := b.(string)
			if !isStr {
				return false, false
			}
			cmp = strings.Compare(x, y) + 1 // cmpLess, cmpEqual, cmpMore
		} else if cmp, ok = compareNumbers(a, b); !ok {
			return false, false
		}
		switch op {
		case "<":
			return cmp == cmpLess, true
		case ">":
			return cmp == cmpMore, true
		case "<=":
			return cmp == cmpLess || cmp == cmpEqual, true
		default: // >=
			return cmp == cmpMore || cmp == cmpEqual, true
		}
	}
}

// compareFloat compiles a comparison of float(v) with a number or another
// float(v) (float(revenue) >= 1000000) without boxing either side:
// compareNumbers compares them as float64, as Go does here (a NaN is
// unordered: every comparison is false).
func (c *fastCompiler) compareFloat(n *ast.BinaryNode) boolFn {
	l, lCall := c.number(n.Left)
	r, rCall := c.number(n.Right)
	cmp := floatCmp(n.Operator)
	if l == nil || r == nil || !(lCall || rCall) || cmp == nil {
		return nil
	}
	return func(row pipeline.Row) (bool, bool) {
		a, ok := l(row)
		if !ok {
			return false, false
		}
		b, ok := r(row)
		if !ok {
			return false, false
		}
		return cmp(a, b), true
	}
}

// floatCmp returns the float64 comparison of the operator op (one of <,
// >, <= and >=; nil for any other), as Go compares: a NaN is unordered,
// every comparison with it is false.
func floatCmp(op string) func(a, b float64) bool {
	switch op {
	case "<":
		return func(a, b float64) bool { return a < b }
	case ">":
		return func(a, b float64) bool { return a > b }
	case "<=":
		return func(a, b float64) bool { return a <= b }
	case ">=":
		return func(a, b float64) bool { return a >= b }
	}
	return nil
}

// conditional compiles c ? a : b (the VM needs a bool condition).
func (c *fastCompiler) conditional(n *ast.ConditionalNode) fastFn {
	cond, a, b := c.boolean(n.Cond), c.value(n.Exp1), c.value(n.Exp2)
	if cond == nil || a == nil || b == nil {
		return nil
	}
	return func(row pipeline.Row) (any, bool) {
		t, ok := cond(row)
		switch {
		case !ok:
			return nil, false
		case t:
			return a(row)
		default:
			return b(row)
		}
	}
}

// intOf is expr's int(v) builtin for strings (strconv.Atoi), int64, int
// and float64 within int's range (truncated, as the builtin converts);
// ok is false otherwise.
func intOf(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		i, err := strconv.Atoi(x)
		return i, err == nil
	case int64:
		return int(x), true
	case int:
		return x, true
	case float64:
		if x > -9.2e18 && x < 9.2e18 {
			return int(x), true
		}
	}
	return nil, false
}

// builtin compiles upper(s), lower(s) and len(s) on a string, and
// float(v) and int(v).
func (c *fastCompiler) builtin(n *ast.BuiltinNode) fastFn {
	if len(n.Arguments) != 1 || n.Map != nil || n.Threshold != nil {
		return nil
	}
	arg := c.value(n.Arguments[0])
	if arg == nil {
		return nil
	}
	switch n.Name {
	case "float":
		return func(row pipeline.Row) (any, bool) {
			v, ok := arg(row)
			if !ok {
				return nil, false
			}
			f, ok := floatOf(v)
			if !ok {
				return nil, false
			}
			return f, true
		}
	case "int":
		return func(row pipeline.Row) (any, bool) {
			v, ok := arg(row)
			if !ok {
				return nil, false
			}
			return intOf(v)
		}
	case "upper", "lower":
		return stringValue(c.caseText(n))
	case "len":
		return func(row pipeline.Row) (any, bool) {
			v, ok := arg(row)
			s, isStr := v.(string)
			if !ok || !isStr {
				return nil, false
			}
			return utf8.RuneCountInString(s), true
		}
	}
	return nil
}

// call compiles a call of one of the helpers.
func (c *fastCompiler) call(n *ast.CallNode) fastFn {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok || c.env.schema.Index(id.Value) >= 0 {
		return nil
	}
	args := make([]fastFn, len(n.Arguments))
	for i, a := range n.Arguments {
		if args[i] = c.value(a); args[i] == nil {
			return nil
		}
	}
	// The argument counts are those the checker accepted.
	switch {
	case id.Value == negFunc && len(args) == 1:
		return call1(args, negateFast)
	case arithOps[id.Value] != "" && len(args) == 2:
		op := arithOps[id.Value]
		return call2(args, func(a, b any) (any, error) { return arithFast(op, a, b) })
	case id.Value == "sfDate" && len(args) == 2:
		if l, ok := c.constant(n.Arguments[1]); ok {
			fl := layoutOf(l) // compiled once, not looked up per row
			return call2(args, func(v, layout any) (any, error) { return sfDateIn(v, layout, fl) })
		}
		return call2(args, sfDateOf)
	case id.Value == "sfDateTime" && len(args) == 3:
		if l, ok := c.constant(n.Arguments[1]); ok {
			fl := layoutOf(l)
			return call3(args, func(v, layout, zone any) (any, error) { return sfDateTimeIn(v, layout, zone, fl) })
		}
		return call3(args, sfDateTimeOf)
	case id.Value == "sfBool" && len(args) == 1:
		return call1(args, sfBoolOf)
	case id.Value == "trim" && len(args) == 1:
		return call1(args, func(v any) (any, error) { return trimOf(v, nil, false) })
	case id.Value == "trim" && len(args) == 2:
		return call2(args, func(v, cut any) (any, error) { return trimOf(v, cut, true) })
	case id.Value == "regexReplace" && len(args) == 3:
		return call3(args, c.env.regexReplaceOf)
	case id.Value == "lookup" && len(args) == 2:
		return call2(args, c.env.lookupOf)
	case id.Value == "coalesce" && len(args) > 0:
		return func(row pipeline.Row) (any, bool) {
			// The VM evaluates every argument before the call.
			var first any
			found := false
			for _, a := range args {
				v, ok := a(row)
				if !ok {
					return nil, false
				}
				if !found {
					switch x := v.(type) {
					case nil:
					case string:
						found = x != ""
					default:
						found = true
					}
					if found {
						first = v
					}
				}
			}
			return first, true
		}
	}
	return nil
}

func call1(args []fastFn, f func(any) (any, error)) fastFn {
	a := args[0]
	return func(row pipeline.Row) (any, bool) {
		x, ok := a(row)
		if !ok {
			return nil, false
		}
		v, err := f(x)
		return v, err == nil
	}
}

func call2(args []fastFn, f func(any, any) (any, error)) fastFn {
	a, b := args[0], args[1]
	return func(row pipeline.Row) (any, bool) {
		x, ok := a(row)
		if !ok {
			return nil, false
		}
		y, ok := b(row)
		if !ok {
			return nil, false
		}
		v, err := f(x, y)
		return v, err == nil
	}
}

func call3(args []fastFn, f func(any, any, any) (any, error)) fastFn {
	a, b, d := args[0], args[1], args[2]
	return func(row pipeline.Row) (any, bool) {
		x, ok := a(row)
		if !ok {
			return nil, false
		}
		y, ok := b(row)
		if !ok {
			return nil, false
		}
		z, ok := d(row)
		if !ok {
			return nil, false
		}
		v, err := f(x, y, z)
		return v, err == nil
	}
}

// kindOf is the compiler's kind() of a node's checked type.
func kindOf(n ast.Node) reflect.Kind {
	t := n.Type()
	if t == nil {
		return reflect.Invalid
	}
	return t.Kind()
}

// simple is the compiler's isSimpleType.
func simple(n ast.Node) bool {
	t := n.Type()
	return t != nil && t.PkgPath() == ""
}
