//go:build linux

package salesforcesource_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

var exportCounts = flag.String("salesforcesource.export", "",
	"record counts for TestExportLarge, in increasing order, e.g. 100000,1000000")

// childEnv carries the export a TestExportChild process runs.
const childEnv = "BULKFLOW_SFSOURCE_EXPORT_CHILD"

// childSpec is what the parent hands TestExportChild.
type childSpec struct {
	InstanceURL, Token, Sink string
	MaxRecords               int
}

// runChild runs the export into sink in a TestExportChild process and
// returns its peak RSS in KiB and how long it took.
func runChild(t *testing.T, srv *salesforcetest.Server, sink string, n int) (int64, time.Duration) {
	t.Helper()
	spec, _ := json.Marshal(childSpec{InstanceURL: srv.URL, Token: srv.AccessToken(), Sink: sink, MaxRecords: 50000})
	cmd := exec.Command(os.Args[0], "-test.run=^TestExportChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(t0)
	if err != nil {
		t.Fatalf("export of %d records into %s: %v\n%s", n, sink, err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("exported %d rows", n)) {
		t.Fatalf("export of %d records into %s: the child did not report them:\n%s", n, sink, out)
	}
	var hwm int64
	if i := strings.Index(string(out), "VmHWM:"); i < 0 {
		t.Fatalf("export of %d records: no VmHWM in the child's output:\n%s", n, out)
	} else if _, err := fmt.Sscanf(string(out[i:]), "VmHWM: %d kB", &hwm); err != nil {
		t.Fatalf("export of %d records: VmHWM: %v", n, err)
	}
	return hwm, elapsed
}

// TestExportLarge exports the emulator's Accounts to the S3 test server at
// each -salesforcesource.export count (the emulator grows from one count
// to the next) and, for each:
//
//   - runs the export pipeline (salesforce source, pages of 50,000 →
//     parquet sink) in a child process, so that the child's peak RSS
//     (VmHWM) is the pipeline's alone (the emulator, which holds every
//     record and the job's result, and the S3 server are elsewhere), and
//     logs it;
//   - reads the Parquet object back and compares it with the emulator's
//     records;
//   - reads the same results in this process through the source (typed
//     rows) and as a plain download of the result pages (as `bulkflow
//     jobs`/`query` do), timing each once its query job is complete, and
//     logs records/s and their ratio.
//
// Each count is also exported into a local CSV file, which isolates the
// source and the engine from the Parquet writer and the S3 uploader. Peak
// RSS must not grow with the record count: the test fails when the CSV
// export's grows by more than 25 % from the first count to the last, or
// the Parquet-on-S3 export's doubles (the Parquet writer's row group and
// dictionaries and the S3 uploader's part buffers add GC headroom that
// grows for a while with the object).
//
//	.ci/blobservers.sh start && source "$(.ci/blobservers.sh env)"
//	go test ./sources/salesforcesource -run TestExportLarge -salesforcesource.export 100000,1000000 -v -timeout 30m
func TestExportLarge(t *testing.T) {
	if *exportCounts == "" {
		t.Skip("set -salesforcesource.export 100000,1000000 to run")
	}
	var counts []int
	for _, f := range strings.Split(*exportCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || len(counts) > 0 && n <= counts[len(counts)-1] {
			t.Fatalf("-salesforcesource.export %q: want increasing positive counts", *exportCounts)
		}
		counts = append(counts, n)
	}
	srv := startEmulatorOpts(t, &salesforcetest.Options{})
	var s3 blobtest.Store
	for _, st := range blobtest.Stores {
		if st.Name == "S3" {
			s3 = st
		}
	}
	bucket := s3.NewBucket(t)
	var rss, csvRSS []int64
	dir := t.TempDir()
	loaded := 0
	for _, n := range counts {
		t0 := time.Now()
		addAccounts(t, srv, loaded, n)
		loaded = n
		t.Logf("%d records in the emulator (%.1fs to add)", n, time.Since(t0).Seconds())

		url := bucket.URL(fmt.Sprintf("accounts-%d.parquet", n))
		hwm, elapsed := runChild(t, srv, parquetSink(url), n)
		rss = append(rss, hwm)
		t.Logf("%d records: export pipeline (parquet, S3) peak RSS %.1f MiB, %.1fs (%.0f records/s, process start and job included)",
			n, float64(hwm)/1024, elapsed.Seconds(), float64(n)/elapsed.Seconds())
		hwm, _ = runChild(t, srv, fmt.Sprintf("{type: csv, url: %q}", filepath.Join(dir, fmt.Sprintf("accounts-%d.csv", n))), n)
		csvRSS = append(csvRSS, hwm)
		t.Logf("%d records: the same into a local CSV file, peak RSS %.1f MiB", n, float64(hwm)/1024)

		t0 = time.Now()
		checkParquet(t, srv, url)
		t.Logf("%d records: the Parquet object reads back equal to the emulator's records (%.1fs)", n, time.Since(t0).Seconds())

		src, srcTime := readSource(t, srv)
		dl, dlTime := download(t, srv)
		if src != n || dl != int64(n) {
			t.Fatalf("read %d rows through the source and downloaded %d records, want %d", src, dl, n)
		}
		t.Logf("%d records: source %.0f records/s, plain download of the same pages %.0f records/s: ratio %.2f",
			n, float64(n)/srcTime.Seconds(), float64(n)/dlTime.Seconds(), dlTime.Seconds()/srcTime.Seconds())
	}
	if first, last := csvRSS[0], csvRSS[len(csvRSS)-1]; last > first*5/4 {
		t.Errorf("into a CSV file, peak RSS grew from %.1f MiB at %d records to %.1f MiB at %d: the source or the engine holds more with more records",
			float64(first)/1024, counts[0], float64(last)/1024, counts[len(counts)-1])
	}
	if first, last := rss[0], rss[len(rss)-1]; last > first*2 {
		t.Errorf("into Parquet on S3, peak RSS grew from %.1f MiB at %d records to %.1f MiB at %d",
			float64(first)/1024, counts[0], float64(last)/1024, counts[len(counts)-1])
	}
}

// TestExportChild runs one export for TestExportLarge, in its own process.
func TestExportChild(t *testing.T) {
	v := os.Getenv(childEnv)
	if v == "" {
		t.Skip("runs only as TestExportLarge's child process")
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		t.Fatal(err)
	}
	n, err := export(context.Background(), spec.InstanceURL, spec.Token, spec.Sink, spec.MaxRecords)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("exported %d rows\n", n)
	// The high-water mark of this process's own memory. Not getrusage's
	// ru_maxrss: the child is started with vfork, and at exec Linux
	// carries the parent's (the emulator's) peak into the child's.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			fmt.Println(strings.Join(strings.Fields(l), " "))
		}
	}
}
