package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// UpsertRun is what one of RepeatUpserts' passes cost the emulator.
type UpsertRun struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// HeapGrowthMiB is the growth of the live heap (after a full
	// collection) over the pass: what the pass left in memory.
	HeapGrowthMiB float64 `json:"heap_growth_mib"`
	// RSSMiB is the process's resident set after the pass.
	RSSMiB  float64 `json:"rss_mib"`
	Rows    int64   `json:"rows"`
	Failed  int64   `json:"failed"`
	Created int64   `json:"created"`
}

// upsertWorkers is how many jobs RepeatUpserts keeps in flight, as the
// salesforce sink does with concurrency 4.
const upsertWorkers = 4

// RepeatUpserts upserts the job CSV files (their header names the fields,
// extID among them) into object of srv, times passes over all of them,
// each job through HTTP as a client does it (create, PUT, close, wait,
// download the successful and failed results), and returns the cost of
// each pass. It measures this process: srv must be its only work.
func RepeatUpserts(ctx context.Context, srv *salesforcetest.Server, object, extID string, files []string, times int) ([]UpsertRun, error) {
	data := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	c := &upsertClient{srv: srv, base: srv.URL + "/services/data/v62.0/jobs/ingest", token: srv.AccessToken()}
	create, _ := json.Marshal(map[string]string{"object": object, "operation": "upsert", "externalIdFieldName": extID})
	var runs []UpsertRun
	for range times {
		heap0 := liveHeap()
		start, cpu0 := time.Now(), SelfCPU()
		var mu sync.Mutex
		var run UpsertRun
		var firstErr error
		next := make(chan []byte)
		var wg sync.WaitGroup
		for range upsertWorkers {
			wg.Go(func() {
				for data := range next {
					rows, failed, created, err := c.job(ctx, create, data)
					mu.Lock()
					run.Rows, run.Failed, run.Created = run.Rows+rows, run.Failed+failed, run.Created+created
					if err != nil && firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			})
		}
		for _, d := range data {
			next <- d
		}
		close(next)
		wg.Wait()
		if firstErr != nil {
			return nil, firstErr
		}
		run.Seconds, run.CPUSeconds = time.Since(start).Seconds(), (SelfCPU() - cpu0).Seconds()
		run.HeapGrowthMiB = (float64(liveHeap()) - float64(heap0)) / (1 << 20)
		run.RSSMiB = float64(selfStatus("VmRSS:")) / (1 << 20)
		runs = append(runs, run)
	}
	return runs, nil
}

// upsertClient talks to the emulator's ingest API.
type upsertClient struct {
	srv         *salesforcetest.Server
	base, token string
}

// do sends one request and returns the body of a 2xx answer.
func (c *upsertClient) do(ctx context.Context, method, url string, body []byte, ctype string) ([]byte, error) {
	var b []byte
	err := c.stream(ctx, method, url, body, ctype, func(r io.Reader) (err error) {
		b, err = io.ReadAll(r)
		return err
	})
	return b, err
}

// stream sends one request and hands the body of a 2xx answer to read as
// it arrives. Results are streamed, as a real client reads them: reading
// a pass's 200 MB of successful results into memory first (io.ReadAll)
// cost this client 0.5-0.75 s of CPU per pass, growing with the heap
// (zeroing fresh large buffers), which the bench then charged to the
// emulator.
func (c *upsertClient) stream(ctx context.Context, method, url string, body []byte, ctype string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	return nil
}

// job runs one upsert job of data and returns its rows, failed rows and
// created records.
func (c *upsertClient) job(ctx context.Context, create, data []byte) (rows, failed, created int64, err error) {
	b, err := c.do(ctx, "POST", c.base, create, "application/json")
	if err != nil {
		return 0, 0, 0, err
	}
	var info struct{ ID string }
	if err := json.Unmarshal(b, &info); err != nil {
		return 0, 0, 0, fmt.Errorf("create job: %w", err)
	}
	if _, err := c.do(ctx, "PUT", c.base+"/"+info.ID+"/batches", data, "text/csv"); err != nil {
		return 0, 0, 0, err
	}
	if _, err := c.do(ctx, "PATCH", c.base+"/"+info.ID, []byte(`{"state":"UploadComplete"}`), "application/json"); err != nil {
		return 0, 0, 0, err
	}
	if err := c.srv.AwaitJobState(ctx, info.ID, salesforcetest.StateJobComplete); err != nil {
		return 0, 0, 0, err
	}
	err = c.stream(ctx, "GET", c.base+"/"+info.ID+"/successfulResults", nil, "", func(r io.Reader) error {
		cr := csv.NewReader(r)
		cr.FieldsPerRecord, cr.ReuseRecord = -1, true
		for i := 0; ; i++ {
			rec, err := cr.Read()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if i > 0 && len(rec) > 1 && rec[1] == "true" { // sf__Created
				created++
			}
		}
	})
	if err != nil {
		return 0, 0, 0, err
	}
	if _, err := c.do(ctx, "GET", c.base+"/"+info.ID+"/failedResults", nil, ""); err != nil {
		return 0, 0, 0, err
	}
	ji, _ := c.srv.Job(info.ID)
	return ji.NumberRecordsProcessed, ji.NumberRecordsFailed, created, nil
}

// liveHeap returns the heap reachable after a full collection (twice:
// the first moves sync.Pool contents to the victim cache).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// selfStatus returns a "kB" line of /proc/self/status in bytes, or 0.
func selfStatus(key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
