// Package sinktest is the conformance suite every sink runs, in the manner
// of gocloud's drivertest: a sink supplies a Harness that opens it and reads
// back what landed, and RunConformance holds it to the contract of
// pipeline.Sink — every row settled exactly once, valid RowErrors, safe
// concurrent Writes up to MaxInFlight, a cancelled Write that loads nothing,
// Close that flushes and may be called twice, output that appears only at
// Close unless the sink's writes are final, awkward values (unicode,
// quotes, delimiters, embedded newlines, long text) that arrive unchanged,
// and, for a pipeline.RowReleaser, no row kept past Write (the suite
// overwrites a batch's values once Write returns, as the engine's
// recycling may).
package sinktest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Schema is the schema the suite writes: three string columns that exist on
// Salesforce's Account too, so API sinks can run the suite unchanged.
var Schema = pipeline.MustSchema(
	pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString},
	pipeline.Field{Name: "Name", Type: pipeline.TypeString},
	pipeline.Field{Name: "Description", Type: pipeline.TypeString},
)

// Harness opens one sink under test and reads back what it loaded.
type Harness interface {
	// MakeSink opens a fresh sink for rows of schema. Each call writes to a
	// new destination.
	MakeSink(ctx context.Context, schema *pipeline.Schema) (pipeline.Sink, error)
	// ReadBack returns the rows that landed in the destination of the last
	// sink made, after its Close, as field name → text (a missing field is
	// the empty string).
	ReadBack(ctx context.Context) ([]map[string]string, error)
	// RejectedName returns a Name value the destination rejects per row
	// (so Write must return a *pipeline.RowErrors for it), or ok=false.
	RejectedName() (name string, ok bool)
	// Unimplementable lists subtests that cannot apply to this sink, with
	// the reason in the harness's doc; a listed name that is not a subtest
	// fails the suite.
	Unimplementable() []string
}

// HarnessMaker makes a harness for one subtest.
type HarnessMaker func(t *testing.T) Harness

var descriptions = []string{"", "plain", "a,b;c|d\tTAB", `say "hi"`, "line one\nline two", "ünïcödé 日本語 ✓", strings.Repeat("long ", 200)}

// Rows returns n rows of Schema with awkward values; External_Id__c is the
// unique key "K-00000"... in order.
func Rows(n int) []pipeline.Row {
	out := make([]pipeline.Row, n)
	for i := range out {
		out[i] = pipeline.Row{fmt.Sprintf("K-%05d", i), fmt.Sprintf("Name %d ü", i), descriptions[i%len(descriptions)]}
	}
	return out
}

// batchOf returns copies of rows as a batch whose origins are unique.
func batchOf(rows []pipeline.Row, first int) *pipeline.Batch {
	b := pipeline.NewBatch(Schema, len(rows))
	for i, r := range rows {
		b.Append(slices.Clone(r), pipeline.Origin{Object: "mem://sinktest/rows.csv", Line: int64(first + i + 2), Row: int64(first + i + 1)})
	}
	return b
}

// write writes b with s.Write. When s is a pipeline.RowReleaser, it then
// overwrites every value of b's rows, as the engine's recycling of their
// memory may: a sink that kept a row it said it released writes the
// overwritten values, and check finds them.
func write(ctx context.Context, s pipeline.Sink, b *pipeline.Batch) error {
	err := s.Write(ctx, b)
	if rr, ok := s.(pipeline.RowReleaser); ok && rr.ReleasesRows() {
		for i := range b.Len() {
			row := b.Row(i)
			for j := range row {
				row[j] = pipeline.Released{}
			}
		}
	}
	return err
}

var subtests = []string{"WriteClose", "SettleOnce", "Concurrent", "CancelledWrite", "CloseTwice", "CommitAtClose"}

// RunConformance runs the suite.
func RunConformance(t *testing.T, newHarness HarnessMaker) {
	skip := map[string]bool{}
	for _, n := range newHarness(t).Unimplementable() {
		if !slices.Contains(subtests, n) {
			t.Fatalf("Unimplementable names %q, which is not a subtest (%v)", n, subtests)
		}
		skip[n] = true
	}
	run := func(name string, f func(t *testing.T, h Harness)) {
		t.Run(name, func(t *testing.T) {
			if skip[name] {
				t.Skipf("declared unimplementable by the harness")
			}
			f(t, newHarness(t))
		})
	}
	run("WriteClose", testWriteClose)
	run("SettleOnce", testSettleOnce)
	run("Concurrent", testConcurrent)
	run("CancelledWrite", testCancelledWrite)
	run("CloseTwice", testCloseTwice)
	run("CommitAtClose", testCommitAtClose)
}

func open(t *testing.T, h Harness) pipeline.Sink {
	t.Helper()
	s, err := h.MakeSink(context.Background(), Schema)
	if err != nil {
		t.Fatalf("MakeSink: %v", err)
	}
	return s
}

