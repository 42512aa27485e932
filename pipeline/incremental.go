package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// Watermark is the state document of an incremental source stage: the
// greatest cursor value of the last run that committed.
type Watermark struct {
	// Version is the document format (WatermarkVersion).
	Version int       `json:"version"`
	Field   string    `json:"field"`
	Type    string    `json:"type"`
	Value   string    `json:"value"` // AppendText form
	RunID   string    `json:"run_id"`
	At      time.Time `json:"committed_at"`
}

// WatermarkVersion is the Watermark format this build writes and reads.
const WatermarkVersion = 1

// watermarkKey is the state document key of a source stage's watermark.
func watermarkKey(stage string) string { return "watermark." + stage }

// cursorType reports whether values of t can be ordered as a cursor.
func cursorType(t Type) bool {
	switch t {
	case TypeInt, TypeFloat, TypeString, TypeDate, TypeTimestamp, TypeDecimal:
		return true
	}
	return false
}

// checkCursor checks a source stage's incremental cursor against its
// schema and returns the field's index.
func checkCursor(s *StageSpec, out *Schema) (int, error) {
	i := out.Index(s.Incremental.Cursor)
	if i < 0 {
		return 0, &ConfigError{Pos: s.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental cursor %q is not a column of the source (columns: %s)%s",
			s.Name, s.Incremental.Cursor, out, didYouMean(s.Incremental.Cursor, out.Names()))}
	}
	if t := out.Field(i).Type; !cursorType(t) {
		return 0, &ConfigError{Pos: s.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental cursor %q has type %s, which has no order; use an int, float, decimal, string, date or timestamp column",
			s.Name, s.Incremental.Cursor, t)}
	}
	return i, nil
}

// parseCursor parses the text form of a cursor value of type t.
func parseCursor(t Type, s string) (any, error) {
	switch t {
	case TypeInt:
		return strconv.ParseInt(s, 10, 64)
	case TypeFloat:
		return strconv.ParseFloat(s, 64)
	case TypeString:
		return s, nil
	case TypeDecimal:
		if _, ok := new(big.Rat).SetString(s); !ok {
			return nil, fmt.Errorf("%q is not a decimal", s)
		}
		return s, nil
	case TypeDate:
		return time.Parse(time.DateOnly, s)
	case TypeTimestamp:
		if d, err := time.Parse(time.DateOnly, s); err == nil {
			return d, nil
		}
		return time.Parse(time.RFC3339Nano, s)
	}
	return nil, fmt.Errorf("type %s cannot be a cursor", t)
}

// compareCursor orders two non-nil cursor values of type t. Values of an
// unexpected Go type (TypeAny sources) compare by text.
func compareCursor(t Type, a, b any) int {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	case string:
		if y, ok := b.(string); ok {
			if t == TypeDecimal {
				rx, ok1 := new(big.Rat).SetString(x)
				ry, ok2 := new(big.Rat).SetString(y)
				if ok1 && ok2 {
					return rx.Cmp(ry)
				}
			}
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(Text(a), Text(b))
}

// cursor filters one incremental source stage's rows and tracks the
// greatest cursor value read. It is used from the stage's goroutine only.
type cursor struct {
	stage string
	name  string // cursor field name
	field int
	typ   Type
	after any // committed watermark; nil = first run
	max   any // greatest value read this run
	old   Watermark
}

// openCursor loads the committed watermark of an incremental source stage
// and pushes it into the source when the source can skip.
func openCursor(ctx context.Context, st StateStore, s *planStage) (*cursor, error) {
	if st == nil {
		return nil, &ConfigError{Pos: s.spec.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental needs a state store (a plugin bug: RunOptions.State is nil)", s.spec.Name)}
	}
	i, err := checkCursor(s.spec, s.out)
	if err != nil {
		return nil, err
	}
	c := &cursor{stage: s.spec.Name, name: s.spec.Incremental.Cursor, field: i, typ: s.out.Field(i).Type}
	found, err := st.Get(ctx, watermarkKey(s.spec.Name), &c.old)
	if err != nil {
		return nil, fmt.Errorf("stage %q: read the incremental watermark: %w", s.spec.Name, err)
	}
	if !found {
		return c, nil
	}
	if c.old.Version > WatermarkVersion {
		return nil, fmt.Errorf("stage %q: the watermark in the state store was written by a newer bulkflow (format %d, this one reads %d); upgrade bulkflow, the state is left untouched",
			s.spec.Name, c.old.Version, WatermarkVersion)
	}
	if c.old.Field != s.spec.Incremental.Cursor || c.old.Type != c.typ.String() {
		return nil, &ConfigError{Pos: s.spec.Incremental.Pos, Msg: fmt.Sprintf("stage %q: the committed watermark is for cursor %q (%s), not %q (%s); to start over from the beginning, delete the state document %q",
			s.spec.Name, c.old.Field, c.old.Type, s.spec.Incremental.Cursor, c.typ, watermarkKey(s.spec.Name))}
	}
	if c.after, err = parseCursor(c.typ, c.old.Value); err != nil {
		return nil, fmt.Errorf("stage %q: the committed watermark %q does not parse as %s (the state is corrupt; delete the state document %q to start over): %w",
			s.spec.Name, c.old.Value, c.typ, watermarkKey(s.spec.Name), err)
	}
	if p, ok := s.source.(CursorPusher); ok {
		p.PushCursor(s.spec.Incremental.Cursor, c.after)
	}
	return c, nil
}

// filter drops (as filtered) the rows of b whose cursor is not greater than
// the watermark and notes the greatest cursor. Rows with a null cursor are
// kept: they cannot be placed, so they are sent every run.
func (c *cursor) filter(b *Batch) *Batch {
	var out *Batch
	for i, row := range b.rows {
		v := row[c.field]
		if v != nil && (c.max == nil || compareCursor(c.typ, v, c.max) > 0) {
			c.max = v
		}
		old := v != nil && c.after != nil && compareCursor(c.typ, v, c.after) <= 0
		if old && out == nil {
			out = &Batch{schema: b.schema, rows: append(make([]Row, 0, len(b.rows)), b.rows[:i]...),
				origins: append(make([]Origin, 0, len(b.rows)), b.origins[:i]...), drops: b.drops}
		}
		switch {
		case old:
			out.Drop(Drop{Row: row, Origin: b.origins[i]})
		case out != nil:
			out.Append(row, b.origins[i])
		}
	}
	if out == nil {
		return b
	}
	return out
}

// commit stores the new watermark when it moved.
func (c *cursor) commit(ctx context.Context, st StateStore, runID string, now time.Time) error {
	if c.max == nil || (c.after != nil && compareCursor(c.typ, c.max, c.after) <= 0) {
		return nil
	}
	wm := Watermark{Version: WatermarkVersion, Field: c.name, Type: c.typ.String(), Value: Text(c.max), RunID: runID, At: now.UTC()}
	if err := st.Put(ctx, watermarkKey(c.stage), wm); err != nil {
		return fmt.Errorf("stage %q: commit the incremental watermark: %w", c.stage, err)
	}
	return nil
}
