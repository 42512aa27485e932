// Package transformtest is the conformance suite every transform runs, in
// the manner of sources/sourcetest and sinks/sinktest: a transform type
// supplies a Harness (options the suite can run on Schema, and options it
// must refuse), and RunConformance holds it, built through the registry as
// the engine builds it, to the contract of pipeline.Transform:
//
//   - every input row settles exactly once: it leaves Apply as one output
//     row or one drop (filtered, or dead-lettered with a *pipeline.RowError
//     that has a code), with its origin, and the input batch is unchanged;
//   - Apply may be called from many goroutines at once after Check (run
//     the suite with -race) and gives each batch the result it gives alone;
//   - a pipeline.RowReleaser's output rows are its own, not its input's;
//   - the columns a pipeline.ColumnUser says it reads are input columns,
//     and its rows' outcomes do not depend on the other columns;
//   - options it cannot use (nil, a value of another type, a nil pointer,
//     and the harness's invalid ones) are refused with an error, never a
//     panic; Apply before Check is an error too.
package transformtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Schema is the input schema of the suite's rows: one column of every
// declared type.
var Schema = pipeline.MustSchema(
	pipeline.Field{Name: "id", Type: pipeline.TypeInt},
	pipeline.Field{Name: "name", Type: pipeline.TypeString},
	pipeline.Field{Name: "amount", Type: pipeline.TypeFloat},
	pipeline.Field{Name: "active", Type: pipeline.TypeBool},
	pipeline.Field{Name: "day", Type: pipeline.TypeDate},
	pipeline.Field{Name: "at", Type: pipeline.TypeTimestamp},
	pipeline.Field{Name: "price", Type: pipeline.TypeDecimal},
	pipeline.Field{Name: "note", Type: pipeline.TypeString},
)

// Rows returns n rows of Schema, the same for the same n: ids 0, 1, 2, ...
// (so id 0 is a zero divisor) with math.MaxInt64 and math.MinInt64 every
// 13th and 17th row, negative, zero and positive amounts, awkward strings
// and a null in some column of every 7th row.
func Rows(n int) []pipeline.Row {
	names := []string{"Ada", "", " Grace ", `say "hi"`, "a,b", "line\nbreak", "ünï ✓", "NULL"}
	out := make([]pipeline.Row, n)
	for i := range out {
		id := int64(i)
		switch {
		case i%17 == 16:
			id = math.MinInt64
		case i%13 == 12:
			id = math.MaxInt64
		}
		row := pipeline.Row{
			id,
			names[i%len(names)],
			float64(i%5-2) * 1250.5,
			i%3 != 0,
			time.Date(2020+i%7, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC),
			time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 97 * time.Minute),
			fmt.Sprintf("%d.%02d", i*7, i%100),
			fmt.Sprintf("note %d", i),
		}
		if i%7 == 6 {
			row[1+i%(len(row)-1)] = nil
		}
		out[i] = row
	}
	return out
}

// inputSlabs holds the memory of the suite's input rows.
var inputSlabs pipeline.SlabPool

// batchOf returns rows as a batch whose origins are unique: object, line
// first+i+2, row first+i+1. The rows are copies in one slab attached to
// the batch (pipeline.Batch.Recycle), as a source that recycles rows makes
// them, so that settle can check that a pipeline.RowReleaser's output
// rows are its own.
func batchOf(rows []pipeline.Row, first int) *pipeline.Batch {
	b := pipeline.NewBatch(Schema, len(rows))
	w := Schema.Len()
	slab := inputSlabs.Get(len(rows) * w)
	b.Recycle(&inputSlabs, slab)
	for i, r := range rows {
		row := pipeline.Row(slab[i*w : (i+1)*w : (i+1)*w])
		copy(row, r)
		b.Append(row, pipeline.Origin{Object: "mem://transformtest/rows.csv", Line: int64(first + i + 2), Row: int64(first + i + 1)})
	}
	return b
}

