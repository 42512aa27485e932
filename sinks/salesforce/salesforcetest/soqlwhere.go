package salesforcetest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cond is a WHERE condition tree: and/or/not nodes over comparisons.
type cond struct {
	op   string // "and", "or", "not", or a comparison: = != < > <= >= like in notin
	kids []*cond
	col  queryCol
	vals []literalValue // the right side (several for IN)
	re   *regexp.Regexp // LIKE pattern
}

// literalValue is a SOQL literal: text, or null.
type literalValue struct {
	text string
	null bool
}

// orderKey is one ORDER BY item.
type orderKey struct {
	col        queryCol
	desc       bool
	nullsFirst bool
}

// whereParser parses a token stream from i.
type whereParser struct {
	s    *Server
	obj  *object
	toks []string
	i    int
}

func (p *whereParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *whereParser) bad(format string, args ...any) error {
	return &soqlError{"MALFORMED_QUERY", fmt.Sprintf(format, args...)}
}

func (p *whereParser) unexpected() error {
	if p.i >= len(p.toks) {
		return p.bad("unexpected end of query")
	}
	return p.bad("unexpected token: '%s'", p.toks[p.i])
}

func (p *whereParser) is(kw string) bool { return strings.EqualFold(p.peek(), kw) }

// expr := term (OR term)*
func (p *whereParser) expr() (*cond, error) {
	c, err := p.term()
	if err != nil {
		return nil, err
	}
	for p.is("OR") {
		p.i++
		r, err := p.term()
		if err != nil {
			return nil, err
		}
		c = &cond{op: "or", kids: []*cond{c, r}}
	}
	return c, nil
}

// term := factor (AND factor)*
func (p *whereParser) term() (*cond, error) {
	c, err := p.factor()
	if err != nil {
		return nil, err
	}
	for p.is("AND") {
		p.i++
		r, err := p.factor()
		if err != nil {
			return nil, err
		}
		c = &cond{op: "and", kids: []*cond{c, r}}
	}
	return c, nil
}

// factor := NOT factor | ( expr ) | comparison
func (p *whereParser) factor() (*cond, error) {
	switch {
	case p.is("NOT"):
		p.i++
		c, err := p.factor()
		if err != nil {
			return nil, err
		}
		return &cond{op: "not", kids: []*cond{c}}, nil
	case p.peek() == "(":
		p.i++
		c, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, p.unexpected()
		}
		p.i++
		return c, nil
	}
	if p.i >= len(p.toks) {
		return nil, p.unexpected()
	}
	col, err := p.s.resolveQueryCol(p.obj, p.toks[p.i])
	if err != nil {
		return nil, err
	}
	p.i++
	op := strings.ToLower(p.peek())
	switch op {
	case "=", "!=", "<", ">", "<=", ">=":
		p.i++
		v, err := p.literal()
		if err != nil {
			return nil, err
		}
		if v.null && op != "=" && op != "!=" {
			return nil, p.bad("unexpected token: 'null'")
		}
		return &cond{op: op, col: col, vals: []literalValue{v}}, nil
	case "like":
		p.i++
		v, err := p.literal()
		if err != nil || v.null {
			return nil, p.bad("invalid LIKE pattern")
		}
		return &cond{op: "like", col: col, re: likePattern(v.text)}, nil
	case "in", "not":
		if op == "not" {
			p.i++
			if !p.is("IN") {
				return nil, p.unexpected()
			}
			op = "notin"
		}
		p.i++
		if p.peek() != "(" {
			return nil, p.unexpected()
		}
		p.i++
		c := &cond{op: op, col: col}
		for {
			v, err := p.literal()
			if err != nil {
				return nil, err
			}
			c.vals = append(c.vals, v)
			if p.peek() == "," {
				p.i++
				continue
			}
			break
		}
		if p.peek() != ")" {
			return nil, p.unexpected()
		}
		p.i++
		return c, nil
	}
	return nil, p.unexpected()
}

// literal reads a quoted string, null, true/false, a number, or a
// date/datetime literal.
func (p *whereParser) literal() (literalValue, error) {
	if p.i >= len(p.toks) {
		return literalValue{}, p.unexpected()
	}
	lit := p.toks[p.i]
	switch {
	case strings.HasPrefix(lit, "'"):
		p.i++
		return literalValue{text: lit[1:]}, nil
	case strings.EqualFold(lit, "null"):
		p.i++
		return literalValue{null: true}, nil
	case strings.EqualFold(lit, "true"), strings.EqualFold(lit, "false"):
		p.i++
		return literalValue{text: strings.ToLower(lit)}, nil
	case isDecimal(lit):
		p.i++
		return literalValue{text: lit}, nil
	}
	if _, ok := parseSOQLTime(lit); ok {
		p.i++
		return literalValue{text: lit}, nil
	}
	return literalValue{}, p.unexpected()
}

