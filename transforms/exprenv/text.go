package exprenv

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/ast"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Text forms: fast paths that build strings without boxing them.
//
// A fast path that builds a string (a concatenation, upper(s) of a
// lower-case s, a date written in Salesforce form) would otherwise make two
// allocations per value: the string's bytes and the interface value
// holding it. The text form of such a node appends the bytes to the
// Runner's arena instead, and Runner.RunText boxes them with their string
// header beside them (pipeline.AppendBoxed). A map transform then
// allocates per batch, not per value.
//
// A text form decides exactly what the node's value form (fast.go) would:
// the same checks on its inputs, the same helpers for everything but the
// common case it writes directly, textVM whenever the VM must decide.

// textKind says what a textFn produced.
type textKind uint8

const (
	// textVM: the fast path cannot decide; the VM must.
	textVM textKind = iota
	// textValue: the result is the returned value.
	textValue
	// textBuilt: the result is the string the call appended to b.
	textBuilt
)

// textFn evaluates a node on a row. With textBuilt the result is the text
// the call appended to b (out[len(b):]); with textValue it is v, and out
// is b unchanged.
type textFn func(row pipeline.Row, b []byte) (out []byte, v any, kind textKind)

// text compiles n into a text form, or returns nil when n has no fast
// path at all. Nodes that never build a string get a text form that
// returns their value.
func (c *fastCompiler) text(n ast.Node) textFn {
	switch n := n.(type) {
	case *ast.BinaryNode:
		if n.Operator == "+" {
			return c.concatText(n)
		}
	case *ast.BuiltinNode:
		if t := c.caseText(n); t != nil {
			return t
		}
	case *ast.CallNode:
		if t := c.dateText(n); t != nil {
			return t
		}
	}
	f := c.value(n)
	if f == nil {
		return nil
	}
	return func(row pipeline.Row, b []byte) ([]byte, any, textKind) {
		v, ok := f(row)
		if !ok {
			return b, nil, textVM
		}
		return b, v, textValue
	}
}

// builds reports whether n's text form may build a string.
func builds(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.BinaryNode:
		return n.Operator == "+"
	case *ast.BuiltinNode:
		return n.Name == "upper" || n.Name == "lower"
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		return ok && (id.Value == "sfDate" || id.Value == "sfDateTime")
	}
	return false
}

// stringValue wraps a text form as a value form, for a node inside
// another (upper(a + b) == "X"): a built string is copied out of a pooled
// buffer (one allocation, and one to box it). A whole program's text form
// runs on its Runner's buffer instead (Runner.Run).
func stringValue(t textFn) fastFn {
	if t == nil {
		return nil
	}
	return func(row pipeline.Row) (any, bool) {
		bp := textBufs.Get().(*[]byte)
		defer textBufs.Put(bp)
		b, v, kind := t(row, (*bp)[:0])
		*bp = b[:0]
		switch kind {
		case textBuilt:
			return string(b), true
		case textValue:
			return v, true
		}
		return nil, false
	}
}

// textBufs are stringValue's buffers.
var textBufs = sync.Pool{New: func() any { return new([]byte) }}

