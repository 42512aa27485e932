package pipeline

import (
	"fmt"
	"strconv"
	"time"
)

// AppendText appends the plain-text form of a value whose declared type is
// not known to dst: strings as they are, integers and floats in the
// shortest exact decimal form (NaN, +Inf and -Inf as those words), booleans
// as true/false, times at midnight UTC as 2006-01-02 and other times as
// RFC 3339 with nanoseconds in their own zone; nil appends nothing. A
// timestamp at midnight UTC is therefore indistinguishable from a date:
// outputs that know the declared type use AppendValue, which never
// confuses the two. AppendText is the form of keys, hashes and cursors,
// whose text must not change between releases.
func AppendText(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return dst
	case string:
		return append(dst, x...)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case float64:
		return strconv.AppendFloat(dst, x, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(dst, x)
	case time.Time:
		if x.Location() == time.UTC && x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return x.AppendFormat(dst, time.DateOnly)
		}
		return x.AppendFormat(dst, time.RFC3339Nano)
	case []byte:
		return append(dst, x...)
	case fmt.Stringer:
		return append(dst, x.String()...)
	default:
		return fmt.Append(dst, x)
	}
}

// AppendValue appends the text form of v, a value of declared type t, to
// dst. It is the one text form of values in files: the CSV and JSON Lines
// sinks and dead letters write it, and the CSV source reading it back with
// the same declared type gets the same value:
//
//   - date: 2006-01-02;
//   - timestamp: RFC 3339 in UTC with every significant fractional digit,
//     2006-01-02T15:04:05.999999999Z, also at midnight (never the date form);
//     the instant is kept, the original zone offset is not;
//   - float: the shortest decimal that parses back to the same float64,
//     -0 as "-0", NaN and infinities as NaN, +Inf and -Inf;
//   - int, bool, decimal (its exact text) and string: as AppendText.
//
// Timestamps round-trip for years 0001 to 9999 (RFC 3339's range). A null
// (nil) appends nothing; in a CSV file an empty cell of a typed column reads
// back as null, of a string column as "" (unless the source lists "" in
// null_values).
func AppendValue(dst []byte, t Type, v any) []byte {
	if x, ok := v.(time.Time); ok {
		switch t {
		case TypeDate:
			return x.AppendFormat(dst, time.DateOnly)
		case TypeTimestamp:
			return x.UTC().AppendFormat(dst, time.RFC3339Nano)
		}
	}
	return AppendText(dst, v)
}

// Text returns AppendText(nil, v) as a string.
func Text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return string(AppendText(nil, v))
}
