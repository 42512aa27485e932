package salesforcetest

import (
	"hash/maphash"
	"strings"
	"unicode/utf8"
)

// keyIndex maps distinct keys to one record each. It is an open-addressing
// hash table (linear probing) built for bulk inserts of a million keys:
// Go's map spent most of an insert job's index time splitting and
// rehashing its tables as it grew, while here growing only re-places
// integer slots. Insert jobs reserve room for their rows first (reserve),
// and each row probes the table once (see missPos); runIngest loads the
// slots of the next rows ahead of time (plan.touchRows).
type keyIndex struct {
	// slots are 0 (empty) or hash<<32 | (entry number + 1). Removing a
	// key shifts the slots after it back (see remove): there are no
	// tombstones, so updates that remove and re-add keys never fill the
	// table and never force a rebuild (issue 23: they did, once per job,
	// rebuilding an index of a million keys each time).
	slots []uint64
	// chunks hold the entries' records, entryChunk per chunk: appending
	// never copies (a growing slice of a million entries was recopied
	// again and again). Removed entries are nil, and their numbers are in
	// free for the next entries to reuse: an entry keeps its number for
	// its life, so a rebuild moves the slots as they are. An entry's hash
	// is in its slot only, which saves 8 bytes per key (a third of an
	// entry and its slots).
	chunks [][]*record
	free   []uint32
	n      int // entries, removed ones included
	live   int // keys (non-empty slots)

	// A record's key is its value of the field at position pos,
	// lower-cased when fold is set (indexKey): entries do not store keys,
	// which would add a 16-byte string header to each of a million
	// entries. Only a lookup whose hash matches reads a record's key.
	pos  uint32
	fold bool

	// The last lookup that missed: its key, hash and the empty slot that
	// ended its probe (-1: none). An insert job looks every new key up
	// (the uniqueness check) and then adds it; putNew of that same key
	// reuses the slot instead of probing the table again, which costs a
	// cache miss per row in a table of millions of slots. The slot is
	// still right while it is empty and the table was not rebuilt: an
	// insert of another key on the probe path would have filled it.
	missKey  string
	missHash uint32
	missPos  int

	rebuilds int // times the table was rebuilt (for tests)
}

const entryChunk = 4096

// entry returns the record of entry number i (nil once removed).
func (x *keyIndex) entry(i uint32) *record { return x.chunks[i/entryChunk][i%entryChunk] }

// appendEntry adds an entry of rec and returns its number: the last
// removed entry's, if any.
func (x *keyIndex) appendEntry(rec *record) uint32 {
	if k := len(x.free) - 1; k >= 0 {
		i := x.free[k]
		x.free = x.free[:k]
		x.chunks[i/entryChunk][i%entryChunk] = rec
		return i
	}
	if x.n%entryChunk == 0 {
		x.chunks = append(x.chunks, make([]*record, entryChunk))
	}
	x.chunks[x.n/entryChunk][x.n%entryChunk] = rec
	x.n++
	return uint32(x.n - 1)
}

// holds reports whether rec's key is k.
func (x *keyIndex) holds(rec *record, k string) bool {
	v, _ := rec.at(x.pos)
	if !x.fold {
		return v == k
	}
	return lowerIs(v, k)
}

// lowerIs reports whether strings.ToLower(v) == k, without allocating
// for ASCII v.
func lowerIs(v, k string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(v) == k
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if i >= len(k) || k[i] != c {
			return false // ToLower maps v's ASCII prefix byte for byte
		}
	}
	return len(v) == len(k)
}

// indexSeed seeds every keyIndex: lookups never depend on iteration order,
// so one random seed per process is fine.
var indexSeed = maphash.MakeSeed()

func keyHash(k string) uint32 { return uint32(maphash.String(indexSeed, k)) }

// slot returns the slot holding key k (with its hash h), or -1.
func (x *keyIndex) slot(k string, h uint32) int {
	if len(x.slots) == 0 {
		return -1
	}
	mask := uint32(len(x.slots) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := x.slots[p]
		if s == 0 {
			x.missKey, x.missHash, x.missPos = k, h, int(p)
			return -1
		}
		if uint32(s>>32) == h {
			if rec := x.entry(uint32(s) - 1); rec != nil && x.holds(rec, k) {
				return int(p)
			}
		}
	}
}

// get returns the record of k, or nil.
func (x *keyIndex) get(k string) *record { return x.getHashed(k, keyHash(k)) }

// getHashed is get of k whose hash h is known (see touchCol.hash).
func (x *keyIndex) getHashed(k string, h uint32) *record {
	if p := x.slot(k, h); p >= 0 {
		return x.entry(uint32(x.slots[p]) - 1)
	}
	return nil
}