// likePattern compiles a LIKE pattern (% any run, _ one character;
// case-insensitive, as in SOQL).
func likePattern(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for _, r := range pat {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// parseSOQLTime parses a date or datetime as SOQL literals and stored
// values are written.
func parseSOQLTime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05.000Z0700", time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// compareValues orders two non-null values of a field of type typ:
// numbers as numbers, dates and datetimes as instants, booleans false
// first, anything else case-insensitively.
func compareValues(typ, a, b string) int {
	switch typ {
	case "int", "long", "double", "currency", "percent":
		x, err1 := strconv.ParseFloat(a, 64)
		y, err2 := strconv.ParseFloat(b, 64)
		if err1 == nil && err2 == nil {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	case "date", "datetime":
		x, ok1 := parseSOQLTime(a)
		y, ok2 := parseSOQLTime(b)
		if ok1 && ok2 {
			return x.Compare(y)
		}
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

func colType(c queryCol) string {
	if c.tfield != nil {
		return c.tfield.Type
	}
	return c.field.Type
}

// matchLocked evaluates c on rec. s.mu must be held.
func (s *Server) matchLocked(c *cond, rec *record) bool {
	switch c.op {
	case "and":
		return s.matchLocked(c.kids[0], rec) && s.matchLocked(c.kids[1], rec)
	case "or":
		return s.matchLocked(c.kids[0], rec) || s.matchLocked(c.kids[1], rec)
	case "not":
		return !s.matchLocked(c.kids[0], rec)
	}
	v, set := s.valueLocked(c.col, rec)
	isNull := !set || v == ""
	switch c.op {
	case "like":
		return !isNull && c.re.MatchString(v)
	case "in", "notin":
		in := slices.ContainsFunc(c.vals, func(l literalValue) bool {
			if l.null {
				return isNull
			}
			return !isNull && compareValues(colType(c.col), v, l.text) == 0
		})
		return in == (c.op == "in")
	}
	l := c.vals[0]
	if l.null {
		return isNull == (c.op == "=")
	}
	if isNull {
		return c.op == "!="
	}
	cmp := compareValues(colType(c.col), v, l.text)
	switch c.op {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp < 0
	case ">":
		return cmp > 0
	case "<=":
		return cmp <= 0
	}
	return cmp >= 0
}

// parseOrderBy reads ORDER BY items from p.i (after the keywords).
func (p *whereParser) orderBy() ([]orderKey, error) {
	var keys []orderKey
	for {
		if p.i >= len(p.toks) {
			return nil, p.unexpected()
		}
		col, err := p.s.resolveQueryCol(p.obj, p.toks[p.i])
		if err != nil {
			return nil, err
		}
		p.i++
		k := orderKey{col: col, nullsFirst: true}
		if p.is("ASC") {
			p.i++
		} else if p.is("DESC") {
			p.i++
			k.desc, k.nullsFirst = true, false
		}
		if p.is("NULLS") {
			p.i++
			switch {
			case p.is("FIRST"):
				k.nullsFirst = true
			case p.is("LAST"):
				k.nullsFirst = false
			default:
				return nil, p.unexpected()
			}
			p.i++
		}
		keys = append(keys, k)
		if p.peek() != "," {
			return keys, nil
		}
		p.i++
	}
}

// sortLocked orders recs by keys (stable). s.mu must be held.
func (s *Server) sortLocked(recs []*record, keys []orderKey) {
	slices.SortStableFunc(recs, func(a, b *record) int {
		for _, k := range keys {
			va, sa := s.valueLocked(k.col, a)
			vb, sb := s.valueLocked(k.col, b)
			na, nb := !sa || va == "", !sb || vb == ""
			var c int
			switch {
			case na && nb:
				c = 0
			case na || nb:
				c = 1
				if na == k.nullsFirst {
					c = -1
				}
				if c != 0 {
					return c
				}
			default:
				c = compareValues(colType(k.col), va, vb)
				if k.desc {
					c = -c
				}
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}
