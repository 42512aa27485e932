package exprenv

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Salesforce text forms of dates and datetimes.
const (
	// SFDateLayout is the layout of sfDate results.
	SFDateLayout = "2006-01-02"
	// SFDateTimeLayout is the layout of sfDateTime results (always UTC).
	SFDateTimeLayout = "2006-01-02T15:04:05.000Z"
)

// ErrBadValue is wrapped by the runtime errors of the helpers when their
// input cannot be converted (an unparsable date, a word sfBool does not know).
var ErrBadValue = errors.New("bad value")

// functions returns the expr options declaring the helpers. The closures
// read e's lookup tables and regexp cache.
func (e *Env) functions() []expr.Option {
	return []expr.Option{
		expr.Function("sfDate", sfDate,
			new(func(string, string) string),
			new(func(time.Time, string) string)),
		expr.Function("sfDateTime", sfDateTime,
			new(func(string, string, string) string),
			new(func(time.Time, string, string) string)),
		expr.Function("sfBool", sfBool,
			new(func(string) bool),
			new(func(bool) bool),
			new(func(int64) bool)),
		expr.Function("trim", trim,
			new(func(string) string),
			new(func(string, string) string)),
		expr.Function("regexReplace", e.regexReplace,
			new(func(string, string, string) string)),
		expr.Function("lookup", e.lookup,
			new(func(string, any) string)),
		func(c *conf.Config) {
			c.Functions["coalesce"] = &builtin.Function{Name: "coalesce", Func: coalesce, Validate: coalesceType}
		},
	}
}

// str returns v as a string; ok is false for nil.
func str(name string, v any) (s string, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	default:
		return "", false, fmt.Errorf("%s: want a string, got %T", name, v)
	}
}

// sfDate implements sfDate(v, layout).
func sfDate(args ...any) (any, error) {
	t, ok, err := toTime("sfDate", args[0], args[1], nil)
	if !ok || err != nil {
		return nil, err
	}
	return t.Format(SFDateLayout), nil
}

// sfDateTime implements sfDateTime(v, layout, tz).
func sfDateTime(args ...any) (any, error) {
	tz, _, err := str("sfDateTime", args[2])
	if err != nil {
		return nil, err
	}
	loc, err := location(tz)
	if err != nil {
		return nil, fmt.Errorf("sfDateTime: %w", err)
	}
	t, ok, err := toTime("sfDateTime", args[0], args[1], loc)
	if !ok || err != nil {
		return nil, err
	}
	return t.UTC().Format(SFDateTimeLayout), nil
}

// toTime converts a helper's date argument: a time.Time as is, a string
// parsed with layout in loc (UTC when nil). ok is false for nil and blank
// strings.
func toTime(name string, v, layout any, loc *time.Location) (t time.Time, ok bool, err error) {
	switch x := v.(type) {
	case nil:
		return t, false, nil
	case time.Time:
		return x, true, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return t, false, nil
		}
		l, _ := layout.(string)
		if l == "" {
			return t, false, fmt.Errorf("%s: empty layout", name)
		}
		if loc == nil {
			loc = time.UTC
		}
		t, err := time.ParseInLocation(l, s, loc)
		if err != nil {
			return t, false, fmt.Errorf("%s: %w: %q does not match layout %q", name, ErrBadValue, s, l)
		}
		return t, true, nil
	default:
		return t, false, fmt.Errorf("%s: want a string or a time, got %T", name, v)
	}
}

var locations sync.Map // zone name → *time.Location

// location returns the IANA zone tz, cached.
func location(tz string) (*time.Location, error) {
	if l, ok := locations.Load(tz); ok {
		return l.(*time.Location), nil
	}
	if tz == "" {
		return nil, errors.New("empty time zone (give an IANA name such as \"UTC\" or \"Europe/Paris\")")
	}
	l, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", tz)
	}
	locations.Store(tz, l)
	return l, nil
}

// sfBool implements sfBool(v).
func sfBool(args ...any) (any, error) {
	switch x := args[0].(type) {
	case nil:
		return nil, nil
	case bool:
		return x, nil
	case int64:
		switch x {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	case string:
		s := strings.TrimSpace(x)
		switch {
		case s == "":
			return nil, nil
		case oneOf(s, "true", "t", "yes", "y", "1"):
			return true, nil
		case oneOf(s, "false", "f", "no", "n", "0"):
			return false, nil
		}
	default:
		return nil, fmt.Errorf("sfBool: want a string or a bool, got %T", args[0])
	}
	return nil, fmt.Errorf("sfBool: %w: %q is not a boolean (want true/false, 1/0, yes/no, y/n or t/f)", ErrBadValue, pipeline.Text(args[0]))
}

func oneOf(s string, words ...string) bool {
	for _, w := range words {
		if strings.EqualFold(s, w) {
			return true
		}
	}
	return false
}

// trim implements trim(s) and trim(s, cutset).
func trim(args ...any) (any, error) {
	s, ok, err := str("trim", args[0])
	if !ok || err != nil {
		return nil, err
	}
	if len(args) == 1 {
		return strings.TrimSpace(s), nil
	}
	cut, _, err := str("trim", args[1])
	if err != nil {
		return nil, err
	}
	return strings.Trim(s, cut), nil
}

// coalesce implements coalesce(a, b, ...).
func coalesce(args ...any) (any, error) {
	for _, a := range args {
		switch x := a.(type) {
		case nil:
		case string:
			if x != "" {
				return x, nil
			}
		default:
			return a, nil
		}
	}
	return nil, nil
}

var anyType = reflect.TypeOf((*any)(nil)).Elem()

// coalesceType is coalesce's result type: the arguments' type when they
// all have the same one (nil literals aside), else any.
func coalesceType(args []reflect.Type) (reflect.Type, error) {
	if len(args) == 0 {
		return nil, errors.New("coalesce needs at least one argument")
	}
	var t reflect.Type
	for _, a := range args {
		switch {
		case a == nil:
		case t == nil:
			t = a
		case a != t:
			return anyType, nil
		}
	}
	if t == nil {
		return anyType, nil
	}
	return t, nil
}

// regexReplace implements regexReplace(s, pattern, repl).
func (e *Env) regexReplace(args ...any) (any, error) {
	s, ok, err := str("regexReplace", args[0])
	if !ok || err != nil {
		return nil, err
	}
	pat, _, err := str("regexReplace", args[1])
	if err != nil {
		return nil, err
	}
	repl, _, err := str("regexReplace", args[2])
	if err != nil {
		return nil, err
	}
	re, err := e.regexps.get(pat)
	if err != nil {
		return nil, err
	}
	return re.ReplaceAllString(s, repl), nil
}

// lookup implements lookup(table, key).
func (e *Env) lookup(args ...any) (any, error) {
	name, _, err := str("lookup", args[0])
	if err != nil {
		return nil, err
	}
	if args[1] == nil {
		return nil, nil
	}
	v, ok, err := e.lookups.get(name, pipeline.Text(args[1]))
	if !ok || err != nil {
		return nil, err
	}
	return v, nil
}
