package pipeline

import (
	"strings"
	"testing"
)

// TestSlabPoolReuse: outside a test binary, a released slab comes back
// from Get cleared; a slab too small for a Get is not used for it.
func TestSlabPoolReuse(t *testing.T) {
	if !poisonReleased {
		t.Fatal("poisonReleased is off in a test binary: the suite would not catch a row read after its release")
	}
	poisonReleased = false
	t.Cleanup(func() { poisonReleased = true })
	var p SlabPool
	reused := 0
	for range 100 {
		s := p.Get(10)
		for i := range s {
			s[i] = i
		}
		p.put(s)
		got := p.Get(10)
		if len(got) != 10 || cap(got) != 10 {
			t.Fatalf("Get(10) = len %d cap %d", len(got), cap(got))
		}
		for i, v := range got {
			if v != nil {
				t.Fatalf("value %d of a recycled slab is %v, want nil", i, v)
			}
		}
		if &got[0] == &s[0] {
			reused++
		}
		p.put(got)
		if big := p.Get(20); len(big) != 20 {
			t.Fatalf("Get(20) = len %d", len(big))
		}
	}
	// sync.Pool may drop what it is given (always under the race
	// detector, a quarter of the time), but not every time.
	if reused == 0 {
		t.Error("no slab was reused in 100 rounds")
	}
}

func TestIsTestBinary(t *testing.T) {
	for path, want := range map[string]bool{
		"/tmp/go-build1/b001/pipeline.test": true,
		`C:\tmp\pipeline.test.exe`:          true,
		"/usr/local/bin/bulkflow":           false,
		"./bulkflow.exe":                    false,
		"/tmp/test/bulkflow":                false,
	} {
		if got := isTestBinary(path); got != want {
			t.Errorf("isTestBinary(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestVerifyRecycle: a row or drop in another batch's slab, or a slab
// attached to two batches, is reported; rows in their own batch's slabs
// (or in no slab) are not.
func TestVerifyRecycle(t *testing.T) {
	schema := MustSchema(Field{Name: "a", Type: TypeString}, Field{Name: "b", Type: TypeString})
	var pool SlabPool
	batch := func(slab []any, rows ...Row) *Batch {
		b := NewBatch(schema, len(rows))
		if slab != nil {
			b.Recycle(&pool, slab)
		}
		for _, r := range rows {
			b.Append(r, Origin{})
		}
		return b
	}
	s1, s2 := pool.Get(4), pool.Get(4)
	row := func(s []any, i int) Row { return Row(s[2*i : 2*i+2 : 2*i+2]) }
	for _, tc := range []struct {
		name    string
		batches []*Batch
		want    string // "" for no error
	}{
		{"own slabs", []*Batch{batch(s1, row(s1, 0), row(s1, 1)), batch(s2, row(s2, 0)), batch(nil, Row{"x", "y"})}, ""},
		{"a row in another batch's slab", []*Batch{batch(s1, row(s1, 0)), batch(s2, row(s2, 0), row(s1, 1))}, "row 2 of batch 2 lies in a recycled slab of batch 1"},
		{"a batch without slabs", []*Batch{batch(s1, row(s1, 0)), batch(nil, row(s1, 1))}, "row 1 of batch 2 lies in a recycled slab of batch 1"},
		{"one slab, two batches", []*Batch{batch(s1, row(s1, 0)), batch(s1[2:], row(s1, 1))}, "overlapping recycled slabs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyRecycle(tc.batches...)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("VerifyRecycle = %v, want %q", err, tc.want)
			}
		})
	}
	d := batch(s2)
	d.Drop(Drop{Row: row(s1, 0)})
	if err := VerifyRecycle(batch(s1), d); err == nil || !strings.Contains(err.Error(), "drop 1 of batch 2") {
		t.Errorf("a drop in another batch's slab: VerifyRecycle = %v", err)
	}
}
