package salesforcetest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// column is one resolved CSV header column.
type column struct {
	name   string         // header text as uploaded
	field  *FieldDescribe // the field written (the reference field for relationship columns)
	rel    bool           // a relationship column: Rel.Field or Type:Rel.Field
	target *object        // parent object of a relationship column
	key    *FieldDescribe // parent lookup field; nil means Id
	isID   bool           // the Id column
	pos    uint32         // field's index in the object's fieldList
}

// plan is the resolved header of an ingest job.
type plan struct {
	cols     []column
	idCol    int // index of the Id column or -1
	extCol   int // index of the upsert external-id column or -1
	extField *FieldDescribe
	extIsID  bool
	row      []string   // scratch: the values of the row being applied
	src      *recVals   // for inserts that can point at their row (shared by their records); nil if none can
	noVals   *recVals   // shared by the inserted records without values
	recSlab  []record   // records are carved from slabs to save allocations
	valsSlab []recVals  // so are their values,
	refSlab  []fieldRef // their field lists
	valSlab  []byte     // and their values (never rewritten once carved)
	touch    []touchCol // the indexed columns, for touchRows
	touched  uint64     // the sum of the slots touchRows loaded
}

const slabSize = 1024

// newRecord returns a zeroed record of o holding the non-null values of
// changes, carved from the plan's slabs.
//
// verbatim says that the values are exactly the row's cells (no
// relationship columns, "#N/A" or reformatted values); the record then
// points at row r of the upload instead of copying them.
func (p *plan) newRecord(o *object, changes []change, verbatim bool, r int) *record {
	if len(p.recSlab) == cap(p.recSlab) {
		p.recSlab = make([]record, 0, slabSize)
	}
	p.recSlab = p.recSlab[:len(p.recSlab)+1]
	rec := &p.recSlab[len(p.recSlab)-1]
	if verbatim && p.src != nil {
		rec.vals, rec.row = p.src, int32(r)
		return rec
	}
	n, size := 0, 0
	for _, ch := range changes {
		if !ch.null && ch.v != "" {
			n++
			size += len(ch.v)
		}
	}
	if n == 0 {
		if p.noVals == nil {
			p.noVals = &recVals{obj: o}
		}
		rec.vals = p.noVals
		return rec
	}
	if cap(p.refSlab)-len(p.refSlab) < n {
		p.refSlab = make([]fieldRef, 0, max(slabSize, n))
	}
	if cap(p.valSlab)-len(p.valSlab) < size {
		p.valSlab = make([]byte, 0, max(64*slabSize, size))
	}
	refs := p.refSlab[len(p.refSlab) : len(p.refSlab) : len(p.refSlab)+n]
	start := len(p.valSlab)
	for _, ch := range changes {
		if !ch.null && ch.v != "" {
			p.valSlab = append(p.valSlab, ch.v...)
			refs = append(refs, fieldRef{ch.pos, uint32(len(p.valSlab) - start)})
		}
	}
	p.refSlab = p.refSlab[:len(p.refSlab)+n]
	if len(p.valsSlab) == cap(p.valsSlab) {
		p.valsSlab = make([]recVals, 0, slabSize)
	}
	p.valsSlab = append(p.valsSlab, recVals{obj: o, vals: unsafe.String(&p.valSlab[start], size), refs: refs})
	rec.vals = &p.valsSlab[len(p.valsSlab)-1]
	return rec
}

type change struct {
	f    *FieldDescribe
	pos  uint32 // f's index in the object's fieldList
	v    string
	null bool
}

// rowSource returns the values of the records of o that read them from a
// row of t, for the plan's columns, or nil when a record cannot read its
// values from a row: relationship columns (their values are resolved ids)
// or a field named twice.
func (p *plan) rowSource(o *object, t *table) *recVals {
	src := &rowSource{t: t, col: make([]int32, len(o.fieldList)), cols: make([]int32, len(p.cols))}
	for i := range src.col {
		src.col[i] = -1
	}
	for i, c := range p.cols {
		src.cols[i] = -1
		if c.isID {
			continue
		}
		if c.rel || src.col[c.pos] >= 0 {
			return nil
		}
		src.col[c.pos], src.cols[i] = int32(i), int32(c.pos)
	}
	return &recVals{obj: o, src: src}
}