// check compares what landed with want (by key, order-insensitive).
func check(t *testing.T, h Harness, want []pipeline.Row) {
	t.Helper()
	got, err := h.ReadBack(context.Background())
	if err != nil {
		t.Fatalf("ReadBack: %v", err)
	}
	byKey := map[string]map[string]string{}
	for _, r := range got {
		k := r["External_Id__c"]
		if _, dup := byKey[k]; dup {
			t.Errorf("row %s landed twice", k)
		}
		byKey[k] = r
	}
	if len(got) != len(want) {
		t.Errorf("%d rows landed, want %d", len(got), len(want))
	}
	for _, w := range want {
		g, ok := byKey[w[0].(string)]
		if !ok {
			t.Errorf("row %s did not land", w[0])
			continue
		}
		for i, f := range Schema.Fields() {
			if g[f.Name] != pipeline.Text(w[i]) {
				t.Errorf("row %s field %s = %q, want %q", w[0], f.Name, g[f.Name], pipeline.Text(w[i]))
			}
		}
	}
}

func testWriteClose(t *testing.T, h Harness) {
	s := open(t, h)
	rows := Rows(50)
	ctx := context.Background()
	for i := 0; i < len(rows); i += 20 {
		end := min(i+20, len(rows))
		if err := write(ctx, s, batchOf(rows[i:end], i)); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(t, h, rows)
}

// testSettleOnce: a batch with rejected rows reports exactly those rows in
// a *pipeline.RowErrors with valid, unique indexes, and the rest land.
func testSettleOnce(t *testing.T, h Harness) {
	bad, ok := h.RejectedName()
	if !ok {
		t.Skip("the harness has no value the destination rejects")
	}
	s := open(t, h)
	rows := Rows(30)
	rejected := map[int]bool{3: true, 17: true, 29: true}
	for i := range rejected {
		rows[i] = pipeline.Row{rows[i][0], bad, rows[i][2]}
	}
	err := s.Write(context.Background(), batchOf(rows, 0))
	re, isRowErrs := err.(*pipeline.RowErrors)
	if !isRowErrs {
		t.Fatalf("Write = %v (%T), want *pipeline.RowErrors", err, err)
	}
	seen := map[int]bool{}
	for _, f := range re.Failures {
		if f.Index < 0 || f.Index >= len(rows) || seen[f.Index] || f.Err == nil {
			t.Errorf("bad failure %+v", f)
		}
		seen[f.Index] = true
	}
	if !maps(seen, rejected) {
		t.Errorf("failed rows %v, want %v", seen, rejected)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var want []pipeline.Row
	for i, r := range rows {
		if !rejected[i] {
			want = append(want, r)
		}
	}
	check(t, h, want)
}

func maps(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// testConcurrent writes MaxInFlight batches at once (at least 2), as the
// engine may; run with -race.
func testConcurrent(t *testing.T, h Harness) {
	s := open(t, h)
	n := 2
	if bp, ok := s.(pipeline.Batcher); ok && bp.BatchPolicy().MaxInFlight > n {
		n = bp.BatchPolicy().MaxInFlight
	}
	rows := Rows(25 * n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = write(context.Background(), s, batchOf(rows[w*25:(w+1)*25], w*25))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("Write: %v", err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(t, h, rows)
}

// testCancelledWrite: a Write with a cancelled context loads nothing of
// its batch and says so; the sink still commits earlier rows.
func testCancelledWrite(t *testing.T, h Harness) {
	s := open(t, h)
	rows := Rows(20)
	if err := s.Write(context.Background(), batchOf(rows[:10], 0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, batchOf(rows[10:], 10))
	if err == nil {
		t.Fatal("Write with a cancelled context returned nil (claims every row loaded)")
	}
	if re, ok := err.(*pipeline.RowErrors); ok && len(re.Failures) != 10 {
		t.Errorf("cancelled Write reported %d failed rows, want all 10", len(re.Failures))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(t, h, rows[:10])
}

func testCloseTwice(t *testing.T, h Harness) {
	s := open(t, h)
	if err := s.Write(context.Background(), batchOf(Rows(3), 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	check(t, h, Rows(3))
}

// testCommitAtClose: a sink whose writes are not final (not a
// pipeline.FinalWriter) shows none of its rows before Close succeeds. The
// engine relies on it: when such a sink's Close fails, the rows it took are
// dead-lettered sink_failed instead of counted as loaded, which is only
// true if none of them landed.
func testCommitAtClose(t *testing.T, h Harness) {
	s := open(t, h)
	ctx := context.Background()
	if fw, ok := s.(pipeline.FinalWriter); ok && fw.WritesAreFinal() {
		if err := s.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		t.Skip("the sink's writes are final (pipeline.FinalWriter): rows land at Write")
	}
	rows := Rows(30)
	if err := write(ctx, s, batchOf(rows, 0)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got, err := h.ReadBack(ctx); err == nil && len(got) > 0 {
		t.Errorf("%d rows visible before Close; a sink that is not a pipeline.FinalWriter must commit only at Close", len(got))
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(t, h, rows)
}
