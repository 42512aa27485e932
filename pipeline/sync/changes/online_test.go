package changes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

// onlineCase is a run diffed twice, with and without Expect: old holds
// the rows of the last run (key → "name,amount"), unsynced the keys whose
// last load failed, and run the rows of this one in input order.
type onlineCase struct {
	name     string
	old      map[string]string
	unsynced []string
	run      []string // "key,name,amount"
	memLimit int
	// count makes the first Diff a counting one (fn nil), as a
	// delete_missing sync's is; noDiff commits without any Diff.
	count, noDiff bool
	walked        bool // whether the walk must last to the end
}

// oldManifest builds the manifest c.old describes: a first run of every old
// row, all loaded (id "id-KEY"), then, for the unsynced keys, a run that
// changed them and failed to load them.
func (c onlineCase) oldManifest(t testing.TB) *Manifest {
	t.Helper()
	if c.old == nil {
		return nil
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range c.old {
			if !yield(k) {
				return
			}
		}
	})
	d := newDiffer(t, 0)
	for _, k := range keys {
		add(t, d, k+","+c.old[k])
	}
	evs, _ := diff(t, d, nil)
	for _, e := range evs {
		if err := d.Outcome(e.Key, e.Op, true, "id-"+e.Key); err != nil {
			t.Fatal(err)
		}
	}
	m := commit(t, d, nil, memLoc(t), false)
	if len(c.unsynced) == 0 {
		return m
	}
	d = newDiffer(t, 0)
	for _, k := range keys {
		row := k + "," + c.old[k]
		if slices.Contains(c.unsynced, k) {
			row = k + ",was-changed,0"
		}
		add(t, d, row)
	}
	evs, _ = diff(t, d, m)
	for _, e := range evs {
		if e.Op == OpChanged {
			if err := d.Outcome(e.Key, e.Op, false, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	return commit(t, d, m, memLoc(t), false)
}

// onlineResult is what one mode produced.
type onlineResult struct {
	events    []string // every callback but OpUnchanged, in order
	unchanged int
	counts    Counts
	manifest  []entry
	walked    bool
}

// runOnline diffs c.run against old, with Expect when expect is set, twice
// (a drain passes the same rows in the same order), reports outcomes
// (the loads of keys ending in 3 fail; deletes succeed) and commits.
func runOnline(t *testing.T, c onlineCase, old *Manifest, expect bool) onlineResult {
	t.Helper()
	ctx := context.Background()
	d := newDiffer(t, c.memLimit)
	if expect {
		if err := d.Expect(ctx, old); err != nil {
			t.Fatal(err)
		}
	}
	add(t, d, c.run...)
	var res onlineResult
	if !c.noDiff {
		if c.count {
			if _, err := d.Diff(ctx, old, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		var first []event
		for pass := range 2 {
			evs, counts := diff(t, d, old)
			if pass == 0 {
				first, res.counts = evs, counts
				continue
			}
			if fmt.Sprint(evs) != fmt.Sprint(first) {
				t.Fatalf("expect=%v: the second Diff passed\n%v\nthe first\n%v", expect, evs, first)
			}
		}
		for _, e := range first {
			if e.Op == OpUnchanged && !e.Dup {
				res.unchanged++
				continue
			}
			res.events = append(res.events, e.String())
			if e.Dup || e.Op == OpUnchanged {
				continue
			}
			loaded := e.Op == OpMissing || !strings.HasSuffix(e.Key, "3") // some loads fail
			if err := d.Outcome(e.Key, e.Op, loaded, "new-"+e.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	res.walked = d.walked != nil
	res.manifest = entries(t, commit(t, d, old, memLoc(t), true))
	return res
}

// TestExpectMatchesDiff: a run diffed as its rows are added (Expect) passes
// the same new, changed, missing and duplicate keys with the same rows, in
// the same order, the same number of unchanged keys, the same counts, and
// commits the same manifest as the merge after the run, whether the walk
// lasts to the end (sorted input) or ends at an out-of-order or repeated
// key; and the walk does last on sorted input.
func TestExpectMatchesDiff(t *testing.T) {
	key := func(i int) string { return fmt.Sprintf("K%05d", i) }
	old := map[string]string{}
	for i := 0; i < 400; i += 2 { // even keys were synced
		old[key(i)] = fmt.Sprintf("n%d,%d", i, i)
	}
	// sorted run: odd keys new, keys 0-49 missing, every 10th changed,
	// 100-119 changed but unsynced (sent again), the rest unchanged.
	var sorted []string
	for i := 50; i < 450; i++ {
		switch {
		case i%2 == 1:
			sorted = append(sorted, fmt.Sprintf("%s,new%d,%d", key(i), i, i))
		case i%10 == 0 && i < 400:
			sorted = append(sorted, fmt.Sprintf("%s,chg%d,%d", key(i), i, i))
		case i < 400:
			sorted = append(sorted, key(i)+","+old[key(i)])
		default:
			sorted = append(sorted, fmt.Sprintf("%s,new%d,%d", key(i), i, i))
		}
	}
	var unsynced []string
	for i := 100; i < 120; i += 2 {
		unsynced = append(unsynced, key(i))
	}
	moved := func(from, to int) []string { // sorted with row from moved before row to
		r := slices.Clone(sorted)
		v := r[from]
		r = slices.Delete(r, from, from+1)
		return slices.Insert(r, to, v)
	}
	shuffled := slices.Clone(sorted)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	dupLater := append(slices.Clone(sorted), sorted[10])             // a key again at the end
	dupNext := slices.Insert(slices.Clone(sorted), 201, sorted[200]) // a key twice in a row
	dupNext[201] = strings.Replace(dupNext[201], ",", ",again-", 1)
	var unchangedTail []string // the first key changed, the rest as synced
	for i := 0; i < 400; i += 2 {
		unchangedTail = append(unchangedTail, key(i)+","+old[key(i)])
	}
	unchangedTail[0] = key(0) + ",chg,0"

	cases := []onlineCase{
		{name: "sorted", old: old, unsynced: unsynced, run: sorted, walked: true},
		{name: "sorted, spilled", old: old, unsynced: unsynced, run: sorted, memLimit: 2048, walked: true},
		{name: "sorted, counting first", old: old, unsynced: unsynced, run: sorted, count: true, walked: true},
		{name: "sorted, commit without diff", old: old, unsynced: unsynced, run: sorted, noDiff: true},
		{name: "out of order at the start", old: old, run: moved(1, 0)},
		{name: "out of order in the middle", old: old, unsynced: unsynced, run: moved(250, 200), memLimit: 2048},
		{name: "out of order at the end", old: old, run: moved(len(sorted)-1, len(sorted)-2)},
		{name: "shuffled", old: old, unsynced: unsynced, run: shuffled, memLimit: 4096},
		{name: "a key again later", old: old, run: dupLater},
		{name: "a key twice in a row", old: old, run: dupNext, memLimit: 2048},
		{name: "empty run", old: old, run: nil, walked: true},
		{name: "every key new", old: map[string]string{"A": "a,1"}, run: sorted, walked: true},
		{name: "unchanged tail", old: old, run: unchangedTail, walked: true},
		{name: "every key missing", old: old, run: []string{"Z,z,1"}, walked: true},
		{name: "first run", run: sorted},
		{name: "empty manifest", old: map[string]string{}, run: sorted, walked: true},
	}
	// Random runs over the same manifest: a sorted stretch, then either
	// the rest sorted or shuffled, with some repeats and unknown keys.
	rng := rand.New(rand.NewPCG(7, 11))
	for n := range 60 {
		var run []string
		for i := 0; i < 500; i++ {
			if rng.IntN(3) == 0 {
				continue
			}
			name := fmt.Sprintf("n%d", i)
			if rng.IntN(8) == 0 {
				name = fmt.Sprintf("r%d", n)
			}
			run = append(run, fmt.Sprintf("%s,%s,%d", key(i), name, i))
		}
		sortedRun := rng.IntN(2) == 0
		if !sortedRun {
			cut := rng.IntN(len(run))
			rest := run[cut:]
			rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
			for range rng.IntN(3) {
				run = append(run, run[rng.IntN(len(run))])
			}
		}
		c := onlineCase{name: fmt.Sprintf("random %d", n), old: old, run: run, memLimit: []int{0, 1024, 8192}[n%3],
			count: n%4 == 0, noDiff: n%9 == 0, walked: sortedRun && n%9 != 0}
		cases = append(cases, c)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.oldManifest(t)
			plain := runOnline(t, c, m, false)
			walked := runOnline(t, c, m, true)
			if walked.walked != c.walked {
				t.Errorf("the walk lasted to the end: %v, want %v", walked.walked, c.walked)
			}
			if plain.walked {
				t.Error("a Differ without Expect walked")
			}
			if i := firstDiff(walked.events, plain.events); i >= 0 {
				t.Errorf("event %d of %d/%d: with Expect %s, without %s", i, len(walked.events), len(plain.events), at(walked.events, i), at(plain.events, i))
			}
			if walked.unchanged != plain.unchanged || walked.counts != plain.counts {
				t.Errorf("with Expect %d unchanged, %+v; without %d, %+v", walked.unchanged, walked.counts, plain.unchanged, plain.counts)
			}
			if i := firstDiff(walked.manifest, plain.manifest); i >= 0 {
				t.Errorf("committed manifest entry %d of %d/%d: with Expect %v, without %v", i, len(walked.manifest), len(plain.manifest), at(walked.manifest, i), at(plain.manifest, i))
			}
			if !c.noDiff && c.old != nil && len(c.run) > 0 && plain.counts.Unchanged+plain.counts.Changed+plain.counts.New == 0 {
				t.Error("the case diffs nothing")
			}
		})
	}
}

// TestExpectKeepsOnlyWhatItSends: a sorted run of unchanged rows writes
// none of them: after the diff, the Differ's files hold the unchanged
// keys' manifest records and the changed rows, far less than the rows
// themselves; Row gives nil for an unchanged key.
func TestExpectKeepsOnlyWhatItSends(t *testing.T) {
	ctx := context.Background()
	var rows []string
	for i := range 5000 {
		rows = append(rows, fmt.Sprintf("K%05d,%s,%d", i, strings.Repeat("x", 200), i))
	}
	c := onlineCase{old: map[string]string{}}
	for _, r := range rows {
		f := strings.SplitN(r, ",", 2)
		c.old[f[0]] = f[1]
	}
	old := c.oldManifest(t)
	rows[100] = strings.Replace(rows[100], "xxx", "yyy", 1)
	d := newDiffer(t, 0)
	if err := d.Expect(ctx, old); err != nil {
		t.Fatal(err)
	}
	add(t, d, rows...)
	var changed, unchanged int
	_, err := d.Diff(ctx, old, func(op Op, key string, row pipeline.Row, _ pipeline.Origin, _ string) error {
		switch op {
		case OpChanged:
			changed++
			if key != "K00100" || row == nil {
				t.Errorf("changed %q row %v", key, row)
			}
		case OpUnchanged:
			unchanged++
			if r, _, err := d.Row(); r != nil || err != nil || row != nil {
				t.Errorf("unchanged: row %v, Row() %v, %v", row, r, err)
			}
		}
		return nil
	}, func(string, pipeline.Row, pipeline.Origin) error { return nil })
	if err != nil || changed != 1 || unchanged != 4999 {
		t.Fatalf("Diff: %d changed, %d unchanged, %v", changed, unchanged, err)
	}
	var size int64
	filepath.Walk(d.dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	// The rows are over 200 bytes each; what is kept per unchanged key is
	// its manifest record (about 30 bytes) for Commit's copy.
	if size > 5000*200/5 {
		t.Errorf("the Differ's files hold %d bytes for 5000 unchanged rows of 200+ bytes", size)
	}
}

// TestExpectRefusesAnotherManifest: Diff and Commit against a manifest
// other than Expect's fail (the rows Add dropped were unchanged against
// that one only), and Expect must come first.
func TestExpectRefusesAnotherManifest(t *testing.T) {
	ctx := context.Background()
	c := onlineCase{old: map[string]string{"A": "a,1", "B": "b,2"}}
	m1, m2 := c.oldManifest(t), c.oldManifest(t)
	d := newDiffer(t, 0)
	if err := d.Expect(ctx, m1); err != nil {
		t.Fatal(err)
	}
	add(t, d, "A,a,1", "B,b,3")
	if _, err := d.Diff(ctx, m2, nil, nil); err == nil || !strings.Contains(err.Error(), "not the one given to Expect") {
		t.Errorf("Diff against another manifest: %v", err)
	}
	if _, err := d.Commit(ctx, nil, &strings.Builder{}, false); err == nil || !strings.Contains(err.Error(), "not the one given to Expect") {
		t.Errorf("Commit against no manifest: %v", err)
	}
	if err := d.Expect(ctx, m1); err == nil {
		t.Error("Expect after Add succeeded")
	}
	if evs, _ := diff(t, d, m1); fmt.Sprint(evs) != `[changed "B" row="B|b|3" line=3 old="id-B" unchanged "" row="<nil>" line=0 old=""]` {
		t.Errorf("Diff against Expect's manifest: %v", evs)
	}
}

// firstDiff returns the first index where a and b differ, or -1.
func firstDiff[T comparable](a, b []T) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

// at returns s[i] as text, or "(none)" past its end.
func at[T any](s []T, i int) string {
	if i >= len(s) {
		return "(none)"
	}
	return fmt.Sprint(s[i])
}

// TestExpectCommitRefusesWrongOutcomes: after a walk, as after a merge,
// Commit fails on an outcome for a key the diff found unchanged, for a key
// in neither the run nor the manifest (before, between and after the
// others), and for the wrong op; and commits the right ones.
func TestExpectCommitRefusesWrongOutcomes(t *testing.T) {
	ctx := context.Background()
	c := onlineCase{old: map[string]string{"B": "b,1", "D": "d,1", "F": "f,1", "H": "h,1"}}
	old := c.oldManifest(t)
	run := []string{"B,b,1", "D,d,2", "E,e,1", "F,f,1"} // B, F unchanged; D changed; E new; H missing
	cases := []struct {
		key  string
		op   Op
		want string // "" = commits
	}{
		{"D", OpChanged, ""},
		{"E", OpNew, ""},
		{"H", OpMissing, ""},
		{"B", OpChanged, "B"},
		{"F", OpNew, "F"},
		{"A", OpNew, "A"},
		{"C", OpNew, "C"},
		{"Z", OpNew, "Z"},
		{"D", OpNew, "D"},
		{"H", OpChanged, "H"},
	}
	for _, tc := range cases {
		for _, expect := range []bool{false, true} {
			d := newDiffer(t, 0)
			if expect {
				if err := d.Expect(ctx, old); err != nil {
					t.Fatal(err)
				}
			}
			add(t, d, run...)
			diff(t, d, old)
			if expect != d.Walked() {
				t.Fatalf("walked: %v", d.Walked())
			}
			if err := d.Outcome(tc.key, tc.op, true, "x"); err != nil {
				t.Fatal(err)
			}
			_, err := d.Commit(ctx, old, &strings.Builder{}, true)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("expect=%v: outcome %s %v: %v", expect, tc.key, tc.op, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.want))):
				t.Errorf("expect=%v: outcome %s %v: err %v, want one naming %q", expect, tc.key, tc.op, err, tc.want)
			}
		}
	}
}

// TestExpectUnordered: Unordered names the row and the keys where a run
// stopped coming in key order, and is empty for a run that did not.
func TestExpectUnordered(t *testing.T) {
	ctx := context.Background()
	c := onlineCase{old: map[string]string{"A": "a,1", "B": "b,1"}}
	old := c.oldManifest(t)
	for _, tc := range []struct {
		run  []string
		want string
	}{
		{[]string{"A,a,1", "B,b,1", "C,c,1"}, ""},
		{[]string{"B,b,1", "A,a,1", "C,c,1"}, `row 2: key "A" after "B"`},
		{[]string{"A,a,1", "B,b,1", "B,b,2"}, `row 3: key "B" twice in a row`},
		{[]string{"9,n,1", "10,n,1"}, `row 2: key "10" after "9"`},
	} {
		d := newDiffer(t, 0)
		if err := d.Expect(ctx, old); err != nil {
			t.Fatal(err)
		}
		add(t, d, tc.run...)
		diff(t, d, old)
		if got := d.Unordered(); got != tc.want || d.Walked() != (tc.want == "") {
			t.Errorf("%v: Unordered %q, walked %v; want %q", tc.run, got, d.Walked(), tc.want)
		}
	}
}

// FuzzExpectMatchesDiff: any run diffed with Expect passes the same keys,
// rows and counts and commits the same manifest as without. Each input
// byte is a row: its low bits pick one of 48 keys (the even ones below 40
// were synced), bit 6 changes its name; a first byte with bit 0 set sorts
// the run by key (duplicates stay), so that most inputs walk to the end or
// break late.
func FuzzExpectMatchesDiff(f *testing.F) {
	old := map[string]string{}
	for i := 0; i < 40; i += 2 {
		old[fmt.Sprintf("K%02d", i)] = fmt.Sprintf("n%d,%d", i, i)
	}
	m := onlineCase{old: old}.oldManifest(f)
	for _, seed := range [][]byte{
		{1, 0, 2, 4, 6, 0x46, 9},
		{1, 2, 2, 3},
		{0, 5, 3, 1},
		{1},
		{1, 0x2f, 0x2e},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > 200 {
			return
		}
		var run []string
		for _, b := range in[1:] {
			k := int(b&0x3f) % 48
			name := fmt.Sprintf("n%d", k)
			if b&0x40 != 0 {
				name = "changed"
			}
			run = append(run, fmt.Sprintf("K%02d,%s,%d", k, name, k))
		}
		if in[0]&1 != 0 {
			slices.SortStableFunc(run, func(a, b string) int { return strings.Compare(a[:3], b[:3]) })
		}
		c := onlineCase{old: old, run: run, memLimit: []int{0, 512}[int(in[0]>>1)&1]}
		plain, walked := runOnline(t, c, m, false), runOnline(t, c, m, true)
		if i := firstDiff(walked.events, plain.events); i >= 0 {
			t.Fatalf("event %d: with Expect %s, without %s", i, at(walked.events, i), at(plain.events, i))
		}
		if walked.unchanged != plain.unchanged || walked.counts != plain.counts {
			t.Fatalf("with Expect %d unchanged, %+v; without %d, %+v", walked.unchanged, walked.counts, plain.unchanged, plain.counts)
		}
		if i := firstDiff(walked.manifest, plain.manifest); i >= 0 {
			t.Fatalf("manifest entry %d: with Expect %v, without %v", i, at(walked.manifest, i), at(plain.manifest, i))
		}
	})
}
