package csvsource

import (
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
)

// batchBuilder makes the values of the rows being read so that a batch
// costs a handful of allocations instead of one per value (a string per
// record and an interface box per value):
//
//   - the text of each good record is copied once into a shared chunk
//     (pipeline.StringArena) and its string values are substrings of it,
//     boxed with their headers in the same chunk (StringArena.Box);
//   - other values are stored in per-type chunks (ints, floats, times)
//     and boxed in place (pipeline.BoxInt64 and friends). A chunk is never
//     grown (a new one is started when it is full), so boxed elements never
//     move, and no element is written twice.
//
// Values are made record by record, while the record is in cache.
type batchBuilder struct {
	text pipeline.StringArena

	// values per new chunk of each type
	intChunk, floatChunk, timeChunk int

	ints   []int64
	floats []float64
	times  []time.Time
}

// reset sizes the chunks started from now on for batches of about rows
// rows of the given column types.
func (bb *batchBuilder) reset(rows int, types []pipeline.Type) {
	bb.intChunk, bb.floatChunk, bb.timeChunk = 0, 0, 0
	for _, t := range types {
		switch t {
		case pipeline.TypeInt:
			bb.intChunk += rows
		case pipeline.TypeFloat:
			bb.floatChunk += rows
		case pipeline.TypeDate, pipeline.TypeTimestamp:
			bb.timeChunk += rows
		}
	}
}

// newChunk returns an empty slice with room for n values (at least 16).
func newChunk[T any](n int) []T { return make([]T, 0, max(n, 16)) }

// boxInt returns v boxed from bb's int chunk.
func (bb *batchBuilder) boxInt(v int64) any {
	if len(bb.ints) == cap(bb.ints) {
		bb.ints = newChunk[int64](bb.intChunk)
	}
	bb.ints = append(bb.ints, v)
	return pipeline.BoxInt64(&bb.ints[len(bb.ints)-1])
}

// boxFloat returns v boxed from bb's float chunk.
func (bb *batchBuilder) boxFloat(v float64) any {
	if len(bb.floats) == cap(bb.floats) {
		bb.floats = newChunk[float64](bb.floatChunk)
	}
	bb.floats = append(bb.floats, v)
	return pipeline.BoxFloat64(&bb.floats[len(bb.floats)-1])
}

// boxTime returns v boxed from bb's time chunk.
func (bb *batchBuilder) boxTime(v time.Time) any {
	if len(bb.times) == cap(bb.times) {
		bb.times = newChunk[time.Time](bb.timeChunk)
	}
	bb.times = append(bb.times, v)
	return pipeline.BoxTime(&bb.times[len(bb.times)-1])
}
