// Package sourcetest is the conformance suite every bulkflow source runs,
// in the manner of gocloud.dev/blob/drivertest: a source package supplies a
// Harness that materialises format-neutral Fixtures as objects in its own
// format and location, and RunConformance checks the pipeline.Source
// contract against them — schema, values, order, origins, io.EOF, bad rows,
// cancellation and Close.
//
// A harness that cannot support a check lists its name in Unimplementable;
// nothing is skipped silently, and listing an unknown name fails the suite.
//
// Sources that read several objects honour pipeline.Env.Shard; the "Shard"
// check opens them through EnvHarness.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Fixture is one object's contents, independent of format: a header and rows
// of string cells (each row as long as the header).
type Fixture struct {
	// Name identifies the object. Harnesses derive the object key from it so
	// that objects sorted by Name are in key order.
	Name   string
	Header []string
	Rows   [][]string
}

// BadRowCase is an input holding bad records, prepared by Harness.BadRow.
type BadRowCase struct {
	// Source reads the input.
	Source pipeline.Source
	// Records is how many records the input holds, good and bad.
	Records int
	// Rows are the good rows' values, in order.
	Rows [][]string
	// Bad are the origins of the bad records, in order.
	Bad []pipeline.Origin
}

// Harness adapts one source type (and one storage location) to the suite.
// A new Harness is made for every subtest.
type Harness interface {
	// MakeSource writes the fixtures as objects (several objects are read
	// back as one source, e.g. through a glob) and returns a source reading
	// them, its Schema not yet called. Every column is a string column.
	// Objects must be read in order of Fixture.Name, whatever the order of
	// the argument.
	MakeSource(ctx context.Context, tb testing.TB, objects []Fixture) (pipeline.Source, error)
	// WantOrigin returns the origin the source must report for rows[row] of
	// objects[obj], objects being the argument of the last MakeSource
	// sorted by Name.
	WantOrigin(objects []Fixture, obj, row int) pipeline.Origin
	// BadRow prepares an input with bad records between good ones, read with
	// bad records dead-lettered. ok is false if the format cannot hold a bad
	// record (then "BadRow" must be listed in Unimplementable).
	BadRow(ctx context.Context, tb testing.TB) (c BadRowCase, ok bool)
	// Unimplementable names the subtests this harness cannot support, each
	// reported as skipped with that reason.
	Unimplementable() []string
}

// EnvHarness is a Harness whose sources can be opened with a pipeline.Env,
// as the engine opens them through the registry. The "Shard" subtest needs
// it: a harness that does not implement it must list "Shard" in
// Unimplementable.
type EnvHarness interface {
	Harness
	// MakeSourceEnv is MakeSource with the Env the source is opened with;
	// env.Shard selects the objects it reads. WantOrigin must work for
	// its objects as for MakeSource's.
	MakeSourceEnv(ctx context.Context, tb testing.TB, env *pipeline.Env, objects []Fixture) (pipeline.Source, error)
}

// HarnessMaker makes a fresh Harness for one test or benchmark.
type HarnessMaker func(tb testing.TB) Harness

// Subtest names, as listed by Harness.Unimplementable.
var subtests = []string{
	"Schema", "Rows", "EOF", "Batching", "Empty", "ManyObjects", "Unicode",
	"EmbeddedNewlines", "WideRows", "BadRow", "Cancel", "CancelMidway", "Close",
	"Shard", "Project",
}

// RunConformance runs the suite. newHarness is called once per subtest.
func RunConformance(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	skip := map[string]bool{}
	for _, n := range newHarness(t).Unimplementable() {
		if !slices.Contains(subtests, n) {
			t.Fatalf("Harness.Unimplementable lists %q, which is not a subtest (known: %v)", n, subtests)
		}
		skip[n] = true
	}
	tests := map[string]func(t *testing.T, h Harness){
		"Schema":           testSchema,
		"Rows":             testRows,
		"EOF":              testEOF,
		"Batching":         testBatching,
		"Empty":            testEmpty,
		"ManyObjects":      testManyObjects,
		"Unicode":          testUnicode,
		"EmbeddedNewlines": testEmbeddedNewlines,
		"WideRows":         testWideRows,
		"BadRow":           testBadRow,
		"Cancel":           testCancel,
		"CancelMidway":     testCancelMidway,
		"Close":            testClose,
		"Shard":            testShard,
		"Project":          testProject,
	}
	for _, name := range subtests {
		t.Run(name, func(t *testing.T) {
			if skip[name] {
				t.Skipf("declared unimplementable by the harness")
			}
			tests[name](t, newHarness(t))
		})
	}
}

