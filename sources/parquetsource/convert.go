package parquetsource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Row error codes carried by the *pipeline.RowError of a dropped row.
const (
	// CodeOutOfRange: an unsigned 64-bit value above the largest int64.
	CodeOutOfRange = "out_of_range"
	// CodeInvalidUTF8: a string or binary value that is not valid UTF-8.
	CodeInvalidUTF8 = "invalid_utf8"
	// CodeBadValue: a flattened list or map value that cannot be written as
	// JSON (e.g. it holds NaN).
	CodeBadValue = "bad_value"
)

// column is one output column: a top-level Arrow field, followed down
// through struct children by path when flattened.
type column struct {
	name string
	typ  pipeline.Type
	top  int   // index of the top-level field in the file's Arrow schema
	path []int // struct child indices below the top-level field
	err  error // why the column cannot be read, if it cannot
}

// plan is how one object is read: the output schema, its columns and the
// Parquet leaf columns to fetch.
type plan struct {
	schema *pipeline.Schema
	cols   []column
	leaves []int
	tops   []string   // top-level field name of each column
	fast   []fastSpec // how to read the columns on the fast path; nil: pqarrow
}

// candidates lists every column the Arrow schema offers, flattened when
// flatten is set. Columns that cannot be read carry an err.
func candidates(as *arrow.Schema, flatten bool) []column {
	var out []column
	var walk func(name string, dt arrow.DataType, top int, path []int)
	walk = func(name string, dt arrow.DataType, top int, path []int) {
		c := column{name: name, top: top, path: slices.Clip(path), typ: pipeline.TypeString}
		switch kind := nestedKind(dt); {
		case kind == "struct" && flatten:
			st := dt.(*arrow.StructType)
			if st.NumFields() == 0 {
				c.err = fmt.Errorf("column %q is a struct with no fields; leave it out with columns", name)
				break
			}
			for j, f := range st.Fields() {
				walk(name+"."+f.Name, f.Type, top, append(slices.Clip(path), j))
			}
			return
		case kind != "" && flatten: // list or map: JSON text
		case kind != "":
			how := "struct fields become \"" + name + ".<field>\" columns"
			if kind != "struct" {
				how = "it is read as JSON text"
			}
			c.err = fmt.Errorf("column %q is a nested %s column (%s): set flatten: true to read it (%s), or leave it out with columns", name, kind, dt, how)
		default:
			t, err := mapType(dt)
			if err != nil {
				c.err = fmt.Errorf("column %q: %w; leave it out with columns", name, err)
			}
			c.typ = t
		}
		out = append(out, c)
	}
	for i, f := range as.Fields() {
		walk(f.Name, f.Type, i, nil)
	}
	return out
}

// nestedKind returns "struct", "list" or "map" for nested types, else "".
func nestedKind(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.STRUCT:
		return "struct"
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST, arrow.LIST_VIEW, arrow.LARGE_LIST_VIEW:
		return "list"
	case arrow.MAP:
		return "map"
	}
	return ""
}

// mapType returns the pipeline type of a flat Arrow type.
func mapType(dt arrow.DataType) (pipeline.Type, error) {
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return pipeline.TypeInt, nil
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return pipeline.TypeFloat, nil
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW,
		arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.NULL:
		return pipeline.TypeString, nil
	case arrow.BOOL:
		return pipeline.TypeBool, nil
	case arrow.DATE32, arrow.DATE64:
		return pipeline.TypeDate, nil
	case arrow.TIMESTAMP:
		return pipeline.TypeTimestamp, nil
	case arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		return pipeline.TypeDecimal, nil
	case arrow.DICTIONARY:
		return mapType(dt.(*arrow.DictionaryType).ValueType)
	}
	return pipeline.TypeString, fmt.Errorf("type %s is not supported", dt)
}

