package salesforcesource

import (
	"time"
	"unsafe"

	"github.com/bulkflow/bulkflow/pipeline"
)

// rowBuilder makes a batch's rows with a handful of allocations instead of
// several per record, as the csv source does (sources/csvsource/batch.go):
//
//   - the records' fields alias the results reader's buffer, so the text
//     of string and decimal values is copied into shared chunks
//     (pipeline.StringArena);
//   - values are stored in per-type chunks and boxed in place
//     (pipeline.BoxString and friends); a chunk is never grown (a new one
//     is started when it is full), so boxed elements never move and none
//     is written twice;
//   - rows are cut from one []any slab per chunk, each capped at its own
//     length.
//
// Booleans need no chunk: any(true) and any(false) do not allocate.
type rowBuilder struct {
	text pipeline.StringArena
	// slabs recycles the rows' slabs once the engine has released the
	// batch they were attached to (b, the batch being built).
	slabs pipeline.SlabPool
	b     *pipeline.Batch

	rows  int // rows per new chunk
	ncols int

	slab  []any
	strs  []string
	ints  []int64
	times []time.Time
}

// reset sizes the chunks for batches of rows rows of ncols columns, and
// starts batch b, which the rows' slabs are attached to.
func (rb *rowBuilder) reset(rows, ncols int, b *pipeline.Batch) {
	rb.rows, rb.ncols, rb.b = max(rows, 16), ncols, b
	rb.slab, rb.strs, rb.ints, rb.times = nil, nil, nil, nil
}

// row returns a zeroed row of ncols values cut from the slab.
func (rb *rowBuilder) row() pipeline.Row {
	if len(rb.slab)+rb.ncols > cap(rb.slab) {
		slab := rb.slabs.Get(rb.rows * rb.ncols)
		rb.b.Recycle(&rb.slabs, slab)
		rb.slab = slab[:0]
	}
	n := len(rb.slab)
	rb.slab = rb.slab[:n+rb.ncols]
	return pipeline.Row(rb.slab[n : n+rb.ncols : n+rb.ncols])
}

// unrow gives back the last row from row (a record that was dropped), so
// that its slots are used by the next row.
func (rb *rowBuilder) unrow(r pipeline.Row) {
	clear(r)
	rb.slab = rb.slab[:len(rb.slab)-rb.ncols]
}

// str returns a copy of s (which aliases the reader's buffer), boxed.
func (rb *rowBuilder) str(s string) any {
	if len(rb.strs) == cap(rb.strs) {
		rb.strs = make([]string, 0, rb.rows)
	}
	rb.strs = append(rb.strs, rb.text.Copy(aliasBytes(s)))
	return pipeline.BoxString(&rb.strs[len(rb.strs)-1])
}

// int boxes v.
func (rb *rowBuilder) int(v int64) any {
	if len(rb.ints) == cap(rb.ints) {
		rb.ints = make([]int64, 0, rb.rows)
	}
	rb.ints = append(rb.ints, v)
	return pipeline.BoxInt64(&rb.ints[len(rb.ints)-1])
}

// time boxes v.
func (rb *rowBuilder) time(v time.Time) any {
	if len(rb.times) == cap(rb.times) {
		rb.times = make([]time.Time, 0, rb.rows)
	}
	rb.times = append(rb.times, v)
	return pipeline.BoxTime(&rb.times[len(rb.times)-1])
}

// aliasBytes returns s's bytes without a copy; they must not be written.
func aliasBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
