//go:build unix

package salesforcetest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var upsertRows = flag.Int("upsert.rows", 50000, "rows of each of TestRepeatedUpsertStaysFlat's three identical upserts (1000000 to reproduce issue 23's run; then the wall and memory ratios must be <= 1.2)")

// upsertCSV returns rows Lead rows keyed by External_Id__c, cut into jobs
// of perJob rows as the salesforce sink cuts them (max_job_rows 10000):
// 11 columns, two of them indexed (External_Id__c and Email).
func upsertCSV(rows, perJob int) [][]byte {
	var out [][]byte
	statuses := []string{"Open - Not Contacted", "Working - Contacted"}
	for start := 0; start < rows; start += perJob {
		buf := []byte("External_Id__c,FirstName,LastName,Company,Email,Phone,Status,LeadSource,Industry,AnnualRevenue,NumberOfEmployees\n")
		for i := start; i < min(start+perJob, rows); i++ {
			n := strconv.Itoa(1_000_000 + i)
			buf = append(buf, "L-"+n+",Ada"+n[4:]+",Lovelace,Analytical Engines "+n[3:]+" Ltd,ada."+n+"@example.com,+44 20 7946 "+n[3:]...)
			buf = append(buf, ","+statuses[i%2]+","+leadSources[i%len(leadSources)]+","+industries[i%len(industries)]+","...)
			buf = strconv.AppendInt(buf, int64(i%7)*250000, 10)
			buf = append(buf, ',')
			buf = strconv.AppendInt(buf, int64(i%5000), 10)
			buf = append(buf, '\n')
		}
		out = append(out, buf)
	}
	return out
}

// upsertRun is what one of the repeated upserts cost.
type upsertRun struct {
	wall, cpu time.Duration
	heap      int64 // growth of the live heap over the run
	rebuilds  int   // keyIndex rebuilds of the Lead indexes during the run
	created   int   // rows the results say were created
}

// TestRepeatedUpsertStaysFlat runs the same upsert (jobs of 10,000 Lead
// rows, as the salesforce sink cuts them) three times against one server,
// as repeated `bulkflow run`s of one export against one `bulkflow
// emulator` do, and requires the second and third runs to cost no more
// than the first: updates of existing keys change the indexes in place
// (no rebuild), and identical values leave the records as they are, so
// that the live heap grows by the jobs' own data (uploads and results,
// which the server keeps until a job is deleted) and nothing else. Issue
// 23 measured 5.4 s → 43 s wall and 396 MiB → 2.6 GB on a second run of
// 1M rows. With the default 50,000 rows the bounds are generous (wall is
// not checked: the machine is shared); -upsert.rows=1000000 checks the
// issue's 1.2× target for wall and memory.
func TestRepeatedUpsertStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 150,000 rows")
	}
	rows := *upsertRows
	jobs := upsertCSV(rows, 10000)
	s, err := NewHandler(nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	defer s.Close()
	do := func(method, path string, body []byte, ctype string) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+"/services/data/v62.0"+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.AccessToken())
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	rebuilds := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		if st := s.store["lead"]; st != nil {
			for i := range st.index {
				n += st.index[i].one.rebuilds
			}
		}
		return n
	}
	upsert := func() upsertRun {
		heap0, rb0 := liveHeapBytes(), rebuilds()
		start, cpu0 := time.Now(), processCPU()
		created := 0
		for _, data := range jobs {
			var info struct{ ID string }
			if err := json.Unmarshal(do("POST", "/jobs/ingest", []byte(`{"object":"Lead","operation":"upsert","externalIdFieldName":"External_Id__c"}`), "application/json"), &info); err != nil {
				t.Fatal(err)
			}
			do("PUT", "/jobs/ingest/"+info.ID+"/batches", data, "text/csv")
			do("PATCH", "/jobs/ingest/"+info.ID, []byte(`{"state":"UploadComplete"}`), "application/json")
			if err := s.AwaitJobState(t.Context(), info.ID, StateJobComplete); err != nil {
				t.Fatal(err)
			}
			if ji, _ := s.Job(info.ID); ji.NumberRecordsFailed != 0 {
				t.Fatalf("job %s: %d rows failed:\n%s", info.ID, ji.NumberRecordsFailed, do("GET", "/jobs/ingest/"+info.ID+"/failedResults", nil, ""))
			}
			res := do("GET", "/jobs/ingest/"+info.ID+"/successfulResults", nil, "")
			created += bytes.Count(res, []byte(`,"true",`))
		}
		r := upsertRun{wall: time.Since(start), cpu: processCPU() - cpu0}
		r.heap, r.rebuilds, r.created = int64(liveHeapBytes())-int64(heap0), rebuilds()-rb0, created
		return r
	}
	var runs []upsertRun
	var first []map[string]string
	for k := range 3 {
		runs = append(runs, upsert())
		if k == 0 && rows <= 200000 {
			first = s.Records("Lead") // a map per record: not for a million
		}
	}
	for k, r := range runs {
		t.Logf("upsert %d of %d rows: wall %.2fs (%.2fx), CPU %.2fs (%.2fx), live heap +%.1f MiB (%.2fx), index rebuilds %d",
			k+1, rows, r.wall.Seconds(), r.wall.Seconds()/runs[0].wall.Seconds(), r.cpu.Seconds(), r.cpu.Seconds()/runs[0].cpu.Seconds(),
			float64(r.heap)/(1<<20), float64(r.heap)/float64(runs[0].heap), r.rebuilds)
	}
	if runs[0].created != rows || runs[1].created != 0 || runs[2].created != 0 {
		t.Errorf("created rows per run: %d, %d, %d; want %d, 0, 0", runs[0].created, runs[1].created, runs[2].created, rows)
	}
	if first == nil {
		t.Logf("records not compared (more than 200,000)")
	} else if got := s.Records("Lead"); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Errorf("identical upserts changed the records: %d records after the first run, %d after the third", len(first), len(got))
	}
	memBound, wallBound := 1.5, 0.0 // generous: small runs are noisy
	if rows >= 1_000_000 {
		memBound, wallBound = 1.2, 1.2 // issue 23's target
	}
	for k, r := range runs[1:] {
		if r.rebuilds != 0 {
			t.Errorf("upsert %d rebuilt the indexes %d times: updates must change them in place", k+2, r.rebuilds)
		}
		if x := float64(r.heap) / float64(runs[0].heap); x > memBound {
			t.Errorf("upsert %d grew the live heap %.2fx as much as the first (bound %.1fx)", k+2, x, memBound)
		}
		if x := r.wall.Seconds() / runs[0].wall.Seconds(); wallBound > 0 && x > wallBound {
			t.Errorf("upsert %d took %.2fx the first's wall time (bound %.1fx)", k+2, x, wallBound)
		}
	}
}

