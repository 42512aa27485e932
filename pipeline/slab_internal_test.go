package pipeline

import "testing"

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
