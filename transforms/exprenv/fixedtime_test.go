package exprenv

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestFixedLayoutMatchesTimeParse reads random values, most of them of a
// layout's shape and many of them out of range or slightly off, with
// every layout: where the fixed reading succeeds, time.ParseInLocation
// must give the same time; where time.Parse succeeds on a value of the
// layout's exact shape, the fixed reading must too (or the fast path
// would never answer). Layouts with elements of variable width, names,
// zones or fractions must not compile.
func TestFixedLayoutMatchesTimeParse(t *testing.T) {
	fixed := []string{"01/02/2006", "01/02/2006 15:04:05", "2006-01-02", "2006-01-02T15:04:05", "2006/01/02 15:04",
		"20060102", "2006-01-02 15:04", "02/01/2006", "2006-01-02T15:04"}
	notFixed := []string{"1/2/2006", "Jan 2, 2006", "2006-01-02T15:04:05Z07:00", "2006-01-02 15:04:05.000", "2006-01-02 3:04PM",
		"2006-01-02 15:04:05 MST", "2006-01-02-07", "06-01-02", "2006-1-2", "2006-01-02 _2", "01/02", "2006-01-02 2006", "2006-002", ""}
	for _, l := range notFixed {
		if fixedLayoutOf(l) != nil {
			t.Errorf("layout %q compiled as fixed", l)
		}
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip(err)
	}
	rng := rand.New(rand.NewPCG(23, 24))
	for _, l := range fixed {
		fl := fixedLayoutOf(l)
		if fl == nil {
			t.Fatalf("layout %q did not compile", l)
		}
		hits := 0
		for range 20000 {
			// A time of the layout's shape, its digits then mutated.
			tm := time.Date(rng.IntN(3000), time.Month(1+rng.IntN(12)), 1+rng.IntN(31), rng.IntN(24), rng.IntN(60), rng.IntN(60), 0, time.UTC)
			b := []byte(tm.Format(l))
			for range rng.IntN(3) {
				i := rng.IntN(len(b))
				b[i] = "0123456789/-: T9x"[rng.IntN(17)]
			}
			v := string(b)
			for _, loc := range []*time.Location{time.UTC, paris} {
				want, werr := time.ParseInLocation(l, v, loc)
				y, mo, d, h, mi, sec, ok := fl.fields(v)
				if ok {
					hits++
					got := time.Date(y, time.Month(mo), d, h, mi, sec, 0, loc)
					if werr != nil || !got.Equal(want) || got.Location() != want.Location() {
						t.Fatalf("layout %q value %q: fixed %v, time.Parse %v, %v", l, v, got, want, werr)
					}
				} else if werr == nil && len(v) == len(l) && fmt.Sprint(want.Format(l)) == v {
					t.Fatalf("layout %q value %q: time.Parse reads %v, the fixed reading refused", l, v, want)
				}
			}
		}
		if hits == 0 {
			t.Errorf("layout %q: the fixed reading never succeeded", l)
		}
	}
}

// TestAppendSFDateMatchesFormat compares appendSFDate with
// Format(SFDateLayout) on random times in several zones, years out of
// 0-9999 included.
func TestAppendSFDateMatchesFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	zones := []*time.Location{time.UTC, time.FixedZone("-14", -14*3600), time.FixedZone("+14", 14*3600)}
	for _, name := range []string{"Europe/Paris", "America/Los_Angeles", "Asia/Kolkata"} {
		if l, err := time.LoadLocation(name); err == nil {
			zones = append(zones, l)
		}
	}
	for i := range 100000 {
		tm := time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)).In(zones[i%len(zones)])
		if got, want := string(appendSFDate(nil, tm)), tm.Format(SFDateLayout); got != want {
			t.Fatalf("%v: %s, Format %s", tm, got, want)
		}
	}
}

// TestAppendSFDateTimeMatchesFormat compares appendSFDateTime with
// Format(SFDateTimeLayout) on random times, years out of 0-9999 included.
func TestAppendSFDateTimeMatchesFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for range 100000 {
		tm := time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)).UTC()
		if got, want := string(appendSFDateTime(nil, tm)), tm.Format(SFDateTimeLayout); got != want {
			t.Fatalf("%v: %s, Format %s", tm, got, want)
		}
	}
}
