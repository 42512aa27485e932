package pipeline

import (
	"fmt"
	"strconv"
	"time"
)

// AppendText appends the plain-text form of a value to dst: strings as they
// are, integers and floats in the shortest exact decimal form, booleans as
// true/false, dates (midnight UTC) as 2006-01-02 and other times as RFC 3339
// with nanoseconds; nil appends nothing. It is the one text form files,
// dead letters and reports use.
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

// Text returns AppendText(nil, v) as a string.
func Text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return string(AppendText(nil, v))
}