// makePlan resolves Options.Columns, Options.Flatten and the projection
// against an object's Arrow schema.
func (s *Source) makePlan(fr *pqarrow.FileReader, as *arrow.Schema, obj string) (*plan, error) {
	all := candidates(as, s.cfg.flatten)
	sel := all
	if len(s.cfg.columns) > 0 {
		sel = nil
		for _, name := range s.cfg.columns {
			n := len(sel)
			if i := slices.IndexFunc(all, func(c column) bool { return c.name == name }); i >= 0 {
				sel = append(sel, all[i])
			} else if s.cfg.flatten { // a struct: all its flattened fields
				for _, c := range all {
					if strings.HasPrefix(c.name, name+".") {
						sel = append(sel, c)
					}
				}
			}
			if len(sel) == n {
				return nil, fmt.Errorf("parquet %s: columns: %q is not a column of the file (it has %s)", obj, name, availableNames(all))
			}
		}
	}
	if s.project != nil {
		var kept []column
		for _, name := range s.project {
			if !slices.ContainsFunc(sel, func(c column) bool { return c.name == name }) {
				names := make([]string, len(sel))
				for i, c := range sel {
					names[i] = c.name
				}
				return nil, fmt.Errorf("parquet %s: Project: %q is not a column of the source (have %s)", obj, name, quoteNames(names))
			}
		}
		for _, c := range sel {
			if slices.Contains(s.project, c.name) {
				kept = append(kept, c)
			}
		}
		sel = kept
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("parquet %s: the file has no columns", obj)
	}
	p := &plan{cols: sel, fast: fastSpecs(fr, fr.ParquetReader().MetaData().Schema, sel)}
	fields := make([]pipeline.Field, len(sel))
	var leaves []int
	for i, c := range sel {
		if c.err != nil {
			return nil, fmt.Errorf("parquet %s: %w", obj, c.err)
		}
		fields[i] = pipeline.Field{Name: c.name, Type: c.typ}
		p.tops = append(p.tops, as.Field(c.top).Name)
		leaves = appendLeaves(leaves, &fr.Manifest.Fields[c.top])
	}
	slices.Sort(leaves)
	p.leaves = slices.Compact(leaves)
	sch, err := pipeline.NewSchema(fields...)
	if err != nil {
		return nil, fmt.Errorf("parquet %s: %w", obj, err)
	}
	p.schema = sch
	return p, nil
}

// appendLeaves appends the Parquet leaf column indices under f.
func appendLeaves(dst []int, f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for i := range f.Children {
		dst = appendLeaves(dst, &f.Children[i])
	}
	return dst
}

// availableNames lists column names for an error message, at most 20.
func availableNames(cols []column) string {
	names := make([]string, 0, len(cols))
	for _, c := range cols {
		names = append(names, c.name)
	}
	if len(names) > 20 {
		return quoteNames(names[:20]) + fmt.Sprintf(" and %d more", len(names)-20)
	}
	return quoteNames(names)
}

// valueErr is why one value cannot be represented.
type valueErr struct {
	code string
	msg  string
}

// getter returns the value at index i of an array, nil for null handled by
// the caller.
type getter func(i int) (any, *valueErr)

// convert turns one record batch into a pipeline batch.
func (s *Source) convert(cur *object, rec arrow.RecordBatch) (*pipeline.Batch, error) {
	p := cur.plan
	n := int(rec.NumRows())
	ncols := len(p.cols)
	slab := s.slabs.Get(n * ncols)
	var bad map[int]*pipeline.RowError
	rs := rec.Schema()
	for j, c := range p.cols {
		idx := rs.FieldIndices(p.tops[j])
		if len(idx) == 0 {
			return nil, fmt.Errorf("parquet %s: column %q missing from a record batch", cur.name, p.tops[j])
		}
		arr := rec.Column(idx[0])
		var nullers []arrow.Array // arrays whose nulls make the value null
		for _, k := range c.path {
			st, ok := arr.(*array.Struct)
			if !ok {
				return nil, fmt.Errorf("parquet %s: column %q: want a struct, got %s", cur.name, c.name, arr.DataType())
			}
			if st.NullN() > 0 {
				nullers = append(nullers, st)
			}
			arr = st.Field(k)
		}
		if arr.NullN() > 0 {
			nullers = append(nullers, arr)
		}
		if fillColumn(arr, nullers, slab, ncols, j, n) {
			continue
		}
		get, err := getterOf(arr)
		if err != nil {
			return nil, fmt.Errorf("parquet %s: column %q: %w", cur.name, c.name, err)
		}
	rows:
		for i := range n {
			for _, na := range nullers {
				if na.IsNull(i) {
					continue rows // slab is nil already
				}
			}
			v, verr := get(i)
			if verr != nil {
				if bad == nil {
					bad = make(map[int]*pipeline.RowError)
				}
				if bad[i] == nil {
					origin := pipeline.Origin{Object: cur.name, Row: cur.row + int64(i) + 1}
					bad[i] = &pipeline.RowError{Origin: origin, Code: verr.code, Field: c.name, Err: fmt.Errorf("%s", verr.msg)}
				}
				continue
			}
			slab[i*ncols+j] = v
		}
	}
	return s.assemble(cur, slab, n, bad), nil
}

