package salesforcetest

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
)

// record is one stored sObject record. Its non-null values are packed
// into one string with a small pointer-free list saying which field each
// value belongs to: a million records then hold a few pointers each for
// the garbage collector to scan, instead of two per value. A record
// inserted verbatim from an upload row does not even copy its values: it
// points at the row (vals.src, row) until it is first changed.
//
// A record is 24 bytes with one pointer: its id is a counter, and its
// object and values are behind vals, which the records inserted from the
// rows of one upload share.
type record struct {
	n       uint64   // the counter of its generated id (see idGen), or with named its index in the store's named
	vals    *recVals // its object and values
	row     int32    // with vals.src: the row holding the values
	deleted bool     // soft-deleted (recycle bin)
	removed bool     // hard-deleted
	named   bool     // its id was given, not generated (see objStore.addNamed)
	mod     int64    // SystemModstamp: Unix milliseconds of the last write
}

// recVals are a record's object and its values: the cells of its row of
// src, or with src nil the values it holds itself (none when vals is
// empty).
type recVals struct {
	obj  *object    // the record's object (for field positions and its id's prefix)
	src  *rowSource // when set, the values are the cells of the record's row
	vals string     // the non-null values, concatenated
	refs []fieldRef // per value, in vals order: its field and its end
}

// fieldRef locates one value of a record.
type fieldRef struct {
	pos uint32 // the field's index in its object's fieldList
	end uint32 // the value is vals[previous end:end]
}

// rowSource maps the fields of an upload's header to its columns, for
// records that read their values from the upload's rows: a row's
// non-empty cells are the record's values.
type rowSource struct {
	t    *table
	col  []int32 // by field position: the column holding the field, or -1
	cols []int32 // by column: the field position, or -1 (the Id column)
}

// obj returns the record's object.
func (r *record) obj() *object { return r.vals.obj }

// id returns the record's 18-character id.
func (r *record) id() string {
	if r.named {
		return r.obj().store.named[r.n]
	}
	return formatID(r.obj().prefix, r.n)
}

// at returns the value of the field at position pos and whether it is set.
func (r *record) at(pos uint32) (string, bool) {
	rv := r.vals
	if src := rv.src; src != nil {
		if int(pos) >= len(src.col) || src.col[pos] < 0 {
			return "", false
		}
		v := src.t.value(int(r.row), int(src.col[pos]))
		return v, v != ""
	}
	start := uint32(0)
	for _, ref := range rv.refs {
		if ref.pos == pos {
			return rv.vals[start:ref.end], true
		}
		start = ref.end
	}
	return "", false
}

// each calls fn for every value, in order.
func (r *record) each(fn func(pos uint32, v string)) {
	rv := r.vals
	if src := rv.src; src != nil {
		var buf [32]string
		for c, v := range src.t.split(int(r.row), buf[:0]) {
			if pos := src.cols[c]; pos >= 0 && v != "" {
				fn(uint32(pos), v)
			}
		}
		return
	}
	start := uint32(0)
	for _, ref := range rv.refs {
		fn(ref.pos, rv.vals[start:ref.end])
		start = ref.end
	}
}

// get returns the value of f and whether it is set.
func (r *record) get(f *FieldDescribe) (string, bool) {
	pos, ok := r.obj().pos[f]
	if !ok {
		return "", false
	}
	return r.at(pos)
}

// put sets f to v (v != ""). Updates rebuild the values (copy on write:
// vals and refs of inserted records live in shared slabs).
func (r *record) put(f *FieldDescribe, v string) {
	if pos, ok := r.obj().pos[f]; ok {
		r.replace(pos, v, false)
	}
}

// del removes the value of f (sets it to null).
func (r *record) del(f *FieldDescribe) {
	if pos, ok := r.obj().pos[f]; ok {
		r.replace(pos, "", true)
	}
}

