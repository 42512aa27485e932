package exprenv

import (
	"sync"
	"sync/atomic"
	"time"
)

// Fixed-width date layouts.
//
// Warehouse exports write dates with layouts such as "01/02/2006" or
// "01/02/2006 15:04:05": every element a fixed number of digits, between
// fixed separators. time.Parse reads those generically (a layout scan per
// value, several allocations-free but branchy passes); profiles of a
// million-row mapping put a sixth of the map's time in it. A fixed
// layout is compiled once into the positions of its digits, and a value of
// exactly that shape is read directly. A value of any other shape, or with
// an element out of range, goes to time.Parse, which decides (and writes
// the error): the fast reading only ever succeeds where time.Parse gives
// the same time.

// fixedLayout is a compiled fixed-width layout.
type fixedLayout struct {
	layout string
	// at are the positions of the elements in a value, -1 when absent:
	// year (4 digits), month, day, hour, minute, second (2 digits each).
	year, month, day, hour, minute, second int
	// lit marks the positions of literal bytes, which a value must
	// repeat.
	lit []bool
}

// fixedLayouts caches compiled layouts: layout → *fixedLayout, nil when
// the layout is not a fixed one.
var fixedLayouts sync.Map

// fixedLayoutOf returns the compiled form of layout, or nil when the
// layout has elements of variable width, names, zones, fractions or
// anything else this reading does not do.
func fixedLayoutOf(layout string) *fixedLayout {
	// A mapping calls its date helpers with one or two layouts, row after
	// row: the last one found is checked before the map.
	if last := lastFixed.Load(); last != nil && last.layout == layout {
		return last.fl
	}
	var fl *fixedLayout
	if v, ok := fixedLayouts.Load(layout); ok {
		fl = v.(*fixedLayout)
	} else {
		fl = compileFixed(layout)
		fixedLayouts.Store(layout, fl)
	}
	lastFixed.Store(&layoutEntry{layout, fl})
	return fl
}

// layoutEntry is a layout and its compiled form (nil: not fixed).
type layoutEntry struct {
	layout string
	fl     *fixedLayout
}

// lastFixed is the layout fixedLayoutOf returned last.
var lastFixed atomic.Pointer[layoutEntry]

// compileFixed compiles layout (see fixedLayoutOf).
func compileFixed(layout string) *fixedLayout {
	if len(layout) > 64 {
		return nil
	}
	fl := &fixedLayout{layout: layout, year: -1, month: -1, day: -1, hour: -1, minute: -1, second: -1, lit: make([]bool, len(layout))}
	for i := 0; i < len(layout); {
		var pos *int
		width := 2
		switch {
		case hasAt(layout, i, "2006"):
			pos, width = &fl.year, 4
		case hasAt(layout, i, "01"):
			pos = &fl.month
		case hasAt(layout, i, "02"):
			pos = &fl.day
		case hasAt(layout, i, "15"):
			pos = &fl.hour
		case hasAt(layout, i, "04"):
			pos = &fl.minute
		case hasAt(layout, i, "05"):
			pos = &fl.second
		default:
			switch layout[i] {
			case '/', '-', ':', ' ', 'T', ',':
				fl.lit[i] = true
				i++
				continue
			}
			return nil
		}
		if *pos >= 0 {
			return nil // an element twice
		}
		*pos = i
		i += width
	}
	if fl.year < 0 || fl.month < 0 || fl.day < 0 {
		return nil
	}
	// The layout must mean to package time what it means here: formatting
	// two times both ways must agree (a "-07" is a zone to time, for one).
	for _, t := range []time.Time{time.Date(1987, 11, 23, 19, 48, 37, 0, time.UTC), time.Date(2031, 3, 7, 4, 9, 5, 0, time.UTC)} {
		if t.Format(layout) != string(fl.format(t)) {
			return nil
		}
	}
	return fl
}

// hasAt reports whether s holds p at i.
func hasAt(s string, i int, p string) bool { return len(s)-i >= len(p) && s[i:i+len(p)] == p }

// format writes t as the layout does (for compileFixed's check).
func (fl *fixedLayout) format(t time.Time) []byte {
	b := []byte(fl.layout)
	put := func(at, width, v int) {
		if at < 0 {
			return
		}
		for k := at + width - 1; k >= at; k-- {
			b[k] = byte('0' + v%10)
			v /= 10
		}
	}
	put(fl.year, 4, t.Year())
	put(fl.month, 2, int(t.Month()))
	put(fl.day, 2, t.Day())
	put(fl.hour, 2, t.Hour())
	put(fl.minute, 2, t.Minute())
	put(fl.second, 2, t.Second())
	return b
}

// fields reads s, which must be exactly of the layout's shape with every
// element in range (as time.Parse checks them); ok is false otherwise.
func (fl *fixedLayout) fields(s string) (year, month, day, hour, minute, second int, ok bool) {
	if len(s) != len(fl.layout) {
		return
	}
	for i, isLit := range fl.lit {
		if isLit && s[i] != fl.layout[i] {
			return
		}
	}
	hi, lo := num2(s, fl.year), num2(s, fl.year+2)
	if hi < 0 || lo < 0 {
		return
	}
	year = hi*100 + lo
	month, day = num2(s, fl.month), num2(s, fl.day)
	hour, minute, second = 0, 0, 0
	if fl.hour >= 0 {
		hour = num2(s, fl.hour)
	}
	if fl.minute >= 0 {
		minute = num2(s, fl.minute)
	}
	if fl.second >= 0 {
		second = num2(s, fl.second)
	}
	// A non-digit makes its element negative (num2).
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 {
		return
	}
	return year, month, day, hour, minute, second, true
}

// num2 reads the two digits of s at i, or returns -1 if either is not
// a digit.
func num2(s string, i int) int {
	a, b := s[i]-'0', s[i+1]-'0'
	if a > 9 || b > 9 {
		return -1
	}
	return int(a)*10 + int(b)
}

// appendDate appends year-month-day as SFDateLayout writes it.
func appendDate(b []byte, year, month, day int) []byte {
	return append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10))
}

// appendSFDate appends t as t.Format(SFDateLayout) writes it
// ("2006-01-02", in t's own zone), for years 0 to 9999; other years go
// through Format.
func appendSFDate(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, SFDateLayout)
	}
	return appendDate(b, year, int(month), day)
}

// appendSFDateTime appends t as t.Format(SFDateTimeLayout) writes it
// ("2006-01-02T15:04:05.000Z", t in UTC), for years 0 to 9999; other
// years go through Format.
func appendSFDateTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, SFDateTimeLayout)
	}
	hour, minute, second := t.Clock()
	return appendSFDateTimeFields(b, year, int(month), day, hour, minute, second, t.Nanosecond()/1e6)
}

// appendSFDateTimeFields appends a UTC time given by its fields (year 0
// to 9999, ms the milliseconds) as SFDateTimeLayout writes it.
func appendSFDateTimeFields(b []byte, year, month, day, hour, minute, second, ms int) []byte {
	b = appendDate(b, year, month, day)
	return append(b, 'T', byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+second/10), byte('0'+second%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}