//------------------------------------------------------------------------------
// Fixtures

// Simple is a small fixture of ordinary values.
func Simple(name string) Fixture {
	return Fixture{
		Name:   name,
		Header: []string{"Id", "Name", "Amount", "Note"},
		Rows: [][]string{
			{"1", "Acme", "10.50", "plain"},
			{"2", "Globex, Inc.", "", `say "hi"`},
			{"3", "", "0", ""},
		},
	}
}

// Generated returns a fixture of n rows of cols columns with varied values.
func Generated(name string, n, cols int) Fixture {
	f := Fixture{Name: name, Header: make([]string, cols)}
	for j := range cols {
		f.Header[j] = fmt.Sprintf("col_%03d", j)
	}
	f.Rows = make([][]string, n)
	for i := range n {
		row := make([]string, cols)
		for j := range cols {
			switch (i + j) % 5 {
			case 0:
				row[j] = fmt.Sprint(i*cols + j)
			case 1:
				row[j] = fmt.Sprintf("name %d, with comma", i)
			case 2:
				row[j] = ""
			case 3:
				row[j] = fmt.Sprintf("%d.%02d", i, j)
			default:
				row[j] = "text-" + strings.Repeat("x", j%7)
			}
		}
		f.Rows[i] = row
	}
	return f
}

// Awkward cell contents shared by the fixtures.
var (
	unicodeCells = []string{"Zoë Ünïcödé", "日本語テキスト", "emoji 🚀👩‍💻", "עברית", "e\u0301 combining", "\u00a0nbsp\u00a0", "\u2028line sep", "ok"}
	newlineCells = []string{"a\nb", "crlf\r\ninside", "\n", "\r\n", "two\n\nblank lines", "trailing\n", "\nleading", `quote " and, comma` + "\n"}
)

func unicodeFixture(name string) Fixture {
	f := Fixture{Name: name, Header: []string{"Ünïcode", "名前", "emoji🚀", "plain"}}
	for i := range len(unicodeCells) {
		f.Rows = append(f.Rows, []string{unicodeCells[i], unicodeCells[(i+1)%len(unicodeCells)], unicodeCells[(i+2)%len(unicodeCells)], fmt.Sprint(i)})
	}
	return f
}

func newlineFixture(name string) Fixture {
	f := Fixture{Name: name, Header: []string{"id", "text", "more"}}
	for i, c := range newlineCells {
		f.Rows = append(f.Rows, []string{fmt.Sprint(i), c, newlineCells[(i+3)%len(newlineCells)]})
	}
	f.Rows = append(f.Rows, []string{"last", "", "end"})
	return f
}

//------------------------------------------------------------------------------
// Helpers

// ReadAll reads src to io.EOF and returns its batches. It fails the test on
// any other error, or if io.EOF comes with rows.
func ReadAll(ctx context.Context, tb testing.TB, src pipeline.Source) []*pipeline.Batch {
	tb.Helper()
	var out []*pipeline.Batch
	for range 1_000_000 {
		b, err := src.Read(ctx)
		if err == io.EOF {
			if b != nil && b.Settled() > 0 {
				tb.Errorf("Read returned io.EOF with a batch of %d rows", b.Settled())
			}
			// A source that recycles its rows' memory attaches each slab
			// to the one batch whose rows it backs.
			if err := pipeline.VerifyRecycle(out...); err != nil {
				tb.Error(err)
			}
			return out
		}
		if err != nil {
			tb.Fatalf("Read: %v", err)
		}
		if b == nil {
			tb.Fatalf("Read returned a nil batch and a nil error")
		}
		out = append(out, b)
	}
	tb.Fatalf("Read did not return io.EOF")
	return nil
}