// assemble makes the batch of n rows of slab (ncols values per row), rows
// in bad becoming drops, and advances the object's row count.
func (s *Source) assemble(cur *object, slab []any, n int, bad map[int]*pipeline.RowError) *pipeline.Batch {
	p := cur.plan
	ncols := len(p.cols)
	b := pipeline.NewBatch(p.schema, n-len(bad))
	b.Recycle(&s.slabs, slab)
	for i := range n {
		row := pipeline.Row(slab[i*ncols : (i+1)*ncols : (i+1)*ncols])
		origin := pipeline.Origin{Object: cur.name, Row: cur.row + int64(i) + 1}
		if re := bad[i]; re != nil {
			b.Drop(pipeline.Drop{Row: row, Origin: origin, Raw: rawRow(p.schema, row), Err: re})
			continue
		}
		b.Append(row, origin)
	}
	cur.row += int64(n)
	return b
}

// rawRow renders a dropped row for the dead-letter file: "name=value" pairs,
// the bad value shown as null.
func rawRow(sch *pipeline.Schema, row pipeline.Row) string {
	var b strings.Builder
	for i, v := range row {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sch.Field(i).Name)
		b.WriteByte('=')
		if v == nil {
			b.WriteString("null")
		} else {
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

func invalidUTF8() *valueErr {
	return &valueErr{code: CodeInvalidUTF8, msg: "value is not valid UTF-8"}
}

// stringsOf copies the value bytes of a string or binary batch once, so the
// values share one allocation and outlive the Arrow buffers.
func stringsOf[O int32 | int64](offs []O, data []byte) getter {
	all := string(data)
	valid := utf8.ValidString(all)
	base := int64(0)
	if len(offs) > 0 {
		base = int64(offs[0])
	}
	return func(i int) (any, *valueErr) {
		v := all[int64(offs[i])-base : int64(offs[i+1])-base]
		if !valid && !utf8.ValidString(v) {
			return nil, invalidUTF8()
		}
		return v, nil
	}
}

type decimalNum interface{ ToString(int32) string }

func decimals[T decimalNum](a interface{ Value(int) T }, dt arrow.DataType) getter {
	scale := dt.(arrow.DecimalType).GetScale()
	return func(i int) (any, *valueErr) { return a.Value(i).ToString(scale), nil }
}

func ints[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32](a interface{ Value(int) T }) getter {
	return func(i int) (any, *valueErr) { return int64(a.Value(i)), nil }
}

const msPerDay = 24 * 60 * 60 * 1000

// getterOf returns how to read values of a flat (or, flattened, list or map)
// array. Values are copied: they stay valid after the array is released.
func getterOf(arr arrow.Array) (getter, error) {
	switch a := arr.(type) {
	case *array.Null:
		return func(int) (any, *valueErr) { return nil, nil }, nil
	case *array.Int8:
		return ints(a), nil
	case *array.Int16:
		return ints(a), nil
	case *array.Int32:
		return ints(a), nil
	case *array.Int64:
		return ints(a), nil
	case *array.Uint8:
		return ints(a), nil
	case *array.Uint16:
		return ints(a), nil
	case *array.Uint32:
		return ints(a), nil
	case *array.Uint64:
		return func(i int) (any, *valueErr) {
			v := a.Value(i)
			if v > math.MaxInt64 {
				return nil, &valueErr{code: CodeOutOfRange, msg: fmt.Sprintf("uint64 value %d does not fit an int (int64)", v)}
			}
			return int64(v), nil
		}, nil
	case *array.Float16:
		return func(i int) (any, *valueErr) { return float64(a.Value(i).Float32()), nil }, nil
	case *array.Float32:
		return func(i int) (any, *valueErr) { return float64(a.Value(i)), nil }, nil
	case *array.Float64:
		return func(i int) (any, *valueErr) { return a.Value(i), nil }, nil
	case *array.Boolean:
		return func(i int) (any, *valueErr) { return a.Value(i), nil }, nil
	case *array.String:
		return stringsOf(a.ValueOffsets(), a.ValueBytes()), nil
	case *array.LargeString:
		return stringsOf(a.ValueOffsets(), a.ValueBytes()), nil
	case *array.Binary:
		return stringsOf(a.ValueOffsets(), a.ValueBytes()), nil
	case *array.LargeBinary:
		return stringsOf(a.ValueOffsets(), a.ValueBytes()), nil
	case *array.StringView:
		return func(i int) (any, *valueErr) {
			v := a.Value(i)
			if !utf8.ValidString(v) {
				return nil, invalidUTF8()
			}
			return strings.Clone(v), nil
		}, nil
	case *array.BinaryView:
		return func(i int) (any, *valueErr) {
			v := a.Value(i)
			if !utf8.Valid(v) {
				return nil, invalidUTF8()
			}
			return string(v), nil
		}, nil
	case *array.Date32:
		return func(i int) (any, *valueErr) { return time.Unix(int64(a.Value(i))*86400, 0).UTC(), nil }, nil
	case *array.Date64:
		return func(i int) (any, *valueErr) {
			ms := int64(a.Value(i))
			days := ms / msPerDay
			if ms%msPerDay < 0 {
				days--
			}
			return time.Unix(days*86400, 0).UTC(), nil
		}, nil
	case *array.Timestamp:
		tt := a.DataType().(*arrow.TimestampType)
		loc, err := tt.GetZone()
		if err != nil {
			loc = time.UTC // unknown zone name: the instant is still right
		}
		unit := tt.Unit
		return func(i int) (any, *valueErr) { return a.Value(i).ToTime(unit).In(loc), nil }, nil
	case *array.Decimal32:
		return decimals(a, a.DataType()), nil
	case *array.Decimal64:
		return decimals(a, a.DataType()), nil
	case *array.Decimal128:
		return decimals(a, a.DataType()), nil
	case *array.Decimal256:
		return decimals(a, a.DataType()), nil
	case *array.Dictionary:
		dget, err := getterOf(a.Dictionary())
		if err != nil {
			return nil, err
		}
		dict := a.Dictionary()
		vals := make([]any, dict.Len())
		errs := make([]*valueErr, dict.Len())
		done := make([]bool, dict.Len())
		return func(i int) (any, *valueErr) {
			k := a.GetValueIndex(i)
			if !done[k] {
				if !dict.IsNull(k) {
					vals[k], errs[k] = dget(k)
				}
				done[k] = true
			}
			return vals[k], errs[k]
		}, nil
	case *array.Map:
		return func(i int) (any, *valueErr) { return mapJSON(a, i) }, nil
	case array.ListLike:
		return func(i int) (any, *valueErr) { return marshalJSON(a, i) }, nil
	}
	return nil, fmt.Errorf("type %s is not supported", arr.DataType())
}

// marshalJSON returns the JSON text of element i of a list-like array.
func marshalJSON(a arrow.Array, i int) (v any, verr *valueErr) {
	defer func() {
		if r := recover(); r != nil { // arrow panics on values JSON cannot hold
			v, verr = nil, &valueErr{code: CodeBadValue, msg: fmt.Sprintf("cannot write the value as JSON: %v", r)}
		}
	}()
	b, err := json.Marshal(a.GetOneForMarshal(i))
	if err != nil {
		return nil, &valueErr{code: CodeBadValue, msg: fmt.Sprintf("cannot write the value as JSON: %v", err)}
	}
	return string(b), nil
}

// mapJSON returns element i of a map array as a JSON object, keys in file
// order (string keys as they are, other keys as their JSON text).
func mapJSON(a *array.Map, i int) (v any, verr *valueErr) {
	defer func() {
		if r := recover(); r != nil {
			v, verr = nil, &valueErr{code: CodeBadValue, msg: fmt.Sprintf("cannot write the value as JSON: %v", r)}
		}
	}()
	keys, items := a.Keys(), a.Items()
	start, end := a.ValueOffsets(i)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for k := int(start); k < int(end); k++ {
		if k > int(start) {
			buf.WriteByte(',')
		}
		var key string
		if ks, ok := keys.(*array.String); ok {
			key = ks.Value(k)
		} else {
			kb, err := json.Marshal(keys.GetOneForMarshal(k))
			if err != nil {
				return nil, &valueErr{code: CodeBadValue, msg: fmt.Sprintf("cannot write the map key as JSON: %v", err)}
			}
			key = string(kb)
		}
		kb, _ := json.Marshal(key)
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := json.Marshal(items.GetOneForMarshal(k))
		if err != nil {
			return nil, &valueErr{code: CodeBadValue, msg: fmt.Sprintf("cannot write the map value as JSON: %v", err)}
		}
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.String(), nil
}
