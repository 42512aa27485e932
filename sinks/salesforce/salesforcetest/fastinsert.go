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
	kindID       valueKind = iota // the Id column: any value fails an insert
	kindText                      // string-like: only the length is checked
	kindBool                      // boolean: "true" and "false" are stored as they are
	kindDate                      // date: YYYY-MM-DD stored as it is
	kindInt                       // int: up to 9 digits in canonical form stored as they are
	kindLong                      // long: up to 18 digits in canonical form stored as they are
	kindDateTime                  // datetime: YYYY-MM-DDTHH:MM:SS.sssZ stored as it is
	kindDecimal                   // double, currency, percent: canonical decimals stored as they are
	kindEmail                     // email: the length and the address checked
	kindPicklist                  // restricted picklist: the length and the value checked
	kindOther                     // anything else: checkValueLocked decides
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
	case "datetime":
		return kindDateTime
	case "double", "currency", "percent":
		return kindDecimal
	case "email":
		return kindEmail
	case "time", "reference":
		return kindOther
	case "picklist":
		if f.RestrictedPicklist {
			return kindPicklist
		}
	case "multipicklist":
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
		case kindDateTime:
			if !isCanonicalDateTime(v) {
				return nil
			}
		case kindDecimal:
			if !isCanonicalDecimal(v) {
				return nil
			}
		case kindEmail:
			// Longer in bytes may still fit in runes: checkValueLocked decides.
			if c.f.Length > 0 && len(v) > c.f.Length || !validEmail(v) {
				return nil
			}
		case kindPicklist:
			if c.f.Length > 0 && len(v) > c.f.Length || !picklistHas(c.f, v) {
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

// isCanonicalDateTime reports whether v is a datetime that checkValueLocked
// stores as it is, checked without its time.Parse and Format (they were a
// third of the emulator's CPU in a bench run with one datetime column):
// exactly "YYYY-MM-DDTHH:MM:SS.sssZ" with a valid date (isPlainDate) and
// time. Any other spelling goes through checkValueLocked.
func isCanonicalDateTime(v string) bool {
	if len(v) != 24 || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != '.' || v[23] != 'Z' ||
		!isPlainDate(v[:10]) {
		return false
	}
	for _, i := range [...]int{11, 12, 14, 15, 17, 18, 20, 21, 22} {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	hour := int(v[11]-'0')*10 + int(v[12]-'0')
	return hour < 24 && v[14] < '6' && v[17] < '6'
}

// isCanonicalDecimal reports whether v is a decimal that checkValueLocked
// stores as it is (strconv.AppendFloat(x, 'f', -1, 64) of its value x
// spells it v), checked without parsing and formatting it: an optional
// "-", an integer part without leading zeros, an optional fraction without
// trailing zeros, and at most 15 digits in all. Up to 15 significant
// digits a decimal is the only one that short to parse to its float64, so
// the shortest spelling AppendFloat finds is v's digits again. "-0" and
// anything else go through checkValueLocked.
func isCanonicalDecimal(v string) bool {
	i := 0
	if v != "" && v[0] == '-' {
		i++
	}
	start, nonzero := i, false
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		nonzero = nonzero || v[i] != '0'
		i++
	}
	digits := i - start
	if digits == 0 || digits > 1 && v[start] == '0' {
		return false
	}
	if i < len(v) {
		if v[i] != '.' {
			return false
		}
		i++
		frac := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			nonzero = nonzero || v[i] != '0'
			i++
		}
		if i != len(v) || i == frac || v[i-1] == '0' {
			return false
		}
		digits += i - frac
	}
	return digits <= 15 && (nonzero || start == 0)
}
