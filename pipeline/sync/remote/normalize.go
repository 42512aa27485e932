package remote

import (
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Field is a destination field as its describe types it: the Salesforce
// field type ("string", "double", "picklist", …; "" when the field is not
// a plain field of the object, e.g. a relationship column such as
// Parent.External_Id__c) and, for numbers, its precision and scale.
type Field struct {
	Name      string
	Type      string
	Precision int
	Scale     int
}

// kind is how one field's values are normalised.
type kind uint8

const (
	kindText kind = iota
	kindBool
	kindNumber
	kindDate
	kindDateTime
	kindTime
	kindPicklist
	kindMultiPicklist
	kindID
)

func kindOf(typ string) kind {
	switch strings.ToLower(typ) {
	case "boolean":
		return kindBool
	case "int", "long", "double", "currency", "percent":
		return kindNumber
	case "date":
		return kindDate
	case "datetime":
		return kindDateTime
	case "time":
		return kindTime
	case "picklist":
		return kindPicklist
	case "multipicklist":
		return kindMultiPicklist
	case "id", "reference":
		return kindID
	}
	return kindText
}

// Normalizer rewrites a row's values to the text Salesforce returns for
// them (the rules are in the package doc), so that a row sent and the same
// record read back hash alike. A Normalizer is not safe for concurrent use.
type Normalizer struct {
	kinds []kind
	scale []int32 // -1: do not round
	out   pipeline.Row
}

// NewNormalizer returns a Normalizer for rows whose i-th value goes to
// fields[i].
func NewNormalizer(fields []Field) *Normalizer {
	n := &Normalizer{kinds: make([]kind, len(fields)), scale: make([]int32, len(fields)), out: make(pipeline.Row, len(fields))}
	for i, f := range fields {
		n.kinds[i] = kindOf(f.Type)
		n.scale[i] = -1
		switch strings.ToLower(f.Type) {
		case "int", "long":
			n.scale[i] = 0
		case "double", "currency", "percent":
			if f.Precision > 0 { // a describe without precision says nothing about rounding
				n.scale[i] = int32(f.Scale)
			}
		}
	}
	return n
}

// Row returns the normalised values of row (the first len(fields) values):
// a string per value, or nil for null. The returned row is reused by the
// next call.
func (n *Normalizer) Row(row pipeline.Row) pipeline.Row {
	for i := range n.kinds {
		var v any
		if i < len(row) {
			v = row[i]
		}
		n.out[i] = n.Value(i, v)
	}
	return n.out
}

// Value returns the normalised value of field i: a string, or nil for
// null.
func (n *Normalizer) Value(i int, v any) any {
	k := n.kinds[i]
	if t, ok := v.(time.Time); ok {
		switch k {
		case kindDateTime:
			return t.UTC().Truncate(time.Millisecond).Format(dateTimeLayout)
		case kindDate:
			return t.Format(time.DateOnly)
		}
	}
	var s string
	switch x := v.(type) {
	case nil:
	case string:
		s = x
	default:
		s = pipeline.Text(v)
	}
	if strings.IndexByte(s, '\r') >= 0 { // the sink sends CRLF and lone CR as LF
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	}
	if k == kindBool {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "1", "yes", "y", "on":
			return "true"
		}
		return "false" // a checkbox is never null: Salesforce stores false
	}
	if s == "" || s == "#N/A" {
		return nil // Salesforce stores empty text as null, and #N/A is the sink's null
	}
	switch k {
	case kindNumber:
		d, err := decimal.NewFromString(strings.TrimSpace(s))
		if err != nil {
			return s
		}
		if sc := n.scale[i]; sc >= 0 {
			d = d.Round(sc)
		}
		return d.String()
	case kindDate:
		if t, ok := parseTime(s); ok {
			return t.Format(time.DateOnly)
		}
	case kindDateTime:
		if t, ok := parseTime(s); ok {
			return t.UTC().Truncate(time.Millisecond).Format(dateTimeLayout)
		}
	case kindTime:
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.Format("15:04:05.000Z")
			}
		}
	case kindPicklist:
		return strings.ToLower(s)
	case kindMultiPicklist:
		parts := strings.Split(strings.ToLower(s), ";")
		vals := parts[:0]
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				vals = append(vals, p)
			}
		}
		slices.Sort(vals)
		vals = slices.Compact(vals)
		if len(vals) == 0 {
			return nil
		}
		return strings.Join(vals, ";")
	case kindID:
		if len(s) == 18 && isAlnum(s) {
			return s[:15] // the last three characters only encode the case of the first 15
		}
	}
	return s
}

const dateTimeLayout = "2006-01-02T15:04:05.000Z"

var (
	dateTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", time.DateOnly}
	timeLayouts = []string{"15:04:05.999999999Z07:00", "15:04:05.999999999Z0700", "15:04:05.999999999", "15:04"}
)

// parseTime parses a datetime or date as Salesforce accepts them; a
// datetime without a zone is UTC.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range dateTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
