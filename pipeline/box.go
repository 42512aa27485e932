package pipeline

import (
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
// Each string is made with unsafe.String over bytes of the current chunk.
// This is sound because a chunk is append-only: Copy writes only past the
// chunk's length, into capacity no string refers to yet, and starts a new
// chunk rather than growing one, so the bytes under a string are never
// written again. A chunk stays alive as long as any string in it does.
//
// The zero StringArena is ready to use. It is not safe for concurrent use.
type StringArena struct {
	buf []byte
}

// arenaChunk is the size of a StringArena chunk; longer strings get a chunk
// of their own.
const arenaChunk = 128 << 10

// Copy returns a string holding a copy of b.
func (a *StringArena) Copy(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(a.buf)-len(a.buf) {
		a.buf = make([]byte, 0, max(arenaChunk, len(b)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...) // within capacity: never reallocates
	return unsafe.String(&a.buf[start], len(b))
}
