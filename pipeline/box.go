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
// A chunk is a []byte that is only ever appended to within its capacity:
// Copy starts a new chunk rather than growing one, so the bytes under a
// string it returned are never written again and never move. A chunk stays
// alive as long as any string in it does. Chunks are allocated without
// zeroing (newChunk: every byte is written before it is read): a zeroed
// chunk cost a clear of 128 KiB per chunk, as much memory traffic again as
// the copies into it.
//
// CopyBoxed and Box also put the string headers of boxed values in the
// chunk (see boxHeader), so that a source boxing substrings of its records
// needs no []string slice per batch.
//
// The zero StringArena is ready to use. It is not safe for concurrent use.
type StringArena struct {
	chunk []byte
	// boxes is how many headers Box may still append for the text the
	// last CopyBoxed returned, chunk[text:textEnd].
	boxes, text, textEnd int
}

// arenaChunk is the size of a StringArena chunk; longer strings get a chunk
// of their own.
const arenaChunk = 128 << 10

// newChunk returns an empty []byte of capacity at least n whose memory is
// not zeroed. strings.Builder grows without zeroing (the runtime's
// MakeNoZero, which other Go code cannot call); the chunk is a fresh
// Builder's memory, taken over whole once one byte makes it addressable.
// (bytes.Buffer zeroes what it grows.)
func newChunk(n int) []byte {
	var sb strings.Builder
	sb.Grow(max(n, 1))
	sb.WriteByte(0)
	return unsafe.Slice(unsafe.StringData(sb.String()), sb.Cap())[:0]
}

// Copy returns a string holding a copy of b.
func (a *StringArena) Copy(b []byte) string {
	a.boxes = 0
	if len(b) == 0 {
		return ""
	}
	a.reserve(len(b))
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...) // within capacity: never reallocates
	return unsafe.String(&a.chunk[start], len(b))
}

// reserve starts a new chunk unless the current one has n bytes free.
func (a *StringArena) reserve(n int) {
	if cap(a.chunk)-len(a.chunk) < n {
		a.chunk = newChunk(max(arenaChunk, n))
	}
}

// CopyBoxed is Copy, leaving room in the same chunk for n calls of Box on
// substrings of the copy (until the next Copy or CopyBoxed).
func (a *StringArena) CopyBoxed(b []byte, n int) string {
	a.boxes = 0
	a.reserve(len(b) + headerRoom(n))
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	a.text, a.textEnd, a.boxes = start, len(a.chunk), n
	return unsafe.String(unsafe.SliceData(a.chunk[start:]), len(b))
}

// Box returns s boxed like any(s), without an allocation: its string
// header is appended to the arena's chunk (boxHeader). s must be a
// substring of what the last CopyBoxed returned, and Box may be called at
// most the n times that CopyBoxed reserved; otherwise it panics (the
// header must share the chunk with s's bytes, or the collector could
// free them).
func (a *StringArena) Box(s string) any {
	if len(s) == 0 {
		return emptyString
	}
	if a.boxes <= 0 {
		panic("pipeline: StringArena.Box without room reserved by CopyBoxed")
	}
	base := unsafe.Pointer(unsafe.SliceData(a.chunk))
	off := uintptr(unsafe.Pointer(unsafe.StringData(s))) - uintptr(base)
	if off < uintptr(a.text) || off+uintptr(len(s)) > uintptr(a.textEnd) {
		panic("pipeline: StringArena.Box of a string not in the last CopyBoxed text")
	}
	a.boxes--
	var v any
	a.chunk, v = boxHeader(a.chunk, int(off), len(s))
	return v
}

// emptyString is "" boxed: a boxed empty string never points into a chunk
// (its data pointer could be the chunk's end, which is another object).
var emptyString any = ""

// Boxed string headers in pointer-free memory.
//
// A boxed string is the pair (string type, pointer to a string header),
// and the header points at the bytes. BoxString puts the header in a
// []string, memory the collector must zero when it is allocated, scan at
// every cycle, and guard with a write barrier at every store while it
// marks: in a plan of 1M rows that was 16 bytes, one scanned pointer and
// one barrier per string cell, on top of the interface value's own.
//
// boxHeader instead writes the header into the same pointer-free []byte
// chunk that holds the bytes, and boxes a pointer to it. The collector
// does not scan the chunk, so it never sees the header's pointer, and it
// does not need to: that pointer targets the very allocation the
// interface's data word points into, and any pointer into an allocation
// keeps all of it alive. Copying the string out of the interface (v.(string))
// copies the header into ordinary memory, where its pointer is seen as
// usual. The header is written once, as two machine words (no write
// barrier: the chunk holds no pointers the collector tracks), before it is
// boxed, and never written again (the chunk is only appended to). The Go
// collector does not move heap objects, so the address stays valid.
//
// headerRoom(n) bytes after the text are enough for n headers: one
// alignment pad of at most 7 bytes (the pad is per header, but only the
// first can need one: headers are 16 bytes) and 16 bytes each.
func headerRoom(n int) int { return 7 + 16*n }

// boxHeader appends to chunk, 8-byte aligned, the header of the string
// chunk[off:off+n] (n > 0), and returns the chunk and the boxed string.
// The caller has checked that the string lies in chunk and that chunk has
// headerRoom(1) bytes of capacity left.
func boxHeader(chunk []byte, off, n int) ([]byte, any) {
	base := unsafe.Pointer(unsafe.SliceData(chunk))
	at := len(chunk)
	at += int(-(uintptr(base) + uintptr(at)) & 7)
	chunk = chunk[:at+16]
	h := (*[2]uintptr)(unsafe.Add(base, at))
	h[0] = uintptr(unsafe.Add(base, off))
	h[1] = uintptr(n)
	return chunk, box(stringType, unsafe.Pointer(h))
}

// AppendBoxed returns buf[start:], bytes the caller appended to buf, boxed
// like any(string(buf[start:])) without an allocation: the string header
// is appended to buf (see boxHeader), so buf must be memory that is only
// ever appended to (the bytes under a value handed out are never written
// again) and must not hold pointers. When buf has no room left for the
// header, the string is first copied to a new chunk of at least chunk
// bytes, which AppendBoxed returns in buf's place. A built string's
// buffer (transforms/exprenv) uses it.
func AppendBoxed(buf []byte, start, chunk int) ([]byte, any) {
	n := len(buf) - start
	if n <= 0 {
		return buf, emptyString
	}
	if cap(buf)-len(buf) < headerRoom(1) {
		nb := newChunk(max(chunk, n+headerRoom(1)))
		buf, start = append(nb, buf[start:]...), 0
	}
	return boxHeader(buf, start, n)
}