// Harness supplies one transform type to the suite.
type Harness interface {
	// Options returns options, of the type the registry's NewOptions
	// returns, of a transform that Checks against Schema and keeps some of
	// Rows(n); it should also filter or dead-letter some, so that every
	// outcome is exercised.
	Options() any
	// BadOptions returns options of the right type that the constructor
	// must refuse (empty, invalid); the suite also tries nil, a value of
	// another type and a nil pointer of the Options type.
	BadOptions() []any
}

// RunConformance runs the suite on the transform type name of reg.
func RunConformance(t *testing.T, reg *pipeline.Registry, name string, h Harness) {
	t.Run("BadOptions", func(t *testing.T) { testBadOptions(t, reg, name, h) })
	t.Run("ApplyBeforeCheck", func(t *testing.T) { testApplyBeforeCheck(t, reg, name, h) })
	t.Run("SettleOnce", func(t *testing.T) { testSettleOnce(t, reg, name, h) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, reg, name, h) })
	t.Run("ColumnsUsed", func(t *testing.T) { testColumnsUsed(t, reg, name, h) })
}

// build makes a transform through the registry, turning a panic into an
// error that says so.
func build(reg *pipeline.Registry, name string, opts any) (tr pipeline.Transform, err error) {
	defer func() {
		if p := recover(); p != nil {
			tr, err = nil, fmt.Errorf("panicked: %v", p)
		}
	}()
	return reg.NewTransform(&pipeline.Env{}, name, opts)
}

// checked builds a transform from the harness's options and checks it
// against Schema.
func checked(t *testing.T, reg *pipeline.Registry, name string, h Harness) (pipeline.Transform, *pipeline.Schema) {
	t.Helper()
	tr, err := build(reg, name, h.Options())
	if err != nil {
		t.Fatalf("NewTransform(%q): %v", name, err)
	}
	out, err := tr.Check(Schema)
	if err != nil {
		t.Fatalf("Check(%s): %v", Schema, err)
	}
	if out == nil {
		t.Fatalf("Check returned a nil schema")
	}
	return tr, out
}

func testBadOptions(t *testing.T, reg *pipeline.Registry, name string, h Harness) {
	want, err := reg.NewOptions(pipeline.KindTransform, name)
	if err != nil {
		t.Fatal(err)
	}
	if good := h.Options(); want != nil && reflect.TypeOf(good) != reflect.TypeOf(want) {
		t.Fatalf("harness Options are %T, the registry's NewOptions %T", good, want)
	}
	cases := []struct {
		what string
		opts any
	}{
		{"nil", nil},
		{"another type", struct{ Expr string }{"true"}},
		{"a string", "id > 0"},
	}
	if want != nil && reflect.TypeOf(want).Kind() == reflect.Pointer {
		cases = append(cases, struct {
			what string
			opts any
		}{"a nil pointer", reflect.Zero(reflect.TypeOf(want)).Interface()})
	}
	for i, o := range h.BadOptions() {
		cases = append(cases, struct {
			what string
			opts any
		}{fmt.Sprintf("BadOptions()[%d] %+v", i, o), o})
	}
	for _, c := range cases {
		tr, err := build(reg, name, c.opts)
		if err == nil {
			t.Errorf("NewTransform(%q) with %s: got a %T, want an error", name, c.what, tr)
		} else if errMsg := err.Error(); len(errMsg) >= 9 && errMsg[:9] == "panicked:" {
			t.Errorf("NewTransform(%q) with %s %s, want an error", name, c.what, errMsg)
		}
	}
}

func testApplyBeforeCheck(t *testing.T, reg *pipeline.Registry, name string, h Harness) {
	tr, err := build(reg, name, h.Options())
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("Apply before Check panicked: %v", p)
			}
		}()
		if _, err := tr.Apply(context.Background(), batchOf(Rows(3), 0)); err == nil {
			t.Errorf("Apply before Check succeeded, want an error")
		}
	}()
}

// outcome is what became of one input row.
type outcome struct {
	kept     pipeline.Row // output row, when kept
	filtered bool
	code     string // RowError code, when dead-lettered
}