// liveHeapBytes returns the heap reachable after a full collection.
func liveHeapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// processCPU returns the user+system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestUpdateMatchesSetOneByOne applies random updates to the records of
// two servers, one through objStore.update (one pass, unchanged values
// and keys left alone) and one through set, one change at a time, as
// updates were applied before, and requires the same values, in the same
// order, and the same index answers.
func TestUpdateMatchesSetOneByOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var servers [2]*Server
	for k := range servers {
		s, err := NewHandler(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		servers[k] = s
		for i := range 300 {
			// One field: AddRecord's map would order the values at random.
			if _, err := s.AddRecord("Lead", map[string]string{"LastName": fmt.Sprint("L", i)}); err != nil {
				t.Fatal(err)
			}
		}
		o := s.objects["lead"]
		st := s.storeLocked(o)
		i := 0
		for r := range st.order.all() {
			for _, fv := range [][2]string{{"Company", "C"}, {"External_Id__c", fmt.Sprint("E-", i)}, {"Email", fmt.Sprint("e", i%50, "@x.com")}} {
				f := o.fields[strings.ToLower(fv[0])]
				st.set(f, slices.Contains(st.indexed, f), r, fv[1], false)
			}
			i++
		}
	}
	o := servers[0].objects["lead"]
	fields := []string{"FirstName", "LastName", "Company", "Email", "Phone", "External_Id__c", "Industry"}
	values := []string{"", "a", "B", "e1@x.com", "E1@X.com", "E-1", "e-2", "E-7"}
	stores := [2]*objStore{servers[0].storeLocked(o), servers[1].storeLocked(servers[1].objects["lead"])}
	recs := [2][]*record{}
	for k, st := range stores {
		for r := range st.order.all() {
			recs[k] = append(recs[k], r)
		}
	}
	for step := range 1500 {
		i := rng.IntN(len(recs[0]))
		var chs [2][]change
		for range 1 + rng.IntN(4) {
			name := fields[rng.IntN(len(fields))]
			v, null := values[rng.IntN(len(values))], rng.IntN(6) == 0
			for k, s := range servers {
				f := s.objects["lead"].fields[strings.ToLower(name)]
				chs[k] = append(chs[k], change{f: f, pos: s.objects["lead"].pos[f], v: v, null: null})
			}
		}
		stores[0].update(recs[0][i], chs[0])
		for _, ch := range chs[1] {
			stores[1].set(ch.f, slices.Contains(stores[1].indexed, ch.f), recs[1][i], ch.v, ch.null)
		}
		var got, want []string
		recs[0][i].each(func(p uint32, v string) { got = append(got, fmt.Sprint(p, "=", v)) })
		recs[1][i].each(func(p uint32, v string) { want = append(want, fmt.Sprint(p, "=", v)) })
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: record %d holds %v, one change at a time %v (changes %+v)", step, i, got, want, chs[0])
		}
		for _, v := range values {
			for _, name := range []string{"Email", "External_Id__c"} {
				var ids [2][]int
				for k, st := range stores {
					f := servers[k].objects["lead"].fields[strings.ToLower(name)]
					for _, r := range st.lookup(nil, f, v) {
						ids[k] = append(ids[k], slices.Index(recs[k], r))
					}
					slices.Sort(ids[k]) // the order of a key's records is the order they got it: update keeps a record whose value stays
				}
				if !slices.Equal(ids[0], ids[1]) {
					t.Fatalf("step %d: %s %q finds records %v, one change at a time %v", step, name, v, ids[0], ids[1])
				}
			}
		}
	}
}