// concatText compiles a chain of + whose operands are all strings at run
// time (runtime.Add on two strings is their concatenation; on anything
// else the VM decides).
func (c *fastCompiler) concatText(n *ast.BinaryNode) textFn {
	type part struct {
		field int // schema index, or -1
		t     textFn
		lit   string
		isLit bool
	}
	var parts []part
	var flatten func(n ast.Node) bool
	flatten = func(n ast.Node) bool {
		if b, ok := n.(*ast.BinaryNode); ok && b.Operator == "+" {
			return flatten(b.Left) && flatten(b.Right)
		}
		if v, ok := c.constant(n); ok {
			s, isStr := v.(string)
			if !isStr {
				return false
			}
			// Merge adjacent literals.
			if k := len(parts) - 1; k >= 0 && parts[k].isLit {
				parts[k].lit += s
			} else {
				parts = append(parts, part{field: -1, lit: s, isLit: true})
			}
			return true
		}
		if i := c.field(n); i >= 0 {
			parts = append(parts, part{field: i})
			return true
		}
		t := c.text(n)
		if t == nil {
			return false
		}
		parts = append(parts, part{field: -1, t: t})
		return true
	}
	if !flatten(n) || len(parts) > maxConcatParts {
		return nil
	}
	return func(row pipeline.Row, b []byte) ([]byte, any, textKind) {
		start := len(b)
		for k := range parts {
			p := &parts[k]
			switch {
			case p.isLit:
				b = append(b, p.lit...)
			case p.field >= 0:
				s, ok := row[p.field].(string)
				if !ok {
					return b[:start], nil, textVM
				}
				b = append(b, s...)
			default:
				var v any
				var kind textKind
				b, v, kind = p.t(row, b)
				switch kind {
				case textVM:
					return b[:start], nil, textVM
				case textValue:
					s, ok := v.(string)
					if !ok {
						return b[:start], nil, textVM
					}
					b = append(b, s...)
				}
			}
		}
		return b, nil, textBuilt
	}
}

// maxConcatParts bounds the operands of a fast concatenation (a longer
// chain runs on the VM).
const maxConcatParts = 16

// caseText compiles upper(s) and lower(s) on a string: ASCII text is
// mapped byte by byte (what strings.ToUpper and ToLower do to it), and
// text already in the wanted case is handed back as is.
func (c *fastCompiler) caseText(n *ast.BuiltinNode) textFn {
	if len(n.Arguments) != 1 || n.Map != nil || n.Threshold != nil || (n.Name != "upper" && n.Name != "lower") {
		return nil
	}
	arg := c.value(n.Arguments[0])
	if arg == nil {
		return nil
	}
	// from is the first letter to change; letters change case by
	// flipping bit 0x20.
	conv, from := strings.ToUpper, byte('a')
	if n.Name == "lower" {
		conv, from = strings.ToLower, 'A'
	}
	return func(row pipeline.Row, b []byte) ([]byte, any, textKind) {
		v, ok := arg(row)
		s, isStr := v.(string)
		if !ok || !isStr {
			return b, nil, textVM
		}
		change, ascii := false, true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 0x80 {
				ascii = false
				break
			}
			change = change || c-from < 26
		}
		if ascii {
			if !change {
				return b, v, textValue
			}
			for i := 0; i < len(s); i++ {
				c := s[i]
				if c-from < 26 {
					c ^= 0x20
				}
				b = append(b, c)
			}
			return b, nil, textBuilt
		}
		u := conv(s)
		if u == s {
			return b, v, textValue // unchanged: no need to box a copy
		}
		return append(b, u...), nil, textBuilt
	}
}