// settle applies tr to b and returns the outcome of every input row by
// index, failing the test unless each input row settled exactly once, with
// its origin, and b is unchanged.
func settle(t *testing.T, tr pipeline.Transform, out *pipeline.Schema, b *pipeline.Batch) []outcome {
	t.Helper()
	before := make([]pipeline.Row, b.Len())
	index := make(map[pipeline.Origin]int, b.Len())
	for i := range b.Len() {
		before[i] = slices.Clone(b.Row(i))
		index[b.Origin(i)] = i
	}
	got, err := tr.Apply(context.Background(), b)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i := range b.Len() {
		if !reflect.DeepEqual(b.Row(i), before[i]) {
			t.Errorf("Apply changed input row %d: %v, was %v", i, b.Row(i), before[i])
		}
	}
	if !got.Schema().Equal(out) {
		t.Errorf("Apply's batch schema %s, Check said %s", got.Schema(), out)
	}
	if got.Settled() != b.Len() {
		t.Errorf("Apply settled %d rows (%d out, %d dropped), the batch has %d", got.Settled(), got.Len(), len(got.Drops()), b.Len())
	}
	outcomes := make([]outcome, b.Len())
	seen := make([]bool, b.Len())
	mark := func(o pipeline.Origin, what string) (int, bool) {
		i, ok := index[o]
		switch {
		case !ok:
			t.Errorf("%s with origin %v, which is no input row's", what, o)
		case seen[i]:
			t.Errorf("input row %d (%v) settled twice (again as %s)", i, o, what)
		default:
			seen[i] = true
			return i, true
		}
		return 0, false
	}
	for k := range got.Len() {
		row := got.Row(k)
		if len(row) != out.Len() {
			t.Errorf("output row %d has %d values, the schema %d", k, len(row), out.Len())
		}
		if i, ok := mark(got.Origin(k), "an output row"); ok {
			outcomes[i].kept = row
		}
	}
	for _, d := range got.Drops() {
		i, ok := mark(d.Origin, "a drop")
		if !ok {
			continue
		}
		if !reflect.DeepEqual(d.Row, before[i]) {
			t.Errorf("drop of row %d carries %v, want the input row %v", i, d.Row, before[i])
		}
		if outcomes[i] = dropOutcome(d); outcomes[i].code == "?" {
			t.Errorf("drop of row %d: %v (%T), want a *pipeline.RowError with a code", i, d.Err, d.Err)
		}
	}
	for i, s := range seen {
		if !s {
			t.Errorf("input row %d (%v) did not settle: neither output nor dropped", i, b.Origin(i))
		}
	}
	if rr, ok := tr.(pipeline.RowReleaser); ok && rr.ReleasesRows() {
		// The engine recycles the input's rows once Apply's batch is
		// emitted: the output rows must not be the input's (its drops
		// may).
		rows := pipeline.NewBatch(got.Schema(), got.Len())
		for k := range got.Len() {
			rows.Append(got.Row(k), got.Origin(k))
		}
		if err := pipeline.VerifyRecycle(b, rows); err != nil {
			t.Errorf("the transform says it releases its input's rows (pipeline.RowReleaser), but its output holds them: %v", err)
		}
	}
	return outcomes
}

func testSettleOnce(t *testing.T, reg *pipeline.Registry, name string, h Harness) {
	tr, out := checked(t, reg, name, h)
	rows := Rows(200)
	var kept, filtered, failed int
	for first := 0; first < len(rows); first += 50 {
		for _, o := range settle(t, tr, out, batchOf(rows[first:first+50], first)) {
			switch {
			case o.kept != nil:
				kept++
			case o.filtered:
				filtered++
			default:
				failed++
			}
		}
	}
	if kept == 0 {
		t.Errorf("no row of Rows(200) was kept: the harness's options exercise nothing")
	}
	t.Logf("%s: %d kept, %d filtered, %d dead-lettered of %d", name, kept, filtered, failed, len(rows))
	empty := settle(t, tr, out, batchOf(nil, 0))
	if len(empty) != 0 {
		t.Errorf("an empty batch gave %d outcomes", len(empty))
	}
}

