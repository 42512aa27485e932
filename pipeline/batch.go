package pipeline

import (
	"fmt"
	"strconv"
)

// Row is one record: a value per schema field, in schema order. The Go type
// of each value follows the field's Type; nil is null.
type Row []any

// Origin says where a row came from: the object it was read from and its
// position there. Line is the 1-based physical line a CSV record starts on;
// Row is the 1-based record number (header excluded). Either may be zero when
// unknown.
type Origin struct {
	Object string
	Line   int64
	Row    int64
}

// String returns "object:line" when the line is known, "object#row=N" when
// only the record number is, and the object alone otherwise.
func (o Origin) String() string {
	switch {
	case o.Line > 0:
		return o.Object + ":" + strconv.FormatInt(o.Line, 10)
	case o.Row > 0:
		return o.Object + "#row=" + strconv.FormatInt(o.Row, 10)
	default:
		return o.Object
	}
}

// Drop is a row that leaves the graph at the stage that produced the batch:
// filtered on purpose when Err is nil, dead-lettered with Err as the reason
// otherwise. Row holds the values in the stage's input schema; it may be nil
// (with Raw set) for a record a source could not parse.
type Drop struct {
	Row    Row
	Origin Origin
	Raw    string
	Err    error
}

// Batch is a group of rows sharing one schema, each with its origin, plus the
// rows the producing stage dropped. Stages send many rows per channel send.
//
// A Batch is built by one goroutine and must not be modified once it has been
// returned to the engine: the engine may hand the same Batch to several
// stages (fan-out). A transform that changes rows returns a new Batch.
type Batch struct {
	schema  *Schema
	rows    []Row
	origins []Origin
	drops   []Drop
	// slabs back rows, from pool (Recycle); sole is set by the engine when
	// the batch went to one stage only (see SlabPool).
	slabs [][]any
	pool  *SlabPool
	sole  bool
}

// NewBatch returns an empty batch of the given schema with room for n rows.
func NewBatch(schema *Schema, n int) *Batch {
	return &Batch{schema: schema, rows: make([]Row, 0, n), origins: make([]Origin, 0, n)}
}

// Schema returns the schema of the batch's rows.
func (b *Batch) Schema() *Schema { return b.schema }

// Len returns the number of rows (drops not included).
func (b *Batch) Len() int { return len(b.rows) }

// Row returns the i'th row. The caller must not modify it.
func (b *Batch) Row(i int) Row { return b.rows[i] }

// Origin returns the origin of the i'th row.
func (b *Batch) Origin(i int) Origin { return b.origins[i] }

// Derive returns a batch of schema whose i'th row is rows[i] with b's i'th
// origin, sharing b's origins instead of copying them: for transforms that
// keep every row in order. It panics unless len(rows) == b.Len(). b's drops
// are not carried over.
func (b *Batch) Derive(schema *Schema, rows []Row) *Batch {
	if len(rows) != len(b.rows) {
		panic(fmt.Sprintf("pipeline: Derive with %d rows for a batch of %d", len(rows), len(b.rows)))
	}
	return &Batch{schema: schema, rows: rows, origins: b.origins[:len(b.origins):len(b.origins)]}
}

// Append adds a row with its origin. The row must have one value per schema
// field.
func (b *Batch) Append(row Row, origin Origin) {
	b.rows = append(b.rows, row)
	b.origins = append(b.origins, origin)
}

// Drop records a row that leaves the graph at this stage: pass a nil err for
// a row filtered on purpose, or the reason it must be dead-lettered.
func (b *Batch) Drop(d Drop) { b.drops = append(b.drops, d) }

// Drops returns the rows dropped by the stage that produced this batch. The
// caller must not modify the slice.
func (b *Batch) Drops() []Drop { return b.drops }

// Settled returns the number of input rows this batch accounts for: its rows
// plus its drops.
func (b *Batch) Settled() int { return len(b.rows) + len(b.drops) }

// withoutDrops returns a batch sharing b's rows but not its drops, for
// forwarding downstream once the engine has settled the drops.
func (b *Batch) withoutDrops() *Batch {
	if len(b.drops) == 0 {
		return b
	}
	return &Batch{schema: b.schema, rows: b.rows, origins: b.origins, slabs: b.slabs, pool: b.pool}
}
