package parquetsink

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/decimal256"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Row error codes of rows the sink cannot write (pipeline's code table
// knows bad_value and out_of_range; invalid_utf8 is the parquet source's).
const (
	// CodeBadValue: the value's Go type is not its column's (a transform
	// declared one type and produced another), or a decimal's text does not
	// parse.
	CodeBadValue = "bad_value"
	// CodeOutOfRange: the value does not fit its column: a decimal with
	// more digits than the column's precision or more decimal places than
	// its scale, a timestamp outside the column unit's range or finer than
	// it.
	CodeOutOfRange = "out_of_range"
	// CodeInvalidUTF8: a string that is not valid UTF-8 (Parquet strings
	// must be).
	CodeInvalidUTF8 = "invalid_utf8"
)

// Decimal columns: precision up to 38 is Arrow decimal128 (Parquet
// FIXED_LEN_BYTE_ARRAY of 16 bytes at most), 39 to 76 is decimal256.
const (
	maxDecimal128 = 38
	maxDecimal256 = 76
)

// Timestamp ranges: microseconds reach far beyond year 1..9999; nanoseconds
// (int64) cover 1677-09-21 to 2262-04-11.
var (
	minNanoTime = time.Unix(0, -1<<63).UTC()
	maxNanoTime = time.Unix(0, 1<<63-1).UTC()
)

// cell is one converted value, ready to append.
type cell struct {
	null bool
	i    int64 // int, date (days), timestamp (ticks), bool (0/1)
	f    float64
	s    string
	d128 decimal128.Num
	d256 decimal256.Num
}

// column converts one field's values and appends them to its builder.
type column struct {
	name  string
	typ   pipeline.Type
	dt    arrow.DataType
	prec  int32
	scale int32
	nanos bool // timestamp unit
}

// arrowType returns the Arrow type of a column.
func (c *column) arrowType() arrow.DataType {
	switch c.typ {
	case pipeline.TypeInt:
		return arrow.PrimitiveTypes.Int64
	case pipeline.TypeFloat:
		return arrow.PrimitiveTypes.Float64
	case pipeline.TypeBool:
		return arrow.FixedWidthTypes.Boolean
	case pipeline.TypeDate:
		return arrow.FixedWidthTypes.Date32
	case pipeline.TypeTimestamp:
		if c.nanos {
			return &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
		}
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case pipeline.TypeDecimal:
		if c.prec <= maxDecimal128 {
			return &arrow.Decimal128Type{Precision: c.prec, Scale: c.scale}
		}
		return &arrow.Decimal256Type{Precision: c.prec, Scale: c.scale}
	}
	return arrow.BinaryTypes.String // string, any
}

func (c *column) bad(code, format string, args ...any) *pipeline.RowError {
	return pipeline.NewRowError(code, c.name, format, args...)
}

func (c *column) wrongType(v any) *pipeline.RowError {
	return c.bad(CodeBadValue, "column %s is declared %s but the value is a Go %T; fix the stage that produces it (map: a cast, or declare the type the value has)", c.name, c.typ, v)
}

// convert checks v and stores it in out.
func (c *column) convert(v any, out *cell) *pipeline.RowError {
	*out = cell{}
	if v == nil {
		out.null = true
		return nil
	}
	switch c.typ {
	case pipeline.TypeInt:
		switch x := v.(type) {
		case int64:
			out.i = x
		case int:
			out.i = int64(x)
		default:
			return c.wrongType(v)
		}
	case pipeline.TypeFloat:
		x, ok := v.(float64)
		if !ok {
			return c.wrongType(v)
		}
		out.f = x
	case pipeline.TypeBool:
		x, ok := v.(bool)
		if !ok {
			return c.wrongType(v)
		}
		if x {
			out.i = 1
		}
	case pipeline.TypeDate:
		t, ok := v.(time.Time)
		if !ok {
			return c.wrongType(v)
		}
		// The date as the CSV sink writes it: the calendar day in the
		// value's own location (dates are midnight UTC by contract).
		y, m, d := t.Date()
		out.i = time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	case pipeline.TypeTimestamp:
		t, ok := v.(time.Time)
		if !ok {
			return c.wrongType(v)
		}
		if c.nanos {
			if t.Before(minNanoTime) || t.After(maxNanoTime) {
				return c.bad(CodeOutOfRange, "timestamp %s is outside the nanosecond column's range (%s to %s); use timestamp_unit: us", t.UTC().Format(time.RFC3339Nano), minNanoTime.Format(time.RFC3339), maxNanoTime.Format(time.RFC3339))
			}
			out.i = t.UnixNano()
		} else {
			if t.Nanosecond()%1000 != 0 {
				return c.bad(CodeOutOfRange, "timestamp %s has digits below the microsecond, which the column (timestamp_unit: us) cannot hold; use timestamp_unit: ns to keep them, or truncate the value in a map", t.UTC().Format(time.RFC3339Nano))
			}
			out.i = t.UnixMicro()
		}
	case pipeline.TypeDecimal:
		s, ok := v.(string)
		if !ok {
			return c.wrongType(v)
		}
		return c.decimal(s, out)
	case pipeline.TypeString:
		s, ok := v.(string)
		if !ok {
			return c.wrongType(v)
		}
		if !utf8.ValidString(s) {
			return c.bad(CodeInvalidUTF8, "the value is not valid UTF-8 (Parquet strings must be); fix its encoding at the source")
		}
		out.s = s
	default: // any: its text
		s := pipeline.Text(v)
		if !utf8.ValidString(s) {
			return c.bad(CodeInvalidUTF8, "the value is not valid UTF-8 (Parquet strings must be); fix its encoding at the source")
		}
		out.s = s
	}
	return nil
}

