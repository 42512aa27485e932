package salesforcetest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// column is one resolved CSV header column.
type column struct {
	name   string         // header text as uploaded
	field  *FieldDescribe // the field written (the reference field for relationship columns)
	rel    bool           // a relationship column: Rel.Field or Type:Rel.Field
	target *object        // parent object of a relationship column
	key    *FieldDescribe // parent lookup field; nil means Id
	isID   bool           // the Id column
}

// plan is the resolved header of an ingest job.
type plan struct {
	cols     []column
	idCol    int // index of the Id column or -1
	extCol   int // index of the upsert external-id column or -1
	extField *FieldDescribe
	extIsID  bool
	changes  []change   // scratch, reused per row (one goroutine per job)
	recSlab  []record   // records are carved from slabs to save allocations
	fvSlab   []fieldVal // so are their field lists
}

const slabSize = 1024

// newRecord returns a zeroed record whose fields slice has capacity n.
func (p *plan) newRecord(n int) *record {
	if len(p.recSlab) == cap(p.recSlab) {
		p.recSlab = make([]record, 0, slabSize)
	}
	p.recSlab = p.recSlab[:len(p.recSlab)+1]
	rec := &p.recSlab[len(p.recSlab)-1]
	if n > slabSize/8 {
		rec.fields = make([]fieldVal, 0, n)
		return rec
	}
	if cap(p.fvSlab)-len(p.fvSlab) < n {
		p.fvSlab = make([]fieldVal, 0, slabSize)
	}
	l := len(p.fvSlab)
	p.fvSlab = p.fvSlab[:l+n]
	rec.fields = p.fvSlab[l : l : l+n]
	return rec
}

type change struct {
	f    *FieldDescribe
	v    string
	null bool
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

// applyRowLocked validates and saves one row. s.mu must be held.
func (s *Server) applyRowLocked(j *job, p *plan, vals []string, lockRate float64) rowResult {
	o := j.object
	res := rowResult{values: vals}
	if lockRate > 0 && s.rng.Float64() < lockRate {
		id := ""
		if p.idCol >= 0 {
			id = To18(vals[p.idCol])
		}
		res.err = "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: " + id + ":--"
		return res
	}
	st := s.storeLocked(o)
	var rec *record
	switch j.operation {
	case "insert":
		if p.idCol >= 0 && vals[p.idCol] != "" {
			res.err = rowErr("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", "Id")
			return res
		}
	case "update", "delete", "hardDelete":
		if p.idCol < 0 || vals[p.idCol] == "" {
			res.err = "MISSING_ARGUMENT:Id not specified in an update call:--"
			if j.operation != "update" {
				res.err = "MISSING_ARGUMENT:Id not specified in a delete call:--"
			}
			return res
		}
		var e string
		rec, e = s.findByIDLocked(o, vals[p.idCol])
		if rec != nil {
			res.id = rec.id
		}
		if e != "" && !(j.operation == "hardDelete" && rec != nil && rec.deleted) {
			res.err = e
			return res
		}
		if j.operation == "delete" {
			st.softDelete(o, rec)
			return res
		}
		if j.operation == "hardDelete" {
			st.hardDelete(o, rec)
			return res
		}
	case "upsert":
		switch {
		case p.extIsID:
			if p.idCol >= 0 && vals[p.idCol] != "" {
				var e string
				rec, e = s.findByIDLocked(o, vals[p.idCol])
				if rec != nil {
					res.id = rec.id
				}
				if e != "" {
					res.err = e
					return res
				}
			}
		default:
			if p.extCol < 0 || vals[p.extCol] == "" || vals[p.extCol] == "#N/A" {
				res.err = fmt.Sprintf("MISSING_ARGUMENT:%s not specified:--", p.extField.Name)
				return res
			}
			matches := st.lookup(p.extField, vals[p.extCol])
			if len(matches) > 1 {
				ids := make([]string, len(matches))
				for i, m := range matches {
					ids[i] = m.id
				}
				res.err = fmt.Sprintf("DUPLICATE_EXTERNAL_ID:%s: more than one record found for external id field: [%s]:--",
					o.desc.Label, strings.Join(ids, ", "))
				return res
			}
			if len(matches) == 1 {
				rec = matches[0]
				res.id = rec.id
			}
		}
	}
	insert := rec == nil

	// Field values, in column order; the first error wins.
	changes := p.changes[:0]
	for i, c := range p.cols {
		v := vals[i]
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
			changes = append(changes, change{f: f, null: true})
			continue
		}
		if c.rel {
			id, e := s.resolveParentLocked(c, v)
			if e != "" {
				res.err = e
				return res
			}
			changes = append(changes, change{f: f, v: id})
			continue
		}
		nv, e := s.checkValueLocked(f, v, i)
		if e != "" {
			res.err = e
			return res
		}
		changes = append(changes, change{f: f, v: nv})
	}
	p.changes = changes

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
		for _, other := range st.lookup(ch.f, ch.v) {
			if other != rec {
				res.err = fmt.Sprintf("DUPLICATE_VALUE:duplicate value found: %s duplicates value on record with id: %s:--", ch.f.Name, other.id)
				return res
			}
		}
	}

	if insert {
		rec = p.newRecord(len(changes))
		rec.id = s.newIDLocked(o.prefix)
		for _, ch := range changes {
			if !ch.null && ch.v != "" {
				rec.fields = append(rec.fields, fieldVal{ch.f, ch.v})
			}
		}
		st.add(o, rec)
		res.id, res.created = rec.id, true
		return res
	}
	for _, ch := range changes {
		indexed := false
		for _, f := range o.indexed {
			if f == ch.f {
				indexed = true
			}
		}
		st.set(ch.f, indexed, rec, ch.v, ch.null)
	}
	res.id = rec.id
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
		return rec.id, ""
	}
	matches := pst.lookup(c.key, v)
	live := matches[:0:0]
	for _, m := range matches {
		if !m.deleted && !m.removed {
			live = append(live, m)
		}
	}
	switch len(live) {
	case 0:
		return "", foreignKeyNotFound(v, c.key.Name, c.target.desc.Name)
	case 1:
		return live[0].id, ""
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
		return strconv.FormatInt(n, 10), ""
	case "double", "currency", "percent":
		if !isDecimal(v) {
			return deser()
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return deser()
		}
		return strconv.FormatFloat(x, 'f', -1, 64), ""
	case "date":
		if _, err := time.Parse("2006-01-02", v); err != nil || len(v) != 10 {
			return deser()
		}
		return v, ""
	case "datetime":
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t, err = time.Parse("2006-01-02T15:04:05.999999999-0700", v)
		}
		if err != nil {
			return deser()
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z"), ""
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
		return rec.id, ""
	}
	// String-like types.
	if f.Length > 0 && utf8.RuneCountInString(v) > f.Length {
		return "", rowErr("STRING_TOO_LONG", fmt.Sprintf("%s: data value too large: %s (max length=%d)", f.Label, v, f.Length), f.Name)
	}
	switch f.Type {
	case "email":
		at := strings.IndexByte(v, '@')
		if at <= 0 || at == len(v)-1 || strings.ContainsAny(v, " ,;") || !strings.Contains(v[at+1:], ".") {
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
