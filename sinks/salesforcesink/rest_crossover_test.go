package salesforcesink

import (
	"context"
	"flag"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

var (
	flagCrossover    = flag.Bool("rest.crossover", false, "run TestRESTBulkCrossover: the input size where REST collections and Bulk jobs take the same wall time")
	flagCrossDelay   = flag.Duration("rest.delay", 5*time.Second, "TestRESTBulkCrossover: the Bulk queue delay (emulator ProcessingDelay)")
	flagCrossLatency = flag.Duration("rest.latency", 0, "TestRESTBulkCrossover: latency added to every collection request (a real org spends tens to hundreds of ms on 200 records)")
	flagCrossSizes   = flag.String("rest.sizes", "200,500,1000,2000,4000,8000,16000,32000,64000,128000", "TestRESTBulkCrossover: comma-separated input sizes")
)

// TestRESTBulkCrossover measures, for growing inserts, the wall time of
// api rest and api bulk (poll_initial 1s, poll_max 30s: the defaults) on
// an emulator whose Bulk jobs wait -rest.delay in the queue and whose
// collection requests take -rest.latency more, and logs where REST stops
// being faster (linear interpolation between the two sizes around it). It
// fails if REST is not faster at the smallest size or no crossover is
// found among the sizes. Flag-gated: it takes minutes.
//
//	go test ./sinks/salesforcesink -run TestRESTBulkCrossover -rest.crossover -v [-rest.delay 5s] [-rest.latency 150ms]
func TestRESTBulkCrossover(t *testing.T) {
	if !*flagCrossover {
		t.Skip("set -rest.crossover to measure (minutes)")
	}
	var sizes []int
	for _, f := range strings.Split(*flagCrossSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("-rest.sizes: %q is not a positive number", f)
		}
		sizes = append(sizes, n)
	}
	measure := func(api string, n int) time.Duration {
		srv := salesforcetest.NewServer(nil)
		defer srv.Close()
		if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: *flagCrossDelay}); err != nil {
			t.Fatal(err)
		}
		srv.SetCollectionFaults(salesforcetest.CollectionFaults{Latency: *flagCrossLatency})
		rows := genAccounts(n, 0, "X")
		y := strings.Replace(emulatorYAML(srv), "poll_initial: 5ms\npoll_max: 50ms\n", "", 1)
		start := time.Now()
		r := runPipeline(t, context.Background(), accountSchema, rows, "object: Account\n"+strings.Replace(y, "api: bulk", "api: "+api, 1))
		d := time.Since(start)
		if r.err != nil {
			t.Fatalf("%s of %d rows: %v", api, n, r.err)
		}
		checkStored(t, srv, "Account", rows, nil, nil)
		return d
	}
	var prevN int
	var prevDiff time.Duration // rest - bulk at prevN
	crossover := -1.0
	t.Logf("queue delay %v, collection latency %v", *flagCrossDelay, *flagCrossLatency)
	for i, n := range sizes {
		rest, bulk := measure(APIREST, n), measure(APIBulk, n)
		diff := rest - bulk
		t.Logf("%7d rows: rest %8v (%d requests), bulk %8v", n, rest.Round(time.Millisecond), (n+199)/200, bulk.Round(time.Millisecond))
		if i == 0 && diff >= 0 {
			t.Fatalf("REST is not faster than Bulk at %d rows", n)
		}
		if diff >= 0 {
			crossover = float64(prevN) + float64(n-prevN)*float64(-prevDiff)/float64(diff-prevDiff)
			break
		}
		prevN, prevDiff = n, diff
	}
	if crossover < 0 {
		t.Fatalf("REST is faster at every size up to %d rows: no crossover", prevN)
	}
	t.Logf("crossover: about %.0f rows (REST and Bulk take the same wall time)", crossover)
}