// decimal parses [+-]digits[.digits] or [+-].digits exactly at the
// column's scale: more decimal places than the scale (unless they are
// zeros) or more digits than the precision is out_of_range; nothing is
// rounded.
func (c *column) decimal(s string, out *cell) *pipeline.RowError {
	neg := false
	t := s
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	ip, fp, _ := strings.Cut(t, ".")
	if ip == "" && fp == "" || !allDigits(ip) || !allDigits(fp) {
		return c.bad(CodeBadValue, "%q is not a decimal ([+-]digits[.digits])", s)
	}
	if len(fp) > int(c.scale) {
		extra := strings.TrimRight(fp[c.scale:], "0")
		if extra != "" {
			return c.bad(CodeOutOfRange, "decimal %s has %d decimal places; the column is decimal(%d,%d) and values are never rounded: declare a larger scale in decimals", s, len(strings.TrimRight(fp, "0")), c.prec, c.scale)
		}
		fp = fp[:c.scale]
	}
	if n := len(strings.TrimLeft(ip, "0")); n > int(c.prec-c.scale) {
		return c.bad(CodeOutOfRange, "decimal %s has %d digits before the point; the column is decimal(%d,%d), which holds %d: declare a larger precision in decimals", s, n, c.prec, c.scale, c.prec-c.scale)
	}
	digits := strings.TrimLeft(ip+fp+strings.Repeat("0", int(c.scale)-len(fp)), "0")
	if len(digits) <= 18 {
		n, _ := strconv.ParseInt("0"+digits, 10, 64)
		if neg {
			n = -n
		}
		out.d128, out.d256 = decimal128.FromI64(n), decimal256.FromI64(n)
		return nil
	}
	b, _ := new(big.Int).SetString(digits, 10)
	if neg {
		b.Neg(b)
	}
	if c.prec <= maxDecimal128 {
		out.d128 = decimal128.FromBigInt(b)
	} else {
		out.d256 = decimal256.FromBigInt(b)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// size returns the bytes a value takes in memory before it is encoded:
// its Arrow width (a string's bytes plus a 4-byte offset), 1 for null.
func (c *column) size(v *cell) int64 {
	if v.null {
		return 1
	}
	switch c.typ {
	case pipeline.TypeBool:
		return 1
	case pipeline.TypeDate:
		return 4
	case pipeline.TypeDecimal:
		if c.prec <= maxDecimal128 {
			return 16
		}
		return 32
	case pipeline.TypeString, pipeline.TypeAny:
		return int64(len(v.s)) + 4
	}
	return 8
}

// appendTo appends a converted value to the column's builder.
func (c *column) appendTo(b array.Builder, v *cell) {
	if v.null {
		b.AppendNull()
		return
	}
	switch bb := b.(type) {
	case *array.Int64Builder:
		bb.Append(v.i)
	case *array.Float64Builder:
		bb.Append(v.f)
	case *array.BooleanBuilder:
		bb.Append(v.i == 1)
	case *array.Date32Builder:
		bb.Append(arrow.Date32(v.i))
	case *array.TimestampBuilder:
		bb.Append(arrow.Timestamp(v.i))
	case *array.Decimal128Builder:
		bb.Append(v.d128)
	case *array.Decimal256Builder:
		bb.Append(v.d256)
	case *array.StringBuilder:
		bb.Append(v.s)
	default:
		panic(fmt.Sprintf("parquetsink: no append for %T", b))
	}
}
