package salesforcesink

import (
	"bytes"
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
// It keeps nothing between calls: the Writes of a sink share it.
type encoder struct {
	schema    *pipeline.Schema
	types     []pipeline.Type // the schema's field types, by column
	delim     byte
	delimiter [1]byte // delim, for bytes.Count
	eol       string
	// special is 1 for the bytes that make a cell quoted: the delimiter,
	// '"', CR and LF (contract §3.3). A uint8 table, so that eight bytes
	// are checked with one branch (see plain).
	special [256]uint8
}

func newEncoder(schema *pipeline.Schema, d salesforce.ColumnDelimiter, le salesforce.LineEnding) *encoder {
	e := &encoder{schema: schema, types: make([]pipeline.Type, schema.Len()), delim: byte(d.Rune()), eol: "\n"}
	for i := range e.types {
		e.types[i] = schema.Field(i).Type
	}
	e.delimiter[0] = e.delim
	if le == salesforce.LineEndingCRLF {
		e.eol = "\r\n"
	}
	for _, c := range []byte{e.delim, '"', '\n', '\r'} {
		e.special[c] = 1
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
// (after unquoting), in dst's backing array. An error names the field that
// cannot be encoded. Strings are the values themselves (unless they hold a
// CR), null and booleans constants; the texts of the other values (numbers,
// dates) share one string per row: at most one allocation per row.
func (e *encoder) cells(row pipeline.Row, dst []string) ([]string, error) {
	dst = dst[:0]
	for i, v := range row {
		switch x := v.(type) {
		case string:
			dst = append(dst, normalizeCR(x))
		case nil:
			dst = append(dst, NullValue)
		case bool:
			dst = append(dst, strconv.FormatBool(x))
		default:
			return e.formatCells(row, dst, i)
		}
	}
	return dst, nil
}

// formatCells is cells from column from on, where row holds a value to
// format.
func (e *encoder) formatCells(row pipeline.Row, dst []string, from int) ([]string, error) {
	var scratch [160]byte
	buf := scratch[:0]
	var endsArr [16]int32
	ends := endsArr[:0] // for each formatted cell: its column, its end in buf
	for i := from; i < len(row); i++ {
		switch x := row[i].(type) {
		case string:
			dst = append(dst, normalizeCR(x))
			continue
		case nil:
			dst = append(dst, NullValue)
			continue
		case bool:
			dst = append(dst, strconv.FormatBool(x))
			continue
		}
		var err error
		if buf, err = e.appendText(buf, row[i], e.types[i]); err != nil {
			return nil, &pipeline.RowError{Code: "invalid_value", Field: e.schema.Field(i).Name, Err: err}
		}
		dst = append(dst, "")
		ends = append(ends, int32(i), int32(len(buf)))
	}
	all, start := string(buf), int32(0)
	for k := 0; k < len(ends); k += 2 {
		dst[ends[k]] = all[start:ends[k+1]]
		start = ends[k+1]
	}
	return dst, nil
}

// record appends one encoded record of the given cells.
func (e *encoder) record(dst []byte, cells []string) []byte {
	var backoff int
	return e.recordNext(dst, cells, &backoff)
}

// recordNext is record for one of a run of rows, as appendRecordNext is
// appendRecord: the cells are appended as they are and checked at once
// (plainRecord), and a row that needs quotes is encoded again cell by
// cell, as are the next quotedBackoff rows (*backoff, the caller's).
func (e *encoder) recordNext(dst []byte, cells []string, backoff *int) []byte {
	if *backoff == 0 {
		start := len(dst)
		var edges uint8 // a cell starts or ends with a blank (blanks)
		for i, c := range cells {
			if i > 0 {
				dst = append(dst, e.delim)
			}
			if len(c) > 0 {
				edges |= blanks[c[0]] | blanks[c[len(c)-1]]
				dst = append(dst, c...)
			}
		}
		if edges == 0 && e.plainRecord(dst[start:], len(cells)) {
			return append(dst, e.eol...)
		}
		dst = dst[:start]
		*backoff = quotedBackoff
	} else {
		*backoff--
	}
	for i, c := range cells {
		if i > 0 {
			dst = append(dst, e.delim)
		}
		dst = e.appendCell(dst, c)
	}
	return append(dst, e.eol...)
}

// plainRecord reports whether r, the cells of a record of n cells joined
// by the delimiter, needs no quotes but at the cells' edges (the caller
// checks those): no '"', CR or LF, and n-1 delimiters. It uses the SIMD
// searches of package bytes.
func (e *encoder) plainRecord(r []byte, n int) bool {
	return bytes.IndexByte(r, '"') < 0 && bytes.IndexByte(r, '\n') < 0 && bytes.IndexByte(r, '\r') < 0 &&
		bytes.Count(r, e.delimiter[:]) == max(n-1, 0)
}

// appendRecord appends the encoded record of row, exactly as
// record(dst, cells(row)) would, without a string per cell. On error dst
// is returned as it was (truncated to its length on entry).
func (e *encoder) appendRecord(dst []byte, row pipeline.Row) ([]byte, error) {
	var backoff int
	return e.appendRecordNext(dst, row, &backoff)
}

// quotedBackoff is how many rows appendRecordNext encodes cell by cell
// after a row that needed quotes, before it tries appendPlain again.
const quotedBackoff = 32

// appendRecordNext is appendRecord for one of a run of rows (a job's):
// rows are tried with appendPlain, and a row that needs quotes is encoded
// again by appendCells, which also encodes the next quotedBackoff rows
// (*backoff, the caller's, counts them down), so that data whose rows all
// hold a quoted cell is not encoded twice over.
func (e *encoder) appendRecordNext(dst []byte, row pipeline.Row, backoff *int) ([]byte, error) {
	if *backoff > 0 {
		*backoff--
		return e.appendCells(dst, row)
	}
	start := len(dst)
	dst, ok, err := e.appendPlain(dst, row)
	if ok || err != nil {
		return dst, err
	}
	*backoff = quotedBackoff
	return e.appendCells(dst[:start], row)
}

// appendPlain appends the record of row with every cell as it is, and
// reports whether that is its encoding: no cell needs quotes (no cell
// starts or ends with a blank, and plainRecord). Most rows need none. On
// error dst is returned as it was.
func (e *encoder) appendPlain(dst []byte, row pipeline.Row) ([]byte, bool, error) {
	start := len(dst)
	var edges uint8 // a cell starts or ends with a blank (blanks)
	for i, v := range row {
		if i > 0 {
			dst = append(dst, e.delim)
		}
		switch x := v.(type) {
		case string:
			if len(x) > 0 {
				edges |= blanks[x[0]] | blanks[x[len(x)-1]]
				dst = append(dst, x...)
			}
			continue
		case nil:
			dst = append(dst, NullValue...)
			continue
		case bool:
			dst = strconv.AppendBool(dst, x)
			continue
		}
		n := len(dst)
		var err error
		if dst, err = e.appendText(dst, v, e.types[i]); err != nil {
			return dst[:start], false, &pipeline.RowError{Code: "invalid_value", Field: e.schema.Field(i).Name, Err: err}
		}
		if n < len(dst) {
			edges |= blanks[dst[n]] | blanks[dst[len(dst)-1]]
		}
	}
	if edges != 0 || !e.plainRecord(dst[start:], len(row)) {
		return dst, false, nil
	}
	return append(dst, e.eol...), true, nil
}

// appendCells is appendRecord cell by cell, each quoted if it needs it
// (the plain check, then quoting, per cell).
func (e *encoder) appendCells(dst []byte, row pipeline.Row) ([]byte, error) {
	start := len(dst)
	for i, v := range row {
		if i > 0 {
			dst = append(dst, e.delim)
		}
		switch x := v.(type) {
		case string:
			if e.plain(x) && !edgeBlank(x) {
				dst = append(dst, x...)
			} else {
				dst = e.appendCell(dst, normalizeCR(x))
			}
			continue
		case nil:
			dst = append(dst, NullValue...) // no byte of it is quoted
			continue
		case bool:
			dst = strconv.AppendBool(dst, x)
			continue
		}
		n := len(dst)
		var err error
		if dst, err = e.appendText(dst, v, e.types[i]); err != nil {
			return dst[:start], &pipeline.RowError{Code: "invalid_value", Field: e.schema.Field(i).Name, Err: err}
		}
		if !e.plainBytes(dst[n:]) {
			// Numbers and dates never need quotes; a Stringer's text may.
			s := string(dst[n:])
			dst = e.appendCell(dst[:n], s)
		}
	}
	return append(dst, e.eol...), nil
}

// appendText appends the unquoted cell text of v, a value of field type t
// that is not a string, nil or bool, as cellText returns it.
func (e *encoder) appendText(dst []byte, v any, t pipeline.Type) ([]byte, error) {
	switch x := v.(type) {
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return dst, errNonFinite
		}
		return strconv.AppendFloat(dst, x, 'f', -1, 64), nil
	case time.Time:
		if t == pipeline.TypeDate || (t != pipeline.TypeTimestamp && isMidnightUTC(x)) {
			return appendDate(dst, x), nil
		}
		return appendDateTime(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	}
	s, err := cellText(v, t)
	return append(dst, s...), err
}

// appendDate appends t's date in t's location as 2006-01-02
// (t.AppendFormat(dst, dateLayout), without parsing the layout).
func appendDate(dst []byte, t time.Time) []byte {
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, dateLayout)
	}
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10),
		'-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// appendDateTime appends t in UTC as 2006-01-02T15:04:05.000Z (milliseconds
// truncated, as t.UTC().AppendFormat(dst, dateTimeLayout) does).
func appendDateTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return t.AppendFormat(dst, dateTimeLayout)
	}
	dst = appendDate(dst, t)
	h, m, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(dst, 'T', byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':', byte('0'+s/10), byte('0'+s%10),
		'.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// blanks is 1 for the bytes isBlank reports, for checks without a branch.
var blanks = [256]uint8{' ': 1, '\t': 1}

// edgeBlank reports whether s starts or ends with a space or tab.
func edgeBlank(s string) bool { return len(s) > 0 && (isBlank(s[0]) || isBlank(s[len(s)-1])) }

// plain reports whether s holds none of the bytes that make a cell quoted
// (the delimiter, a quote, CR, LF): one table lookup per byte, one branch
// per eight bytes (as fast as eight-byte word tricks on the short cells of
// real rows, and as fast on long ones).
func (e *encoder) plain(s string) bool {
	t := &e.special
	for len(s) >= 8 {
		if t[s[0]]|t[s[1]]|t[s[2]]|t[s[3]]|t[s[4]]|t[s[5]]|t[s[6]]|t[s[7]] != 0 {
			return false
		}
		s = s[8:]
	}
	var hit uint8
	for i := 0; i < len(s); i++ {
		hit |= t[s[i]]
	}
	return hit == 0
}

// plainBytes is plain of b, and false when b starts or ends with a blank.
func (e *encoder) plainBytes(b []byte) bool {
	for _, c := range b {
		if e.special[c] != 0 {
			return false
		}
	}
	return len(b) == 0 || !isBlank(b[0]) && !isBlank(b[len(b)-1])
}

// appendCell appends s, quoted when it holds the delimiter, a quote, CR or
// LF, or starts or ends with a space or tab (a server that trims unquoted
// cells would change it; Salesforce keeps quoted cells as they are), with
// quotes doubled.
func (e *encoder) appendCell(dst []byte, s string) []byte {
	if e.plain(s) && !edgeBlank(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '"')
		s = s[i+1:]
	}
	dst = append(dst, s...)
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
	if t.Location() != time.UTC || t.Nanosecond() != 0 {
		return false
	}
	h, m, s := t.Clock()
	return h == 0 && m == 0 && s == 0
}
