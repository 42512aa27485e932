package changes

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"testing"
)

// TestKeyPrefixOrder checks that keys whose 8-byte prefixes differ compare
// as their prefixes do (memBuf.sort's shortcut): short keys, zero bytes and
// common prefixes included.
func TestKeyPrefixOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	key := func() []byte {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = "\x00\x01AEXT-09\xff"[rng.IntN(9)]
		}
		return b
	}
	for range 200000 {
		a, b := key(), key()
		if pa, pb := keyPrefix(a), keyPrefix(b); pa != pb && cmp.Compare(pa, pb) != bytes.Compare(a, b) {
			t.Fatalf("%q vs %q: prefixes compare %d, keys %d", a, b, cmp.Compare(pa, pb), bytes.Compare(a, b))
		}
	}
}
