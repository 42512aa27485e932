package changes

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// openBytes writes b at a fresh mem:// location and opens it as a
// manifest.
func openBytes(t *testing.T, b []byte) *Manifest {
	t.Helper()
	loc := memLoc(t)
	if err := blobio.WriteAll(context.Background(), loc, b); err != nil {
		t.Fatal(err)
	}
	m, err := OpenManifest(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeKeysAt writes keys with a KeysWriter and opens the manifest.
func writeKeysAt(t *testing.T, keys ...string) *Manifest {
	t.Helper()
	var buf bytes.Buffer
	kw := NewKeysWriter(&buf)
	for _, k := range keys {
		if err := kw.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := kw.Close(); err != nil {
		t.Fatal(err)
	}
	if kw.Len() != int64(len(keys)) {
		t.Fatalf("Len = %d, want %d", kw.Len(), len(keys))
	}
	return openBytes(t, buf.Bytes())
}

func TestKeysWriterOrder(t *testing.T) {
	var buf bytes.Buffer
	kw := NewKeysWriter(&buf)
	if err := kw.Add("b"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", ""} {
		if err := kw.Add(k); err == nil {
			t.Errorf("Add(%q) after \"b\": no error", k)
		}
	}
}

func TestMergeUnsynced(t *testing.T) {
	base := []entry{{"a", 11, "id-a"}, {"c", 33, ""}, {"f", unsynced, "id-f"}}
	tests := []struct {
		name   string
		base   []entry // nil: no base manifest
		extras [][]string
		want   []entry
	}{
		{"no extras", base, nil, base},
		{"no base", nil, [][]string{{"b", "d"}}, []entry{{"b", unsynced, ""}, {"d", unsynced, ""}}},
		{"base wins a tie", base, [][]string{{"a", "b", "c", "z"}},
			[]entry{{"a", 11, "id-a"}, {"b", unsynced, ""}, {"c", 33, ""}, {"f", unsynced, "id-f"}, {"z", unsynced, ""}}},
		{"several extras, shared keys once", base, [][]string{{"b", "e"}, {"a", "e", "g"}, {}},
			[]entry{{"a", 11, "id-a"}, {"b", unsynced, ""}, {"c", 33, ""}, {"e", unsynced, ""}, {"f", unsynced, "id-f"}, {"g", unsynced, ""}}},
		{"nothing at all", nil, [][]string{{}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b *Manifest
			if tc.base != nil {
				b = openBytes(t, encodeManifest(t, tc.base...))
			}
			var extras []*Manifest
			for _, ks := range tc.extras {
				extras = append(extras, writeKeysAt(t, ks...))
			}
			var out bytes.Buffer
			n, err := MergeUnsynced(context.Background(), &out, b, extras...)
			if err != nil {
				t.Fatal(err)
			}
			got := entries(t, openBytes(t, out.Bytes()))
			if !reflect.DeepEqual(got, tc.want) || n != int64(len(tc.want)) {
				t.Errorf("merged %d entries %v, want %v", n, got, tc.want)
			}
		})
	}
}

// TestNewKeys: a NewKeys pass passes the new keys in key order, counts as
// a Diff does, and leaves the next Diff's events (rows decoded) as they
// would be without it; in key order (Expect) and not.
func TestNewKeys(t *testing.T) {
	ctx := context.Background()
	for _, walked := range []bool{false, true} {
		name := "merged"
		if walked {
			name = "walked"
		}
		t.Run(name, func(t *testing.T) {
			// The manifest a first run committed: a, c, e.
			d0 := newDiffer(t, 0)
			add(t, d0, "a,Ann,1", "c,Cy,3", "e,Eve,5")
			diff(t, d0, nil)
			for _, k := range []string{"a", "c", "e"} {
				if err := d0.Outcome(k, OpNew, true, "id-"+k); err != nil {
					t.Fatal(err)
				}
			}
			old := commit(t, d0, nil, memLoc(t), true)

			d := newDiffer(t, 0)
			if walked {
				if err := d.Expect(ctx, old); err != nil {
					t.Fatal(err)
				}
			}
			// b and d new, c changed, a unchanged, e missing, d twice.
			add(t, d, "a,Ann,1", "b,Bo,2", "c,Cy,30", "d,Di,4", "d,Dup,4")
			var keys []string
			c, err := d.NewKeys(ctx, old, func(k string) error { keys = append(keys, k); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"b", "d"}; !reflect.DeepEqual(keys, want) {
				t.Errorf("NewKeys passed %q, want %q", keys, want)
			}
			if c.New != 2 || c.Changed != 1 || c.Unchanged != 1 || c.Missing != 1 {
				t.Errorf("counts %+v, want 2 new, 1 changed, 1 unchanged, 1 missing", c)
			}
			evs, _ := diff(t, d, old)
			var rows, dups int
			for _, e := range evs {
				if e.Op == OpNew || e.Op == OpChanged {
					if e.Row == "" {
						t.Errorf("Diff after NewKeys: %v has no row", e)
					}
					rows++
				}
				if e.Dup {
					dups++
				}
			}
			if rows != 3 || dups != 1 {
				t.Errorf("Diff after NewKeys: %d new or changed rows and %d duplicates, want 3 and 1: %v", rows, dups, evs)
			}
		})
	}
}
