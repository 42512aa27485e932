package changes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// opsOf returns "op key" for each non-dup event.
func opsOf(evs []event) []string {
	var out []string
	for _, e := range evs {
		if !e.Dup {
			out = append(out, e.Op.String()+" "+e.Key)
		}
	}
	return out
}

// toSend returns the keys a run must send (new, changed, missing).
func toSend(evs []event) []string {
	var out []string
	for _, e := range evs {
		if !e.Dup && e.Op != OpUnchanged {
			out = append(out, e.Op.String()+" "+e.Key)
		}
	}
	return out
}

func TestThreeRuns(t *testing.T) {
	ctx := context.Background()
	loc := memLoc(t)
	old, err := OpenManifest(ctx, loc)
	if err != nil || old != nil {
		t.Fatalf("OpenManifest(missing) = %v, %v; want nil, nil", old, err)
	}

	// Run 1: every key is new; all load.
	d1 := newDiffer(t, 0)
	add(t, d1, "c,Gamma,3", "a,Alpha,1", "e,Epsilon,5", "b,Beta,2", "d,Delta,4")
	evs, c := diff(t, d1, old)
	if want := []string{"new a", "new b", "new c", "new d", "new e"}; !slices.Equal(opsOf(evs), want) {
		t.Fatalf("run 1 ops = %q, want %q", opsOf(evs), want)
	}
	if c != (Counts{New: 5}) {
		t.Errorf("run 1 counts = %+v", c)
	}
	if evs[0].Row != "a|Alpha|1" || evs[0].Line != 3 {
		t.Errorf("run 1 first event = %v, want row a|Alpha|1 from line 3", evs[0])
	}
	for _, e := range evs {
		if err := d1.Outcome(e.Key, OpNew, true, "id-"+e.Key); err != nil {
			t.Fatal(err)
		}
	}
	m1 := commit(t, d1, old, loc, true)
	if m1.Len() != 5 {
		t.Fatalf("manifest 1 has %d entries, want 5", m1.Len())
	}

	// Run 2: a, e unchanged; b, c changed; d removed; f, g added.
	run2 := []string{"a,Alpha,1", "b,Beta,20", "c,Gamma2,3", "e,Epsilon,5", "f,Phi,6", "g,Gee,7"}
	d2 := newDiffer(t, 0)
	add(t, d2, run2...)
	evs, c = diff(t, d2, m1)
	want := []string{"unchanged a", "changed b", "changed c", "missing d", "unchanged e", "new f", "new g"}
	if !slices.Equal(opsOf(evs), want) {
		t.Fatalf("run 2 ops = %q, want %q", opsOf(evs), want)
	}
	if c != (Counts{New: 2, Changed: 2, Unchanged: 2, Missing: 1, Manifest: 5}) {
		t.Errorf("run 2 counts = %+v", c)
	}
	for _, e := range evs {
		if e.Key != "f" && e.Key != "g" && e.OldID != "id-"+e.Key {
			t.Errorf("run 2 %v: oldID %q, want id-%s", e, e.OldID, e.Key)
		}
		if e.Op == OpMissing && e.Row != "<nil>" {
			t.Errorf("missing key with a row: %v", e)
		}
	}
	// b loads (empty id: keep the old one), c fails, f loads, g fails, the
	// delete of d fails.
	for _, o := range []struct {
		key    string
		op     Op
		loaded bool
		id     string
	}{{"b", OpChanged, true, ""}, {"c", OpChanged, false, ""}, {"f", OpNew, true, "id-f"}, {"g", OpNew, false, ""}, {"d", OpMissing, false, ""}} {
		if err := d2.Outcome(o.key, o.op, o.loaded, o.id); err != nil {
			t.Fatal(err)
		}
	}
	m2 := commit(t, d2, m1, loc, true)
	got := entries(t, m2)
	var keys, ids []string
	for _, e := range got {
		keys, ids = append(keys, e.Key), append(ids, e.ID)
		if (e.Hash == unsynced) != (e.Key == "c") {
			t.Errorf("entry %q: hash %d; only c should be unsynced", e.Key, e.Hash)
		}
	}
	if want := []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(keys, want) {
		t.Errorf("manifest 2 keys = %q, want %q", keys, want)
	}
	if want := []string{"id-a", "id-b", "id-c", "id-d", "id-e", "id-f"}; !slices.Equal(ids, want) {
		t.Errorf("manifest 2 ids = %q, want %q", ids, want)
	}

	// Run 3, same input: only the failures are sent again.
	d3 := newDiffer(t, 0)
	add(t, d3, run2...)
	evs, _ = diff(t, d3, m2)
	if got, want := toSend(evs), []string{"changed c", "missing d", "new g"}; !slices.Equal(got, want) {
		t.Fatalf("run 3 sends %q, want %q", got, want)
	}
	for _, e := range toSend(evs) {
		op, key, _ := strings.Cut(e, " ")
		o := map[string]Op{"changed": OpChanged, "missing": OpMissing, "new": OpNew}[op]
		if err := d3.Outcome(key, o, true, "id-"+key+"-3"); err != nil {
			t.Fatal(err)
		}
	}
	m3 := commit(t, d3, m2, loc, true)

	// Run 4: everything is in sync.
	d4 := newDiffer(t, 0)
	add(t, d4, run2...)
	evs, c = diff(t, d4, m3)
	if got := toSend(evs); len(got) != 0 {
		t.Errorf("run 4 sends %q, want nothing", got)
	}
	if c != (Counts{Unchanged: 6, Manifest: 6}) {
		t.Errorf("run 4 counts = %+v", c)
	}
}

