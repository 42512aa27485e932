package parquetsource

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/bulkflow/bulkflow/pipeline"
)

// fillColumn is convert's fast path for the common flat column types
// (integers, floats, booleans, valid UTF-8 strings and binaries, dates,
// timestamps, 128-bit decimals): it sets column j of the n rows in slab
// (ncols values per row) from arr, leaving nil where a nuller is null. The
// values of one column are copied into one typed slice (one string for
// all the text) and each is boxed in place (pipeline.BoxString and
// friends), so a column costs a few allocations instead of one per value.
// The slices are written once, here, before boxing, and never again.
//
// It returns false, having set nothing, for other types and for strings
// that are not valid UTF-8: the getters handle those (and their errors).
// The values are those the getters return.
func fillColumn(arr arrow.Array, nullers []arrow.Array, slab []any, ncols, j, n int) bool {
	null := func(i int) bool {
		for _, na := range nullers {
			if na.IsNull(i) {
				return true
			}
		}
		return false
	}
	switch a := arr.(type) {
	case *array.Int64:
		fillInts(n, null, slab, ncols, j, a.Value)
	case *array.Int32:
		fillInts(n, null, slab, ncols, j, a.Value)
	case *array.Int16:
		fillInts(n, null, slab, ncols, j, a.Value)
	case *array.Int8:
		fillInts(n, null, slab, ncols, j, a.Value)
	case *array.Uint32:
		fillInts(n, null, slab, ncols, j, a.Value)
	case *array.Uint16:
		fillInts(n, null, slab, ncols, j, a.Value)
	case *array.Uint8:
		fillInts(n, null, slab, ncols, j, a.Value)
	case *array.Float64:
		vals := make([]float64, n)
		for i := range n {
			if !null(i) {
				vals[i] = a.Value(i)
				slab[i*ncols+j] = pipeline.BoxFloat64(&vals[i])
			}
		}
	case *array.Float32:
		vals := make([]float64, n)
		for i := range n {
			if !null(i) {
				vals[i] = float64(a.Value(i))
				slab[i*ncols+j] = pipeline.BoxFloat64(&vals[i])
			}
		}
	case *array.Boolean:
		for i := range n {
			if !null(i) {
				slab[i*ncols+j] = a.Value(i) // booleans box without allocating
			}
		}
	case *array.String:
		return fillStrings(a.ValueOffsets(), a.ValueBytes(), null, slab, ncols, j, n)
	case *array.LargeString:
		return fillStrings(a.ValueOffsets(), a.ValueBytes(), null, slab, ncols, j, n)
	case *array.Binary:
		return fillStrings(a.ValueOffsets(), a.ValueBytes(), null, slab, ncols, j, n)
	case *array.LargeBinary:
		return fillStrings(a.ValueOffsets(), a.ValueBytes(), null, slab, ncols, j, n)
	case *array.Date32:
		fillTimes(n, null, slab, ncols, j, func(i int) time.Time { return time.Unix(int64(a.Value(i))*86400, 0).UTC() })
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		loc, err := tt.GetZone()
		if err != nil {
			loc = time.UTC // as the getter does
		}
		unit := tt.Unit
		fillTimes(n, null, slab, ncols, j, func(i int) time.Time { return a.Value(i).ToTime(unit).In(loc) })
	case *array.Decimal128:
		fillDecimals(a, a.DataType().(arrow.DecimalType).GetScale(), null, slab, ncols, j, n)
	default:
		return false
	}
	return true
}

func fillInts[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32](n int, null func(int) bool, slab []any, ncols, j int, value func(int) T) {
	vals := make([]int64, n)
	for i := range n {
		if !null(i) {
			vals[i] = int64(value(i))
			slab[i*ncols+j] = pipeline.BoxInt64(&vals[i])
		}
	}
}

func fillTimes(n int, null func(int) bool, slab []any, ncols, j int, value func(int) time.Time) {
	vals := make([]time.Time, n)
	for i := range n {
		if !null(i) {
			vals[i] = value(i)
			slab[i*ncols+j] = pipeline.BoxTime(&vals[i])
		}
	}
}

// fillStrings sets string values sliced from one copy of the batch's data.
func fillStrings[O int32 | int64](offs []O, data []byte, null func(int) bool, slab []any, ncols, j, n int) bool {
	if !utf8.Valid(data) {
		return false // the getter finds the invalid values
	}
	all := string(data)
	base := int64(0)
	if len(offs) > 0 {
		base = int64(offs[0])
	}
	vals := make([]string, n)
	for i := range n {
		if !null(i) {
			vals[i] = all[int64(offs[i])-base : int64(offs[i+1])-base]
			slab[i*ncols+j] = pipeline.BoxString(&vals[i])
		}
	}
	return true
}

// fillDecimals sets decimal values (their text), formatting the common
// ones (that fit an int64, scale 0 to 18) without math/big, into one
// buffer for the column.
func fillDecimals(a *array.Decimal128, scale int32, null func(int) bool, slab []any, ncols, j, n int) {
	var buf []byte
	ends := make([]int, n)
	for i := range n {
		if !null(i) {
			buf = appendDecimal128(buf, a.Value(i), scale)
		}
		ends[i] = len(buf)
	}
	all := string(buf)
	vals := make([]string, n)
	start := 0
	for i := range n {
		if !null(i) {
			vals[i] = all[start:ends[i]]
			slab[i*ncols+j] = pipeline.BoxString(&vals[i])
		}
		start = ends[i]
	}
}

// appendDecimal128 appends v.ToString(scale).
func appendDecimal128(dst []byte, v decimal128.Num, scale int32) []byte {
	lo := v.LowBits()
	if v.HighBits() != int64(lo)>>63 || scale < 0 || scale > 18 {
		return append(dst, v.ToString(scale)...)
	}
	x := int64(lo)
	abs := uint64(x)
	if x < 0 {
		dst = append(dst, '-')
		abs = -abs
	}
	var tmp [24]byte
	digits := strconv.AppendUint(tmp[:0], abs, 10)
	places := int(scale)
	switch {
	case places == 0:
		dst = append(dst, digits...)
	case len(digits) <= places:
		dst = append(dst, '0', '.')
		for range places - len(digits) {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		at := len(digits) - places
		dst = append(dst, digits[:at]...)
		dst = append(dst, '.')
		dst = append(dst, digits[at:]...)
	}
	return dst
}