func makeSource(t *testing.T, h Harness, objs ...Fixture) pipeline.Source {
	t.Helper()
	src, err := h.MakeSource(context.Background(), t, objs)
	if err != nil {
		t.Fatalf("MakeSource: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// checkSchema checks the source's schema is the header, all strings.
func checkSchema(t *testing.T, src pipeline.Source, header []string) *pipeline.Schema {
	t.Helper()
	sch, err := src.Schema(context.Background())
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	if got := sch.Names(); !slices.Equal(got, header) {
		t.Fatalf("Schema names = %q, want %q", got, header)
	}
	for i := range sch.Len() {
		if f := sch.Field(i); f.Type != pipeline.TypeString {
			t.Errorf("Schema field %q has type %s, want string", f.Name, f.Type)
		}
	}
	return sch
}

// checkRows reads src to the end and checks every row's values and origin
// against the fixtures, in Name order.
func checkRows(t *testing.T, h Harness, src pipeline.Source, objs []Fixture) {
	t.Helper()
	sorted := slices.Clone(objs)
	slices.SortFunc(sorted, func(a, b Fixture) int { return strings.Compare(a.Name, b.Name) })
	checkSchema(t, src, sorted[0].Header)
	type want struct {
		cells  []string
		origin pipeline.Origin
	}
	var wants []want
	for oi, f := range sorted {
		for ri, r := range f.Rows {
			wants = append(wants, want{r, h.WantOrigin(sorted, oi, ri)})
		}
	}
	got := 0
	for _, b := range ReadAll(context.Background(), t, src) {
		for _, d := range b.Drops() {
			t.Errorf("unexpected drop at %v: %v (raw %q)", d.Origin, d.Err, d.Raw)
		}
		for i := range b.Len() {
			if got >= len(wants) {
				t.Fatalf("more rows than the %d written", len(wants))
			}
			w := wants[got]
			got++
			if o := b.Origin(i); o != w.origin {
				t.Errorf("row %d: origin = %+v, want %+v", got, o, w.origin)
			}
			checkRow(t, b.Row(i), w.cells, w.origin)
		}
	}
	if got != len(wants) {
		t.Errorf("read %d rows, want %d", got, len(wants))
	}
}

func checkRow(t *testing.T, row pipeline.Row, cells []string, where pipeline.Origin) {
	t.Helper()
	if len(row) != len(cells) {
		t.Errorf("%v: row has %d values, want %d", where, len(row), len(cells))
		return
	}
	for j, c := range cells {
		s, ok := row[j].(string)
		if !ok || s != c {
			t.Errorf("%v: value %d = %#v, want %q", where, j, row[j], c)
		}
	}
}

//------------------------------------------------------------------------------
// Subtests

// testProject checks pipeline.Projector, for sources that implement it:
// the projected columns come in the source's order whatever the order
// asked, with the same values and origins as an unprojected read; a
// second call replaces the first; bad calls fail.
func testProject(t *testing.T, h Harness) {
	ctx := context.Background()
	objs := []Fixture{Generated("project-a", 700, 6), Generated("project-b", 300, 6)}
	src := makeSource(t, h, objs...)
	pr, ok := src.(pipeline.Projector)
	if !ok {
		t.Skip("the source is not a pipeline.Projector (optional)")
	}
	header := objs[0].Header
	if err := pr.Project([]string{header[0]}); err != nil {
		t.Fatalf("Project before Schema: %v", err)
	}
	// Replaces the first projection; asked out of order, and before and
	// after Schema alike.
	if err := pr.Project([]string{header[4], header[1]}); err != nil {
		t.Fatalf("Project: %v", err)
	}
	want := []int{1, 4}
	sch, err := src.Schema(ctx)
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	if got := sch.Names(); !slices.Equal(got, []string{header[1], header[4]}) {
		t.Fatalf("projected schema = %q, want %q (the source's order)", got, []string{header[1], header[4]})
	}
	if err := pr.Project([]string{header[4], header[1]}); err != nil {
		t.Fatalf("Project after Schema: %v", err)
	}
	for _, bad := range [][]string{nil, {header[1], header[1]}, {"no_such_column"}} {
		if err := pr.Project(bad); err == nil {
			t.Errorf("Project(%q) succeeded, want an error", bad)
		}
	}
	if got, _ := src.Schema(ctx); !slices.Equal(got.Names(), []string{header[1], header[4]}) {
		t.Errorf("a failed Project changed the schema to %q", got.Names())
	}
	sorted := slices.Clone(objs)
	slices.SortFunc(sorted, func(a, b Fixture) int { return strings.Compare(a.Name, b.Name) })
	var wantRows [][]string
	var wantOrigins []pipeline.Origin
	for oi, f := range sorted {
		for ri, r := range f.Rows {
			cells := make([]string, len(want))
			for k, j := range want {
				cells[k] = r[j]
			}
			wantRows = append(wantRows, cells)
			wantOrigins = append(wantOrigins, h.WantOrigin(sorted, oi, ri))
		}
	}
	n := 0
	first := true
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if first {
			first = false
			if err := pr.Project([]string{header[0]}); err == nil {
				t.Errorf("Project after Read succeeded, want an error")
			}
		}
		if !b.Schema().Equal(sch) {
			t.Fatalf("batch schema %s, want %s", b.Schema(), sch)
		}
		for i := range b.Len() {
			if n >= len(wantRows) {
				t.Fatalf("more rows than the %d written", len(wantRows))
			}
			if o := b.Origin(i); o != wantOrigins[n] {
				t.Errorf("row %d: origin = %+v, want %+v", n+1, o, wantOrigins[n])
			}
			checkRow(t, b.Row(i), wantRows[n], wantOrigins[n])
			n++
		}
	}
	if n != len(wantRows) {
		t.Errorf("read %d rows, want %d", n, len(wantRows))
	}
	src.Close()
	if err := pr.Project([]string{header[0]}); err == nil {
		t.Errorf("Project after Close succeeded, want an error")
	}
}

func testSchema(t *testing.T, h Harness) {
	f := Simple("schema")
	src := makeSource(t, h, f)
	checkSchema(t, src, f.Header)
	// Schema is stable across calls.
	checkSchema(t, src, f.Header)
}

func testRows(t *testing.T, h Harness) {
	objs := []Fixture{Simple("rows")}
	checkRows(t, h, makeSource(t, h, objs...), objs)
}

func testEOF(t *testing.T, h Harness) {
	src := makeSource(t, h, Simple("eof"))
	ReadAll(context.Background(), t, src)
	for i := range 3 {
		b, err := src.Read(context.Background())
		if err != io.EOF || b != nil {
			t.Errorf("Read #%d after the end = %v, %v; want nil, io.EOF", i+1, b, err)
		}
	}
}

func testBatching(t *testing.T, h Harness) {
	// More rows than any sensible default batch: several batches, each
	// starting where the last one ended.
	objs := []Fixture{Generated("batching", 5000, 6)}
	checkRows(t, h, makeSource(t, h, objs...), objs)
}

func testEmpty(t *testing.T, h Harness) {
	header := Simple("").Header
	tests := []struct {
		name string
		objs []Fixture
	}{
		{"one header-only object", []Fixture{{Name: "empty", Header: header}}},
		{"several header-only objects", []Fixture{{Name: "e1", Header: header}, {Name: "e2", Header: header}}},
		{"header-only objects around rows", []Fixture{{Name: "a", Header: header}, Simple("b"), {Name: "c", Header: header}, Simple("d"), {Name: "e", Header: header}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkRows(t, h, makeSource(t, h, tc.objs...), tc.objs)
		})
	}
}

func testManyObjects(t *testing.T, h Harness) {
	var objs []Fixture
	for i := range 12 {
		f := Generated(fmt.Sprintf("part-%05d", i), 20+i, 4)
		for _, r := range f.Rows {
			r[0] = f.Name // tag rows with their object
		}
		objs = append(objs, f)
	}
	// Hand them over out of order: the source must read in key order.
	shuffled := slices.Clone(objs)
	slices.Reverse(shuffled[:6])
	shuffled[0], shuffled[11] = shuffled[11], shuffled[0]
	checkRows(t, h, makeSource(t, h, shuffled...), objs)
}

func testUnicode(t *testing.T, h Harness) {
	objs := []Fixture{unicodeFixture("unicode-ü")}
	checkRows(t, h, makeSource(t, h, objs...), objs)
}

func testEmbeddedNewlines(t *testing.T, h Harness) {
	objs := []Fixture{newlineFixture("newlines"), newlineFixture("newlines2")}
	checkRows(t, h, makeSource(t, h, objs...), objs)
}

func testWideRows(t *testing.T, h Harness) {
	f := Generated("wide", 40, 500)
	f.Rows[3][499] = strings.Repeat("long cell ", 2000)
	objs := []Fixture{f}
	checkRows(t, h, makeSource(t, h, objs...), objs)
}

func testBadRow(t *testing.T, h Harness) {
	c, ok := h.BadRow(context.Background(), t)
	if !ok {
		t.Fatalf("BadRow returned ok=false but \"BadRow\" is not in Unimplementable")
	}
	t.Cleanup(func() { c.Source.Close() })
	if _, err := c.Source.Schema(context.Background()); err != nil {
		t.Fatalf("Schema: %v", err)
	}
	var rows [][]string
	var drops []pipeline.Drop
	for _, b := range ReadAll(context.Background(), t, c.Source) {
		for i := range b.Len() {
			cells := make([]string, len(b.Row(i)))
			for j, v := range b.Row(i) {
				cells[j], _ = v.(string)
			}
			rows = append(rows, cells)
		}
		drops = append(drops, b.Drops()...)
	}
	if n := len(rows) + len(drops); n != c.Records {
		t.Errorf("rows + drops = %d + %d = %d, want %d records", len(rows), len(drops), n, c.Records)
	}
	if len(rows) != len(c.Rows) {
		t.Errorf("got %d good rows, want %d", len(rows), len(c.Rows))
	} else {
		for i := range rows {
			if !slices.Equal(rows[i], c.Rows[i]) {
				t.Errorf("good row %d = %q, want %q", i, rows[i], c.Rows[i])
			}
		}
	}
	if len(drops) != len(c.Bad) {
		t.Fatalf("got %d drops, want %d", len(drops), len(c.Bad))
	}
	for i, d := range drops {
		want := c.Bad[i]
		var re *pipeline.RowError
		if !errors.As(d.Err, &re) {
			t.Errorf("drop %d: Err = %v (%T), want a *pipeline.RowError", i, d.Err, d.Err)
			continue
		}
		if d.Origin != want || re.Origin != want {
			t.Errorf("drop %d: origins = %+v (drop), %+v (error); want %+v", i, d.Origin, re.Origin, want)
		}
		if re.Code == "" {
			t.Errorf("drop %d: RowError has no Code", i)
		}
		if msg := re.Error(); !strings.Contains(msg, want.String()) {
			t.Errorf("drop %d: error %q does not name %s", i, msg, want)
		}
		if d.Row == nil && d.Raw == "" {
			t.Errorf("drop %d: neither Row nor Raw is set", i)
		}
	}
}

func testCancel(t *testing.T, h Harness) {
	src := makeSource(t, h, Generated("cancel", 2000, 4))
	if _, err := src.Schema(context.Background()); err != nil {
		t.Fatalf("Schema: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	b, err := src.Read(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read(cancelled ctx) = %v, %v; want context.Canceled", b, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Read(cancelled ctx) took %v", d)
	}
	if err := src.Close(); err != nil {
		t.Errorf("Close after a cancelled Read: %v", err)
	}
}

func testCancelMidway(t *testing.T, h Harness) {
	src := makeSource(t, h, Generated("midway", 20000, 4))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := src.Read(ctx); err != nil {
		t.Fatalf("first Read: %v", err)
	}
	cancel()
	start := time.Now()
	for i := range 3 {
		_, err := src.Read(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read #%d after cancel = %v, want context.Canceled", i+1, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Reads after cancel took %v", d)
	}
}

func testClose(t *testing.T, h Harness) {
	t.Run("idempotent", func(t *testing.T) {
		src, err := h.MakeSource(context.Background(), t, []Fixture{Simple("close")})
		if err != nil {
			t.Fatalf("MakeSource: %v", err)
		}
		if _, err := src.Read(context.Background()); err != nil {
			t.Fatalf("Read: %v", err)
		}
		for i := range 3 {
			if err := src.Close(); err != nil {
				t.Errorf("Close #%d = %v", i+1, err)
			}
		}
		if _, err := src.Read(context.Background()); err == nil || err == io.EOF {
			t.Errorf("Read after Close = %v, want an error other than io.EOF", err)
		}
	})
	t.Run("unread", func(t *testing.T) {
		src, err := h.MakeSource(context.Background(), t, []Fixture{Simple("close")})
		if err != nil {
			t.Fatalf("MakeSource: %v", err)
		}
		for range 2 {
			if err := src.Close(); err != nil {
				t.Errorf("Close of an unread source = %v", err)
			}
		}
	})
	t.Run("after error", func(t *testing.T) {
		src, err := h.MakeSource(context.Background(), t, []Fixture{Simple("close")})
		if err != nil {
			t.Fatalf("MakeSource: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := src.Read(ctx); err == nil {
			t.Errorf("Read(cancelled ctx) = nil error")
		}
		for range 2 {
			if err := src.Close(); err != nil {
				t.Errorf("Close after an error = %v", err)
			}
		}
	})
}

// shardFixtures returns n objects of varied sizes (object 1 header-only)
// whose rows are tagged: column 0 is the object's name, column 1 the row's
// index in it.
func shardFixtures(n int) []Fixture {
	var objs []Fixture
	for i := range n {
		rows := 3 + (i*7)%11
		if i == 1 {
			rows = 0
		}
		f := Generated(fmt.Sprintf("shard-%02d", i), rows, 4)
		for r, row := range f.Rows {
			row[0], row[1] = f.Name, fmt.Sprint(r)
		}
		objs = append(objs, f)
	}
	return objs
}

// shardRow is a row read by a shard, with where it came from.
type shardRow struct {
	cells  string // the cells joined by NUL
	origin pipeline.Origin
}

// readShard opens objs with env (a fresh copy for every call) and returns
// its rows; it checks the schema is the first object's header.
func readShard(t *testing.T, h EnvHarness, shard pipeline.Shard, objs []Fixture) []shardRow {
	t.Helper()
	env := &pipeline.Env{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Shard: shard}
	src, err := h.MakeSourceEnv(context.Background(), t, env, objs)
	if err != nil {
		t.Fatalf("MakeSourceEnv (shard %q): %v", shard, err)
	}
	defer src.Close()
	checkSchema(t, src, objs[0].Header)
	var rows []shardRow
	for _, b := range ReadAll(context.Background(), t, src) {
		for _, d := range b.Drops() {
			t.Errorf("shard %q: unexpected drop at %v: %v", shard, d.Origin, d.Err)
		}
		for i := range b.Len() {
			cells := make([]string, len(b.Row(i)))
			for j, v := range b.Row(i) {
				cells[j], _ = v.(string)
			}
			rows = append(rows, shardRow{strings.Join(cells, "\x00"), b.Origin(i)})
		}
	}
	return rows
}

// testShard checks pipeline.Env.Shard: the shards of a multi-object input
// read disjoint sets of rows whose union is what the unsharded source reads,
// each shard reading whole objects, those whose index k in the sorted
// listing has k mod n == i, in order and with the usual origins. A shard
// that keeps no object has the schema and reads no rows.
func testShard(t *testing.T, h Harness) {
	eh, ok := h.(EnvHarness)
	if !ok {
		t.Fatalf("the harness (%T) does not implement sourcetest.EnvHarness, and \"Shard\" is not in Unimplementable", h)
	}
	tests := []struct {
		name  string
		objs  []Fixture
		count int
	}{
		{"5 objects, 1 shard", shardFixtures(5), 1},
		{"5 objects, 2 shards", shardFixtures(5), 2},
		{"5 objects, 3 shards", shardFixtures(5), 3},
		{"2 objects, 3 shards: one shard keeps nothing", shardFixtures(2), 3},
		{"1 object, 2 shards", shardFixtures(1), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sorted := tc.objs // already in Name order; hand them over reversed
			given := slices.Clone(tc.objs)
			slices.Reverse(given)

			all := readShard(t, eh, pipeline.Shard{}, given)
			want := map[string]int{} // cells -> object index
			var n int
			for oi, f := range sorted {
				for ri, r := range f.Rows {
					w := shardRow{strings.Join(r, "\x00"), eh.WantOrigin(sorted, oi, ri)}
					want[w.cells] = oi
					if n < len(all) && all[n] != w {
						t.Errorf("unsharded row %d = %q at %+v, want %q at %+v", n+1, all[n].cells, all[n].origin, w.cells, w.origin)
					}
					n++
				}
			}
			if len(all) != n {
				t.Fatalf("unsharded read %d rows, want %d", len(all), n)
			}

			seen := map[string]int{} // cells -> shard that read it
			for i := range tc.count {
				shard := pipeline.Shard{Index: i, Count: tc.count}
				got := readShard(t, eh, shard, given)
				// Expected: the kept objects' rows, in order.
				var wantRows []shardRow
				for oi, f := range sorted {
					if !shard.Keep(oi) {
						continue
					}
					for ri, r := range f.Rows {
						wantRows = append(wantRows, shardRow{strings.Join(r, "\x00"), eh.WantOrigin(sorted, oi, ri)})
					}
				}
				if len(got) != len(wantRows) {
					t.Errorf("shard %s read %d rows, want %d (objects %v)", shard, len(got), len(wantRows), keptNames(sorted, shard))
				}
				bad := 0 // rows reported, to keep a broken source's report short
				report := func(format string, args ...any) {
					if bad++; bad <= 5 {
						t.Errorf(format, args...)
					}
				}
				for k, r := range got {
					if prev, dup := seen[r.cells]; dup {
						report("shard %s and shard %d/%d both read row %q", shard, prev, tc.count, r.cells)
					}
					seen[r.cells] = i
					if oi, ok := want[r.cells]; !ok {
						report("shard %s read row %q, which the unsharded source does not", shard, r.cells)
					} else if !shard.Keep(oi) {
						report("shard %s read row %q of object %d (%s), which belongs to shard %d/%d", shard, r.cells, oi, sorted[oi].Name, oi%tc.count, tc.count)
					}
					if k < len(wantRows) && r != wantRows[k] {
						report("shard %s row %d = %q at %+v, want %q at %+v", shard, k+1, r.cells, r.origin, wantRows[k].cells, wantRows[k].origin)
					}
				}
				if bad > 5 {
					t.Errorf("shard %s: %d more problems", shard, bad-5)
				}
			}
			// The union is the unsharded rows.
			for _, r := range all {
				if _, ok := seen[r.cells]; !ok {
					t.Errorf("row %q is read unsharded but by no shard of %d", r.cells, tc.count)
				}
			}
		})
	}
}

func keptNames(objs []Fixture, shard pipeline.Shard) []string {
	var names []string
	for i, f := range objs {
		if shard.Keep(i) {
			names = append(names, f.Name)
		}
	}
	return names
}

//------------------------------------------------------------------------------
// Benchmarks

// RunBenchmarks measures reading generated 14-column inputs of 10,000 and
// 100,000 rows and fails if allocations per row grow with input size (more
// than 10% + 0.5 between the two), which would mean the source keeps
// per-row state it never releases or reallocates a growing buffer.
func RunBenchmarks(b *testing.B, newHarness HarnessMaker) {
	sizes := []int{10_000, 100_000}
	perRow := make([]float64, len(sizes))
	for i, n := range sizes {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			h := newHarness(b)
			f := Generated(fmt.Sprintf("bench-%d", n), n, 14)
			var bytes int64
			for _, r := range f.Rows {
				for _, c := range r {
					bytes += int64(len(c)) + 1
				}
			}
			b.SetBytes(bytes)
			b.ReportAllocs()
			var total, allocs float64
			for b.Loop() {
				b.StopTimer()
				src, err := h.MakeSource(context.Background(), b, []Fixture{f})
				if err != nil {
					b.Fatalf("MakeSource: %v", err)
				}
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				b.StartTimer()
				rows := countRows(b, src)
				b.StopTimer()
				runtime.ReadMemStats(&m1)
				src.Close()
				b.StartTimer()
				if rows != n {
					b.Fatalf("read %d rows, want %d", rows, n)
				}
				total += float64(rows)
				allocs += float64(m1.Mallocs - m0.Mallocs)
			}
			perRow[i] = allocs / total
			b.ReportMetric(perRow[i], "allocs/row")
		})
	}
	if perRow[0] > 0 && perRow[1] > perRow[0]*1.1+0.5 {
		b.Errorf("allocations per row grow with input size: %.2f at %d rows, %.2f at %d rows", perRow[0], sizes[0], perRow[1], sizes[1])
	}
}

// countRows reads src to the end and returns the number of rows.
func countRows(tb testing.TB, src pipeline.Source) int {
	n := 0
	for {
		b, err := src.Read(context.Background())
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatalf("Read: %v", err)
		}
		n += b.Len()
	}
}
