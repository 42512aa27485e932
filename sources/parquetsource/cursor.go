package parquetsource

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/bulkflow/bulkflow/pipeline"
)

// cursorPush is the incremental watermark given to PushCursor.
type cursorPush struct {
	field string
	after any // int64, float64, string or time.Time
}

// PushCursor tells the source that the engine keeps only rows whose field
// is greater than after (or null), so that row groups holding no such row
// can be skipped without being fetched or decoded. It implements
// pipeline.CursorPusher; the engine calls it after Schema and before the
// first Read.
//
// A row group is skipped when the column chunk statistics of field have a
// min and max, a null count of zero, and a max that is <= after. The field
// must be a top-level (not flattened) int, float, string, date or timestamp
// column, and after must have the Go type of that pipeline type (int64,
// float64, string, time.Time); otherwise, or when field is not a column,
// PushCursor changes nothing and every row is read. Skipped rows keep their
// row numbers: the rows after them have the same Origin as in a full read.
// Skipped reports what was skipped.
func (s *Source) PushCursor(field string, after any) {
	if s.core.Closed() {
		return
	}
	s.cursor = nil
	cur, isOpen := s.core.Cur()
	if isOpen {
		cur.skip = nil
	}
	switch after.(type) {
	case int64, float64, string, time.Time:
	default:
		s.log.Debug("parquet: the incremental cursor cannot skip row groups: unsupported watermark type", "cursor", field, "type", fmt.Sprintf("%T", after))
		return
	}
	s.cursor = &cursorPush{field: field, after: after}
	if !isOpen || s.first == nil {
		return // applied as objects are opened
	}
	as, err := cur.fr.Schema()
	if err != nil {
		return
	}
	cur.skip = s.cursor.filter(cur.pf, cur.fr, as, s.cfg.flatten)
	if cur.skip == nil {
		s.log.Debug("parquet: the incremental cursor cannot skip row groups: not a top-level int, float, string, date or timestamp column of a matching type", "cursor", field, "object", cur.name)
	}
}

// Skipped returns how many row groups, and rows in them, PushCursor's
// watermark has let the source skip so far, over all objects.
func (s *Source) Skipped() (rowGroups, rows int64) {
	return s.skippedRGs, s.skippedRows
}

// logSkipped logs, once per object, what the cursor skipped in it.
func (s *Source) logSkipped(o *object) {
	if o.skip == nil {
		return
	}
	s.log.Info(fmt.Sprintf("parquet: skipped %d row groups (%d rows) at or below the watermark", o.skippedRGs, o.skippedRows),
		"object", o.name, "cursor", s.cursor.field, "row_groups", o.pf.NumRowGroups())
}

// rowGroupFilter decides from a row group's statistics whether it holds
// any row the cursor keeps.
type rowGroupFilter struct {
	leaf     int  // Parquet leaf column index of the cursor
	required bool // the column cannot hold nulls
	// atOrBelow reports whether the statistics' max is <= the watermark;
	// false when the statistics are not of the expected kind.
	atOrBelow func(metadata.TypedStatistics) bool
}

// skips reports whether the row group holds no row with a cursor > the
// watermark or null. A nil filter skips nothing.
func (f *rowGroupFilter) skips(rg *metadata.RowGroupMetaData) bool {
	if f == nil {
		return false
	}
	cc, err := rg.ColumnChunk(f.leaf)
	if err != nil {
		return false
	}
	st, err := cc.Statistics() // nil when absent or known to be wrong (old writers)
	if err != nil || st == nil || !st.HasMinMax() {
		return false
	}
	if !f.required && (!st.HasNullCount() || st.NullCount() != 0) {
		return false // null cursors are the engine's to decide about
	}
	return f.atOrBelow(st)
}

// filter returns how to skip row groups of an object by the cursor, or nil
// when its statistics cannot be used: the cursor is not a top-level column
// of a comparable type, or the watermark's Go type does not match it.
func (c *cursorPush) filter(pf *file.Reader, fr *pqarrow.FileReader, as *arrow.Schema, flatten bool) *rowGroupFilter {
	var col *column
	for _, cand := range candidates(as, flatten) {
		if cand.name == c.field {
			col = &cand
			break
		}
	}
	// Flattened struct fields are left out: how writers count nulls under
	// a null parent varies, and a null cursor must never be skipped.
	if col == nil || col.err != nil || len(col.path) > 0 || col.top >= len(fr.Manifest.Fields) {
		return nil
	}
	sf := &fr.Manifest.Fields[col.top]
	if !sf.IsLeaf() || sf.ColIndex < 0 || sf.ColIndex >= pf.MetaData().Schema.NumColumns() {
		return nil
	}
	descr := pf.MetaData().Schema.Column(sf.ColIndex)
	if descr.MaxRepetitionLevel() != 0 {
		return nil
	}
	le := atOrBelow(col.typ, descr, c.after)
	if le == nil {
		return nil
	}
	return &rowGroupFilter{leaf: sf.ColIndex, required: descr.MaxDefinitionLevel() == 0, atOrBelow: le}
}

