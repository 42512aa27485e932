package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// SlabPool recycles the memory of rows. A slab is a []any holding the
// values of many rows back to back (each Row a three-index slice of it).
// A producer that opts in takes its slabs from a pool (Get) and attaches
// each to the batch whose rows it backs (Batch.Recycle). The engine clears
// a slab and puts it back once the batch's rows are certainly no longer
// referenced, which it can tell only when the batch went to exactly one
// stage, that stage is a RowReleaser, and (for a sink that commits at
// Close) the engine's commit log copied the rows rather than keeping the
// batch; otherwise the slab is left to the collector, as any other memory.
//
// Why (issue 23): the two slabs of each row of a plan, the source's and
// the map's, were about half of the bytes a plan allocated and most of its
// pointer-holding memory, and the collector's marking, write barriers and
// zeroing of them were a tenth of its CPU. A released slab is reused by
// the next batch instead.
//
// The zero value is ready to use. A SlabPool is safe for concurrent use.
type SlabPool struct {
	p sync.Pool
}

// Get returns a slab of n values, all nil: recycled when the pool holds
// one large enough, new otherwise.
func (p *SlabPool) Get(n int) []any {
	if s, ok := p.p.Get().(*[]any); ok && cap(*s) >= n {
		return (*s)[:n:n]
	}
	return make([]any, n)
}

// put clears s and keeps it for Get. In a test binary it poisons s
// instead (poisonReleased): a stage that kept a row it declared released
// then reads values that fail loudly rather than another batch's.
func (p *SlabPool) put(s []any) {
	s = s[:cap(s)]
	if poisonReleased {
		for i := range s {
			s[i] = Released{}
		}
		return
	}
	clear(s)
	p.p.Put(&s)
}

// poisonReleased is whether released slabs are poisoned and dropped
// instead of reused: in test binaries, so that the whole test suite checks
// that no stage reads a row after it was released. Tests of the reuse
// itself turn it off. A test binary is told by its name (go test names it
// PACKAGE.test), not by testing.Testing: importing testing took the
// engine past its dependency budget (TestEngineLinksNoCloudSDK). A
// program that happens to bear such a name only loses the reuse.
var poisonReleased = isTestBinary(os.Args[0])

// isTestBinary reports whether the executable at path is named as go test
// names test binaries.
func isTestBinary(path string) bool {
	name := strings.TrimSuffix(filepath.Base(path), ".exe")
	return strings.HasSuffix(name, ".test")
}

// Released is the value every element of a released slab holds in a test
// binary (see SlabPool). No stage produces it: a stage that meets one read
// a row after the engine released it.
type Released struct{}

// RowReleaser is implemented by transforms, sinks and syncers that keep no
// reference to the rows of a batch they were given (the Row slices: the
// values in them may be kept) once Apply, Write or Add has returned. A
// transform's output must hold rows of its own; its drops may hold input
// rows, as the engine settles them first. When ReleasesRows reports true
// the engine may recycle the rows' slabs (see SlabPool) as soon as the
// call has returned.
type RowReleaser interface {
	ReleasesRows() bool
}

// releasesRows reports whether v is a RowReleaser that releases rows.
func releasesRows(v any) bool {
	rr, ok := v.(RowReleaser)
	return ok && rr.ReleasesRows()
}

// Recycle attaches slab, taken from pool, to b: slab must back rows of b
// and of no other batch. Once the engine knows b's rows are no longer
// referenced it gives slab back to pool (see SlabPool).
func (b *Batch) Recycle(pool *SlabPool, slab []any) {
	if b.pool != nil && b.pool != pool {
		panic("pipeline: Recycle with slabs of two pools")
	}
	b.pool = pool
	b.slabs = append(b.slabs, slab)
}

// release gives b's slabs back to their pool, once. Only the engine calls
// it, when b went to one stage and that stage released its rows.
func (b *Batch) release() {
	for _, s := range b.slabs {
		b.pool.put(s)
	}
	b.slabs, b.pool = nil, nil
}

// VerifyRecycle checks Recycle's contract over batches a producer made
// (for conformance suites, such as sources/sourcetest's): no slab is
// attached to two batches, and no row or drop of a batch lies in a slab
// attached to another, since the engine recycles a batch's slabs while
// other batches are still in use.
func VerifyRecycle(batches ...*Batch) error {
	type slab struct {
		lo, hi uintptr // the slab's memory
		batch  int
	}
	var slabs []slab
	const valueSize = unsafe.Sizeof(any(nil))
	for i, b := range batches {
		for _, s := range b.slabs {
			if cap(s) == 0 {
				continue
			}
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
			slabs = append(slabs, slab{lo, lo + uintptr(cap(s))*valueSize, i})
		}
	}
	slices.SortFunc(slabs, func(a, b slab) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	for k := 1; k < len(slabs); k++ {
		if slabs[k].lo < slabs[k-1].hi {
			return fmt.Errorf("pipeline: batches %d and %d have overlapping recycled slabs", slabs[k-1].batch+1, slabs[k].batch+1)
		}
	}
	// in returns the batch whose slab holds row, or -1.
	in := func(row Row) int {
		if cap(row) == 0 {
			return -1
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(row)))
		k, _ := slices.BinarySearchFunc(slabs, p, func(s slab, p uintptr) int {
			switch {
			case s.hi <= p:
				return -1
			case s.lo > p:
				return 1
			}
			return 0
		})
		if k < len(slabs) && slabs[k].lo <= p && p < slabs[k].hi {
			return slabs[k].batch
		}
		return -1
	}
	for i, b := range batches {
		for j, row := range b.rows {
			if k := in(row); k >= 0 && k != i {
				return fmt.Errorf("pipeline: row %d of batch %d lies in a recycled slab of batch %d", j+1, i+1, k+1)
			}
		}
		for j, d := range b.drops {
			if k := in(d.Row); k >= 0 && k != i {
				return fmt.Errorf("pipeline: drop %d of batch %d lies in a recycled slab of batch %d", j+1, i+1, k+1)
			}
		}
	}
	return nil
}