// replace sets (or with remove, deletes) the value at position pos,
// keeping the other values in order and appending a new field last.
func (r *record) replace(pos uint32, v string, remove bool) {
	var b strings.Builder
	var refs []fieldRef
	found := false
	r.each(func(p uint32, old string) {
		if p == pos {
			found = true
			if remove {
				return
			}
			old = v
		}
		b.WriteString(old)
		refs = append(refs, fieldRef{p, uint32(b.Len())})
	})
	if !found && !remove {
		b.WriteString(v)
		refs = append(refs, fieldRef{pos, uint32(b.Len())})
	}
	r.vals = &recVals{obj: r.obj(), vals: b.String(), refs: refs}
}

// holds reports whether changes set exactly the values r holds, one
// change per value in the order of r's values: what a repeated upsert of
// the same rows under the same header sends. It is update's fast path, one
// pass in step over both (issue 23: the general path's per-field index
// checks and value search made a repeated upsert's update cost about twice
// an insert); false only means that the general path decides.
func (r *record) holds(changes []change) bool {
	i, ok := 0, true
	r.each(func(p uint32, v string) {
		if ok {
			ok = i < len(changes) && !changes[i].null && changes[i].pos == p && changes[i].v == v
			i++
		}
	})
	return ok && i == len(changes)
}

// apply sets (or, for null or empty values, removes) the values of
// changes, each of a different field, as put and del one change at a
// time would, in one pass: the values are rebuilt once, not once per
// change, and not at all when every change leaves its field as it is.
func (r *record) apply(changes []change) {
	// The record's values, read once: at would split a row-backed
	// record's row again for each change.
	type value struct {
		pos uint32
		v   string
	}
	var buf [32]value
	vals := buf[:0]
	r.each(func(p uint32, v string) { vals = append(vals, value{p, v}) })
	find := func(pos uint32) (string, bool) {
		for _, x := range vals {
			if x.pos == pos {
				return x.v, true
			}
		}
		return "", false
	}
	same := true
	for _, ch := range changes {
		old, ok := find(ch.pos)
		if ch.null || ch.v == "" {
			same = same && !ok
		} else {
			same = same && ok && old == ch.v
		}
	}
	if same {
		return
	}
	var b strings.Builder
	refs := make([]fieldRef, 0, len(vals)+len(changes))
	for _, x := range vals {
		v, keep := x.v, true
		for _, ch := range changes {
			if ch.pos == x.pos {
				v, keep = ch.v, !ch.null && ch.v != ""
				break
			}
		}
		if keep {
			b.WriteString(v)
			refs = append(refs, fieldRef{x.pos, uint32(b.Len())})
		}
	}
	for _, ch := range changes {
		if ch.null || ch.v == "" {
			continue
		}
		if _, ok := find(ch.pos); !ok {
			b.WriteString(ch.v)
			refs = append(refs, fieldRef{ch.pos, uint32(b.Len())})
		}
	}
	r.vals = &recVals{obj: r.obj(), vals: b.String(), refs: refs}
}

// toMap returns the record as field name → value, including "Id".
func (r *record) toMap() map[string]string {
	m := make(map[string]string)
	r.each(func(pos uint32, v string) { m[r.obj().fieldList[pos].Name] = v })
	m["Id"] = r.id()
	return m
}

// objStore holds the records of one object.
type objStore struct {
	now func() time.Time // the server's clock, for SystemModstamp
	// txMod, when not 0, is the SystemModstamp (Unix ms) of every record
	// written in the ingest chunk being applied (see touch).
	txMod int64
	byID  map[string]*record // 15-char id → record, for ids not in byN
	// byN holds the records with generated ids ("pppHs" + base62
	// counter) by counter, in chunks of byNChunk: growing it never copies
	// (a slice of millions of pointers was recopied, with write barriers,
	// each time it grew).
	byN   [][]*record
	order recordList // every record, in insertion order
	// named are the ids of the records whose ids were given (addNamed).
	named []string
	// indexed are the object's fields with an index (idLookup, externalId
	// or unique); index[i] is the index of indexed[i]. Fields are found by
	// pointer, not by (lower-cased) name, to keep string work off the
	// per-row path.
	indexed    []*FieldDescribe
	indexedPos []uint32 // positions of indexed in the object's fieldList
	index      []fieldIndex
}

