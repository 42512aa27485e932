package salesforcesink

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// NullValue is the cell text that sets a field to null (contract §3.2).
const NullValue = "#N/A"

// Salesforce's dateTime and date layouts as the sink writes them.
const (
	dateLayout     = "2006-01-02"
	dateTimeLayout = "2006-01-02T15:04:05.000Z"
)

// encoder turns rows into Bulk API CSV (contract §3) for one job layout.
type encoder struct {
	schema *pipeline.Schema
	delim  byte
	eol    string
	quote  [256]bool // the bytes that make a cell quoted: delim, '"', CR, LF
}

func newEncoder(schema *pipeline.Schema, d salesforce.ColumnDelimiter, le salesforce.LineEnding) *encoder {
	e := &encoder{schema: schema, delim: byte(d.Rune()), eol: "\n"}
	if le == salesforce.LineEndingCRLF {
		e.eol = "\r\n"
	}
	for _, c := range []byte{e.delim, '"', '\n', '\r'} {
		e.quote[c] = true
	}
	return e
}

// header appends the header row (field names, in schema order).
func (e *encoder) header(dst []byte) []byte {
	for i, n := range e.schema.Names() {
		if i > 0 {
			dst = append(dst, e.delim)
		}
		dst = e.appendCell(dst, n)
	}
	return append(dst, e.eol...)
}

// cells returns the cell texts of a row, as Salesforce will read them back
// (after unquoting). An error names the field that cannot be encoded.
func (e *encoder) cells(row pipeline.Row, dst []string) ([]string, error) {
	dst = dst[:0]
	for i, v := range row {
		s, err := cellText(v, e.schema.Field(i).Type)
		if err != nil {
			return nil, &pipeline.RowError{Code: "invalid_value", Field: e.schema.Field(i).Name, Err: err}
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// record appends one encoded record of the given cells.
func (e *encoder) record(dst []byte, cells []string) []byte {
	for i, c := range cells {
		if i > 0 {
			dst = append(dst, e.delim)
		}
		dst = e.appendCell(dst, c)
	}
	return append(dst, e.eol...)
}

// appendRecord appends the encoded record of row, exactly as
// record(dst, cells(row)) would, without a string per cell. On error dst
// is returned as it was (truncated to its length on entry).
func (e *encoder) appendRecord(dst []byte, row pipeline.Row) ([]byte, error) {
	start := len(dst)
	for i, v := range row {
		if i > 0 {
			dst = append(dst, e.delim)
		}
		var err error
		if dst, err = e.appendValue(dst, v, e.schema.Field(i).Type); err != nil {
			return dst[:start], &pipeline.RowError{Code: "invalid_value", Field: e.schema.Field(i).Name, Err: err}
		}
	}
	return append(dst, e.eol...), nil
}

// appendValue appends the encoded cell of v: appendCell(dst, cellText(v, t))
// without the intermediate string.
func (e *encoder) appendValue(dst []byte, v any, t pipeline.Type) ([]byte, error) {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, '\r') >= 0 {
			x = normalizeCR(x)
		}
		return e.appendCell(dst, x), nil
	case nil:
		return append(dst, NullValue...), nil // no byte of it is quoted
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil // digits and '-'
	}
	// Text that may not need quoting: append it, then quote it in place
	// if it does.
	start := len(dst)
	switch x := v.(type) {
	case int64:
		dst = strconv.AppendInt(dst, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, errNonFinite
		}
		dst = strconv.AppendFloat(dst, x, 'f', -1, 64)
	case time.Time:
		if t == pipeline.TypeDate || (t != pipeline.TypeTimestamp && isMidnightUTC(x)) {
			dst = x.AppendFormat(dst, dateLayout)
		} else {
			dst = x.UTC().AppendFormat(dst, dateTimeLayout)
		}
	default:
		s, err := cellText(v, t)
		return e.appendCell(dst, s), err
	}
	if !e.needsQuote(dst[start:]) {
		return dst, nil
	}
	s := string(dst[start:])
	return e.appendCell(dst[:start], s), nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// needsQuote reports whether a cell's text holds the delimiter, a quote,
// CR or LF (numbers and dates, the only cells it checks, never start or
// end with a space).
func (e *encoder) needsQuote(b []byte) bool {
	for _, c := range b {
		if e.quote[c] {
			return true
		}
	}
	return false
}

// appendCell appends s, quoted when it holds the delimiter, a quote, CR or
// LF, or starts or ends with a space or tab (a server that trims unquoted
// cells would change it; Salesforce keeps quoted cells as they are), with
// quotes doubled.
func (e *encoder) appendCell(dst []byte, s string) []byte {
	quote := len(s) > 0 && (isBlank(s[0]) || isBlank(s[len(s)-1]))
	for i := 0; i < len(s) && !quote; i++ {
		if e.quote[s[i]] {
			quote = true
			break
		}
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// normalizeCR turns CRLF and lone CR inside a value into LF: a CR in a
// value can break the job's line-ending check (contract §3.3).
func normalizeCR(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

var errNonFinite = errors.New("NaN and infinite numbers cannot be loaded into Salesforce")

// cellText is the Bulk API text of one value: nil → #N/A, booleans
// true/false, dates 2006-01-02, timestamps 2006-01-02T15:04:05.000Z in UTC,
// floats in plain decimal notation, strings as they are (CR normalised).
func cellText(v any, t pipeline.Type) (string, error) {
	switch x := v.(type) {
	case nil:
		return NullValue, nil
	case string:
		return normalizeCR(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", errNonFinite
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		if t == pipeline.TypeDate || (t != pipeline.TypeTimestamp && isMidnightUTC(x)) {
			return x.Format(dateLayout), nil
		}
		return x.UTC().Format(dateTimeLayout), nil
	default:
		return normalizeCR(pipeline.Text(v)), nil
	}
}

func isMidnightUTC(t time.Time) bool {
	return t.Location() == time.UTC && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}
