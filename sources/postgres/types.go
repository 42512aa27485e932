package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/json/jsontext"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/bulkflow/bulkflow/pipeline"
)

// CodeBadValue is the dead-letter code of a row holding a value its
// column's bulkflow type cannot hold (numeric NaN, an infinite date).
const CodeBadValue = "bad_value"

// kind is how one result column is scanned and converted.
type kind int

const (
	kInt kind = iota
	kFloat
	kText
	kBool
	kNumeric
	kStringish // uuid, json, jsonb: scanned as text
	kDate
	kTimestamp
	kTimestamptz
	kArray
)

// scalarKinds maps the OIDs read as scalars to their kind and bulkflow type.
var scalarKinds = map[uint32]struct {
	k kind
	t pipeline.Type
}{
	pgtype.Int2OID: {kInt, pipeline.TypeInt}, pgtype.Int4OID: {kInt, pipeline.TypeInt}, pgtype.Int8OID: {kInt, pipeline.TypeInt},
	pgtype.Float4OID: {kFloat, pipeline.TypeFloat}, pgtype.Float8OID: {kFloat, pipeline.TypeFloat},
	pgtype.NumericOID: {kNumeric, pipeline.TypeDecimal},
	pgtype.TextOID:    {kText, pipeline.TypeString}, pgtype.VarcharOID: {kText, pipeline.TypeString},
	pgtype.BPCharOID: {kText, pipeline.TypeString}, pgtype.NameOID: {kText, pipeline.TypeString},
	pgtype.BoolOID: {kBool, pipeline.TypeBool},
	pgtype.UUIDOID: {kStringish, pipeline.TypeString}, pgtype.JSONOID: {kStringish, pipeline.TypeString}, pgtype.JSONBOID: {kStringish, pipeline.TypeString},
	pgtype.DateOID: {kDate, pipeline.TypeDate}, pgtype.TimestampOID: {kTimestamp, pipeline.TypeTimestamp},
	pgtype.TimestamptzOID: {kTimestamptz, pipeline.TypeTimestamp},
}

// arrayElems maps the array OIDs read as JSON text to their element OID.
var arrayElems = map[uint32]uint32{
	pgtype.Int2ArrayOID: pgtype.Int2OID, pgtype.Int4ArrayOID: pgtype.Int4OID, pgtype.Int8ArrayOID: pgtype.Int8OID,
	pgtype.Float4ArrayOID: pgtype.Float4OID, pgtype.Float8ArrayOID: pgtype.Float8OID, pgtype.NumericArrayOID: pgtype.NumericOID,
	pgtype.TextArrayOID: pgtype.TextOID, pgtype.VarcharArrayOID: pgtype.VarcharOID, pgtype.BPCharArrayOID: pgtype.BPCharOID,
	pgtype.NameArrayOID: pgtype.NameOID, pgtype.BoolArrayOID: pgtype.BoolOID, pgtype.UUIDArrayOID: pgtype.UUIDOID,
	pgtype.JSONArrayOID: pgtype.JSONOID, pgtype.JSONBArrayOID: pgtype.JSONBOID, pgtype.DateArrayOID: pgtype.DateOID,
	pgtype.TimestampArrayOID: pgtype.TimestampOID, pgtype.TimestamptzArrayOID: pgtype.TimestamptzOID,
}

// column is one result column.
type column struct {
	name string
	oid  uint32
	kind kind
	elem uint32 // element OID of an array
	typ  pipeline.Type
}

// columnOf returns how to read a result column, ok false when the source
// does not read its type.
func columnOf(name string, oid uint32) (column, bool) {
	if sk, ok := scalarKinds[oid]; ok {
		return column{name: name, oid: oid, kind: sk.k, typ: sk.t}, true
	}
	if e, ok := arrayElems[oid]; ok {
		return column{name: name, oid: oid, kind: kArray, elem: e, typ: pipeline.TypeString}, true
	}
	return column{name: name, oid: oid}, false
}

// castHint says how to read a column of an unsupported type.
func castHint(name, typeName string) string {
	id := quoteIdent(name)
	if typeName == "bytea" {
		return fmt.Sprintf("encode(%s, 'base64') AS %s (or 'hex')", id, id)
	}
	return fmt.Sprintf("%s::text AS %s", id, id)
}

// cell is the reusable scan target of one column and its conversion.
type cell struct {
	col  *column
	i8   pgtype.Int8
	f8   pgtype.Float8
	text pgtype.Text
	b    pgtype.Bool
	date pgtype.Date
	ts   pgtype.Timestamp
	tstz pgtype.Timestamptz
	arr  pgtype.Array[any]         // arrays of other elements
	arrT pgtype.Array[pgtype.Text] // arrays of text-like elements
	arrI pgtype.Array[pgtype.Int8] // arrays of integers
}

// arrayOf says how an array of elements of OID elem is scanned: 't' as
// text elements, 'i' as integers, else as any (decoded per element).
func arrayOf(elem uint32) byte {
	switch elem {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.UUIDOID:
		return 't'
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return 'i'
	}
	return 0
}

// target returns what rows.Scan fills.
func (c *cell) target() any {
	switch c.col.kind {
	case kInt:
		return &c.i8
	case kFloat:
		return &c.f8
	case kText, kNumeric, kStringish:
		return &c.text
	case kBool:
		return &c.b
	case kDate:
		return &c.date
	case kTimestamp:
		return &c.ts
	case kTimestamptz:
		return &c.tstz
	default:
		switch arrayOf(c.col.elem) {
		case 't':
			return &c.arrT
		case 'i':
			return &c.arrI
		}
		return &c.arr
	}
}