// planHeader resolves the header against the job's object; a non-empty
// message fails the whole job (contract §3.1, §5.3).
func (s *Server) planHeader(j *job, header []string) (*plan, string) {
	o := j.object
	p := &plan{idCol: -1, extCol: -1}
	if j.operation == "delete" || j.operation == "hardDelete" {
		if len(header) != 1 || !strings.EqualFold(header[0], "Id") {
			return nil, "InvalidBatch : The 'delete' batch must contain only ids"
		}
	}
	notFound := func(h string) (*plan, string) { return nil, "InvalidBatch : Field name not found : " + h }
	for i, h := range header {
		c := column{name: h}
		switch {
		case strings.ContainsAny(h, ".:"):
			typ, rest, hasType := strings.Cut(h, ":")
			if !hasType {
				rest, typ = typ, ""
			}
			relName, keyName, ok := strings.Cut(rest, ".")
			if !ok || strings.Contains(keyName, ".") {
				return notFound(h)
			}
			f := o.rels[strings.ToLower(relName)]
			if f == nil {
				return notFound(h)
			}
			poly := isPolymorphic(f)
			var target *object
			switch {
			case hasType && !poly:
				return nil, "InvalidBatch : type is not needed for non polymorphic foreign key references: " + relName
			case !hasType && poly:
				return nil, "InvalidBatch : Unable to find relationship: " + relName
			case hasType:
				for _, ref := range f.ReferenceTo {
					if strings.EqualFold(ref, typ) {
						target = s.objects[strings.ToLower(ref)]
					}
				}
				if target == nil {
					return nil, "InvalidBatch : Unable to find relationship: " + relName
				}
			default:
				if len(f.ReferenceTo) == 0 {
					return notFound(h)
				}
				target = s.objects[strings.ToLower(f.ReferenceTo[0])]
				if target == nil {
					return notFound(h)
				}
			}
			c.rel, c.field, c.target = true, f, target
			if !strings.EqualFold(keyName, "Id") {
				kf := target.fields[strings.ToLower(keyName)]
				if kf == nil || !(kf.IDLookup || kf.ExternalID) {
					return notFound(h)
				}
				c.key = kf
			}
		default:
			f := o.fields[strings.ToLower(h)]
			if f == nil {
				return notFound(h)
			}
			c.field = f
			if strings.EqualFold(f.Name, "Id") {
				c.isID = true
				p.idCol = i
			}
		}
		c.pos = o.pos[c.field]
		p.cols = append(p.cols, c)
	}
	if j.operation == "upsert" {
		if strings.EqualFold(j.extID, "Id") {
			p.extIsID = true
			p.extCol = p.idCol
		} else {
			p.extField = o.fields[strings.ToLower(j.extID)]
			for i, c := range p.cols {
				if !c.rel && c.field == p.extField {
					p.extCol = i
				}
			}
		}
	}
	return p, ""
}

func rowErr(code, msg string, fields ...string) string {
	return code + ":" + msg + ":" + strings.Join(fields, ",") + " --"
}

func foreignKeyNotFound(v string, key string, obj string) string {
	return fmt.Sprintf("INVALID_FIELD:Foreign key external ID: %s not found for field %s in entity %s:--", v, key, obj)
}

// findByIDLocked resolves a record id for update/delete/upsert. It
// returns the record or an sf__Error. s.mu must be held.
func (s *Server) findByIDLocked(o *object, v string) (*record, string) {
	id15, ok := normalizeID(v)
	if !ok || id15[:3] != o.prefix {
		return nil, rowErr("MALFORMED_ID", o.desc.Label+" ID: id value of incorrect type: "+v, "Id")
	}
	rec := s.storeLocked(o).find(id15)
	if rec == nil {
		return nil, "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
	}
	if rec.deleted {
		return rec, "ENTITY_IS_DELETED:entity is deleted:--"
	}
	return rec, ""
}

// rowVals is one row of a table, as applyRowLocked reads it: row r,
// split into vals.
type rowVals struct {
	vals []string
	r    int
}