// put adds k → rec; k must not be in x, and must be rec's key.
func (x *keyIndex) put(k string, rec *record) {
	if x.putNew(k, rec) != nil {
		panic("salesforcetest: keyIndex.put of a present key")
	}
}

// putNew adds k → rec unless k is present, in which case it returns the
// present record and changes nothing (one probe for the common insert).
// k must be rec's key.
func (x *keyIndex) putNew(k string, rec *record) *record {
	if (x.live+1)*4 > len(x.slots)*3 {
		x.rebuild(0)
	}
	if x.missPos >= 0 && x.missPos < len(x.slots) && x.slots[x.missPos] == 0 && k == x.missKey {
		// k missed in the last lookup (see missPos).
		return x.insertAt(x.missPos, x.missHash, rec)
	}
	h := keyHash(k)
	mask := uint32(len(x.slots) - 1)
	p := h & mask
	for ; x.slots[p] != 0; p = (p + 1) & mask {
		if s := x.slots[p]; uint32(s>>32) == h {
			if rec := x.entry(uint32(s) - 1); rec != nil && x.holds(rec, k) {
				return rec
			}
		}
	}
	return x.insertAt(int(p), h, rec)
}

// insertAt stores rec, whose key has hash h, in the empty slot p; it
// returns nil, for putNew.
func (x *keyIndex) insertAt(p int, h uint32, rec *record) *record {
	i := x.appendEntry(rec)
	x.slots[p] = uint64(h)<<32 | uint64(i+1)
	x.live++
	x.missPos = -1
	return nil
}

// reserve sizes the table for n more keys, so that inserting them does
// not rebuild it (a job reserves its row count before inserting).
func (x *keyIndex) reserve(n int) {
	// At most half full, probes that miss (the common case, an insert)
	// stay short: about 2.5 slots, against 8.5 at putNew's three quarters.
	if (x.live+n)*2 > len(x.slots) {
		x.rebuild(n)
	}
}

// place stores slot value s in the first empty slot of its probe sequence.
func (x *keyIndex) place(s uint64) {
	mask := uint32(len(x.slots) - 1)
	for p := uint32(s>>32) & mask; ; p = (p + 1) & mask {
		if x.slots[p] == 0 {
			x.slots[p] = s
			return
		}
	}
}

// remove deletes k and reports whether it was present. The slots after
// k's, up to the next empty one, move back into the gap wherever their
// probe sequence allows (backward-shift deletion for linear probing), so
// that every key stays reachable from its home slot without a tombstone.
func (x *keyIndex) remove(k string) bool {
	p := x.slot(k, keyHash(k))
	if p < 0 {
		return false
	}
	i := uint32(x.slots[p]) - 1
	x.chunks[i/entryChunk][i%entryChunk] = nil
	x.free = append(x.free, i)
	x.live--
	// A slot emptied here may end the probe of the key that last missed
	// before the slot missPos holds: forget it.
	x.missPos = -1
	mask := uint32(len(x.slots) - 1)
	gap := uint32(p)
	for q := (gap + 1) & mask; x.slots[q] != 0; q = (q + 1) & mask {
		home := uint32(x.slots[q]>>32) & mask
		// The key at q may fill the gap unless its home lies in (gap, q]
		// (cyclically): a lookup starting there would not pass the gap.
		if (q-home)&mask >= (q-gap)&mask {
			x.slots[gap] = x.slots[q]
			gap = q
		}
	}
	x.slots[gap] = 0
	return true
}

// rebuild moves the slots into a table at most half full with room for
// extra more keys. A table that grows grows at least fourfold: a store
// that insert jobs fill a few thousand rows at a time would otherwise
// double its table again and again, and each rebuild re-places every
// entry into a new table whose pages are first written there (page
// faults cost more than the placing). Fourfold halves the rebuilds and
// cuts the slots allocated over a store's life by a third, at the cost of
// a table up to an eighth full (not a quarter) right after growing.
func (x *keyIndex) rebuild(extra int) {
	x.rebuilds++
	x.missPos = -1
	n := 64
	for n < (x.live+extra+1)*2 {
		n *= 2
	}
	if n > len(x.slots) {
		n = max(n, 4*len(x.slots))
	}
	old := x.slots
	x.slots = make([]uint64, n)
	// Walk the old table in order: its slot p moves to p, p+len(old), ...
	// of the new table, so the writes stream through a few runs of memory
	// instead of landing at random, as walking the entries would make
	// them.
	for _, s := range old {
		if s != 0 {
			x.place(s)
		}
	}
}
