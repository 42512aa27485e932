package salesforcetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFieldIndexMatchesReference checks fieldIndex (keyIndex plus the
// duplicate map) against a map of insertion-ordered lists under random
// adds and removes.
func TestFieldIndexMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := make([]*record, 64)
	for i := range recs {
		recs[i] = &record{id: fmt.Sprint(i)}
	}
	var x fieldIndex
	ref := map[string][]*record{}
	for n := 0; n < 200000; n++ {
		k := fmt.Sprint(rng.IntN(3000))
		r := recs[rng.IntN(len(recs))]
		if rng.IntN(5000) == 0 {
			x.one.reserve(rng.IntN(10000))
		}
		if rng.IntN(3) > 0 {
			if slices.Contains(ref[k], r) {
				continue // a record holds a key once
			}
			x.add(k, r)
			ref[k] = append(ref[k], r)
		} else {
			x.remove(k, r)
			if i := slices.Index(ref[k], r); i >= 0 {
				ref[k] = slices.Delete(ref[k], i, i+1)
			}
		}
		var got []*record
		if list, ok := x.many[k]; ok {
			got = list
		} else if r := x.one.get(k); r != nil {
			got = []*record{r}
		}
		if !slices.Equal(got, ref[k]) && len(got)+len(ref[k]) > 0 {
			t.Fatalf("step %d key %s: got %v want %v", n, k, got, ref[k])
		}
	}
	for k, want := range ref {
		var got []*record
		if list, ok := x.many[k]; ok {
			got = list
		} else if r := x.one.get(k); r != nil {
			got = []*record{r}
		}
		if !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("key %s: got %v want %v", k, got, want)
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
