package parquetsource

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestAppendDecimal128(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	nums := []decimal128.Num{decimal128.FromI64(0), decimal128.FromI64(1), decimal128.FromI64(-1),
		decimal128.FromI64(math.MaxInt64), decimal128.FromI64(math.MinInt64), decimal128.FromU64(math.MaxUint64),
		decimal128.New(1, 0), decimal128.New(-2, 5)}
	for range 2000 {
		v := r.Int64N(1 << uint(r.IntN(63)))
		if r.IntN(2) == 0 {
			v = -v
		}
		nums = append(nums, decimal128.FromI64(v))
	}
	for _, n := range nums {
		for scale := int32(-3); scale <= 20; scale++ {
			if got, want := string(appendDecimal128([]byte("x"), n, scale)), "x"+n.ToString(scale); got != want {
				t.Fatalf("%v scale %d: %q, want %q", n, scale, got, want)
			}
		}
	}
}

// TestFillColumn checks that fillColumn gives the values the getters give,
// nulls included, for every type it handles.
func TestFillColumn(t *testing.T) {
	mem := memory.NewGoAllocator()
	r := rand.New(rand.NewPCG(7, 8))
	const n = 300
	types := []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int16,
		arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Uint32, arrow.PrimitiveTypes.Uint16, arrow.PrimitiveTypes.Uint8,
		arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Float32, arrow.FixedWidthTypes.Boolean,
		arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.Binary, arrow.BinaryTypes.LargeBinary,
		arrow.FixedWidthTypes.Date32, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"},
		&arrow.TimestampType{Unit: arrow.Nanosecond}, &arrow.Decimal128Type{Precision: 20, Scale: 3}}
	for _, dt := range types {
		b := array.NewBuilder(mem, dt)
		for i := range n {
			if r.IntN(5) == 0 {
				b.AppendNull()
				continue
			}
			switch bb := b.(type) {
			case *array.Int64Builder:
				bb.Append(r.Int64())
			case *array.Int32Builder:
				bb.Append(r.Int32())
			case *array.Int16Builder:
				bb.Append(int16(r.Int()))
			case *array.Int8Builder:
				bb.Append(int8(r.Int()))
			case *array.Uint32Builder:
				bb.Append(r.Uint32())
			case *array.Uint16Builder:
				bb.Append(uint16(r.Uint32()))
			case *array.Uint8Builder:
				bb.Append(uint8(r.Uint32()))
			case *array.Float64Builder:
				bb.Append(r.NormFloat64())
			case *array.Float32Builder:
				bb.Append(float32(r.NormFloat64()))
			case *array.BooleanBuilder:
				bb.Append(r.IntN(2) == 0)
			case *array.StringBuilder:
				bb.Append([]string{"", "a", "héllo", "x,y"}[i%4])
			case *array.LargeStringBuilder:
				bb.Append([]string{"", "a", "héllo", "x,y"}[i%4])
			case *array.BinaryBuilder:
				bb.Append([]byte{'b', byte('a' + i%26)})
			case *array.Date32Builder:
				bb.Append(arrow.Date32(r.IntN(40000) - 20000))
			case *array.TimestampBuilder:
				bb.Append(arrow.Timestamp(r.Int64N(1 << 60)))
			case *array.Decimal128Builder:
				if r.IntN(10) == 0 {
					bb.Append(decimal128.New(r.Int64N(100), r.Uint64()))
				} else {
					bb.Append(decimal128.FromI64(r.Int64N(1<<50) - 1<<49))
				}
			}
		}
		arr := b.NewArray()
		b.Release()
		for _, sliced := range []arrow.Array{arr, array.NewSlice(arr, 7, n-3)} {
			m := sliced.Len()
			var nullers []arrow.Array
			if sliced.NullN() > 0 {
				nullers = append(nullers, sliced)
			}
			const ncols, j = 3, 1
			got := make([]any, m*ncols)
			if !fillColumn(sliced, nullers, got, ncols, j, m) {
				t.Fatalf("%s: no fast path", dt)
			}
			get, err := getterOf(sliced)
			if err != nil {
				t.Fatal(err)
			}
			for i := range m {
				var want any
				if !sliced.IsNull(i) {
					want, _ = get(i)
				}
				g := got[i*ncols+j]
				if !reflect.DeepEqual(g, want) || reflect.TypeOf(g) != reflect.TypeOf(want) {
					t.Fatalf("%s row %d: %#v, want %#v", dt, i, g, want)
				}
				if tm, ok := want.(time.Time); ok && tm.Location().String() != g.(time.Time).Location().String() {
					t.Fatalf("%s row %d: location %v, want %v", dt, i, g.(time.Time).Location(), tm.Location())
				}
				if got[i*ncols] != nil || got[i*ncols+2] != nil {
					t.Fatalf("%s row %d: other columns set", dt, i)
				}
			}
		}
		arr.Release()
	}
}