// at returns value c of the row.
func (v rowVals) at(c int) string { return v.vals[c] }

// applyRowLocked validates and saves one row. s.mu must be held.
func (s *Server) applyRowLocked(j *job, p *plan, vals rowVals, lockRate float64) rowResult {
	o := j.object
	res := rowResult{row: int32(vals.r)}
	if lockRate > 0 && s.rng.Float64() < lockRate {
		id := ""
		if p.idCol >= 0 {
			id = To18(vals.at(p.idCol))
		}
		res.err = "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: " + id + ":--"
		return res
	}
	st := s.storeLocked(o)
	var rec *record
	switch j.operation {
	case "insert":
		if p.idCol >= 0 && vals.at(p.idCol) != "" {
			res.err = rowErr("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", "Id")
			return res
		}
	case "update", "delete", "hardDelete":
		if p.idCol < 0 || vals.at(p.idCol) == "" {
			res.err = "MISSING_ARGUMENT:Id not specified in an update call:--"
			if j.operation != "update" {
				res.err = "MISSING_ARGUMENT:Id not specified in a delete call:--"
			}
			return res
		}
		var e string
		rec, e = s.findByIDLocked(o, vals.at(p.idCol))
		res.rec = rec
		if e != "" && !(j.operation == "hardDelete" && rec != nil && rec.deleted) {
			res.err = e
			return res
		}
		if j.operation == "delete" {
			st.softDelete(rec)
			return res
		}
		if j.operation == "hardDelete" {
			st.hardDelete(rec)
			return res
		}
	case "upsert":
		switch {
		case p.extIsID:
			if p.idCol >= 0 && vals.at(p.idCol) != "" {
				var e string
				rec, e = s.findByIDLocked(o, vals.at(p.idCol))
				res.rec = rec
				if e != "" {
					res.err = e
					return res
				}
			}
		default:
			if p.extCol < 0 || vals.at(p.extCol) == "" || vals.at(p.extCol) == "#N/A" {
				res.err = fmt.Sprintf("MISSING_ARGUMENT:%s not specified:--", p.extField.Name)
				return res
			}
			var buf [1]*record
			matches := st.lookup(buf[:0], p.extField, vals.at(p.extCol))
			if len(matches) > 1 {
				ids := make([]string, len(matches))
				for i, m := range matches {
					ids[i] = m.id()
				}
				res.err = fmt.Sprintf("DUPLICATE_EXTERNAL_ID:%s: more than one record found for external id field: [%s]:--",
					o.desc.Label, strings.Join(ids, ", "))
				return res
			}
			if len(matches) == 1 {
				rec = matches[0]
				res.rec = rec
			}
		}
	}
	insert := rec == nil

	// Field values, in column order; the first error wins.
	// On the stack for the common widths: writing the values' pointers
	// into a scratch slice on the heap cost a write barrier each while
	// the collector marks, which it often does during a large job.
	var changesBuf [16]change
	changes := changesBuf[:0]
	verbatim := true // every value is its cell, unchanged (see newRecord)
	for i, c := range p.cols {
		v := vals.at(i)
		if v == "" || c.isID {
			continue
		}
		f := c.field
		if insert && !f.Createable || !insert && !f.Updateable {
			res.err = rowErr("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: "+f.Name+
				". Please check the security settings of this field and verify that it is read/write for your profile or permission set.", f.Name)
			return res
		}
		if v == "#N/A" {
			verbatim = false
			changes = append(changes, change{f: f, pos: c.pos, null: true})
			continue
		}
		if c.rel {
			verbatim = false
			id, e := s.resolveParentLocked(c, v)
			if e != "" {
				res.err = e
				return res
			}
			changes = append(changes, change{f: f, pos: c.pos, v: id})
			continue
		}
		nv, e := s.checkValueLocked(f, v, i)
		if e != "" {
			res.err = e
			return res
		}
		verbatim = verbatim && nv == v
		changes = append(changes, change{f: f, pos: c.pos, v: nv})
	}

	// Required fields.
	var missing []string
	for _, f := range o.required {
		var val string
		var set, null bool
		for _, ch := range changes {
			if ch.f == f {
				set, null, val = true, ch.null, ch.v
			}
		}
		if insert && (!set || null || val == "") || !insert && set && null {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		res.err = rowErr("REQUIRED_FIELD_MISSING", "Required fields are missing: ["+strings.Join(missing, ", ")+"]", missing...)
		return res
	}

	// Uniqueness.
	for _, ch := range changes {
		if !ch.f.Unique || ch.null {
			continue
		}
		var buf [1]*record
		for _, other := range st.lookup(buf[:0], ch.f, ch.v) {
			if other != rec {
				res.err = fmt.Sprintf("DUPLICATE_VALUE:duplicate value found: %s duplicates value on record with id: %s:--", ch.f.Name, other.id())
				return res
			}
		}
	}

	if insert {
		rec = p.newRecord(o, changes, verbatim, vals.r)
		rec.n = s.newCounterLocked(o.prefix)
		st.add(rec)
		res.rec, res.created = rec, true
		return res
	}
	st.update(rec, changes)
	res.rec = rec
	return res
}

// resolveParentLocked resolves a relationship column value to the parent's
// 18-character id. s.mu must be held.
func (s *Server) resolveParentLocked(c column, v string) (string, string) {
	pst := s.storeLocked(c.target)
	if c.key == nil {
		id15, ok := normalizeID(v)
		if !ok || id15[:3] != c.target.prefix {
			return "", rowErr("MALFORMED_ID", c.field.Label+": id value of incorrect type: "+v, c.field.Name)
		}
		rec := pst.find(id15)
		if rec == nil || rec.deleted {
			return "", foreignKeyNotFound(v, "Id", c.target.desc.Name)
		}
		return rec.id(), ""
	}
	var buf, liveBuf [1]*record
	live := liveBuf[:0]
	for _, m := range pst.lookup(buf[:0], c.key, v) {
		if !m.deleted && !m.removed {
			live = append(live, m)
		}
	}
	switch len(live) {
	case 0:
		return "", foreignKeyNotFound(v, c.key.Name, c.target.desc.Name)
	case 1:
		return live[0].id(), ""
	}
	return "", fmt.Sprintf("INVALID_FIELD:Foreign key external ID: %s matched more than one record for field %s in entity %s:--",
		v, c.key.Name, c.target.desc.Name)
}

// xsdType names the XSD type of a field in deserialization errors.
func xsdType(t string) string {
	switch t {
	case "datetime":
		return "dateTime"
	case "currency", "percent":
		return "double"
	}
	return t
}

// checkValueLocked validates v for field f (at 0-based CSV column col) and
// returns the value to store or an sf__Error. s.mu must be held.
func (s *Server) checkValueLocked(f *FieldDescribe, v string, col int) (string, string) {
	deser := func() (string, string) {
		return "", fmt.Sprintf("INVALID_FIELD:Failed to deserialize field at col %d. Due to, '%s' is not a valid value for the type xsd:%s:%s --",
			col, v, xsdType(f.Type), f.Name)
	}
	switch f.Type {
	case "boolean":
		switch strings.ToLower(v) {
		case "true":
			return "true", ""
		case "false":
			return "false", ""
		}
		return deser()
	case "int", "long":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || f.Type == "int" && (n > 1<<31-1 || n < -1<<31) {
			return deser()
		}
		return canonical(v, strconv.AppendInt(make([]byte, 0, 24), n, 10)), ""
	case "double", "currency", "percent":
		if isCanonicalDecimal(v) {
			return v, ""
		}
		nv, ok := decimalValue(v)
		if !ok {
			return deser()
		}
		return nv, ""
	case "date":
		if !isPlainDate(v) && (len(v) != 10 || !parsesAsDate(v)) {
			return deser()
		}
		return v, ""
	case "datetime":
		if isCanonicalDateTime(v) {
			return v, ""
		}
		nv, ok := dateTimeValue(v)
		if !ok {
			return deser()
		}
		return nv, ""
	case "time":
		for _, layout := range []string{"15:04:05.000Z", "15:04:05Z", "15:04:05.000", "15:04:05", "15:04"} {
			if _, err := time.Parse(layout, v); err == nil {
				return v, ""
			}
		}
		return deser()
	case "reference":
		id15, ok := normalizeID(v)
		valid := false
		var target *object
		if ok {
			for _, ref := range f.ReferenceTo {
				if t := s.objects[strings.ToLower(ref)]; t != nil && t.prefix == id15[:3] {
					valid, target = true, t
				}
			}
		}
		if !valid {
			return "", rowErr("MALFORMED_ID", f.Label+": id value of incorrect type: "+v, f.Name)
		}
		rec := s.storeLocked(target).find(id15)
		if rec == nil || rec.deleted {
			return "", "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--"
		}
		return rec.id(), ""
	}
	// String-like types.
	// A value has at most as many runes as bytes: most need no count.
	if f.Length > 0 && len(v) > f.Length && utf8.RuneCountInString(v) > f.Length {
		return "", rowErr("STRING_TOO_LONG", fmt.Sprintf("%s: data value too large: %s (max length=%d)", f.Label, v, f.Length), f.Name)
	}
	switch f.Type {
	case "email":
		if !validEmail(v) {
			return "", rowErr("INVALID_EMAIL_ADDRESS", f.Label+": invalid email address: "+v, f.Name)
		}
	case "picklist", "multipicklist":
		if f.RestrictedPicklist {
			vals := []string{v}
			if f.Type == "multipicklist" {
				vals = strings.Split(v, ";")
			}
			for _, x := range vals {
				if !picklistHas(f, x) {
					return "", rowErr("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value for restricted picklist field: "+x, f.Name)
				}
			}
		}
	}
	return v, ""
}

// decimalValue returns the stored form of the double, currency or percent
// value v, and whether v is one: the reference isCanonicalDecimal agrees
// with (it answers the common values without parsing them).
func decimalValue(v string) (string, bool) {
	if !isDecimal(v) {
		return "", false
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return "", false
	}
	return canonical(v, strconv.AppendFloat(make([]byte, 0, 32), x, 'f', -1, 64)), true
}

// dateTimeValue returns the stored form of the datetime value v (UTC,
// milliseconds), and whether v is one: the reference isCanonicalDateTime
// agrees with (it answers the common values without parsing them).
func dateTimeValue(v string) (string, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04:05.999999999-0700", v)
	}
	if err != nil {
		return "", false
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z"), true
}

// validEmail reports whether v passes the emulator's email check: a
// non-empty local part and domain around an "@", a "." in the domain, and
// no spaces, commas or semicolons.
func validEmail(v string) bool {
	at := strings.IndexByte(v, '@')
	return at > 0 && at < len(v)-1 && !strings.ContainsAny(v, " ,;") && strings.Contains(v[at+1:], ".")
}

// canonical returns the formatted value b, reusing v when it is already
// spelled that way (the usual case: no string is allocated per value).
func canonical(v string, b []byte) string {
	if string(b) == v {
		return v
	}
	return string(b)
}

// parsesAsDate reports whether time.Parse accepts v as "2006-01-02".
func parsesAsDate(v string) bool {
	_, err := time.Parse("2006-01-02", v)
	return err == nil
}

// isPlainDate reports whether v is "YYYY-MM-DD" with digits only and a
// valid day: exactly the common inputs time.Parse("2006-01-02") accepts,
// checked without it (the date check ran for every row and value). Other
// spellings it may accept (signed years) still go through time.Parse.
func isPlainDate(v string) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	n := 0
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			continue
		}
		c := v[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	year, month, day := n/10000, n/100%100, n%100
	if month < 1 || month > 12 || day < 1 {
		return false
	}
	// Days in the month of the proleptic Gregorian calendar, time's.
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}

func picklistHas(f *FieldDescribe, v string) bool {
	for _, p := range f.PicklistValues {
		if p.Active && p.Value == v {
			return true
		}
	}
	return false
}

// isDecimal accepts [+-]digits[.digits][e[+-]digits] with at least one
// digit, and nothing else (no thousands separators, Inf or NaN).
func isDecimal(v string) bool {
	i := 0
	if i < len(v) && (v[i] == '+' || v[i] == '-') {
		i++
	}
	digits := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
		digits++
	}
	if i < len(v) && v[i] == '.' {
		i++
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		exp := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(v)
}
