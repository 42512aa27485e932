package pipeline

import (
	"strings"
	"time"
	"unsafe"
)

// Boxing values without an allocation per value.
//
// A Row holds its values as `any`. Storing a string, int64, float64 or
// time.Time in an interface normally copies the value to a fresh heap
// object (runtime.convT*): one small allocation per cell, which dominates
// the cost of a source that builds millions of cells. A source that builds
// a whole batch at once can instead put the batch's values in one typed
// slice (a []string, []int64, ...) and make each cell an interface whose
// data word points at its element: the same representation the runtime
// would have built, without the copy.
//
// This is sound because of three facts:
//
//   - string, int64, float64 and time.Time are not pointer-shaped, so the
//     Go runtime always stores them indirectly: an interface holding one is
//     the pair (type word, pointer to the value), which is what box builds.
//     The type word is taken from a real interface value of the type, never
//     spelled out. TestBox checks the result with type assertions, type
//     switches, ==, reflect and maps.
//   - the garbage collector treats the data word like any other pointer:
//     a pointer into the middle of a slice's backing array keeps the whole
//     array (and what its elements point to) alive.
//   - Go code can never write through an interface's data word, so the
//     value can only change if the element it points at is assigned again.
//     Callers promise not to: the slice is private to the code building the
//     batch and its elements are written once, before boxing. Rows are
//     immutable once built (see Batch), so this holds for the rows' whole
//     life.

// eface is the runtime layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType  = typeWord("")
	int64Type   = typeWord(int64(0))
	float64Type = typeWord(float64(0))
	timeType    = typeWord(time.Time{})
)

// box returns the interface value of type word typ whose value is at data.
func box(typ, data unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ = typ
	e.data = data
	return v
}

// BoxString returns *p as an interface value, like any(*p), but referring
// to *p instead of a copy of it, so it allocates nothing. It is meant for
// sources that build a batch's values in one typed slice and box each
// element (see the comment above on why this is sound).
//
// *p must never be assigned again once boxed: the interface value would
// see the change, breaking the rule that rows are immutable. The memory *p
// is in stays alive as long as the interface value does.
func BoxString(p *string) any { return box(stringType, unsafe.Pointer(p)) }

// BoxInt64 is BoxString for an int64.
func BoxInt64(p *int64) any { return box(int64Type, unsafe.Pointer(p)) }

// BoxFloat64 is BoxString for a float64.
func BoxFloat64(p *float64) any { return box(float64Type, unsafe.Pointer(p)) }

// BoxTime is BoxString for a time.Time.
func BoxTime(p *time.Time) any { return box(timeType, unsafe.Pointer(p)) }

// StringArena copies byte slices into strings that share large chunks of
// memory, so that a source making many small strings (a record's text, say)
// makes one allocation per chunk instead of one per string.
//
// A chunk is a strings.Builder: Copy appends to it and slices the string
// from its String(). A Builder only ever appends, and never writes the
// bytes under a string it returned (growing moves to new memory), so the
// strings never change; Copy starts a new chunk rather than growing one,
// so no chunk is ever copied either. A chunk stays alive as long as any
// string in it does. The Builder is used rather than a []byte because its
// Grow allocates without zeroing the memory (every byte is written before
// it is read): a []byte chunk cost a clear of 128 KiB per chunk, as much
// memory traffic again as the copies into it. The chunk is held through a
// pointer so that copying a StringArena (or a struct holding one) by value
// never trips the Builder's copy check.
//
// The zero StringArena is ready to use. It is not safe for concurrent use.
type StringArena struct {
	chunk *strings.Builder
}

// arenaChunk is the size of a StringArena chunk; longer strings get a chunk
// of their own.
const arenaChunk = 128 << 10

// Copy returns a string holding a copy of b.
func (a *StringArena) Copy(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if a.chunk == nil || len(b) > a.chunk.Cap()-a.chunk.Len() {
		a.chunk = new(strings.Builder)
		a.chunk.Grow(max(arenaChunk, len(b)))
	}
	start := a.chunk.Len()
	a.chunk.Write(b) // within capacity: never reallocates
	return a.chunk.String()[start:]
}
