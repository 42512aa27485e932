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
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if s.op == salesforce.OpInsert {
		if i := schema.Index("Id"); i >= 0 {
			add("column %s: insert creates records and Salesforce assigns their Id; drop the column (or use operation update or upsert)", schema.Names()[i])
		}
	}
	if s.op == salesforce.OpUpsert && !strings.EqualFold(s.opts.ExternalIDField, "Id") {
		if f, ok := d.Field(s.opts.ExternalIDField); !ok || !f.ExternalID {
			add("external_id_field %s is not an External ID field of %s", s.opts.ExternalIDField, d.Name)
		}
	}
	present := map[string]bool{}
	parents := map[string]*salesforce.DescribeResult{}
	for _, name := range schema.Names() {
		if s.op == salesforce.OpDelete || s.op == salesforce.OpHardDelete {
			break
		}
		typ, rel, hasRel := strings.Cut(name, ".")
		if hasRel {
			poly := ""
			if p, r, ok := strings.Cut(typ, ":"); ok {
				poly, typ = p, r
			}
			f := relField(d, typ)
			if f == nil {
				add("column %s: %s has no relationship %s", name, d.Name, typ)
				continue
			}
			present[strings.ToLower(f.Name)] = true
			switch {
			case f.Polymorphic() && poly == "":
				add("column %s: %s is polymorphic (%s); write it as <ObjectType>:%s", name, f.Name, strings.Join(f.ReferenceTo, ", "), name)
				continue
			case !f.Polymorphic() && poly != "":
				add("column %s: %s is not polymorphic; drop the %s: prefix", name, f.Name, poly)
				continue
			}
			target := poly
			if target == "" && len(f.ReferenceTo) > 0 {
				target = f.ReferenceTo[0]
			}
			pd := parents[target]
			if pd == nil {
				if pd, err = s.client.Describe(ctx, target); err != nil {
					add("column %s: %v", name, err)
					continue
				}
				parents[target] = pd
			}
			if pf, ok := pd.Field(rel); !ok {
				add("column %s: %s has no field %s", name, target, rel)
			} else if !pf.IDLookup && !pf.ExternalID && !strings.EqualFold(pf.Name, "Id") {
				add("column %s: %s.%s is neither an External ID nor an idLookup field", name, target, pf.Name)
			}
			s.checkWritable(f, name, add)
			continue
		}
		f, ok := d.Field(name)
		if !ok {
			if c := pipeline.Closest(name, fieldNames(d)); c != "" {
				add("column %s: %s has no such field (did you mean %s?)", name, d.Name, c)
			} else {
				add("column %s: %s has no such field", name, d.Name)
			}
			continue
		}
		present[strings.ToLower(f.Name)] = true
		if t := schemaType(schema, name); !typeFits(t, f.Type) {
			add("column %s: the value is %s but %s.%s is %s; %s", name, t, d.Name, f.Name, f.Type, conversionHint(f.Type))
		}
		if !strings.EqualFold(f.Name, "Id") {
			s.checkWritable(f, name, add)
		}
	}
	if s.op == salesforce.OpInsert || s.op == salesforce.OpUpsert {
		var missing []string
		for i := range d.Fields {
			f := &d.Fields[i]
			if f.RequiredOnInsert() && !present[strings.ToLower(f.Name)] {
				missing = append(missing, f.Name)
			}
		}
		if len(missing) > 0 {
			add("%s requires %s on insert; no column provides it", d.Name, strings.Join(missing, ", "))
		}
	}
	if len(problems) > 0 {
		return preflightError(string(s.op), d.Name, problems...)
	}
	return nil
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
