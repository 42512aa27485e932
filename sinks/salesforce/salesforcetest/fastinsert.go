package salesforcetest

// fastInsert is an insert job's plan for its common row: every value
// stored as uploaded, no error. Whether a row is one is decided with
// checks resolved once per job (per column: the field, how its values are
// checked, whether it is required or unique), and such a row is stored
// without the general path's per-value bookkeeping (applyRowLocked's
// changes, its required and uniqueness loops, newRecord's value copies).
// Any other row (an error, "#N/A", a value stored reformatted) goes
// through applyRowLocked, which gives it exactly the result it always
// had: the fast path changes nothing before it has accepted a row.
type fastInsert struct {
	cols []fastCol
	// keys are, per index of the store (objStore.indexed), the column
	// holding the indexed field, or -1: a record reading its values from
	// its row has no value for a field without a column.
	keys []int
	// touch are, per index, the plan's touchCol of its column (whose
	// hashes the uniqueness lookup reuses), or nil.
	touch []*touchCol
}

// fastCol is how fastInsert checks the values of one column.
type fastCol struct {
	f        *FieldDescribe
	kind     valueKind
	required bool // an empty value fails the row (REQUIRED_FIELD_MISSING)
}

// valueKind says how checkValueLocked treats the values of a field, for
// the checks fastInsert makes without it.
type valueKind uint8

const (
	kindID    valueKind = iota // the Id column: any value fails an insert
	kindText                   // string-like: only the length is checked
	kindBool                   // boolean: "true" and "false" are stored as they are
	kindDate                   // date: YYYY-MM-DD stored as it is
	kindInt                    // int: up to 9 digits in canonical form stored as they are
	kindLong                   // long: up to 18 digits in canonical form stored as they are
	kindOther                  // anything else: checkValueLocked decides
)

// kindOf returns the valueKind of f (not the Id column), mirroring
// checkValueLocked's switch.
func kindOf(f *FieldDescribe) valueKind {
	switch f.Type {
	case "boolean":
		return kindBool
	case "date":
		return kindDate
	case "int":
		return kindInt
	case "long":
		return kindLong
	case "double", "currency", "percent", "datetime", "time", "reference", "email":
		return kindOther
	case "picklist", "multipicklist":
		if f.RestrictedPicklist {
			return kindOther
		}
	}
	return kindText
}

// newFastInsert returns the fast plan of an insert job with plan p into
// st, or nil when no row could take it: records that cannot read their
// values from their rows (p.src nil), a column of a field that cannot be
// created, a required field without a column, or a unique field without
// an index (looked up by a scan).
func newFastInsert(o *object, p *plan, st *objStore) *fastInsert {
	if p.src == nil {
		return nil
	}
	fi := &fastInsert{
		cols:  make([]fastCol, len(p.cols)),
		keys:  make([]int, len(st.indexed)),
		touch: make([]*touchCol, len(st.indexed)),
	}
	for i, c := range p.cols {
		if c.isID {
			fi.cols[i] = fastCol{kind: kindID}
			continue
		}
		if !c.field.Createable || c.field.Unique && st.fieldIndex(c.field) == nil {
			return nil
		}
		fi.cols[i] = fastCol{f: c.field, kind: kindOf(c.field)}
	}
	for _, f := range o.required {
		col := p.src.src.col[o.pos[f]]
		if col < 0 {
			return nil
		}
		fi.cols[col].required = true
	}
	for i := range st.indexed {
		fi.keys[i] = int(p.src.src.col[st.indexedPos[i]])
		for t := range p.touch {
			if tc := &p.touch[t]; tc.x == &st.index[i].one && tc.col == fi.keys[i] {
				fi.touch[i] = tc
			}
		}
	}
	return fi
}

// insertLocked inserts the row vals (row r of the job's upload) when it is
// one fastInsert accepts, and returns the new record, or nil with nothing
// changed. s.mu must be held.
func (fi *fastInsert) insertLocked(s *Server, o *object, p *plan, st *objStore, vals []string, r int) *record {
	for i := range fi.cols {
		c := &fi.cols[i]
		v := vals[i]
		if v == "" {
			if c.required {
				return nil
			}
			continue
		}
		if v == "#N/A" {
			return nil
		}
		switch c.kind {
		case kindID:
			return nil
		case kindText:
			if c.f.Length > 0 && len(v) > c.f.Length {
				return nil
			}
		case kindBool:
			if v != "true" && v != "false" {
				return nil
			}
		case kindDate:
			if !isPlainDate(v) {
				return nil
			}
		case kindInt:
			if !isCanonicalInt(v, 9) {
				return nil
			}
		case kindLong:
			if !isCanonicalInt(v, 18) {
				return nil
			}
		default:
			if nv, e := s.checkValueLocked(c.f, v, i); e != "" || nv != v {
				return nil
			}
		}
	}
	// Uniqueness: the keys are made once, for the lookups and the adds.
	var keyBuf [8]string
	keys := keyBuf[:0]
	for i, col := range fi.keys {
		k := ""
		if col >= 0 && vals[col] != "" {
			f := st.indexed[i]
			k = indexKey(f, vals[col])
			if f.Unique {
				x := &st.index[i]
				if _, dup := x.many[k]; dup || x.one.getHashed(k, fi.touch[i].hash(r, k)) != nil {
					return nil
				}
			}
		}
		keys = append(keys, k)
	}
	rec := p.newRecord(o, nil, true, r)
	rec.n = s.newCounterLocked(o.prefix)
	st.place(rec)
	for i, k := range keys {
		if k != "" {
			st.index[i].add(k, rec)
		}
	}
	return rec
}

// isCanonicalInt reports whether v is an integer of at most digits digits
// spelled as strconv.AppendInt spells it (no sign but "-", no leading
// zeros, no "-0"): one that checkValueLocked stores as it is, since at
// most 9 digits fit an int and 18 a long.
func isCanonicalInt(v string, digits int) bool {
	if v != "" && v[0] == '-' {
		v = v[1:]
		if v == "0" {
			return false
		}
	}
	if v == "" || len(v) > digits || v[0] == '0' && len(v) > 1 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}