// recordList is a list of records in chunks of byNChunk: appending never
// copies, where a slice of millions of pointers was copied (with write
// barriers) each time it grew, and left up to half its capacity unused.
type recordList struct {
	chunks [][]*record
	n      int
}

// add appends r.
func (l *recordList) add(r *record) {
	if l.n%byNChunk == 0 {
		l.chunks = append(l.chunks, make([]*record, byNChunk))
	}
	l.chunks[l.n/byNChunk][l.n%byNChunk] = r
	l.n++
}

// all yields the records in order.
func (l *recordList) all() iter.Seq[*record] {
	return func(yield func(*record) bool) {
		for i, c := range l.chunks {
			for _, r := range c[:min(byNChunk, l.n-i*byNChunk)] {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// fieldIndex maps the key of a value (indexKey) to the records holding
// it, in insertion order. A key is in one or in many, never both: unique
// fields only ever use one, which stores a single pointer per key instead
// of a slice allocated per record.
type fieldIndex struct {
	one  keyIndex             // keys held by exactly one record
	many map[string][]*record // keys held by two or more records (nil until needed)
}

func (x *fieldIndex) add(k string, rec *record) {
	if list, ok := x.many[k]; ok {
		x.many[k] = append(list, rec)
		return
	}
	if first := x.one.putNew(k, rec); first != nil {
		x.one.remove(k)
		if x.many == nil {
			x.many = make(map[string][]*record)
		}
		x.many[k] = []*record{first, rec}
	}
}

func (x *fieldIndex) remove(k string, rec *record) {
	list, ok := x.many[k]
	if !ok {
		if x.one.get(k) == rec {
			x.one.remove(k)
		}
		return
	}
	for i, r := range list {
		if r == rec {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 1 {
		delete(x.many, k)
		x.one.put(k, list[0])
	} else {
		x.many[k] = list
	}
}

// storeLocked returns the store of o, creating it. s.mu must be held.
func (s *Server) storeLocked(o *object) *objStore {
	if o.store != nil {
		return o.store
	}
	k := strings.ToLower(o.desc.Name)
	st := s.store[k]
	if st == nil {
		st = &objStore{byID: make(map[string]*record), indexed: o.indexed, index: make([]fieldIndex, len(o.indexed)), now: s.now}
		for i, f := range o.indexed {
			st.indexedPos = append(st.indexedPos, o.pos[f])
			st.index[i].one.pos, st.index[i].one.fold = o.pos[f], !f.CaseSensitive
		}
		s.store[k] = st
	}
	o.store = st
	return st
}

// fieldIndex returns the index of f, or nil when f has none.
func (st *objStore) fieldIndex(f *FieldDescribe) *fieldIndex {
	for i, x := range st.indexed {
		if x == f {
			return &st.index[i]
		}
	}
	return nil
}

func indexKey(f *FieldDescribe, v string) string {
	if f.CaseSensitive {
		return v
	}
	return strings.ToLower(v)
}

// generatedN decodes the counter of an id made by newIDLocked
// (prefix, "Hs", 10 base62 digits). Lookups by counter avoid hashing.
func generatedN(id string) (uint64, bool) {
	if len(id) < 15 || id[3] != 'H' || id[4] != 's' {
		return 0, false
	}
	var n uint64
	for i := 5; i < 15; i++ {
		c := id[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'Z':
			d = c - 'A' + 10
		case c >= 'a' && c <= 'z':
			d = c - 'a' + 36
		default:
			return 0, false
		}
		n = n*62 + uint64(d)
		if n > 1<<40 {
			return 0, false
		}
	}
	return n, true
}

// find returns the record with the given 15-character id, or nil.
func (st *objStore) find(id15 string) *record {
	if n, ok := generatedN(id15); ok {
		// generatedN matched all of id15 but its prefix.
		if r := st.byNAt(n); r != nil && r.obj().prefix == id15[:3] {
			return r
		}
	}
	return st.byID[id15]
}

const byNChunk = 4096

// byNAt returns the record with generated counter n, or nil.
func (st *objStore) byNAt(n uint64) *record {
	if n >= uint64(len(st.byN))*byNChunk {
		return nil
	}
	return st.byN[n/byNChunk][n%byNChunk]
}

// touch sets rec's SystemModstamp to now, or to the time of the ingest
// chunk being applied (txMod): every write (insert, update, delete) calls
// it.
//
// Why a chunk's records share one stamp: Salesforce applies a Bulk job's
// records in chunks, each one transaction, and a transaction's records
// get its commit time; here a chunk is applied under the server's lock,
// so one clock reading per chunk is that time. It also took the
// emulator's clock reads (about 4 % of its CPU in bench run-csv, issue
// 23) from one per record to one per chunk.
func (st *objStore) touch(rec *record) {
	switch {
	case st.txMod != 0:
		rec.mod = st.txMod
	case st.now != nil:
		rec.mod = st.now().UnixMilli()
	}
}

// add stores a new record and indexes it.
func (st *objStore) add(rec *record) {
	st.place(rec)
	for i, f := range st.indexed {
		if v, ok := rec.at(st.indexedPos[i]); ok && v != "" {
			st.index[i].add(indexKey(f, v), rec)
		}
	}
}

// place stores a new record without indexing it (see add).
func (st *objStore) place(rec *record) {
	st.touch(rec)
	if n := rec.n; !rec.named && n < uint64(len(st.byN))*byNChunk+1<<16 {
		for uint64(len(st.byN))*byNChunk <= n {
			st.byN = append(st.byN, make([]*record, byNChunk))
		}
		st.byN[n/byNChunk][n%byNChunk] = rec
	} else {
		st.byID[rec.id()[:15]] = rec
	}
	st.order.add(rec)
}

// addNamed stores a new record whose id is id (18 characters), not
// generated, and indexes it.
func (st *objStore) addNamed(rec *record, id string) {
	rec.named, rec.n = true, uint64(len(st.named))
	st.named = append(st.named, id)
	st.add(rec)
}

// unindex removes rec's entry for field f.
func (st *objStore) unindex(f *FieldDescribe, rec *record) {
	v, ok := rec.get(f)
	if !ok || v == "" {
		return
	}
	if x := st.fieldIndex(f); x != nil {
		x.remove(indexKey(f, v), rec)
	}
}

// update applies an update's changes (in column order) to a stored
// record, maintaining the indexes. A change that sets an indexed field
// to the value it holds leaves the index alone, and changes that set
// every value to the one the record holds leave its values alone: a
// repeated upsert of the same rows then costs no index work and no
// memory (issue 23: every update used to remove and re-add its keys,
// and rebuilt the record's values once per field).
func (st *objStore) update(rec *record, changes []change) {
	if len(changes) == 0 {
		return
	}
	if rec.holds(changes) {
		// Nothing to change or reindex: the write only stamps the record.
		st.touch(rec)
		return
	}
	for i, ch := range changes {
		for _, prev := range changes[:i] {
			if prev.pos == ch.pos {
				// A field set twice: one change at a time, as it comes.
				for _, ch := range changes {
					st.set(ch.f, slices.Contains(st.indexed, ch.f), rec, ch.v, ch.null)
				}
				return
			}
		}
	}
	st.touch(rec)
	// Unindex the keys that change; reindex them once the values are in.
	var reindexBuf [4]int
	reindex := reindexBuf[:0]
	for i, ch := range changes {
		k := slices.Index(st.indexed, ch.f)
		if k < 0 {
			continue
		}
		old, ok := rec.at(st.indexedPos[k])
		if ok && !ch.null && old == ch.v {
			continue // same value: same key, same place in the index
		}
		if ok && old != "" {
			st.index[k].remove(indexKey(ch.f, old), rec)
		}
		if !ch.null && ch.v != "" {
			reindex = append(reindex, i)
		}
	}
	rec.apply(changes)
	for _, i := range reindex {
		ch := changes[i]
		st.index[slices.Index(st.indexed, ch.f)].add(indexKey(ch.f, ch.v), rec)
	}
}

// set changes one field of a stored record, maintaining the index. null
// removes the value.
func (st *objStore) set(f *FieldDescribe, indexed bool, rec *record, v string, null bool) {
	st.touch(rec)
	if indexed {
		st.unindex(f, rec)
	}
	if null || v == "" {
		rec.del(f)
		return
	}
	rec.put(f, v)
	if indexed && v != "" {
		if x := st.fieldIndex(f); x != nil {
			x.add(indexKey(f, v), rec)
		}
	}
}

// lookup appends the live records whose field f equals v to dst and
// returns it. Callers pass a small stack buffer: the common answer is zero
// or one record.
func (st *objStore) lookup(dst []*record, f *FieldDescribe, v string) []*record {
	x := st.fieldIndex(f)
	if x == nil {
		// Not indexed: scan (only reached for pasted catalogs).
		for r := range st.order.all() {
			if !r.deleted && !r.removed && func() bool { x, _ := r.get(f); return strings.EqualFold(x, v) }() {
				dst = append(dst, r)
			}
		}
		return dst
	}
	k := indexKey(f, v)
	if list, ok := x.many[k]; ok {
		return append(dst, list...)
	}
	if r := x.one.get(k); r != nil {
		dst = append(dst, r)
	}
	return dst
}

func (st *objStore) softDelete(rec *record) {
	for _, f := range st.indexed {
		st.unindex(f, rec)
	}
	rec.deleted = true
	st.touch(rec)
}

func (st *objStore) hardDelete(rec *record) {
	if !rec.deleted {
		for _, f := range st.indexed {
			st.unindex(f, rec)
		}
	}
	rec.removed = true
	if n := rec.n; !rec.named && st.byNAt(n) == rec {
		st.byN[n/byNChunk][n%byNChunk] = nil
	} else {
		delete(st.byID, rec.id()[:15])
	}
	// Compact order lazily: drop removed records when they pile up.
	removed := 0
	for r := range st.order.all() {
		if r.removed {
			removed++
		}
	}
	if removed > st.order.n/2 {
		var live recordList
		for r := range st.order.all() {
			if !r.removed {
				live.add(r)
			}
		}
		st.order = live
	}
}

// Records returns copies of the live (not deleted) records of object in
// insertion order. Each map holds the 18-character "Id" and every field
// that has a value, keyed by canonical field name. Unknown objects give nil.
func (s *Server) Records(object string) []map[string]string {
	return s.records(object, false)
}

// DeletedRecords returns copies of the soft-deleted records of object
// (the recycle bin).
func (s *Server) DeletedRecords(object string) []map[string]string {
	return s.records(object, true)
}

func (s *Server) records(object string, deleted bool) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.store[strings.ToLower(object)]
	if st == nil {
		return nil
	}
	var out []map[string]string
	for r := range st.order.all() {
		if r.removed || r.deleted != deleted {
			continue
		}
		out = append(out, r.toMap())
	}
	return out
}

// AddRecord stores a record directly (bypassing validation) and returns
// its new 18-character id. Field names are matched case-insensitively
// against the object's describe; unknown fields are an error.
func (s *Server) AddRecord(object string, fields map[string]string) (string, error) {
	o := s.objects[strings.ToLower(object)]
	if o == nil {
		return "", &unknownObjectError{object}
	}
	rec := &record{vals: &recVals{obj: o}}
	var stamp time.Time
	for k, v := range fields {
		f := o.fields[strings.ToLower(k)]
		if f == nil || f.Name == "Id" {
			return "", &unknownFieldError{object, k}
		}
		if f.Name == "SystemModstamp" {
			t, ok := parseSOQLTime(v)
			if !ok {
				return "", fmt.Errorf("salesforcetest: SystemModstamp %q is not a datetime", v)
			}
			stamp = t
			continue
		}
		if v != "" {
			rec.put(f, v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.n = s.newCounterLocked(o.prefix)
	s.storeLocked(o).add(rec)
	if !stamp.IsZero() {
		rec.mod = stamp.UnixMilli()
	}
	return rec.id(), nil
}

type unknownObjectError struct{ object string }

func (e *unknownObjectError) Error() string { return "salesforcetest: unknown object " + e.object }

type unknownFieldError struct{ object, field string }

func (e *unknownFieldError) Error() string {
	return "salesforcetest: object " + e.object + " has no field " + e.field
}
