package salesforcesource

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bulkflow/bulkflow/pipeline"
)

// soql is a SELECT cut into the parts the source rewrites: the select
// list (projection), the object (describe) and the rest, whose WHERE
// clause the incremental cursor is ANDed into.
type soql struct {
	fields []string // as written
	object string
	where  string // the WHERE condition without the keyword; "" when none
	tail   string // ORDER BY / LIMIT / … after the WHERE clause, with its leading space
}

// word is a top-level token of a query: outside quotes and parentheses.
type word struct {
	text       string
	start, end int
}

// topWords splits q into its top-level words; a quoted string or a
// parenthesised group is one word. It fails on an unterminated string.
func topWords(q string) ([]word, error) {
	var ws []word
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == ',':
			ws = append(ws, word{",", i, i + 1})
			i++
		case c == '\'':
			j := i + 1
			for ; j < len(q) && q[j] != '\''; j++ {
				if q[j] == '\\' {
					j++
				}
			}
			if j >= len(q) {
				return nil, fmt.Errorf("unterminated string starting at offset %d", i)
			}
			ws = append(ws, word{q[i : j+1], i, j + 1})
			i = j + 1
		case c == '(':
			depth, j := 0, i
			for ; j < len(q); j++ {
				if q[j] == '\'' {
					for j++; j < len(q) && q[j] != '\''; j++ {
						if q[j] == '\\' {
							j++
						}
					}
					continue
				}
				if q[j] == '(' {
					depth++
				} else if q[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			if j >= len(q) {
				return nil, fmt.Errorf("unbalanced parenthesis at offset %d", i)
			}
			ws = append(ws, word{q[i : j+1], i, j + 1})
			i = j + 1
		default:
			j := i
			for j < len(q) && !unicode.IsSpace(rune(q[j])) && q[j] != ',' && q[j] != '(' && q[j] != '\'' {
				j++
			}
			ws = append(ws, word{q[i:j], i, j})
			i = j
		}
	}
	return ws, nil
}

// parseSOQL cuts q. It accepts what a Bulk API query job accepts in the
// select list: plain and relationship fields (no functions, aggregates or
// subqueries, contract §6).
func parseSOQL(q string) (*soql, error) {
	ws, err := topWords(q)
	if err != nil {
		return nil, err
	}
	if len(ws) < 4 || !strings.EqualFold(ws[0].text, "SELECT") {
		return nil, fmt.Errorf("must start with SELECT")
	}
	s := &soql{}
	i := 1
	for {
		if i >= len(ws) {
			return nil, fmt.Errorf("no FROM")
		}
		f := ws[i].text
		if strings.EqualFold(f, "FROM") || f == "," {
			return nil, fmt.Errorf("empty field in the select list")
		}
		if i+1 < len(ws) && strings.HasPrefix(ws[i+1].text, "(") || strings.ContainsAny(f, "()'") {
			return nil, fmt.Errorf("%q in the select list: a Bulk API query selects plain fields (Name, Account.Name); functions, aggregates and subqueries are not supported", f)
		}
		s.fields = append(s.fields, f)
		i++
		if i < len(ws) && ws[i].text == "," {
			i++
			continue
		}
		break
	}
	if i+1 >= len(ws) || !strings.EqualFold(ws[i].text, "FROM") {
		return nil, fmt.Errorf("expected FROM after the select list")
	}
	s.object = ws[i+1].text
	i += 2
	rest := ws[i:]
	if len(rest) > 0 && strings.EqualFold(rest[0].text, "WHERE") {
		end := len(q)
		for k := 1; k < len(rest); k++ {
			t := strings.ToUpper(rest[k].text)
			if t == "ORDER" || t == "LIMIT" || t == "GROUP" || t == "OFFSET" || t == "FOR" || t == "WITH" || t == "HAVING" {
				end = rest[k].start
				break
			}
		}
		s.where = strings.TrimSpace(q[rest[0].end:end])
		if s.where == "" {
			return nil, fmt.Errorf("WHERE without a condition")
		}
		if end < len(q) {
			s.tail = " " + strings.TrimSpace(q[end:])
		}
	} else if len(rest) > 0 {
		s.tail = " " + strings.TrimSpace(q[rest[0].start:])
	}
	return s, nil
}

// build returns the query selecting fields, with extra ANDed into the
// WHERE condition when set.
func (s *soql) build(fields []string, extra string) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(fields, ", "))
	b.WriteString(" FROM ")
	b.WriteString(s.object)
	switch {
	case s.where != "" && extra != "":
		b.WriteString(" WHERE (" + s.where + ") AND " + extra)
	case s.where != "":
		b.WriteString(" WHERE " + s.where)
	case extra != "":
		b.WriteString(" WHERE " + extra)
	}
	b.WriteString(s.tail)
	return b.String()
}

// literal writes v, a value of a column of type t, as a SOQL literal.
func literal(t pipeline.Type, v any) (string, error) {
	switch x := v.(type) {
	case time.Time:
		if t == pipeline.TypeDate {
			return x.Format("2006-01-02"), nil
		}
		return x.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case string:
		if t == pipeline.TypeDecimal {
			if !isDecimal(x) {
				return "", fmt.Errorf("cursor value %q is not a decimal", x)
			}
			return x, nil
		}
		r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
		return "'" + r.Replace(x) + "'", nil
	}
	return "", fmt.Errorf("a cursor value of type %T cannot be written in SOQL", v)
}

// isDecimal reports whether s is a plain decimal: -12, 0.50, .5.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}
