package serve

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve/servetest"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// statusSchedule fires every day at 06:00 UTC: the page shows a next run.
const statusSchedule = `{cron: "0 6 * * *", timezone: UTC}`

// statusHolder holds the lease when the status page is looked at.
const statusHolder = "otherhost:4242"

// statusFixture serves the "accounts" pipeline and runs it twice: 6 rows
// read; one record is short (field_count, at read), one birth date does
// not parse (expr_error, into the file sink), and the Salesforce emulator
// fails about half of the upserts with UNABLE_TO_LOCK_ROW (retryable;
// lock_retries 0). Then another process holds the lease. It returns the
// server, an HTTP server of its handler and the two run records.
func statusFixture(t *testing.T) (*Server, *httptest.Server, []state.RunRecord) {
	t.Helper()
	sf := salesforcetest.NewServer(&salesforcetest.Options{Seed: 7, Faults: salesforcetest.Faults{LockErrorRate: 0.5}})
	t.Cleanup(sf.Close)
	root := t.TempDir()
	dir, data := filepath.Join(root, "pipelines"), filepath.ToSlash(filepath.Join(root, "data"))
	stateDir := filepath.Join(root, "state") + "/"
	for _, d := range []string{dir, data} {
		servetest.MkdirAll(t, d)
	}
	servetest.WriteFile(t, filepath.Join(data, "accounts.csv"), "id,name,born\n"+
		"A1,Ada,1815-12-10\nA2,Bob,someday\nA3,Cy\nA4,Dee,1906-12-09\nA5,Eve,1912-06-23\nA6,Fay,1934-01-01\nA7,Gus,1950-05-05\n")
	servetest.WriteFile(t, filepath.Join(dir, "accounts.yaml"), `name: accounts
schedule: `+statusSchedule+`
dead_letter: `+data+`/dead-letter/
stages:
  - name: read
    source: {type: csv, url: `+data+`/accounts.csv}
  - name: people
    inputs: [read]
    map: {Id: id, Name: upper(name), Born: 'sfDate(born, "2006-01-02")'}
  - name: file
    inputs: [people]
    sink: {type: csv, url: `+data+`/out/people.csv}
  - name: accounts
    inputs: [read]
    map: {External_Id__c: id, Name: name}
  - name: load
    inputs: [accounts]
    sink:
      type: salesforce
      object: Account
      operation: upsert
      external_id_field: External_Id__c
      api: bulk
      instance_url: `+fmt.Sprintf("%q", sf.URL)+`
      auth: {access_token: `+fmt.Sprintf("%q", sf.AccessToken())+`}
      poll_initial: 5ms
      poll_max: 50ms
      lock_retries: 0
      ledger: "off"
`)
	s, done, stderr := serveTestServerWith(t, Options{Dir: dir, State: stateDir, Grace: time.Minute})
	var recs []state.RunRecord
	for range 2 {
		if _, err := s.trigger("accounts", "manual"); err != nil {
			t.Fatal(err)
		}
		rec := serveWait(t, done)
		if rec.Status != pipeline.StatusPartial || rec.Counts.DeadLettered < 3 {
			t.Fatalf("run = %+v; want partial with at least 3 dead letters\n%s", rec, stderr.String())
		}
		recs = append(recs, rec)
	}
	if ok, err := s.pipelines["accounts"].store.AcquireLease(context.Background(), statusHolder, time.Hour); !ok || err != nil {
		t.Fatalf("acquire the lease as %s = %v, %v", statusHolder, ok, err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts, recs
}

// TestStatusPage checks the page's HTML: a chart bar per run and outcome,
// the last run's error groups with their recovery class, links to its
// dead letters that serve the files, the next run and the lease holder.
func TestStatusPage(t *testing.T) {
	s, ts, recs := statusFixture(t)
	code, page := servetest.Do(t, "GET", ts.URL+"/")
	if code != 200 {
		t.Fatalf("GET / = %d\n%s", code, page)
	}
	for class, want := range map[string]int{`"bar loaded"`: 2, `"bar dead"`: 2, `"bar duration partial"`: 2} {
		if n := strings.Count(page, "<rect class="+class); n != want {
			t.Errorf("%d <rect class=%s>, want %d", n, class, want)
		}
	}
	groups := regexp.MustCompile(`<tr class="error-group" data-code="([^"]+)"><td><code title="[^"]*">[^<]+</code></td><td class="num">(\d+)</td><td>(\w+)</td><td><span class="([\w-]+)">`).FindAllStringSubmatch(page, -1)
	got := map[string]string{}
	var rows int
	for _, g := range groups {
		got[g[1]] = g[3] + " " + g[4]
		var n int
		fmt.Sscan(g[2], &n)
		rows += n
	}
	wantGroups := map[string]string{"field_count": "fix not-retryable", "expr_error": "fix not-retryable", "UNABLE_TO_LOCK_ROW": "retry retryable"}
	if fmt.Sprint(got) != fmt.Sprint(wantGroups) {
		t.Errorf("error groups = %v, want %v\n%s", got, wantGroups, page)
	}
	if last := recs[len(recs)-1]; int64(rows) != last.Counts.DeadLettered {
		t.Errorf("error groups hold %d rows; the last run dead-lettered %d", rows, last.Counts.DeadLettered)
	}
	next := s.pipelines["accounts"].sched.Next(time.Now()).Format("2006-01-02 15:04 MST")
	for _, want := range []string{
		`<dd class="next-run">` + next,
		`<dd class="lease-holder">held by <code>` + statusHolder + `</code>`,
		"Last run: <span class=\"partial\">partial</span> <code>" + recs[1].RunID + "</code>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	files := regexp.MustCompile(`<p class="dead-letter-files">Dead-letter files: (.*)</p>`).FindStringSubmatch(page)
	if files == nil {
		t.Fatalf("no dead-letter files on the page:\n%s", page)
	}
	links := regexp.MustCompile(`href="(/dead-letters/accounts/`+recs[1].RunID+`/\d+)">(\w+\.csv)<`).FindAllStringSubmatch(files[1], -1)
	if len(links) != 3 {
		t.Fatalf("dead-letter links %q, want 3 (read, file, load)", links)
	}
	for _, l := range links {
		code, body := servetest.Do(t, "GET", ts.URL+l[1])
		if code != 200 || !strings.Contains(body, "_error_code") {
			t.Errorf("GET %s (%s) = %d\n%s", l[1], l[2], code, body)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

// TestStatusPageWithoutReport: a run whose report is gone still shows,
// with the reason there is no breakdown.
func TestStatusPageWithoutReport(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	s, _, _ := serveTestServer(t, dir, stateDir)
	st := s.pipelines["people"].store
	rec := state.RunRecord{RunID: "20260101T000000Z-00000001", Status: pipeline.StatusPartial, StartedAt: time.Now().Add(-time.Minute), FinishedAt: time.Now(),
		Counts: pipeline.Counts{Read: 3, Loaded: 1, DeadLettered: 2}, ReportURL: filepath.Join(stateDir, "nosuch.json")}
	if err := st.AppendRun(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	_, page := servetest.Do(t, "GET", ts.URL+"/")
	for _, want := range []string{"2 rows dead-lettered; no breakdown by code: report ", `<dd class="lease-holder">free</dd>`, `<rect class="bar dead"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
}

func TestHistoryChart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)
	run := func(loaded, dead int64, secs int) state.RunRecord {
		return state.RunRecord{RunID: fmt.Sprintf("r%d-%d", loaded, dead), Status: pipeline.StatusSucceeded, StartedAt: t0,
			FinishedAt: t0.Add(time.Duration(secs) * time.Second), Counts: pipeline.Counts{Loaded: loaded, DeadLettered: dead}}
	}
	tests := []struct {
		name string
		runs []state.RunRecord // newest first
		// heights of loaded, dead and duration bars, oldest run first
		want [][3]float64
	}{
		{"no runs", nil, nil},
		{"one run", []state.RunRecord{run(100, 0, 10)}, [][3]float64{{chartRowsH, 0, chartDurH}}},
		{"scaled to the largest", []state.RunRecord{run(50, 50, 5), run(200, 0, 10)},
			[][3]float64{{chartRowsH, 0, chartDurH}, {chartRowsH / 4.0, chartRowsH / 4.0, chartDurH / 2.0}}},
		{"one dead letter in a million still shows", []state.RunRecord{run(1_000_000, 1, 0)}, [][3]float64{{chartRowsH, 1, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := historyChart(tc.runs)
			if len(c.Bars) != 3*len(tc.want) {
				t.Fatalf("%d bars, want %d", len(c.Bars), 3*len(tc.want))
			}
			for i, w := range tc.want {
				loaded, dead, dur := c.Bars[3*i], c.Bars[3*i+1], c.Bars[3*i+2]
				got := [3]float64{loaded.H, dead.H, dur.H}
				if math.Abs(got[0]-w[0]) > 0.01 || got[1] != w[1] || got[2] != w[2] {
					t.Errorf("run %d: heights %v, want %v", i, got, w)
				}
				if dead.Y+dead.H != loaded.Y || loaded.Y+loaded.H != chartTop+chartRowsH {
					t.Errorf("run %d: dead-lettered bar not stacked on the loaded bar: %+v %+v", i, loaded, dead)
				}
				if loaded.X+loaded.W > float64(c.Width) {
					t.Errorf("run %d: bar outside the chart (width %d): %+v", i, c.Width, loaded)
				}
			}
		})
	}
}

func TestRoughDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "under a minute"},
		{5*time.Minute + 59*time.Second, "5m"},
		{2*time.Hour + 5*time.Minute, "2h 5m"},
		{50 * time.Hour, "2d 2h"},
	} {
		if got := roughDuration(tc.d); got != tc.want {
			t.Errorf("roughDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