// testConcurrent applies one checked transform to many batches from many
// goroutines at once, as the engine's workers do, and requires each batch's
// outcomes to be those it has when applied alone.
func testConcurrent(t *testing.T, reg *pipeline.Registry, name string, h Harness) {
	tr, out := checked(t, reg, name, h)
	const workers, per = 8, 40
	rows := Rows(workers * per)
	want := make([][]outcome, workers)
	for w := range workers {
		want[w] = settle(t, tr, out, batchOf(rows[w*per:(w+1)*per], w*per))
	}
	got := make([][]outcome, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				b, err := tr.Apply(context.Background(), batchOf(rows[w*per:(w+1)*per], w*per))
				if err != nil {
					errs[w] = err
					return
				}
				got[w] = outcomesOf(b, w*per, per)
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			t.Errorf("concurrent Apply: %v", errs[w])
			continue
		}
		if !reflect.DeepEqual(got[w], want[w]) {
			t.Errorf("batch %d applied concurrently: %v, alone: %v", w, got[w], want[w])
		}
	}
}

// outcomesOf returns the outcomes of a batch made by batchOf(rows, first)
// of n rows, by index, without the checks of settle (which uses t).
func outcomesOf(b *pipeline.Batch, first, n int) []outcome {
	outcomes := make([]outcome, n)
	for k := range b.Len() {
		if i := int(b.Origin(k).Row) - first - 1; i >= 0 && i < n {
			outcomes[i].kept = b.Row(k)
		}
	}
	for _, d := range b.Drops() {
		if i := int(d.Origin.Row) - first - 1; i >= 0 && i < n {
			outcomes[i] = dropOutcome(d)
		}
	}
	return outcomes
}

// dropOutcome is the outcome of a drop: filtered (no error), dead-lettered
// with its RowError's code, or code "?" for an error that is not a
// *pipeline.RowError with a code.
func dropOutcome(d pipeline.Drop) outcome {
	if d.Err == nil {
		return outcome{filtered: true}
	}
	var re *pipeline.RowError
	if !errors.As(d.Err, &re) || re.Code == "" {
		return outcome{code: "?"}
	}
	return outcome{code: re.Code}
}

// testColumnsUsed checks a pipeline.ColumnUser: its columns are input
// columns, named once, and blanking every other column (as a projecting
// source leaves them) changes no row's outcome nor any output value that is
// not such a column passed through.
func testColumnsUsed(t *testing.T, reg *pipeline.Registry, name string, h Harness) {
	tr, out := checked(t, reg, name, h)
	cu, ok := tr.(pipeline.ColumnUser)
	if !ok {
		t.Skipf("%s does not implement pipeline.ColumnUser", name)
	}
	used, ok := cu.ColumnsUsed()
	if !ok {
		t.Skipf("%s may read any column with these options", name)
	}
	isUsed := map[string]bool{}
	for _, c := range used {
		if Schema.Index(c) < 0 {
			t.Errorf("ColumnsUsed names %q, which is not an input column (%s)", c, Schema)
		}
		if isUsed[c] {
			t.Errorf("ColumnsUsed names %q twice", c)
		}
		isUsed[c] = true
	}
	if len(used) == Schema.Len() {
		t.Logf("%s reads every column: nothing to blank", name)
	}
	rows := Rows(100)
	blanked := make([]pipeline.Row, len(rows))
	for i, r := range rows {
		blanked[i] = slices.Clone(r)
		for j, f := range Schema.Fields() {
			if !isUsed[f.Name] {
				blanked[i][j] = nil
			}
		}
	}
	full := settle(t, tr, out, batchOf(rows, 0))
	part := settle(t, tr, out, batchOf(blanked, 0))
	for i := range full {
		f, p := full[i], part[i]
		if f.filtered != p.filtered || f.code != p.code || (f.kept == nil) != (p.kept == nil) {
			t.Errorf("row %d: outcome %+v with every column, %+v with only %v", i, f, p, used)
			continue
		}
		for j, fl := range out.Fields() {
			if f.kept == nil || Schema.Index(fl.Name) >= 0 && !isUsed[fl.Name] {
				continue
			}
			if !reflect.DeepEqual(f.kept[j], p.kept[j]) {
				t.Errorf("row %d output %s = %#v with every column, %#v with only %v", i, fl.Name, f.kept[j], p.kept[j], used)
			}
		}
	}
}
