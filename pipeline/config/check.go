package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/bulkflow/bulkflow/pipeline"
)

var durationType = reflect.TypeOf(time.Duration(0))

// checkShape walks a mapping against the struct v points to before it is
// decoded, and adds one error per unknown key and per value of the wrong
// kind, in the user's words ("batch_size: want a whole number, got
// "abc""). It returns false when it added any. Fields whose type decodes
// itself (an UnmarshalYAML method) are left to the decoder.
//
// It returns the mapping without the top-level entries that had a problem
// (nil when n is not a mapping), so that the rest can still be decoded and
// validated: every problem of a plugin's options is found in one pass.
func (l *loader) checkShape(n ast.Node, v any, what string) (bool, ast.Node) {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	before := len(l.errs)
	m, ok := asMapping(n)
	if !ok || t.Kind() != reflect.Struct {
		l.checkStruct(n, t, what, "")
		return len(l.errs) == before, nil
	}
	good := &ast.MappingNode{BaseNode: m.BaseNode, Start: m.Start, End: m.End, IsFlowStyle: m.IsFlowStyle}
	for _, mv := range m.Values {
		one := len(l.errs)
		l.checkStruct(mv, t, what, "")
		if len(l.errs) == one {
			good.Values = append(good.Values, mv)
		}
	}
	return len(l.errs) == before, good
}

func (l *loader) checkStruct(n ast.Node, t reflect.Type, what, prefix string) {
	m, ok := asMapping(n)
	if !ok {
		l.add(n, "%s: %s must be a mapping (key: value lines), not %s", what, strings.TrimSuffix(prefix, "."), kindOf(n))
		return
	}
	fields := structFields(t)
	var known []string
	for _, f := range fields {
		known = append(known, f.key)
	}
	for _, mv := range m.Values {
		k := keyName(mv)
		var f *structField
		for i := range fields {
			if fields[i].key == k {
				f = &fields[i]
			}
		}
		if f == nil {
			l.add(mv.Key, "unknown option %q for %s%s (known: %s)", prefix+k, what, suggest(k, known), strings.Join(known, ", "))
			continue
		}
		l.checkValue(mv.Value, f.typ, what, prefix+k)
	}
}

type structField struct {
	key string
	typ reflect.Type
}

// structFields lists the yaml keys of struct type t with their types.
func structFields(t reflect.Type) []structField {
	var out []structField
	for i := range t.NumField() {
		f := t.Field(i)
		opts := strings.Split(f.Tag.Get("yaml"), ",")
		tag := opts[0]
		if tag == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && slices.Contains(opts[1:], "inline") {
			// Its keys are the struct's own (salesforcesource.Options
			// inlines salesforcesink.Connection).
			out = append(out, structFields(f.Type)...)
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		out = append(out, structField{key: tag, typ: f.Type})
	}
	return out
}

func asMapping(n ast.Node) (*ast.MappingNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m, true
	case *ast.MappingValueNode:
		return &ast.MappingNode{BaseNode: m.BaseNode, Values: []*ast.MappingValueNode{m}}, true
	}
	return nil, false
}

var unmarshalerType = reflect.TypeOf((*interface{ UnmarshalYAML([]byte) error })(nil)).Elem()

// checkValue checks one value against the Go type it decodes into.
func (l *loader) checkValue(n ast.Node, t reflect.Type, what, key string) {
	if n == nil || n.Type() == ast.NullType {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	got := func() string {
		if s, ok := scalarText(n); ok {
			return l.show(n, s)
		}
		return kindOf(n)
	}
	bad := func(want string) {
		l.add(n, "%s: %s: want %s, got %s", what, key, want, got())
	}
	text, isScalar := scalarText(n)
	switch {
	case t == durationType:
		if !isScalar {
			bad("a duration such as 30s, 5m or 1h30m")
		} else if _, err := time.ParseDuration(text); err != nil && n.Type() == ast.StringType {
			bad("a duration such as 30s, 5m or 1h30m")
		}
		return
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(text, 10, 64); !isScalar || err != nil {
			bad("a whole number")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(text, 10, 64); !isScalar || err != nil {
			bad("a whole number, 0 or more")
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(text, 64); !isScalar || err != nil {
			bad("a number")
		}
	case reflect.Bool:
		if _, err := strconv.ParseBool(text); !isScalar || err != nil {
			bad("true or false")
		}
	case reflect.String:
		if !isScalar {
			bad("a single value (quote it if it holds a colon or starts with [ or {)")
		}
	case reflect.Slice:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for i, e := range seq.Values {
				l.checkValue(e, t.Elem(), what, fmt.Sprintf("%s[%d]", key, i))
			}
		} else {
			bad("a list, e.g. [a, b] or lines starting with -")
		}
	case reflect.Map:
		m, ok := asMapping(n)
		if !ok {
			bad("a mapping (key: value lines)")
			return
		}
		for _, mv := range m.Values {
			l.checkValue(mv.Value, t.Elem(), what, key+"."+keyName(mv))
		}
	case reflect.Struct:
		l.checkStruct(n, t, what, key+".")
	}
}

// scalarText returns the text of a scalar node.
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	}
	return "", false
}

var goTypeErr = regexp.MustCompile(`cannot unmarshal (\S+) into Go (?:struct field|value) (?:\S+ )?of type (\S+)`)

var usedWhereErr = regexp.MustCompile(`(\w+) was used where (\w+) is expected`)

// yamlKind names a decoder's kind word in the user's words.
func yamlKind(k string) string {
	switch k {
	case "int", "uint64", "int64", "float", "float64", "integer":
		return "a number"
	case "string":
		return "text"
	case "sequence", "array":
		return "a list"
	case "mapping", "map":
		return "a mapping"
	case "bool", "boolean":
		return "true or false"
	}
	return k
}

// userWords rewrites a decoder message that names Go types in the
// pipeline file's terms.
func userWords(msg string) string {
	if m := usedWhereErr.FindStringSubmatchIndex(msg); m != nil {
		return msg[:m[0]] + "want " + yamlKind(msg[m[4]:m[5]]) + ", got " + yamlKind(msg[m[2]:m[3]]) + msg[m[1]:]
	}
	m := goTypeErr.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := m[2]
	switch {
	case strings.Contains(want, "int"):
		want = "a whole number"
	case strings.Contains(want, "float"):
		want = "a number"
	case want == "bool":
		want = "true or false"
	case want == "string":
		want = "a single value"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map"):
		want = "a mapping"
	default:
		want = "another kind of value"
	}
	got := m[1]
	if got == "string" {
		got = "text"
	}
	return fmt.Sprintf("want %s, got %s; see the plugin's options with bulkflow plugins", want, got)
}

var _ = pipeline.Position{}
