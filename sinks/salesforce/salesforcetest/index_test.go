package salesforcetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestFieldIndexMatchesReference checks fieldIndex (keyIndex plus the
// duplicate map) against a map of insertion-ordered lists under random
// adds and removes. As in a store, each record is indexed under its own
// value (the field at position 0), lower-cased: records change value
// while they are out of the index.
func TestFieldIndexMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := make([]*record, 2000)
	for i := range recs {
		recs[i] = &record{n: uint64(i)}
	}
	x := fieldIndex{one: keyIndex{pos: 0, fold: true}}
	ref := map[string][]*record{}
	keyOf := map[*record]string{} // the indexed records' keys
	check := func(step int, k string) {
		var got []*record
		if list, ok := x.many[k]; ok {
			got = list
		} else if r := x.one.get(k); r != nil {
			got = []*record{r}
		}
		if !slices.Equal(got, ref[k]) && len(got)+len(ref[k]) > 0 {
			t.Fatalf("step %d key %s: got %v want %v", step, k, got, ref[k])
		}
	}
	spellings := []string{"k%d", "K%d", "\u00c4%d"} // ASCII, upper case, non-ASCII upper case
	for n := 0; n < 200000; n++ {
		r := recs[rng.IntN(len(recs))]
		if rng.IntN(5000) == 0 {
			x.one.reserve(rng.IntN(10000))
		}
		k, indexed := keyOf[r]
		if indexed {
			x.remove(k, r)
			if i := slices.Index(ref[k], r); i >= 0 {
				ref[k] = slices.Delete(ref[k], i, i+1)
			}
			delete(keyOf, r)
		} else {
			v := fmt.Sprintf(spellings[rng.IntN(len(spellings))], rng.IntN(300))
			r.vals = &recVals{vals: v, refs: []fieldRef{{0, uint32(len(v))}}}
			k = strings.ToLower(v)
			x.add(k, r)
			ref[k] = append(ref[k], r)
			keyOf[r] = k
		}
		check(n, k)
	}
	for k := range ref {
		check(-1, k)
	}
}

// TestLowerIs checks lowerIs against strings.ToLower.
func TestLowerIs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "A", "b", "\u00c4", "\u00e4", "\u0130", "i", "\xff"}
	word := func() string {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 100000 {
		v, k := word(), word()
		if rng.IntN(2) == 0 {
			k = strings.ToLower(v)
		}
		if got, want := lowerIs(v, k), strings.ToLower(v) == k; got != want {
			t.Fatalf("lowerIs(%q, %q) = %v, want %v", v, k, got, want)
		}
	}
}

// TestIDGenMatchesCounter checks that idGen.next's in-place increment
// gives the base62 formatting of each successive counter value.
func TestIDGenMatchesCounter(t *testing.T) {
	format := func(n uint64) string {
		b := []byte("001Hs0000000000")
		for i := 14; i >= 5; i-- {
			b[i] = base62[n%62]
			n /= 62
		}
		return string(b)
	}
	for _, start := range []uint64{0, 62*62*62 - 5, 62*62*62*62*62 - 3} {
		g := idGen{}
		copy(g.id[:], format(start))
		for n := start + 1; n < start+300000; n++ {
			g.next()
			if got, want := string(g.id[:]), format(n); got != want {
				t.Fatalf("counter %d: got %s want %s", n, got, want)
			}
		}
	}
}

// TestKeyIndexRemoveReaddInPlace removes and re-adds every key of a full
// index, as updates of indexed fields do, many times over: with
// backward-shift deletion there are no tombstones, so the table is never
// rebuilt, the entries are reused, and every key stays reachable.
func TestKeyIndexRemoveReaddInPlace(t *testing.T) {
	const keys = 20000
	recs := make([]*record, keys)
	x := keyIndex{pos: 0}
	for i := range recs {
		v := fmt.Sprintf("key-%d", i)
		recs[i] = &record{vals: &recVals{vals: v, refs: []fieldRef{{0, uint32(len(v))}}}}
		x.put(v, recs[i])
	}
	rebuilds, slots := x.rebuilds, len(x.slots)
	rng := rand.New(rand.NewPCG(7, 8))
	for round := range 10 {
		for _, i := range rng.Perm(keys) {
			k, _ := recs[i].at(0)
			if !x.remove(k) {
				t.Fatalf("round %d: %s not found to remove", round, k)
			}
			if i%3 == 0 { // re-add a third at once, the rest after the pass
				x.put(k, recs[i])
			}
		}
		for i := range recs {
			if i%3 != 0 {
				k, _ := recs[i].at(0)
				x.put(k, recs[i])
			}
		}
		for i, r := range recs {
			k, _ := r.at(0)
			if x.get(k) != r {
				t.Fatalf("round %d: key %d lost", round, i)
			}
		}
	}
	if x.rebuilds != rebuilds || len(x.slots) != slots || x.n != keys || x.live != keys {
		t.Errorf("after the rounds: %d rebuilds (want %d), %d slots (want %d), %d entries and %d live (want %d)",
			x.rebuilds, rebuilds, len(x.slots), slots, x.n, x.live, keys)
	}
	if x.get("key-absent") != nil || x.remove("key-absent") {
		t.Error("an absent key was found")
	}
}
