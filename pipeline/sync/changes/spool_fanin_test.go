package changes

import (
	"fmt"
	"testing"
)

// TestFreezeMergesOnlyTheExcess: a spool with more chunks than its fan-in
// merges, once, just enough of them to leave fanIn chunks (not a whole
// fan-in's worth), and reading it back still yields every record in (key,
// seq) order.
func TestFreezeMergesOnlyTheExcess(t *testing.T) {
	s := &spool{name: "run", dir: t.TempDir(), limit: 4096}
	fan := s.fanIn()
	const n = 6000
	for i := range n {
		key := fmt.Appendf(nil, "k%05d", (i*7919)%n)
		if err := s.add(key, uint64(i), []byte("payload")); err != nil {
			t.Fatal(err)
		}
	}
	spilled := s.files
	if spilled <= fan+1 {
		t.Fatalf("only %d chunks for a fan-in of %d; the test needs more", spilled, fan)
	}
	if err := s.freeze(); err != nil {
		t.Fatal(err)
	}
	if len(s.chunks) != fan {
		t.Errorf("%d chunks after freeze, want the fan-in %d", len(s.chunks), fan)
	}
	if merges := s.files - spilled - 1; merges != 1 { // freeze spills the rest first
		t.Errorf("%d merge passes, want 1", merges)
	}
	m, err := s.open()
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	for i := 0; ; i++ {
		c := m.top()
		if c == nil {
			if i != n {
				t.Fatalf("%d records read back, want %d", i, n)
			}
			break
		}
		if want := fmt.Sprintf("k%05d", i); string(c.key) != want {
			t.Fatalf("record %d: key %q, want %q", i, c.key, want)
		}
		if err := m.advance(); err != nil {
			t.Fatal(err)
		}
	}
}