// value converts the scanned value; a non-empty problem means the row
// holds a value the column's bulkflow type cannot hold.
func (c *cell) value() (v any, problem string) {
	switch c.col.kind {
	case kInt:
		return nullable(c.i8.Int64, c.i8.Valid), ""
	case kFloat:
		return nullable(c.f8.Float64, c.f8.Valid), ""
	case kText:
		return nullable(c.text.String, c.text.Valid), ""
	case kBool:
		return nullable(c.b.Bool, c.b.Valid), ""
	case kNumeric:
		if !c.text.Valid {
			return nil, ""
		}
		switch c.text.String {
		case "NaN", "Infinity", "-Infinity":
			return nil, fmt.Sprintf("numeric value %s is not a decimal; map it in the query, e.g. CASE WHEN %s IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE %s END, or cast it to float8", c.text.String, quoteIdent(c.col.name), quoteIdent(c.col.name))
		}
		return c.text.String, ""
	case kStringish:
		return nullable(c.text.String, c.text.Valid), ""
	case kDate:
		return timeValue(c.date.Valid, c.date.InfinityModifier, c.date.Time, c.col)
	case kTimestamp:
		return timeValue(c.ts.Valid, c.ts.InfinityModifier, c.ts.Time, c.col)
	case kTimestamptz:
		return timeValue(c.tstz.Valid, c.tstz.InfinityModifier, c.tstz.Time.UTC(), c.col)
	default:
		switch arrayOf(c.col.elem) {
		case 't':
			if !c.arrT.Valid {
				return nil, ""
			}
			return textArrayJSON(c.arrT), ""
		case 'i':
			if !c.arrI.Valid {
				return nil, ""
			}
			return intArrayJSON(c.arrI), ""
		}
		if !c.arr.Valid {
			return nil, ""
		}
		s, err := arrayJSON(c.arr, c.col.elem)
		if err != nil {
			return nil, fmt.Sprintf("array cannot be written as JSON: %v", err)
		}
		return s, ""
	}
}

func nullable[T any](v T, valid bool) any {
	if !valid {
		return nil
	}
	return v
}

func timeValue(valid bool, inf pgtype.InfinityModifier, t time.Time, col *column) (any, string) {
	switch {
	case !valid:
		return nil, ""
	case inf != pgtype.Finite:
		id := quoteIdent(col.name)
		return nil, fmt.Sprintf("%s is %s, which a %s column cannot hold; map it in the query, e.g. CASE WHEN isfinite(%s) THEN %s END AS %s", col.name, inf, col.typ, id, id, id)
	}
	return t, ""
}

// arrayJSON writes an array as JSON text, nested by its dimensions.
func arrayJSON(a pgtype.Array[any], elem uint32) (string, error) {
	vals := make([]any, len(a.Elements))
	for i, e := range a.Elements {
		vals[i] = elemJSON(e, elem)
	}
	var nested any = vals
	if len(a.Dims) > 1 {
		nested = reshape(vals, a.Dims)
	}
	b, err := json.Marshal(nested)
	return string(b), err
}

// textArrayJSON writes an array of text elements as JSON (strings quoted
// by encoding/json/jsontext; the database's encoding is UTF-8, so nothing
// is replaced), nested by its dimensions.
func textArrayJSON(a pgtype.Array[pgtype.Text]) string {
	return string(appendNested(nil, a.Dims, a.Elements, func(dst []byte, e pgtype.Text) []byte {
		if !e.Valid {
			return append(dst, "null"...)
		}
		dst, _ = jsontext.AppendQuote(dst, e.String)
		return dst
	}))
}

// intArrayJSON writes an array of integers as JSON, nested by its
// dimensions.
func intArrayJSON(a pgtype.Array[pgtype.Int8]) string {
	return string(appendNested(nil, a.Dims, a.Elements, func(dst []byte, e pgtype.Int8) []byte {
		if !e.Valid {
			return append(dst, "null"...)
		}
		return strconv.AppendInt(dst, e.Int64, 10)
	}))
}

// appendNested appends elems as a JSON array nested by dims (row-major, as
// PostgreSQL sends them); no dimension is the empty array.
func appendNested[E any](dst []byte, dims []pgtype.ArrayDimension, elems []E, elem func([]byte, E) []byte) []byte {
	dst = append(dst, '[')
	switch {
	case len(dims) <= 1:
		for i, e := range elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = elem(dst, e)
		}
	default:
		n := int(dims[0].Length)
		step := len(elems) / max(n, 1)
		for i := range n {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendNested(dst, dims[1:], elems[i*step:(i+1)*step], elem)
		}
	}
	return append(dst, ']')
}

// reshape nests flat elements by dims (row-major, as PostgreSQL sends them).
func reshape(flat []any, dims []pgtype.ArrayDimension) any {
	if len(dims) == 1 {
		return flat
	}
	n := int(dims[0].Length)
	out := make([]any, n)
	step := len(flat) / max(n, 1)
	for i := range n {
		out[i] = reshape(flat[i*step:(i+1)*step], dims[1:])
	}
	return out
}

// elemJSON returns what JSON writes for one array element.
func elemJSON(e any, elem uint32) any {
	switch v := e.(type) {
	case time.Time:
		switch elem {
		case pgtype.DateOID:
			return v.Format(time.DateOnly)
		default:
			return v.UTC().Format(time.RFC3339Nano)
		}
	case pgtype.InfinityModifier:
		return v.String()
	case [16]byte:
		return pgtype.UUID{Bytes: v, Valid: true}
	case pgtype.Numeric:
		return v
	}
	return e
}

// quoteIdent quotes a SQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// queryHash is the short hash that names a query in origins.
func queryHash(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:6])
}

// keyText formats a key value for an origin.
func keyText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case string:
		return strings.ReplaceAll(x, ")", "\\)")
	}
	return fmt.Sprint(v)
}
