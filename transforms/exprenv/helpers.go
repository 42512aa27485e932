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
	return sfDateOf(args[0], args[1])
}

// sfDateOf is sfDate(v, layout), shared by the VM and the fast paths.
func sfDateOf(v, layout any) (any, error) {
	if s, ok := v.(string); ok && layout == any(SFDateLayout) && isSFDate(s) {
		// The common case of a warehouse date already in Salesforce
		// form: what parsing and formatting it again would give.
		return v, nil
	}
	return sfDateIn(v, layout, layoutOf(layout))
}

// layoutOf returns the compiled fixed-width form of a layout argument,
// or nil (not a string, or not a fixed layout).
func layoutOf(layout any) *fixedLayout {
	if l, _ := layout.(string); l != "" {
		return fixedLayoutOf(l)
	}
	return nil
}

// sfDateIn is sfDateOf with fl, layoutOf(layout), known: the fast path
// of a call with a constant layout compiles it once.
func sfDateIn(v, layout any, fl *fixedLayout) (any, error) {
	if s, ok := v.(string); ok && layout == any(SFDateLayout) && isSFDate(s) {
		return v, nil
	}
	if s, isStr := v.(string); isStr && fl != nil {
		// A layout of fixed-width elements: read without time.Parse.
		if y, m, d, _, _, _, ok := fl.fields(trimmed(s)); ok {
			var buf [10]byte
			b := appendDate(buf[:0], y, m, d)
			if s == string(b) {
				return v, nil
			}
			return string(b), nil
		}
	}
	t, ok, err := toTime("sfDate", v, layout, nil, fl)
	if !ok || err != nil {
		return nil, err
	}
	var buf [32]byte
	b := appendSFDate(buf[:0], t)
	if s, isStr := v.(string); isStr && s == string(b) {
		// Already in Salesforce form: hand back the input, which
		// saves copying (and boxing) the same text again.
		return v, nil
	}
	return string(b), nil
}

// isSFDate reports whether s is a valid date written exactly as
// SFDateLayout writes it ("2024-02-29"): time.Parse(SFDateLayout, s)
// succeeds and Format gives s back.
func isSFDate(s string) bool {
	if len(s) != len(SFDateLayout) || s[4] != '-' || s[7] != '-' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if i == 4 || i == 7 {
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	year, month, day := n/10000, n/100%100, n%100
	if month < 1 || month > 12 || day < 1 {
		return false
	}
	return day <= daysIn(month, year)
}

// daysIn is the number of days of month (1-12) in year, leap years as
// package time has them.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// sfDateTime implements sfDateTime(v, layout, tz).
func sfDateTime(args ...any) (any, error) {
	return sfDateTimeOf(args[0], args[1], args[2])
}

// sfDateTimeOf is sfDateTime(v, layout, tz).
func sfDateTimeOf(v, layout, zone any) (any, error) {
	return sfDateTimeIn(v, layout, zone, layoutOf(layout))
}

// sfDateTimeIn is sfDateTimeOf with fl, layoutOf(layout), known.
func sfDateTimeIn(v, layout, zone any, fl *fixedLayout) (any, error) {
	tz, _, err := str("sfDateTime", zone)
	if err != nil {
		return nil, err
	}
	loc, err := location(tz)
	if err != nil {
		return nil, fmt.Errorf("sfDateTime: %w", err)
	}
	if s, isStr := v.(string); isStr && loc == time.UTC && fl != nil {
		// A fixed-width layout read in UTC is written as read: no
		// time.Time to build and convert.
		if y, mo, d, h, mi, sec, ok := fl.fields(trimmed(s)); ok {
			var buf [32]byte
			return string(appendSFDateTimeFields(buf[:0], y, mo, d, h, mi, sec, 0)), nil
		}
	}
	t, ok, err := toTime("sfDateTime", v, layout, loc, fl)
	if !ok || err != nil {
		return nil, err
	}
	var buf [32]byte
	return string(appendSFDateTime(buf[:0], t.UTC())), nil
}

// trimmed is strings.TrimSpace(s), without its call for the common s
// that has no space at either end.
func trimmed(s string) string {
	if s != "" && s[0] > ' ' && s[len(s)-1] > ' ' && s[0] < 0x80 && s[len(s)-1] < 0x80 {
		return s
	}
	return strings.TrimSpace(s)
}

// toTime converts a helper's date argument: a time.Time as is, a string
// parsed with layout in loc (UTC when nil), read directly when fl (the
// layout's fixed-width form, or nil) can. ok is false for nil and blank
// strings.
func toTime(name string, v, layout any, loc *time.Location, fl *fixedLayout) (t time.Time, ok bool, err error) {
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
		if fl != nil {
			// Fixed-width elements: read without time.Parse, which
			// decides whatever this reading does not take.
			if y, mo, d, h, mi, sec, ok := fl.fields(s); ok {
				return time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc), true, nil
			}
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
	if tz == "UTC" {
		return time.UTC, nil // what time.LoadLocation returns for it
	}
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
	return sfBoolOf(args[0])
}

// sfBoolOf is sfBool(v).
func sfBoolOf(v any) (any, error) {
	switch x := v.(type) {
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
		if len(x) == 1 {
			// The one-letter forms exports write (Y/N, 1/0, T/F).
			switch x[0] {
			case 'Y', 'y', 'T', 't', '1':
				return true, nil
			case 'N', 'n', 'F', 'f', '0':
				return false, nil
			}
		}
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
		return nil, fmt.Errorf("sfBool: want a string or a bool, got %T", v)
	}
	return nil, fmt.Errorf("sfBool: %w: %q is not a boolean (want true/false, 1/0, yes/no, y/n or t/f)", ErrBadValue, pipeline.Text(v))
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
	if len(args) == 1 {
		return trimOf(args[0], nil, false)
	}
	return trimOf(args[0], args[1], true)
}

// trimOf is trim(v), or trim(v, cutset) when withCut is set.
func trimOf(v, cutset any, withCut bool) (any, error) {
	s, ok, err := str("trim", v)
	if !ok || err != nil {
		return nil, err
	}
	var t string
	if !withCut {
		t = strings.TrimSpace(s)
	} else {
		cut, _, err := str("trim", cutset)
		if err != nil {
			return nil, err
		}
		t = strings.Trim(s, cut)
	}
	if len(t) == len(s) {
		return v, nil // nothing trimmed: no need to box a copy
	}
	return t, nil
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
	return e.regexReplaceOf(args[0], args[1], args[2])
}

// regexReplaceOf is regexReplace(v, pattern, replacement).
func (e *Env) regexReplaceOf(v, pattern, replacement any) (any, error) {
	s, ok, err := str("regexReplace", v)
	if !ok || err != nil {
		return nil, err
	}
	pat, _, err := str("regexReplace", pattern)
	if err != nil {
		return nil, err
	}
	repl, _, err := str("regexReplace", replacement)
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
	return e.lookupOf(args[0], args[1])
}

// lookupOf is lookup(table, key).
func (e *Env) lookupOf(table, key any) (any, error) {
	name, _, err := str("lookup", table)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, nil
	}
	v, ok, err := e.lookups.get(name, pipeline.Text(key))
	if !ok || err != nil {
		return nil, err
	}
	return v, nil
}
