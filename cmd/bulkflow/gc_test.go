package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// TestTuneGC: bulkflow's collector settings give way to the user's: GOGC
// set keeps the user's GOGC and sets no limit; GOMEMLIMIT set keeps the
// user's limit (and GOGC=200); neither set gives the small-heap GOGC and
// limit.
func TestTuneGC(t *testing.T) {
	restoreGC(t)
	for _, tc := range []struct {
		name        string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"neither set", nil, smallHeapGCPercent, smallHeapLimit},
		{"GOGC set", map[string]string{"GOGC": "100"}, 100, math.MaxInt64},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, defaultGCPercent, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
				if v, ok := tc.env[k]; ok {
					t.Setenv(k, v)
				} else {
					unsetenv(t, k)
				}
			}
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			tuneGC()
			if got := debug.SetGCPercent(100); got != tc.wantPercent {
				t.Errorf("GOGC %d, want %d", got, tc.wantPercent)
			}
			if got := debug.SetMemoryLimit(math.MaxInt64); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
}

// restoreGC sets GOGC 100 and no memory limit for the test and restores
// the process's settings after it.
func restoreGC(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
}

// unsetenv unsets k for the rest of the test (t.Setenv restores it).
func unsetenv(t *testing.T, k string) {
	t.Setenv(k, "")
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}

// TestWatchLiveHeap: the limit is lifted after the first collection that
// leaves more than the threshold live, and not before.
func TestWatchLiveHeap(t *testing.T) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	threshold := sample[0].Value.Uint64() + 32<<20
	lifted := make(chan struct{}, 2)
	watchLiveHeap(threshold, func() { lifted <- struct{}{} })

	runtime.GC()
	runtime.GC() // the finalizer of the first cycle's sentinel has run
	select {
	case <-lifted:
		t.Fatal("lifted with the live heap under the threshold")
	case <-time.After(100 * time.Millisecond):
	}

	held := make([][]byte, 48)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		runtime.GC()
		select {
		case <-lifted:
			done = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("not lifted with 48 MiB more live than at the start")
		}
	}
	runtime.KeepAlive(held)
	runtime.GC()
	runtime.GC()
	select {
	case <-lifted:
		t.Fatal("lifted twice")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestTuneGCLift: once a collection leaves more than smallHeapLive live,
// the small-heap settings give way to defaultGCPercent without a limit.
func TestTuneGCLift(t *testing.T) {
	restoreGC(t)
	unsetenv(t, "GOGC")
	unsetenv(t, "GOMEMLIMIT")
	tuneGC()
	// settings reads both without changing them.
	settings := func() (int, int64) {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p, debug.SetMemoryLimit(-1)
	}
	if p, l := settings(); p != smallHeapGCPercent || l != smallHeapLimit {
		t.Fatalf("before: GOGC %d, limit %d; want %d, %d", p, l, smallHeapGCPercent, smallHeapLimit)
	}
	held := make([][]byte, smallHeapLive>>20+16)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // the finalizer goroutine runs the check
		p, l := settings()
		if p == defaultGCPercent && l == math.MaxInt64 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with %d MiB held: GOGC %d, limit %d; want %d, no limit", len(held), p, l, defaultGCPercent)
		}
	}
	runtime.KeepAlive(held)
}