// atOrBelow returns a test of "statistics max <= after" for a column of
// pipeline type t stored as descr, the max read as convert.go reads values
// of that column; nil when the column's statistics cannot be compared with
// after.
func atOrBelow(t pipeline.Type, descr *schema.Column, after any) func(metadata.TypedStatistics) bool {
	lt := descr.LogicalType()
	unsigned := false
	if it, ok := lt.(schema.IntLogicalType); ok {
		unsigned = !it.IsSigned()
	}
	switch a := after.(type) {
	case int64:
		if t != pipeline.TypeInt {
			return nil
		}
		switch descr.PhysicalType() {
		case parquet.Types.Int32:
			return func(st metadata.TypedStatistics) bool {
				s, ok := st.(*metadata.Int32Statistics)
				if !ok {
					return false
				}
				v := int64(s.Max())
				if unsigned {
					v = int64(uint32(s.Max()))
				}
				return v <= a
			}
		case parquet.Types.Int64:
			return func(st metadata.TypedStatistics) bool {
				s, ok := st.(*metadata.Int64Statistics)
				if !ok {
					return false
				}
				if unsigned && uint64(s.Max()) > math.MaxInt64 {
					return false // above every int64 watermark
				}
				return s.Max() <= a
			}
		}
	case float64:
		if t != pipeline.TypeFloat {
			return nil
		}
		// NaN is left out of statistics; the engine orders NaN below every
		// number, so it never keeps a NaN cursor that a skip could lose.
		switch descr.PhysicalType() {
		case parquet.Types.Float:
			return func(st metadata.TypedStatistics) bool {
				s, ok := st.(*metadata.Float32Statistics)
				return ok && !math.IsNaN(float64(s.Max())) && float64(s.Max()) <= a
			}
		case parquet.Types.Double:
			return func(st metadata.TypedStatistics) bool {
				s, ok := st.(*metadata.Float64Statistics)
				return ok && !math.IsNaN(s.Max()) && s.Max() <= a
			}
		}
	case string:
		// Byte-wise (unsigned) order is Go's string order. A truncated max
		// is rounded up by writers, so it still bounds the values.
		if t != pipeline.TypeString || descr.PhysicalType() != parquet.Types.ByteArray || descr.SortOrder() != schema.SortUNSIGNED {
			return nil
		}
		w := []byte(a)
		return func(st metadata.TypedStatistics) bool {
			s, ok := st.(*metadata.ByteArrayStatistics)
			return ok && bytes.Compare(s.Max(), w) <= 0
		}
	case time.Time:
		switch {
		case t == pipeline.TypeDate && descr.PhysicalType() == parquet.Types.Int32:
			if _, ok := lt.(schema.DateLogicalType); !ok {
				return nil
			}
			return func(st metadata.TypedStatistics) bool {
				s, ok := st.(*metadata.Int32Statistics)
				return ok && !time.Unix(int64(s.Max())*86400, 0).After(a)
			}
		case t == pipeline.TypeTimestamp && descr.PhysicalType() == parquet.Types.Int64:
			// The unit is the file's, which may differ from the Arrow
			// type's (seconds are stored as milliseconds).
			ts, ok := lt.(schema.TimestampLogicalType)
			if !ok {
				return nil
			}
			var toTime func(int64) time.Time
			switch ts.TimeUnit() {
			case schema.TimeUnitMillis:
				toTime = time.UnixMilli
			case schema.TimeUnitMicros:
				toTime = time.UnixMicro
			case schema.TimeUnitNanos:
				toTime = func(v int64) time.Time { return time.Unix(0, v) }
			default:
				return nil
			}
			return func(st metadata.TypedStatistics) bool {
				s, ok := st.(*metadata.Int64Statistics)
				return ok && !toTime(s.Max()).After(a)
			}
		}
	}
	return nil
}

// The Parquet reader can skip row groups by an incremental cursor.
var _ pipeline.CursorPusher = (*Source)(nil)
