package pipeline

import (
	"fmt"
	"strings"
)

// Type is the type of a schema field. Each Type has one Go representation
// for its values, listed on the constants; a nil value is null for every
// type.
type Type int

// The field types. The Go type that carries values of each is given in
// brackets.
const (
	TypeString    Type = iota // string
	TypeInt                   // int64
	TypeFloat                 // float64
	TypeBool                  // bool
	TypeDate                  // time.Time at midnight UTC
	TypeTimestamp             // time.Time (any location)
	TypeDecimal               // string holding the exact decimal text, e.g. "1234.50"
	TypeAny                   // any of the above; used by expressions whose type is not known
)

var typeNames = [...]string{"string", "int", "float", "bool", "date", "timestamp", "decimal", "any"}

// String returns the type's name as written in pipeline files.
func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// ParseType returns the Type whose name is s ("string", "int", "float",
// "bool", "date", "timestamp", "decimal", "any").
func ParseType(s string) (Type, error) {
	for i, n := range typeNames {
		if strings.EqualFold(s, n) {
			return Type(i), nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (want one of %s)", s, strings.Join(typeNames[:], ", "))
}

// Field is one named, typed column of a Schema.
type Field struct {
	Name string
	Type Type
}

// Schema is an ordered list of uniquely named fields. A Schema is immutable
// once built and safe to share between goroutines.
type Schema struct {
	fields []Field
	index  map[string]int
}

// NewSchema returns a schema of the given fields, in order. It fails if a
// name is empty or appears twice.
func NewSchema(fields ...Field) (*Schema, error) {
	s := &Schema{fields: append([]Field(nil), fields...), index: make(map[string]int, len(fields))}
	for i, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("field %d has an empty name", i+1)
		}
		if j, dup := s.index[f.Name]; dup {
			return nil, fmt.Errorf("field %q appears twice (columns %d and %d)", f.Name, j+1, i+1)
		}
		s.index[f.Name] = i
	}
	return s, nil
}

// MustSchema is like NewSchema but panics on error. It is meant for tests
// and package-level variables.
func MustSchema(fields ...Field) *Schema {
	s, err := NewSchema(fields...)
	if err != nil {
		panic(err)
	}
	return s
}

// Len returns the number of fields.
func (s *Schema) Len() int { return len(s.fields) }

// Field returns the i'th field.
func (s *Schema) Field(i int) Field { return s.fields[i] }

// Fields returns a copy of the fields, in order.
func (s *Schema) Fields() []Field { return append([]Field(nil), s.fields...) }

// Index returns the position of the named field, or -1.
func (s *Schema) Index(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// Names returns the field names, in order.
func (s *Schema) Names() []string {
	out := make([]string, len(s.fields))
	for i, f := range s.fields {
		out[i] = f.Name
	}
	return out
}

// Equal reports whether s and o have the same fields in the same order.
func (s *Schema) Equal(o *Schema) bool {
	if s == o {
		return true
	}
	if s == nil || o == nil || len(s.fields) != len(o.fields) {
		return false
	}
	for i := range s.fields {
		if s.fields[i] != o.fields[i] {
			return false
		}
	}
	return true
}

// String returns the schema as "name:type, ...".
func (s *Schema) String() string {
	var b strings.Builder
	for i, f := range s.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name)
		b.WriteByte(':')
		b.WriteString(f.Type.String())
	}
	return b.String()
}