func TestCommitRules(t *testing.T) {
	// Old manifest: u (unchanged), c1..c3 (changed), m1..m3 (missing).
	ctx := context.Background()
	tests := []struct {
		name        string
		outcomes    func(d *Differ)
		keepMissing bool
		want        []string // "key id synced"
	}{
		{
			name:        "no outcomes, mirror",
			outcomes:    func(d *Differ) {},
			keepMissing: true,
			want:        []string{"c1 old-c1 unsynced", "c2 old-c2 unsynced", "m1 old-m1 synced", "m2 old-m2 synced", "u old-u synced"},
		},
		{
			name:     "no outcomes, no mirror",
			outcomes: func(d *Differ) {},
			want:     []string{"c1 old-c1 unsynced", "c2 old-c2 unsynced", "u old-u synced"},
		},
		{
			name: "all succeed",
			outcomes: func(d *Differ) {
				d.Outcome("c1", OpChanged, true, "new-c1")
				d.Outcome("c2", OpChanged, true, "")
				d.Outcome("n1", OpNew, true, "new-n1")
				d.Outcome("m1", OpMissing, true, "")
				d.Outcome("m2", OpMissing, true, "")
			},
			keepMissing: true,
			want:        []string{"c1 new-c1 synced", "c2 old-c2 synced", "n1 new-n1 synced", "u old-u synced"},
		},
		{
			name: "all fail, mirror",
			outcomes: func(d *Differ) {
				d.Outcome("c1", OpChanged, false, "")
				d.Outcome("n1", OpNew, false, "")
				d.Outcome("m1", OpMissing, false, "")
			},
			keepMissing: true,
			want:        []string{"c1 old-c1 unsynced", "c2 old-c2 unsynced", "m1 old-m1 synced", "m2 old-m2 synced", "u old-u synced"},
		},
		{
			name: "retries: a later success wins, last id wins",
			outcomes: func(d *Differ) {
				d.Outcome("n1", OpNew, false, "")
				d.Outcome("n1", OpNew, true, "first")
				d.Outcome("n1", OpNew, true, "second")
				d.Outcome("n1", OpNew, false, "")
				d.Outcome("c1", OpChanged, true, "x")
				d.Outcome("c1", OpChanged, true, "")
			},
			want: []string{"c1 x synced", "c2 old-c2 unsynced", "n1 second synced", "u old-u synced"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := memLoc(t)
			d0 := newDiffer(t, 0)
			add(t, d0, "u,U,1", "c1,C,1", "c2,C,2", "m1,M,1", "m2,M,2")
			diff(t, d0, nil)
			for _, k := range []string{"u", "c1", "c2", "m1", "m2"} {
				d0.Outcome(k, OpNew, true, "old-"+k)
			}
			old := commit(t, d0, nil, loc, false)

			d := newDiffer(t, 0)
			add(t, d, "u,U,1", "c1,C,10", "c2,C,20", "n1,N,1")
			diff(t, d, old)
			tt.outcomes(d)
			w, err := blobio.NewWriter(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Commit(ctx, old, w, tt.keepMissing); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			m, err := OpenManifest(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries(t, m) {
				s := "synced"
				if e.Hash == unsynced {
					s = "unsynced"
				}
				got = append(got, e.Key+" "+e.ID+" "+s)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("manifest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCommitRefusesWrongOutcomes(t *testing.T) {
	ctx := context.Background()
	loc := memLoc(t)
	d0 := newDiffer(t, 0)
	add(t, d0, "u,U,1", "c,C,1", "m,M,1")
	diff(t, d0, nil)
	for _, k := range []string{"u", "c", "m"} {
		d0.Outcome(k, OpNew, true, "")
	}
	old := commit(t, d0, nil, loc, false)

	tests := []struct {
		name    string
		outcome func(d *Differ) error
		want    string
	}{
		{"unchanged key", func(d *Differ) error { return d.Outcome("u", OpChanged, true, "") }, `says changed, but the diff says unchanged`},
		{"new as changed", func(d *Differ) error { return d.Outcome("n", OpChanged, true, "") }, `says changed, but the diff says new`},
		{"unknown key", func(d *Differ) error { return d.Outcome("zz", OpNew, true, "") }, `neither in the run nor in the manifest`},
		{"missing as new", func(d *Differ) error { return d.Outcome("m", OpNew, true, "") }, `says new, but the diff says missing`},
		{"conflicting ops", func(d *Differ) error {
			d.Outcome("c", OpChanged, true, "")
			return d.Outcome("c", OpNew, true, "")
		}, `has outcomes for ops`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDiffer(t, 0)
			add(t, d, "u,U,1", "c,C,2", "n,N,1")
			diff(t, d, old)
			if err := tt.outcome(d); err != nil {
				t.Fatal(err)
			}
			_, err := d.Commit(ctx, old, &bytes.Buffer{}, true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Commit = %v, want error containing %q", err, tt.want)
			}
		})
	}

	t.Run("bad op", func(t *testing.T) {
		d := newDiffer(t, 0)
		for _, op := range []Op{0, OpUnchanged, 9} {
			if err := d.Outcome("x", op, true, ""); err == nil {
				t.Errorf("Outcome(op %v) = nil, want error", op)
			}
		}
		if err := d.Outcome("", OpNew, true, ""); err == nil {
			t.Error("Outcome(empty key) = nil, want error")
		}
	})
	t.Run("other manifest than Diff", func(t *testing.T) {
		d := newDiffer(t, 0)
		add(t, d, "u,U,1")
		diff(t, d, old)
		if _, err := d.Commit(ctx, nil, &bytes.Buffer{}, true); err == nil || !strings.Contains(err.Error(), "not the one Diff used") {
			t.Errorf("Commit(nil) after Diff(old) = %v, want refusal", err)
		}
	})
	t.Run("after commit", func(t *testing.T) {
		d := newDiffer(t, 0)
		add(t, d, "n,N,1")
		if _, err := d.Commit(ctx, nil, &bytes.Buffer{}, true); err != nil {
			t.Fatal(err)
		}
		if err := d.Outcome("n", OpNew, true, ""); err == nil {
			t.Error("Outcome after Commit = nil, want error")
		}
		if err := d.Add(pipeline.Row{"x", "y", int64(1)}, pipeline.Origin{}); err == nil {
			t.Error("Add after Commit = nil, want error")
		}
	})
}

// genRows returns n rows with keys drawn from a small space (so there are
// duplicates), deterministic for a seed.
func genRows(seed uint64, n, keySpace int) []pipeline.Row {
	r := rand.New(rand.NewPCG(seed, 1))
	rows := make([]pipeline.Row, n)
	for i := range rows {
		key := fmt.Sprintf("K%05d", r.IntN(keySpace))
		if r.IntN(10) == 0 {
			key = strings.ToLower(key) + "\xff" // bytes above ASCII sort last
		}
		rows[i] = pipeline.Row{key, fmt.Sprintf("name %d", r.IntN(3)), int64(r.IntN(2))}
	}
	return rows
}

// runAll diffs and commits one run with the given MemLimit and returns the
// events and the manifest bytes.
func runAll(t *testing.T, memLimit int, old *Manifest, rows []pipeline.Row, loc blobio.Location) ([]event, *Manifest, []byte) {
	t.Helper()
	d := newDiffer(t, memLimit)
	for i, row := range rows {
		if err := d.Add(row, pipeline.Origin{Object: "gen", Line: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// A counting pass first, then the emitting one: both must agree.
	counts, err := d.Diff(context.Background(), old, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, c := diff(t, d, old)
	if c != counts {
		t.Errorf("counting pass %+v, emitting pass %+v", counts, c)
	}
	for i, e := range evs {
		if !e.Dup && e.Op != OpUnchanged && i%3 != 0 { // every third fails
			if err := d.Outcome(e.Key, e.Op, true, fmt.Sprint("id", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := d.Commit(context.Background(), old, &buf, true); err != nil {
		t.Fatal(err)
	}
	// Commit read the keys the Diff wrote for it; merging the run and the
	// manifest again must give the same manifest.
	if d.pending == "" {
		t.Fatal("the complete Diff wrote no pending keys")
	}
	d.pending = ""
	var merged bytes.Buffer
	if _, err := d.Commit(context.Background(), old, &merged, true); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), merged.Bytes()) {
		t.Fatalf("Commit from the pending keys and from a merge of the run and the manifest differ (%d and %d bytes)", buf.Len(), merged.Len())
	}
	if memLimit > 0 && memLimit < 8192 && len(rows) > 4000 && d.run.files <= d.run.fanIn() {
		t.Errorf("MemLimit %d spilled only %d run chunks; the test should force a multi-pass merge", memLimit, d.run.files)
	}
	if err := blobio.WriteAll(context.Background(), loc, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	m, err := OpenManifest(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	return evs, m, buf.Bytes()
}

func TestSpillsMatchInMemory(t *testing.T) {
	run1 := genRows(1, 5000, 3000)
	run2 := genRows(2, 5000, 3500)
	small, large := memLoc(t), memLoc(t)
	evS1, mS, bS1 := runAll(t, 4096, nil, run1, small)
	evL1, mL, bL1 := runAll(t, 0, nil, run1, large)
	if diff := cmp.Diff(evL1, evS1); diff != "" {
		t.Fatalf("run 1 events differ between MemLimit 4096 and default (-default +small):\n%s", diff)
	}
	if !bytes.Equal(bS1, bL1) {
		t.Fatal("run 1 manifests differ")
	}
	evS2, _, bS2 := runAll(t, 4096, mS, run2, small)
	evL2, _, bL2 := runAll(t, 0, mL, run2, large)
	if diff := cmp.Diff(evL2, evS2); diff != "" {
		t.Fatalf("run 2 events differ (-default +small):\n%s", diff)
	}
	if !bytes.Equal(bS2, bL2) {
		t.Fatal("run 2 manifests differ")
	}
	// Sanity: the events cover every op, keys ascend, and duplicates follow
	// their key's first row.
	seen := map[Op]int{}
	var last string
	for i, e := range evS2 {
		if e.Dup {
			if i == 0 || evS2[i-1].Key != e.Key {
				t.Fatalf("dup %v does not follow its key", e)
			}
			if e.Line <= evS2[i-1].Line {
				t.Fatalf("dup %v is not after %v in input order", e, evS2[i-1])
			}
			continue
		}
		if i > 0 && e.Key <= last {
			t.Fatalf("key %q after %q", e.Key, last)
		}
		last = e.Key
		seen[e.Op]++
	}
	for _, op := range []Op{OpNew, OpChanged, OpUnchanged, OpMissing} {
		if seen[op] == 0 {
			t.Errorf("run 2 has no %v keys; the test data should cover every op", op)
		}
	}
}

func TestDuplicateKeys(t *testing.T) {
	d := newDiffer(t, 0)
	add(t, d, "k1,first,1", "k2,only,1", "k1,second,2", "k1,third,3")
	evs, c := diff(t, d, nil)
	want := []event{
		{Op: OpNew, Key: "k1", Row: "k1|first|1", Line: 2},
		{Key: "k1", Row: "k1|second|2", Line: 4, Dup: true},
		{Key: "k1", Row: "k1|third|3", Line: 5, Dup: true},
		{Op: OpNew, Key: "k2", Row: "k2|only|1", Line: 3},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if c.New != 2 {
		t.Errorf("New = %d, want 2", c.New)
	}
	if _, err := d.Diff(context.Background(), nil, func(Op, string, pipeline.Row, pipeline.Origin, string) error { return nil }, nil); err == nil {
		t.Error("Diff with fn and nil dup = nil error, want error")
	}
	// The committed hash is the first row's.
	d.Outcome("k1", OpNew, true, "")
	var buf bytes.Buffer
	if _, err := d.Commit(context.Background(), nil, &buf, false); err != nil {
		t.Fatal(err)
	}
	loc := memLoc(t)
	blobio.WriteAll(context.Background(), loc, buf.Bytes())
	m, err := OpenManifest(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	d2 := newDiffer(t, 0)
	add(t, d2, "k1,first,1")
	if evs, _ := diff(t, d2, m); evs[0].Op != OpUnchanged {
		t.Errorf("first row again: %v, want unchanged", evs[0])
	}
}

func TestMissingKeys(t *testing.T) {
	d := newDiffer(t, 0)
	for _, row := range []pipeline.Row{{nil, "x", int64(1)}, {"", "x", int64(1)}} {
		err := d.Add(row, pipeline.Origin{Object: "in.csv", Line: 7})
		var re *pipeline.RowError
		if !errors.As(err, &re) || re.Code != "missing_key" || re.Field != "External_Id__c" || re.Origin.Line != 7 {
			t.Errorf("Add(%v) = %#v, want RowError missing_key on External_Id__c at line 7", row, err)
		}
	}
	if err := d.Add(pipeline.Row{"k", struct{}{}, int64(1)}, pipeline.Origin{}); !isRowError(err, "unsupported_value") {
		t.Errorf("Add(struct value) = %v, want RowError unsupported_value", err)
	}
	if err := d.Add(pipeline.Row{"k"}, pipeline.Origin{}); err == nil {
		t.Error("Add(short row) = nil, want error")
	}
	if _, c := diff(t, d, nil); c != (Counts{}) {
		t.Errorf("rejected rows were spooled: %+v", c)
	}
	if _, err := NewDiffer(testSchema, "Nope", Options{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), `"Nope"`) {
		t.Errorf("NewDiffer(unknown key) = %v", err)
	}
}

// Keys are ordered by their bytes: upper case before lower case, "10"
// before "9", a prefix before its extensions, multi-byte UTF-8 and invalid
// bytes after ASCII.
func TestKeyByteOrder(t *testing.T) {
	keys := []string{"é", "b", "\xff", "a", "9", "B", "a\x00", "10", "Z", "a b"}
	want := []string{"10", "9", "B", "Z", "a", "a\x00", "a b", "b", "é", "\xff"}
	for _, limit := range []int{0, 1} { // 1: every row is its own chunk
		t.Run(fmt.Sprint("MemLimit=", limit), func(t *testing.T) {
			d := newDiffer(t, limit)
			for _, k := range keys {
				if err := d.Add(pipeline.Row{k, "n", int64(1)}, pipeline.Origin{}); err != nil {
					t.Fatal(err)
				}
			}
			evs, _ := diff(t, d, nil)
			var got []string
			for _, e := range evs {
				got = append(got, e.Key)
			}
			if !slices.Equal(got, want) {
				t.Errorf("order = %q, want %q", got, want)
			}
			if !sort.StringsAreSorted(got) {
				t.Error("Go string order and byte order disagree")
			}
		})
	}
}

func TestConcurrentOutcomes(t *testing.T) {
	const n = 3000
	d := newDiffer(t, 2048) // outcomes spill too
	for i := range n {
		if err := d.Add(pipeline.Row{fmt.Sprintf("k%04d", i), "n", int64(i)}, pipeline.Origin{}); err != nil {
			t.Fatal(err)
		}
	}
	// Workers report outcomes while Diff is still emitting.
	keys := make(chan string)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				if err := d.Outcome(k, OpNew, k[len(k)-1] != '7', fmt.Sprintf("id-%s-w%d", k, w)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	_, err := d.Diff(context.Background(), nil, func(op Op, key string, _ pipeline.Row, _ pipeline.Origin, _ string) error {
		keys <- key
		return nil
	}, func(string, pipeline.Row, pipeline.Origin) error { return nil })
	close(keys)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	loc := memLoc(t)
	m := commit(t, d, nil, loc, false)
	if m.Len() != n-n/10 {
		t.Errorf("manifest has %d entries, want %d (keys ending in 7 failed)", m.Len(), n-n/10)
	}
	for _, e := range entries(t, m) {
		if !strings.HasPrefix(e.ID, "id-"+e.Key+"-w") || strings.HasSuffix(e.Key, "7") {
			t.Fatalf("bad entry %+v", e)
		}
	}
}

func TestCloseRemovesSpillFiles(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDiffer(testSchema, "External_Id__c", Options{Dir: dir, MemLimit: 256})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		d.Add(pipeline.Row{fmt.Sprint(i), "n", int64(i)}, pipeline.Origin{})
	}
	if d.run.files == 0 {
		t.Fatal("no spill files written")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
	if _, err := d.Diff(context.Background(), nil, nil, nil); err == nil {
		t.Error("Diff after Close = nil, want error")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestCallbackErrorsAndCancel(t *testing.T) {
	d := newDiffer(t, 0)
	add(t, d, "a,A,1", "b,B,1")
	boom := errors.New("boom")
	_, err := d.Diff(context.Background(), nil, func(Op, string, pipeline.Row, pipeline.Origin, string) error { return boom },
		func(string, pipeline.Row, pipeline.Origin) error { return nil })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Diff = %v, want boom naming key a", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Diff(ctx, nil, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Diff(cancelled) = %v", err)
	}
	if _, err := d.Commit(ctx, nil, &bytes.Buffer{}, false); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit(cancelled) = %v", err)
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{OpNew: "new", OpChanged: "changed", OpUnchanged: "unchanged", OpMissing: "missing", 0: "Op(0)", 5: "Op(5)"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", int(op), got, want)
		}
	}
}

// TestLazyUnchanged: with Options.LazyUnchanged, Diff passes unchanged
// keys with a nil row and zero origin, Row decodes the same row and origin
// the eager Diff passes, every other event is as without the option
// (duplicates of unchanged keys included), Row fails outside the callback,
// and an unchanged key's key and oldID strings are the right ones during
// the call (the callback clones them) and are not copies (Diff allocates
// nothing for them).
func TestLazyUnchanged(t *testing.T) {
	run1 := genRows(3, 3000, 2000)
	run2 := genRows(3, 3000, 2000)
	for i := range run2 {
		if i%7 == 0 {
			run2[i][2] = int64(5) // changed
		}
	}
	for i := 1; i < 40; i += 3 { // duplicates of unchanged and changed keys
		run2 = append(run2, slices.Clone(run2[i*50]))
	}
	for _, memLimit := range []int{0, 4096} {
		t.Run(fmt.Sprint("MemLimit=", memLimit), func(t *testing.T) {
			_, old, _ := runAll(t, memLimit, nil, run1, memLoc(t))
			eager, _, _ := runAll(t, memLimit, old, run2, memLoc(t))
			d, err := NewDiffer(testSchema, "External_Id__c", Options{Dir: t.TempDir(), MemLimit: memLimit, LazyUnchanged: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for i, row := range run2 {
				if err := d.Add(row, pipeline.Origin{Object: "gen", Line: int64(i + 1)}); err != nil {
					t.Fatal(err)
				}
			}
			var lazy, decoded []event
			shared := 0
			_, err = d.Diff(context.Background(), old, func(op Op, key string, row pipeline.Row, o pipeline.Origin, oldID string) error {
				ev := event{Op: op, Key: strings.Clone(key), Row: rowText(row), Line: o.Line, OldID: strings.Clone(oldID)}
				if op == OpUnchanged {
					if unsafe.StringData(key) == unsafe.SliceData(d.keyBuf) {
						shared++
					}
					if row != nil || o != (pipeline.Origin{}) {
						t.Errorf("unchanged key %q: row %v origin %+v, want nil and zero", key, row, o)
					}
					r, o, err := d.Row()
					if err != nil {
						return err
					}
					ev.Row, ev.Line = rowText(r), o.Line
				}
				decoded = append(decoded, ev)
				lazy = append(lazy, event{Op: op})
				return nil
			}, func(key string, row pipeline.Row, o pipeline.Origin) error {
				decoded = append(decoded, event{Key: key, Row: rowText(row), Line: o.Line, Dup: true})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(eager, decoded); diff != "" {
				t.Errorf("lazy Diff + Row differ from the eager Diff (-eager +lazy):\n%s", diff)
			}
			unchanged := 0
			for _, e := range lazy {
				if e.Op == OpUnchanged {
					unchanged++
				}
			}
			if unchanged == 0 {
				t.Error("no unchanged key: the test does not test anything")
			}
			if shared != unchanged {
				t.Errorf("%d of %d unchanged keys were passed in Diff's buffer, want all (not copied)", shared, unchanged)
			}
			if _, _, err := d.Row(); err == nil {
				t.Error("Row outside Diff's callback: no error")
			}
		})
	}
}

// TestCommitCopiesUnchangedRecords checks Commit's copy of the unchanged
// manifest records (after a Diff, manifestAndPending.copyUnchanged)
// against the merge of the run with the manifest (no Diff, runAndManifest),
// which decides every key: both must write the same manifest, byte for
// byte, with new, changed, missing and failed keys spread between long
// runs of unchanged ones (longer than the read buffer, so that records
// straddle it), at the manifest's first and last keys, and with ids of
// varied lengths.
func TestCommitCopiesUnchangedRecords(t *testing.T) {
	ctx := context.Background()
	const n = 20000
	key := func(i int) string { return fmt.Sprintf("k%06d", i) }
	// Run 1: every even key, with ids of 0 to 20 bytes.
	loc := memLoc(t)
	d0 := newDiffer(t, 0)
	var rows []string
	for i := 0; i < n; i += 2 {
		rows = append(rows, fmt.Sprintf("%s,N%d,%d", key(i), i, i))
	}
	add(t, d0, rows...)
	diff(t, d0, nil)
	for i := 0; i < n; i += 2 {
		d0.Outcome(key(i), OpNew, true, strings.Repeat("x", i%21))
	}
	old := commit(t, d0, nil, loc, false)

	// Run 2: key 0 and the last key missing, every 1994th changed (every
	// other one of them failing), every 1499th odd key new, the rest
	// unchanged.
	run2 := func(d *Differ) {
		var rows []string
		for i := 0; i < n; i++ {
			switch {
			case i == 0 || i == n-2:
			case i%1994 == 0:
				rows = append(rows, fmt.Sprintf("%s,N%d,%d", key(i), i, i+1))
			case i%2 == 0:
				rows = append(rows, fmt.Sprintf("%s,N%d,%d", key(i), i, i))
			case i%1499 == 0:
				rows = append(rows, fmt.Sprintf("%s,New%d,%d", key(i), i, i))
			}
		}
		add(t, d, rows...)
	}
	outcomes := func(d *Differ) {
		for i := 0; i < n; i++ {
			switch {
			case i%1994 == 0 && i != 0:
				d.Outcome(key(i), OpChanged, (i/1994)%2 == 0, fmt.Sprintf("c%d", i))
			case i%2 == 1 && i%1499 == 0:
				d.Outcome(key(i), OpNew, true, fmt.Sprintf("n%d", i))
			}
		}
		d.Outcome(key(0), OpMissing, true, "")
	}
	var got [2][]byte
	for j, diffed := range []bool{true, false} {
		d := newDiffer(t, 0)
		run2(d)
		if diffed {
			diff(t, d, old)
		}
		outcomes(d)
		var buf bytes.Buffer
		if _, err := d.Commit(ctx, old, &buf, true); err != nil {
			t.Fatalf("diffed %v: Commit: %v", diffed, err)
		}
		got[j] = buf.Bytes()
	}
	if !bytes.Equal(got[0], got[1]) {
		t.Fatalf("Commit after Diff wrote %d bytes, the full merge %d: not the same manifest", len(got[0]), len(got[1]))
	}
	// And the result says what it should: spot checks.
	loc2 := memLoc(t)
	w, err := blobio.NewWriter(ctx, loc2)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(got[0])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := OpenManifest(ctx, loc2)
	if err != nil {
		t.Fatal(err)
	}
	es := entries(t, m)
	byKey := map[string]entry{}
	for _, e := range es {
		byKey[e.Key] = e
	}
	if _, ok := byKey[key(0)]; ok {
		t.Errorf("%s: deleted (missing, loaded), still in the manifest", key(0))
	}
	if e, ok := byKey[key(n-2)]; !ok || e.ID != strings.Repeat("x", (n-2)%21) {
		t.Errorf("%s: missing and kept (mirror not loaded): %+v, %v", key(n-2), e, ok)
	}
	if e := byKey[key(1994)]; e.ID != strings.Repeat("x", 1994%21) || e.Hash != unsynced {
		t.Errorf("%s: changed, not loaded: %+v", key(1994), e)
	}
	if e := byKey[key(2*1994)]; e.ID != fmt.Sprintf("c%d", 2*1994) || e.Hash == unsynced {
		t.Errorf("%s: changed and loaded: %+v", key(2*1994), e)
	}
	if e := byKey[key(1499)]; e.ID != "n1499" {
		t.Errorf("%s: new and loaded: %+v", key(1499), e)
	}
	if e := byKey[key(10)]; e.ID != strings.Repeat("x", 10) || e.Hash == unsynced {
		t.Errorf("%s: unchanged: %+v", key(10), e)
	}
	if want := n/2 - 1 + (n/1499+1)/2; len(es) != want {
		t.Errorf("%d entries, want %d", len(es), want)
	}
}
