package salesforcetest

import (
	"strings"
)

// record is one stored sObject record. fields holds the non-null values
// (a small sparse list: records rarely have more than a few dozen fields,
// and a slice is much cheaper than a map at bulk-load rates).
type record struct {
	id      string // 18 characters
	fields  []fieldVal
	deleted bool // soft-deleted (recycle bin)
	removed bool // hard-deleted
}

type fieldVal struct {
	f *FieldDescribe
	v string
}

// get returns the value of f and whether it is set.
func (r *record) get(f *FieldDescribe) (string, bool) {
	for i := range r.fields {
		if r.fields[i].f == f {
			return r.fields[i].v, true
		}
	}
	return "", false
}

// put sets f to v (v != "").
func (r *record) put(f *FieldDescribe, v string) {
	for i := range r.fields {
		if r.fields[i].f == f {
			r.fields[i].v = v
			return
		}
	}
	r.fields = append(r.fields, fieldVal{f, v})
}

// del removes the value of f (sets it to null).
func (r *record) del(f *FieldDescribe) {
	for i := range r.fields {
		if r.fields[i].f == f {
			r.fields = append(r.fields[:i], r.fields[i+1:]...)
			return
		}
	}
}

// toMap returns the record as field name → value, including "Id".
func (r *record) toMap() map[string]string {
	m := make(map[string]string, len(r.fields)+1)
	for _, fv := range r.fields {
		m[fv.f.Name] = fv.v
	}
	m["Id"] = r.id
	return m
}

// objStore holds the records of one object.
type objStore struct {
	byID  map[string]*record // 15-char id → record, for ids not in byN
	byN   []*record          // generated ids ("pppHs" + base62 counter) by counter
	order []*record
	// index maps lower-case field name → key → records for every indexed
	// field (idLookup, externalId or unique).
	index map[string]map[string][]*record
}

// storeLocked returns the store of o, creating it. s.mu must be held.
func (s *Server) storeLocked(o *object) *objStore {
	if o.store != nil {
		return o.store
	}
	k := strings.ToLower(o.desc.Name)
	st := s.store[k]
	if st == nil {
		st = &objStore{byID: make(map[string]*record), index: make(map[string]map[string][]*record)}
		for _, f := range o.indexed {
			st.index[strings.ToLower(f.Name)] = make(map[string][]*record)
		}
		s.store[k] = st
	}
	o.store = st
	return st
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
	if n, ok := generatedN(id15); ok && n < uint64(len(st.byN)) {
		if r := st.byN[n]; r != nil && r.id[:15] == id15 {
			return r
		}
	}
	return st.byID[id15]
}

// add stores a new record and indexes it.
func (st *objStore) add(o *object, rec *record) {
	if n, ok := generatedN(rec.id); ok && n < uint64(len(st.byN))+1<<16 {
		for uint64(len(st.byN)) <= n {
			st.byN = append(st.byN, nil)
		}
		st.byN[n] = rec
	} else {
		st.byID[rec.id[:15]] = rec
	}
	st.order = append(st.order, rec)
	for _, f := range o.indexed {
		if v, ok := rec.get(f); ok && v != "" {
			m := st.index[strings.ToLower(f.Name)]
			k := indexKey(f, v)
			m[k] = append(m[k], rec)
		}
	}
}

// unindex removes rec's entry for field f.
func (st *objStore) unindex(f *FieldDescribe, rec *record) {
	v, ok := rec.get(f)
	if !ok || v == "" {
		return
	}
	m := st.index[strings.ToLower(f.Name)]
	k := indexKey(f, v)
	list := m[k]
	for i, r := range list {
		if r == rec {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(m, k)
	} else {
		m[k] = list
	}
}

// set changes one field of a stored record, maintaining the index. null
// removes the value.
func (st *objStore) set(f *FieldDescribe, indexed bool, rec *record, v string, null bool) {
	if indexed {
		st.unindex(f, rec)
	}
	if null || v == "" {
		rec.del(f)
		return
	}
	rec.put(f, v)
	if indexed && v != "" {
		m := st.index[strings.ToLower(f.Name)]
		k := indexKey(f, v)
		m[k] = append(m[k], rec)
	}
}

// lookup returns the live records whose field f equals v.
func (st *objStore) lookup(f *FieldDescribe, v string) []*record {
	m := st.index[strings.ToLower(f.Name)]
	if m == nil {
		// Not indexed: scan (only reached for pasted catalogs).
		var out []*record
		for _, r := range st.order {
			if !r.deleted && !r.removed && func() bool { x, _ := r.get(f); return strings.EqualFold(x, v) }() {
				out = append(out, r)
			}
		}
		return out
	}
	return m[indexKey(f, v)]
}

func (st *objStore) softDelete(o *object, rec *record) {
	for _, f := range o.indexed {
		st.unindex(f, rec)
	}
	rec.deleted = true
}

func (st *objStore) hardDelete(o *object, rec *record) {
	if !rec.deleted {
		for _, f := range o.indexed {
			st.unindex(f, rec)
		}
	}
	rec.removed = true
	if n, ok := generatedN(rec.id); ok && n < uint64(len(st.byN)) && st.byN[n] == rec {
		st.byN[n] = nil
	} else {
		delete(st.byID, rec.id[:15])
	}
	// Compact order lazily: drop removed records when they pile up.
	removed := 0
	for _, r := range st.order {
		if r.removed {
			removed++
		}
	}
	if removed > len(st.order)/2 {
		live := st.order[:0]
		for _, r := range st.order {
			if !r.removed {
				live = append(live, r)
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
	for _, r := range st.order {
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
	rec := &record{}
	for k, v := range fields {
		f := o.fields[strings.ToLower(k)]
		if f == nil || f.Name == "Id" {
			return "", &unknownFieldError{object, k}
		}
		if v != "" {
			rec.put(f, v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.id = s.newIDLocked(o.prefix)
	s.storeLocked(o).add(o, rec)
	return rec.id, nil
}

type unknownObjectError struct{ object string }

func (e *unknownObjectError) Error() string { return "salesforcetest: unknown object " + e.object }

type unknownFieldError struct{ object, field string }

func (e *unknownFieldError) Error() string {
	return "salesforcetest: object " + e.object + " has no field " + e.field
}
