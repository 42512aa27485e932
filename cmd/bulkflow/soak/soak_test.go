package soak

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	flagLong  = flag.Bool("soak.long", false, "the long soak: -soak.runs scenarios (default 280) with larger loads")
	flagRuns  = flag.Int("soak.runs", 0, "scenarios to play (default: one per class, or 280 with -soak.long)")
	flagSeed  = flag.Uint64("soak.seed", 0, "seed of the first scenario; the next ones use the following seeds (default 1, or the time with -soak.long)")
	flagClass = flag.String("soak.class", "", "play only scenarios of these comma-separated classes ("+strings.Join(classes, ", ")+")")
	flagKeep  = flag.Bool("soak.keep", false, "keep each scenario's directory (pipeline, source, reports, dead letters, ledger) and log its path")
	flagBin   = flag.String("soak.bin", "", "use this bulkflow binary instead of building ./cmd/bulkflow")
)

// longOnly names the classes the default (short) run skips because a
// known open hole still fails them on main; the long form plays them.
// Empty: every class plays in the default run. (The re-cut class was gated
// while a refused re-cut resume dead-lettered already-loaded rows as
// retryable; a resumed attempt now dead-letters unsettled rows as
// `unsettled`, which only --resume recovers.)
var longOnly = map[string]string{}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "bulkflow-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestSoak plays randomized scenarios against a separately started
// emulator and checks the exactly-once promise after each (see the
// package doc). Short form: one scenario per class with seeds 1..7.
func TestSoak(t *testing.T) {
	long := *flagLong
	runs, seed := len(classes), uint64(1)
	stepTime := 90 * time.Second
	if long {
		runs, seed = 280, uint64(time.Now().UnixNano()%1_000_000)
		stepTime = 3 * time.Minute
	}
	if *flagRuns > 0 {
		runs = *flagRuns
	}
	if *flagSeed != 0 {
		seed = *flagSeed
	}
	var only []string
	if *flagClass != "" {
		only = strings.Split(*flagClass, ",")
		for _, c := range only {
			if !slices.Contains(classes, c) {
				t.Fatalf("-soak.class %q: unknown class (classes: %s)", c, strings.Join(classes, ", "))
			}
		}
	}
	bin := bulkflowBinary(t)
	t.Logf("soak: %d scenarios from seed %d (long %v), binary %s", runs, seed, long, bin)
	var total tally
	start := time.Now()
	for s, played := seed, 0; played < runs; s++ {
		sc := newScenario(s, long)
		if len(only) > 0 && !slices.Contains(only, sc.Class) {
			continue
		}
		played++
		if hole, gated := longOnly[sc.Class]; gated && !long {
			t.Logf("seed %d: class %s plays only with -soak.long until %s is fixed", s, sc.Class, hole)
			continue
		}
		t.Run(fmt.Sprintf("%s/seed=%d", sc.Class, s), func(t *testing.T) {
			tl, problems, log := playScenario(t, bin, sc, stepTime)
			total.add(tl)
			if len(problems) > 0 {
				flags := ""
				if long {
					flags = " -soak.long"
				}
				if *flagBin != "" {
					flags += " -soak.bin " + *flagBin
				}
				t.Errorf("%s\nsteps:\n  %s\nbroken promises:\n  %s\nreproduce: go test ./cmd/bulkflow/soak/ -run TestSoak -soak.seed %d -soak.runs 1%s -v",
					sc, strings.Join(log, "\n  "), strings.Join(problems, "\n  "), s, flags)
			}
		})
	}
	t.Logf("soak tallies after %s: %s", time.Since(start).Round(time.Second), total)
	if long {
		fmt.Printf("soak tallies (seeds %d.., %s): %s\n", seed, time.Since(start).Round(time.Second), total)
	}
}