// dateText compiles sfDate(v, layout) and sfDateTime(v, layout, zone)
// with a constant layout (and zone): a value of the layout's fixed-width
// shape is written straight into b; any other goes through sfDateIn or
// sfDateTimeIn, which the value forms call.
func (c *fastCompiler) dateText(n *ast.CallNode) textFn {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok || c.env.schema.Index(id.Value) >= 0 {
		return nil
	}
	switch {
	case id.Value == "sfDate" && len(n.Arguments) == 2:
	case id.Value == "sfDateTime" && len(n.Arguments) == 3:
	default:
		return nil
	}
	lv, ok := c.constant(n.Arguments[1])
	if !ok {
		return nil
	}
	layout, isStr := lv.(string)
	fl := layoutOf(lv)
	arg := c.value(n.Arguments[0])
	if arg == nil || !isStr {
		return nil
	}
	if id.Value == "sfDate" {
		return func(row pipeline.Row, b []byte) ([]byte, any, textKind) {
			v, ok := arg(row)
			if !ok {
				return b, nil, textVM
			}
			if t, isTime := v.(time.Time); isTime {
				// A typed date (Parquet, Postgres): written straight
				// from its fields, as sfDateIn writes it.
				return appendSFDate(b, t), nil, textBuilt
			}
			if s, isStr := v.(string); isStr && fl != nil {
				if layout == SFDateLayout && isSFDate(s) {
					return b, v, textValue
				}
				if y, m, d, _, _, _, ok := fl.fields(trimmed(s)); ok {
					start := len(b)
					b = appendDate(b, y, m, d)
					if string(b[start:]) == s {
						return b[:start], v, textValue
					}
					return b, nil, textBuilt
				}
			}
			r, err := sfDateIn(v, lv, fl)
			if err != nil {
				return b, nil, textVM
			}
			return b, r, textValue
		}
	}
	zv, ok := c.constant(n.Arguments[2])
	if !ok {
		return nil
	}
	zone, isStr := zv.(string)
	if !isStr {
		return nil
	}
	loc, err := location(zone)
	if err != nil {
		return nil
	}
	utc := loc == time.UTC
	return func(row pipeline.Row, b []byte) ([]byte, any, textKind) {
		v, ok := arg(row)
		if !ok {
			return b, nil, textVM
		}
		if t, isTime := v.(time.Time); isTime {
			// A typed timestamp: its instant, whatever the zone
			// argument (which sfDateTimeIn applies to text only).
			return appendSFDateTime(b, t.UTC()), nil, textBuilt
		}
		if s, isStr := v.(string); isStr && fl != nil && utc {
			if y, mo, d, h, mi, sec, ok := fl.fields(trimmed(s)); ok {
				return appendSFDateTimeFields(b, y, mo, d, h, mi, sec, 0), nil, textBuilt
			}
		}
		r, err := sfDateTimeIn(v, lv, zv, fl)
		if err != nil {
			return b, nil, textVM
		}
		return b, r, textValue
	}
}

// floatFn is a fast path whose result is a float64.
type floatFn func(row pipeline.Row) (float64, bool)

// number compiles float(v) into a floatFn; call reports whether n is such
// a call. Numeric literals compile too (not a call): compareNumbers
// compares an int with a float64 as float64(int), as this does.
func (c *fastCompiler) number(n ast.Node) (f floatFn, call bool) {
	if b, ok := n.(*ast.BuiltinNode); ok && b.Name == "float" && len(b.Arguments) == 1 && b.Map == nil && b.Threshold == nil {
		arg := c.value(b.Arguments[0])
		if arg == nil {
			return nil, false
		}
		return func(row pipeline.Row) (float64, bool) {
			v, ok := arg(row)
			if !ok {
				return 0, false
			}
			return floatOf(v)
		}, true
	}
	v, ok := c.constant(n)
	if !ok {
		return nil, false
	}
	var x float64
	switch v := v.(type) {
	case int:
		if v > 1<<53 || v < -1<<53 {
			return nil, false
		}
		x = float64(v)
	case float64:
		x = v
	default:
		return nil, false
	}
	return func(pipeline.Row) (float64, bool) { return x, true }, false
}

// floatOf is expr's float(v) builtin for the values rows hold: strings
// (strconv.ParseFloat, which the builtin calls), int64, int and float64;
// ok is false otherwise, and for a string ParseFloat refuses (the builtin
// panics with its own message: the VM writes the error).
func floatOf(v any) (float64, bool) {
	switch x := v.(type) {
	case string:
		if f, ok := parseDecimal(x); ok {
			return f, true
		}
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseDecimal reads the common decimal text "[+-]digits[.digits]" of at
// most 15 digits, which strconv.ParseFloat gives the same float64 for:
// the digits are an integer below 2^53 and the divisor a power of ten
// below 1e16, both exact, and one IEEE division rounds correctly, as
// ParseFloat does. ok is false for any other text.
func parseDecimal(s string) (float64, bool) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg, i = s[0] == '-', 1
	}
	var m uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 || (dot && frac == 0) {
		return 0, false
	}
	f := float64(m) / exactPow10[frac]
	if neg {
		f = -f
	}
	return f, true
}
