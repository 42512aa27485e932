package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// defaultGCPercent is the collector's target when the user has not set
// GOGC. bulkflow's live heap is small and bounded (rows stream through in
// batches; nothing grows with the input), and most of what it allocates is
// short-lived boxed values, so collecting at 200 % instead of Go's 100 %
// trades a few tens of MiB for CPU. Measured with `bulkflow bench` (1M
// rows, 2 cores, same invocation): plan-csv 10–15 % faster; peak RSS 82 →
// 113 MiB (plan-csv), 88 → 101 MiB (plan-parquet), 141 → 197 MiB (run-csv);
// still flat from 1M to 10M rows (104 and 110 MiB at 10M).
const defaultGCPercent = 200

// smallHeapLimit is the soft memory limit (debug.SetMemoryLimit) bulkflow
// sets (beside smallHeapGCPercent; GOGC=200 when it was first measured) when the user has set neither GOGC nor GOMEMLIMIT,
// for as long as the live heap stays under smallHeapLive; the first
// collection that finds more live lifts it for good.
//
// Why: at GOGC=200 the heap grows to three times the live heap before a
// collection, and the process carries about 60 MiB besides (the binary's
// pages, the runtime: bench's encoding/csv baseline peaks at 62-71 MiB), so
// a plan whose live heap is 26-44 MiB (plan-parquet, issue 23) peaked at
// 153-212 MiB on the 2-core machine (target 150), more under load; plan-csv
// at 139-194 MiB. With the limit (bulkflow bench, 1M rows, 3 runs per
// invocation, load 5-14): plan-parquet 136.7-139.1 MiB, plan-csv
// 129.9-134.9 MiB; without it, same hour: 154.9-190.0 and 139.5-193.6 MiB.
// CPU did not move beyond the machine's noise: run-csv's own CPU (minus
// the emulator's) 2.76 s with the limit, 2.36-2.74 s in four invocations
// without; plan-csv 1.34 s vs 1.29-1.75 s.
//
// Why the lift: run-csv holds 60-100+ MiB live (job uploads in flight;
// peak RSS 280-345 MiB), and under a limit below its working set the
// collector runs nearly all the time: with GOMEMLIMIT=100MiB its own CPU
// went 2.36 → 4.57 s per 1M rows. Past smallHeapLive a pipeline is not a
// small one and GOGC=200 alone decides. The threshold is 64 MiB, not 48:
// the live heap the runtime reports counts what is allocated during
// marking, so under load plan-parquet read 48+ MiB in one run of three in
// each of two invocations (and peaked at 178-185 MiB once lifted). GOGC=150
// for every pipeline instead did not bring plan-parquet under 150 MiB under
// load (150-161).
//
// A pipeline's buffers that live for the whole run count towards the
// threshold, so they are sized to stay well under it: a sync stage's diff
// spools up to 16 MiB of rows (pipeline/sync/changes.DefaultMemLimit),
// putting bench sync-diff's live heap at 30-40 MiB. At 32 MiB it read
// 50-60 MiB, and the runs that crossed 64 MiB lost the limit and peaked
// at 193-235 MiB instead of 137 (at 1M rows and 10M alike: bimodal).
const (
	smallHeapLimit = 96 << 20
	smallHeapLive  = 64 << 20
)

// smallHeapGCPercent is the collector's target while smallHeapLimit is
// set: the heap may grow to nine times the live heap, so that a pipeline
// of any size collects when the limit, not GOGC, says memory is short,
// and a tiny one (a few MiB live) still stays small.
//
// Why (issue 23): a plan's live heap is 10-25 MiB (gctrace), so at
// GOGC=200 its heap goal was 30-75 MiB, under the limit, and plan-csv
// collected about 30 times per 1M rows, marking for about a third of its
// wall time (write barriers on while it does). At 400 the goal reaches
// the limit and the collector runs about half as often. Measured
// alternating whole processes on the 2-core machine (1M rows, GOGC and
// GOMEMLIMIT set in the environment to the two settings): plan-csv CPU
// 0.87x (0.69-0.91, 8 pairs); peak RSS as /usr/bin/time reads it 127-138
// -> 148-150 MiB, and as bench reads it (which runs a copy of the binary
// whose pages the kernel has dropped) plan-csv 131 and plan-parquet 130-133
// MiB: the limit, not GOGC, bounds it. GOGC=off under the same limit
// measured the same CPU (median 1.0, 8 pairs) but would let even a tiny
// pipeline grow to the limit. Past smallHeapLive the limit goes and so
// does this: a large pipeline runs at defaultGCPercent.
//
// 800, not 400 (issue 23, tenth round): at 400 a pipeline whose live heap
// is about 10-20 MiB (bench plan-csv-easy) stayed under the limit, and its
// peak was whatever the largest live heap at a collection happened to be:
// 92-104 MiB at 1M rows, 107-112 MiB at 10M (10M ÷ 1M 1.11-1.16, target
// 1.10), since a longer run meets a larger one. At 800 it reaches the
// limit as the larger pipelines do: 125-131 MiB at 1M and 10M alike
// (0.999), CPU 0.91x (8 alternated pairs, 1M rows); plan-parquet, already
// at the limit, 1.02x CPU (6 pairs) and the same peak (129-131 MiB).
const smallHeapGCPercent = 800

// tuneGC applies defaultGCPercent unless GOGC is set in the environment.
// Unless GOGC or GOMEMLIMIT is set, it applies smallHeapGCPercent and
// smallHeapLimit instead while the live heap is small, and
// defaultGCPercent without a limit once it is not.
func tuneGC() {
	_, gogc := os.LookupEnv("GOGC")
	_, memLimit := os.LookupEnv("GOMEMLIMIT")
	switch {
	case gogc:
	case memLimit:
		debug.SetGCPercent(defaultGCPercent)
	default:
		debug.SetGCPercent(smallHeapGCPercent)
		debug.SetMemoryLimit(smallHeapLimit)
		watchLiveHeap(smallHeapLive, func() {
			debug.SetMemoryLimit(math.MaxInt64)
			debug.SetGCPercent(defaultGCPercent)
		})
	}
}

// gcSentinel is an object whose only use is to be collected. It holds a
// pointer so that it never shares a tiny-allocator block (whose finalizers
// may not run).
type gcSentinel struct{ _ *byte }

// watchLiveHeap calls lift, once, after the first collection that leaves
// more than live bytes of live heap. It checks after each collection from
// the runtime's finalizer goroutine (a sentinel object re-armed each cycle)
// and stops re-arming once it has called lift; nothing else runs.
func watchLiveHeap(live uint64, lift func()) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		sentinel := new(gcSentinel)
		runtime.SetFinalizer(sentinel, func(*gcSentinel) {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() > live {
				lift()
				return
			}
			arm()
		})
	}
	arm()
}
