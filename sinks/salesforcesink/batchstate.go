package salesforcesink

import (
	"sync"
)

// batchState tracks the outcome of every row of one Write.
type batchState struct {
	cells [][]string
	// plain says, per row, that its upload record needed no quotes: no
	// cell holds a '"', CR, LF or the delimiter (set when its chunk is
	// spooled; nil or false: not known). The matcher then compares its
	// results with the row as it reads them (ResultReader.ReadEcho).
	plain  []bool
	errs   []error
	ok     []bool
	ids    []string // Salesforce ids of loaded rows; nil unless WriteIDs
	loaded int      // rows confirmed loaded so far
	// resent are the rows a resume sent again in an update, upsert or
	// delete whose earlier answer was never recorded (REST path): an
	// earlier attempt may have written them. Nil until there is one.
	resent map[int]bool
}

// batchBufs are the slices a Write keeps per row (its batchState, the
// cells and the rows still to load), about 150 bytes per row. They are
// reused by later Writes: allocated afresh for every batch of max_job_rows
// rows they were a fifth of a run's garbage, collected over and over.
// Nothing of them outlives the Write (the row errors it returns are
// copied out of errs).
type batchBufs struct {
	cells   [][]string
	all     []string // every row's cells, nf per row: one backing array
	errs    []error
	ok      []bool
	plain   []bool
	pending []int
}

var batchBufPool sync.Pool // of *batchBufs

// getBatchBufs returns zeroed buffers for n rows of nf cells (pending
// empty, with room for n).
func getBatchBufs(n, nf int) *batchBufs {
	b, _ := batchBufPool.Get().(*batchBufs)
	if b == nil {
		b = &batchBufs{}
	}
	if cap(b.cells) < n {
		b.cells, b.errs, b.ok, b.plain, b.pending = make([][]string, n), make([]error, n), make([]bool, n), make([]bool, n), make([]int, 0, n)
	}
	if cap(b.all) < n*nf {
		b.all = make([]string, n*nf)
	}
	b.cells, b.errs, b.ok, b.plain, b.pending, b.all = b.cells[:n], b.errs[:n], b.ok[:n], b.plain[:n], b.pending[:0], b.all[:n*nf]
	return b
}

// putBatchBufs clears b (so that it keeps no rows' strings or errors
// alive) and returns it to the pool.
func putBatchBufs(b *batchBufs) {
	clear(b.cells)
	clear(b.all)
	clear(b.errs)
	clear(b.ok)
	clear(b.plain)
	batchBufPool.Put(b)
}

// setID notes the Salesforce id of a loaded row (WriteIDs only).
func (b *batchState) setID(i int, id string) {
	if b.ids != nil && id != "" {
		b.ids[i] = id
	}
}

func (b *batchState) succeed(i int) {
	if !b.ok[i] {
		b.ok[i] = true
		b.errs[i] = nil
		b.loaded++
	}
}

// revoke fails row i even if it was counted as loaded (results that
// turned out not to be trustworthy).
func (b *batchState) revoke(i int, err error) {
	if b.ok[i] {
		b.ok[i] = false
		b.loaded--
		if b.ids != nil {
			b.ids[i] = ""
		}
	}
	b.errs[i] = err
}

func (b *batchState) fail(i int, err error) {
	if !b.ok[i] {
		b.errs[i] = err
	}
}
