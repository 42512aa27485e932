package salesforcesink

import (
	"context"
	"fmt"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// Check is an optional pre-flight check against the org's describe
// metadata (contract §7), for `bulkflow check` or a dry run. It describes
// the object (and the parents of relationship columns) and reports, all at
// once: unknown columns, relationship columns whose parent field is not an
// External ID / idLookup field, columns the operation cannot write
// (createable/updateable), required fields missing for insert, an
// external_id_field that is not an External ID, and polymorphic lookups
// written without their ObjectType: prefix. A nil schema means the sink's
// input schema. It makes only GET requests.
func (s *Sink) Check(ctx context.Context, schema *pipeline.Schema) error {
	if schema == nil {
		schema = s.schema
	}
	d, err := s.describeObject(ctx)
	if err != nil {
		return err
	}
	c := &describeCheck{s: s, d: d, present: map[string]bool{}, parents: map[string]*salesforce.DescribeResult{}}
	if s.op == salesforce.OpInsert {
		if i := schema.Index("Id"); i >= 0 {
			c.add("column %s: insert creates records and Salesforce assigns their Id; drop the column (or use operation update or upsert)", schema.Names()[i])
		}
	}
	if s.op == salesforce.OpUpsert && !strings.EqualFold(s.opts.ExternalIDField, "Id") {
		if f, ok := d.Field(s.opts.ExternalIDField); !ok || !f.ExternalID {
			c.add("external_id_field %s is not an External ID field of %s", s.opts.ExternalIDField, d.Name)
		}
	}
	if s.op != salesforce.OpDelete && s.op != salesforce.OpHardDelete {
		for _, name := range schema.Names() {
			if typ, rel, ok := strings.Cut(name, "."); ok {
				c.relationColumn(ctx, name, typ, rel)
			} else {
				c.fieldColumn(name, schemaType(schema, name))
			}
		}
	}
	if s.op == salesforce.OpInsert || s.op == salesforce.OpUpsert {
		c.requiredFields()
	}
	if len(c.problems) > 0 {
		return preflightError(string(s.op), d.Name, c.problems...)
	}
	return nil
}

// describeCheck is one Check of the input columns against the object's
// describe d: the problems found so far, the fields some column provides,
// and the parent objects described for relationship columns.
type describeCheck struct {
	s        *Sink
	d        *salesforce.DescribeResult
	problems []string
	present  map[string]bool // lower-case field names a column provides
	parents  map[string]*salesforce.DescribeResult
}

// add records a problem.
func (c *describeCheck) add(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// relationColumn checks a relationship column name (typ.rel, or
// Type:typ.rel for a polymorphic lookup): the relationship exists, the
// prefix matches its polymorphism, the parent field is an External ID or
// idLookup field, and the operation may write the lookup.
func (c *describeCheck) relationColumn(ctx context.Context, name, typ, rel string) {
	poly := ""
	if p, r, ok := strings.Cut(typ, ":"); ok {
		poly, typ = p, r
	}
	f := relField(c.d, typ)
	if f == nil {
		c.add("column %s: %s has no relationship %s", name, c.d.Name, typ)
		return
	}
	c.present[strings.ToLower(f.Name)] = true
	switch {
	case f.Polymorphic() && poly == "":
		c.add("column %s: %s is polymorphic (%s); write it as <ObjectType>:%s", name, f.Name, strings.Join(f.ReferenceTo, ", "), name)
		return
	case !f.Polymorphic() && poly != "":
		c.add("column %s: %s is not polymorphic; drop the %s: prefix", name, f.Name, poly)
		return
	}
	target := poly
	if target == "" && len(f.ReferenceTo) > 0 {
		target = f.ReferenceTo[0]
	}
	pd := c.parents[target]
	if pd == nil {
		var err error
		if pd, err = c.s.client.Describe(ctx, target); err != nil {
			c.add("column %s: %v", name, err)
			return
		}
		c.parents[target] = pd
	}
	if pf, ok := pd.Field(rel); !ok {
		c.add("column %s: %s has no field %s", name, target, rel)
	} else if !pf.IDLookup && !pf.ExternalID && !strings.EqualFold(pf.Name, "Id") {
		c.add("column %s: %s.%s is neither an External ID nor an idLookup field", name, target, pf.Name)
	}
	c.s.checkWritable(f, name, c.add)
}

// fieldColumn checks a plain column of value type t: the field exists
// (else the closest name), takes values of t, and the operation may write
// it.
func (c *describeCheck) fieldColumn(name string, t pipeline.Type) {
	f, ok := c.d.Field(name)
	if !ok {
		if cl := pipeline.Closest(name, fieldNames(c.d)); cl != "" {
			c.add("column %s: %s has no such field (did you mean %s?)", name, c.d.Name, cl)
		} else {
			c.add("column %s: %s has no such field", name, c.d.Name)
		}
		return
	}
	c.present[strings.ToLower(f.Name)] = true
	if !typeFits(t, f.Type) {
		c.add("column %s: the value is %s but %s.%s is %s; %s", name, t, c.d.Name, f.Name, f.Type, conversionHint(f.Type))
	}
	if !strings.EqualFold(f.Name, "Id") {
		c.s.checkWritable(f, name, c.add)
	}
}

// requiredFields checks that a column provides every field required on
// insert.
func (c *describeCheck) requiredFields() {
	var missing []string
	for i := range c.d.Fields {
		f := &c.d.Fields[i]
		if f.RequiredOnInsert() && !c.present[strings.ToLower(f.Name)] {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		c.add("%s requires %s on insert; no column provides it", c.d.Name, strings.Join(missing, ", "))
	}
}

// schemaType returns the type of the named field of schema (TypeAny when
// it has none).
func schemaType(schema *pipeline.Schema, name string) pipeline.Type {
	i := schema.Index(name)
	if i < 0 {
		return pipeline.TypeAny
	}
	return schema.Fields()[i].Type
}

func (s *Sink) checkWritable(f *salesforce.Field, col string, add func(string, ...any)) {
	switch s.op {
	case salesforce.OpInsert:
		if !f.Createable {
			add("column %s: %s is not createable", col, f.Name)
		}
	case salesforce.OpUpdate:
		if !f.Updateable {
			add("column %s: %s is not updateable", col, f.Name)
		}
	case salesforce.OpUpsert:
		if !f.Createable && !f.Updateable {
			add("column %s: %s is neither createable nor updateable", col, f.Name)
		}
	}
}

// relField finds the reference field whose relationshipName is rel.
func relField(d *salesforce.DescribeResult, rel string) *salesforce.Field {
	for i := range d.Fields {
		if f := &d.Fields[i]; f.RelationshipName != "" && strings.EqualFold(f.RelationshipName, rel) {
			return f
		}
	}
	return nil
}
