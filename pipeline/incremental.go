package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
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

// LastWatermark returns the watermark source stage stage committed last;
// found is false when it has none.
func LastWatermark(ctx context.Context, st StateStore, stage string) (wm Watermark, found bool, err error) {
	found, err = st.Get(ctx, watermarkKey(stage), &wm)
	return wm, found, err
}

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

// parseLookback parses an incremental lookback for a cursor of type t: a
// positive duration for a date or timestamp cursor (Go's units, or whole
// days as "3d"), a positive number for an int or float one. It returns a
// time.Duration, an int64 or a float64.
func parseLookback(t Type, s string) (any, error) {
	switch t {
	case TypeDate, TypeTimestamp:
		d, err := time.ParseDuration(s)
		if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
			var n int64
			if n, err = strconv.ParseInt(days, 10, 32); err == nil {
				d = time.Duration(n) * 24 * time.Hour
			}
		}
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("lookback %q is not a positive duration (such as 15m, 2h or 3d)", s)
		}
		return d, nil
	case TypeInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("lookback %q is not a positive whole number (the cursor is an int)", s)
		}
		return n, nil
	case TypeFloat:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || !(x > 0) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("lookback %q is not a positive number (the cursor is a float)", s)
		}
		return x, nil
	}
	return nil, fmt.Errorf("lookback needs an int, float, date or timestamp cursor, and this one is a %s", t)
}

// lookbackFrom returns the lower bound of the rows a run reads: after
// less back (parseLookback's value for the cursor's type t). A date
// cursor's bound is a whole day (UTC, as dates are parsed).
func lookbackFrom(t Type, after, back any) any {
	switch x := after.(type) {
	case time.Time:
		from := x.Add(-back.(time.Duration))
		if t == TypeDate {
			from = from.Truncate(24 * time.Hour)
		}
		return from
	case int64:
		if n := back.(int64); x >= math.MinInt64+n {
			return x - n
		}
		return int64(math.MinInt64)
	case float64:
		return x - back.(float64)
	}
	return after
}

// checkCursor checks a source stage's incremental cursor against its
// schema and returns the field's index and the parsed lookback (nil
// without one; see parseLookback).
func checkCursor(s *StageSpec, out *Schema) (int, any, error) {
	i := out.Index(s.Incremental.Cursor)
	if i < 0 {
		return 0, nil, &ConfigError{Pos: s.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental cursor %q is not a column of the source (columns: %s)%s",
			s.Name, s.Incremental.Cursor, out, didYouMean(s.Incremental.Cursor, out.Names()))}
	}
	t := out.Field(i).Type
	if !cursorType(t) {
		return 0, nil, &ConfigError{Pos: s.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental cursor %q has type %s, which has no order; use an int, float, decimal, string, date or timestamp column",
			s.Name, s.Incremental.Cursor, t)}
	}
	var back any
	if lb := s.Incremental.Lookback; lb != "" {
		var err error
		if back, err = parseLookback(t, lb); err != nil {
			return 0, nil, &ConfigError{Pos: s.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental cursor %q: %v", s.Name, s.Incremental.Cursor, err)}
		}
	}
	return i, back, nil
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
	// from is the bound rows must be above to be read: after, or after
	// less the lookback (nil on the first run).
	from any
	max  any // greatest value read this run
	old  Watermark
}

// openCursor loads the committed watermark of an incremental source stage
// and pushes it into the source when the source can skip.
func openCursor(ctx context.Context, st StateStore, s *planStage) (*cursor, error) {
	if st == nil {
		return nil, &ConfigError{Pos: s.spec.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental needs a state store (a plugin bug: RunOptions.State is nil)", s.spec.Name)}
	}
	i, back, err := checkCursor(s.spec, s.out)
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
	c.from = c.after
	if back != nil {
		c.from = lookbackFrom(c.typ, c.after, back)
	}
	if p, ok := s.source.(CursorPusher); ok {
		p.PushCursor(s.spec.Incremental.Cursor, c.from)
	}
	return c, nil
}

// filter drops (as filtered) the rows of b whose cursor is not greater than
// the watermark (less the lookback: c.from) and notes the greatest cursor.
// Rows with a null cursor are kept: they cannot be placed, so they are sent
// every run.
func (c *cursor) filter(b *Batch) *Batch {
	var out *Batch
	for i, row := range b.rows {
		v := row[c.field]
		if v != nil && (c.max == nil || compareCursor(c.typ, v, c.max) > 0) {
			c.max = v
		}
		old := v != nil && c.from != nil && compareCursor(c.typ, v, c.from) <= 0
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
