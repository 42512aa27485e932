package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var memSeq struct {
	sync.Mutex
	n int
}

// locations returns one fresh store location per backend.
func locations(t *testing.T) map[string]string {
	memSeq.Lock()
	memSeq.n++
	n := memSeq.n
	memSeq.Unlock()
	dir := t.TempDir()
	return map[string]string{
		"mem":   fmt.Sprintf("mem://state-test-%d/st", n),
		"file":  "file://" + filepath.ToSlash(dir) + "/fileurl",
		"local": filepath.Join(dir, "local") + "/",
	}
}

func open(t *testing.T, loc, pipe string, clk *fakeClock) *Store {
	t.Helper()
	s, err := Open(context.Background(), loc, pipe)
	if err != nil {
		t.Fatal(err)
	}
	if clk != nil {
		s.Now = clk.Now
	}
	return s
}

func TestDocuments(t *testing.T) {
	ctx := context.Background()
	for name, loc := range locations(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t, loc, "accounts", nil)
			var v map[string]int
			found, err := s.Get(ctx, "cursor", &v)
			if err != nil || found {
				t.Fatalf("Get missing = %v, %v; want false, nil", found, err)
			}
			if err := s.Put(ctx, "cursor", map[string]int{"offset": 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "cursor", map[string]int{"offset": 2}); err != nil {
				t.Fatal(err)
			}
			found, err = s.Get(ctx, "cursor", &v)
			if err != nil || !found || v["offset"] != 2 {
				t.Fatalf("Get = %v, %v, %v; want offset 2", found, err, v)
			}
			// Another pipeline in the same location does not see it.
			other := open(t, loc, "contacts", nil)
			if found, err := other.Get(ctx, "cursor", &v); err != nil || found {
				t.Fatalf("other pipeline Get = %v, %v", found, err)
			}
			for _, bad := range []string{"", "..", "a/b", "x y"} {
				if err := s.Put(ctx, bad, 1); err == nil {
					t.Errorf("Put(%q) succeeded", bad)
				}
			}
		})
	}
}

func TestLocalLayoutAndAtomicity(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, "p1", nil)
	if err := s.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write leaves at most a temp file beside the document: the
	// document itself is the previous version, whole.
	if err := os.WriteFile(filepath.Join(dir, "p1", "docs", "k.json.123.tmp"), []byte(`"v2-half`), 0o644); err != nil {
		t.Fatal(err)
	}
	var got string
	if found, err := s.Get(ctx, "k", &got); err != nil || !found || got != "v1" {
		t.Fatalf("Get = %v, %v, %q; want v1", found, err, got)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "p1", "docs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".attrs") {
			t.Errorf("sidecar file %s written", e.Name())
		}
	}
}

func TestRuns(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for name, loc := range locations(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t, loc, "accounts", nil)
			if runs, err := s.Runs(ctx, 5); err != nil || len(runs) != 0 {
				t.Fatalf("Runs on empty store = %v, %v", runs, err)
			}
			// Appended out of order; ids deliberately not time-sortable.
			for _, i := range []int{2, 0, 3, 1} {
				rec := RunRecord{
					RunID: fmt.Sprintf("run-%c", 'z'-i), Status: pipeline.StatusSucceeded,
					StartedAt: base.Add(time.Duration(i) * time.Minute), FinishedAt: base.Add(time.Duration(i)*time.Minute + time.Second),
					Counts: pipeline.Counts{Read: int64(i), Loaded: int64(i)},
				}
				if err := s.AppendRun(ctx, rec); err != nil {
					t.Fatal(err)
				}
			}
			runs, err := s.Runs(ctx, 3)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.RunID)
			}
			if got, want := strings.Join(ids, ","), "run-w,run-x,run-y"; got != want {
				t.Errorf("Runs(3) = %s, want %s (newest first)", got, want)
			}
			if runs[0].Counts.Loaded != 3 || !runs[0].StartedAt.Equal(base.Add(3*time.Minute)) {
				t.Errorf("newest run = %+v", runs[0])
			}
			all, err := s.Runs(ctx, 0)
			if err != nil || len(all) != 4 {
				t.Errorf("Runs(0) = %d runs, %v; want 4", len(all), err)
			}
			if err := s.AppendRun(ctx, RunRecord{RunID: "../x"}); err == nil {
				t.Error("AppendRun with a path-like run id succeeded")
			}
		})
	}
}

func TestReportURL(t *testing.T) {
	ctx := context.Background()
	dir := filepath.ToSlash(t.TempDir())
	cases := []struct{ loc, want string }{
		{"mem://rep-test/state", "mem://rep-test/state/p/reports/r1.json"},
		{"mem://rep-test", "mem://rep-test/p/reports/r1.json"},
		{"file://" + dir + "/st/", "file://" + dir + "/st/p/reports/r1.json"},
		{"s3://bucket/pre?region=eu-west-1", "s3://bucket/pre/p/reports/r1.json?region=eu-west-1"},
		{dir + "/st", filepath.FromSlash(dir + "/st/p/reports/r1.json")},
	}
	for _, c := range cases {
		s := &Store{location: c.loc, pipeline: "p"}
		got, err := s.ReportURL("r1")
		if err != nil || got != c.want {
			t.Errorf("ReportURL for %s = %q, %v; want %q", c.loc, got, err, c.want)
		}
	}
	// The URL round-trips through blobio.
	s := open(t, "mem://rep-test/state", "p", nil)
	u, _ := s.ReportURL("r1")
	l, err := blobio.Parse("", u)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobio.WriteAll(ctx, l, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportURL("a/b"); err == nil {
		t.Error("ReportURL accepted a path-like run id")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ loc, pipe string }{
		{"mem://x/st", ""},
		{"mem://x/st", "a/b"},
		{"mem://x/st", ".."},
		{"mem://x/st/*", "p"},
		{"nosuchscheme://x/st", "p"},
	} {
		if _, err := Open(ctx, c.loc, c.pipe); err == nil {
			t.Errorf("Open(%q, %q) succeeded", c.loc, c.pipe)
		}
	}
}

func TestLease(t *testing.T) {
	ctx := context.Background()
	const ttl = time.Minute
	type step struct {
		holder  string
		op      string // acquire, renew, release, advance
		advance time.Duration
		wantOK  bool  // acquire
		wantErr error // renew: nil or ErrLeaseLost
		wantNow string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"free lease is taken, second holder refused", []step{
			{holder: "a", op: "acquire", wantOK: true, wantNow: "a"},
			{holder: "b", op: "acquire", wantOK: false, wantNow: "a"},
			{holder: "a", op: "acquire", wantOK: true, wantNow: "a"}, // re-entrant: extends
		}},
		{"renewal keeps it past the original ttl", []step{
			{holder: "a", op: "acquire", wantOK: true},
			{op: "advance", advance: 50 * time.Second},
			{holder: "a", op: "renew"},
			{op: "advance", advance: 50 * time.Second},
			{holder: "b", op: "acquire", wantOK: false, wantNow: "a"},
		}},
		{"expiry lets another holder take over from a dead one", []step{
			{holder: "a", op: "acquire", wantOK: true},
			{op: "advance", advance: ttl - time.Nanosecond},
			{holder: "b", op: "acquire", wantOK: false},
			{op: "advance", advance: time.Nanosecond},
			{holder: "b", op: "acquire", wantOK: true, wantNow: "b"},
			{holder: "a", op: "renew", wantErr: ErrLeaseLost, wantNow: "b"},
			{holder: "a", op: "release", wantNow: "b"}, // not a's to release
		}},
		{"expired but not taken over is renewed", []step{
			{holder: "a", op: "acquire", wantOK: true},
			{op: "advance", advance: 2 * ttl},
			{holder: "a", op: "renew", wantNow: "a"},
		}},
		{"release frees it", []step{
			{holder: "a", op: "acquire", wantOK: true},
			{holder: "a", op: "release", wantNow: ""},
			{holder: "a", op: "renew", wantErr: ErrLeaseLost},
			{holder: "b", op: "acquire", wantOK: true, wantNow: "b"},
		}},
	}
	for locName, loc := range locations(t) {
		for i, tc := range tests {
			t.Run(locName+"/"+tc.name, func(t *testing.T) {
				clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
				pipe := fmt.Sprintf("lease%d", i)
				// Each holder has its own Store, as two processes would.
				stores := map[string]*Store{"a": open(t, loc, pipe, clk), "b": open(t, loc, pipe, clk)}
				for j, st := range tc.steps {
					s := stores[st.holder]
					switch st.op {
					case "advance":
						clk.Advance(st.advance)
						continue
					case "acquire":
						ok, err := s.AcquireLease(ctx, st.holder, ttl)
						if err != nil || ok != st.wantOK {
							t.Fatalf("step %d: %s acquire = %v, %v; want %v", j, st.holder, ok, err, st.wantOK)
						}
					case "renew":
						err := s.RenewLease(ctx, st.holder, ttl)
						if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
							t.Fatalf("step %d: %s renew = %v; want %v", j, st.holder, err, st.wantErr)
						}
					case "release":
						if err := s.ReleaseLease(ctx, st.holder); err != nil {
							t.Fatalf("step %d: release: %v", j, err)
						}
					}
					if st.wantNow != "" || st.op == "release" {
						le, err := s.ReadLease(ctx)
						if err != nil || le.Holder != st.wantNow {
							t.Fatalf("step %d: lease holder = %q, %v; want %q", j, le.Holder, err, st.wantNow)
						}
					}
				}
			})
		}
	}
}

// TestLeaseCompeting has many holders, each with its own Store on the same
// location, race for one lease: exactly one wins.
func TestLeaseCompeting(t *testing.T) {
	ctx := context.Background()
	for name, loc := range locations(t) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			wins := make(chan string, 8)
			start := make(chan struct{})
			for i := range 8 {
				s := open(t, loc, "race", nil)
				holder := fmt.Sprintf("h%d", i)
				wg.Go(func() {
					<-start
					ok, err := s.AcquireLease(ctx, holder, time.Hour)
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins <- holder
					}
				})
			}
			close(start)
			wg.Wait()
			close(wins)
			var got []string
			for w := range wins {
				got = append(got, w)
			}
			if len(got) != 1 {
				t.Fatalf("winners = %v, want exactly one", got)
			}
			le, err := open(t, loc, "race", nil).ReadLease(ctx)
			if err != nil || le.Holder != got[0] {
				t.Errorf("lease = %+v, %v; want holder %s", le, err, got[0])
			}
		})
	}
}

// TestFencingPausedHolder: holder A takes the lease and is paused past its
// ttl; B takes the lease (a newer generation) and writes; when A wakes up,
// every write through its fenced store is refused with ErrFenced and B's
// state is untouched.
func TestFencingPausedHolder(t *testing.T) {
	ctx := context.Background()
	const ttl = time.Minute
	for name, loc := range locations(t) {
		t.Run(name, func(t *testing.T) {
			clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a, b := open(t, loc, "fence", clk), open(t, loc, "fence", clk) // two processes
			fa, ok, err := a.AcquireFenced(ctx, "host-a:1", ttl)
			if err != nil || !ok || fa.Generation() != 1 {
				t.Fatalf("A acquire = %v, %v; want generation 1", ok, err)
			}
			if err := fa.Put(ctx, "watermark", map[string]string{"by": "A", "value": "10"}); err != nil {
				t.Fatalf("A's write while holding the lease: %v", err)
			}

			clk.Advance(ttl + time.Second) // A is paused: no renewal
			fb, ok, err := b.AcquireFenced(ctx, "host-b:2", ttl)
			if err != nil || !ok || fb.Generation() != 2 {
				t.Fatalf("B acquire after A's ttl = %v, %v; want generation 2", ok, err)
			}
			if err := fb.Put(ctx, "watermark", map[string]string{"by": "B", "value": "20"}); err != nil {
				t.Fatalf("B's write: %v", err)
			}

			// A wakes up.
			rec := RunRecord{RunID: "20260101T000000Z-aaaa", Status: "succeeded", StartedAt: clk.Now()}
			writes := map[string]error{
				"Put":        fa.Put(ctx, "watermark", map[string]string{"by": "A", "value": "15"}),
				"AppendRun":  fa.AppendRun(ctx, rec),
				"CheckFence": fa.CheckFence(ctx),
			}
			for op, err := range writes {
				if !errors.Is(err, ErrFenced) {
					t.Errorf("A's %s after the takeover = %v, want ErrFenced", op, err)
					continue
				}
				for _, want := range []string{`pipeline "fence"`, "generation 1", "generation 2", `"host-b:2"`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("A's %s error %q lacks %q", op, err, want)
					}
				}
			}
			if err := fa.RenewLease(ctx, "host-a:1", ttl); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("A's renewal = %v, want ErrLeaseLost", err)
			}
			if err := fa.ReleaseLease(ctx, "host-a:1"); err != nil {
				t.Fatal(err)
			}
			var got map[string]string
			if found, err := b.Get(ctx, "watermark", &got); err != nil || !found || got["by"] != "B" || got["value"] != "20" {
				t.Errorf("watermark = %v (found %v, %v); want B's", got, found, err)
			}
			if runs, err := b.Runs(ctx, 0); err != nil || len(runs) != 0 {
				t.Errorf("runs = %+v, %v; want none (A's append refused)", runs, err)
			}
			if le, err := b.ReadLease(ctx); err != nil || le.Holder != "host-b:2" || le.Generation != 2 {
				t.Errorf("lease = %+v, %v; want B's, generation 2", le, err)
			}

			// B's own writes carry its generation; an unfenced store (a
			// single `bulkflow run`) is not fenced at all.
			if err := fb.AppendRun(ctx, RunRecord{RunID: "20260101T000100Z-bbbb", Status: "succeeded", StartedAt: clk.Now()}); err != nil {
				t.Fatal(err)
			}
			if runs, err := b.Runs(ctx, 0); err != nil || len(runs) != 1 || runs[0].LeaseGeneration != 2 {
				t.Errorf("runs = %+v, %v; want B's with lease generation 2", runs, err)
			}
			if err := a.Put(ctx, "other", 1); err != nil {
				t.Errorf("unfenced Put = %v", err)
			}
		})
	}
}

// TestTakeOverLease: a dead holder's lease is taken at once, only while it
// is still the dead holder's generation, and by one of several
// contenders.
func TestTakeOverLease(t *testing.T) {
	ctx := context.Background()
	for name, loc := range locations(t) {
		t.Run(name, func(t *testing.T) {
			s0 := open(t, loc, "takeover", nil)
			deadStore, ok, err := s0.AcquireFenced(ctx, "host:1", time.Hour)
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			dead, err := s0.ReadLease(ctx)
			if err != nil || dead.Holder != "host:1" || dead.Generation != deadStore.Generation() {
				t.Fatalf("lease = %+v, %v", dead, err)
			}
			var wg sync.WaitGroup
			wins := make(chan *Store, 8)
			start := make(chan struct{})
			for i := range 8 {
				s := open(t, loc, "takeover", nil)
				wg.Go(func() {
					<-start
					won, ok, err := s.TakeOverLease(ctx, fmt.Sprintf("host:%d", 100+i), dead, time.Hour)
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins <- won
					}
				})
			}
			close(start)
			wg.Wait()
			close(wins)
			var got []*Store
			for won := range wins {
				got = append(got, won)
			}
			if len(got) != 1 || got[0].Generation() != dead.Generation+1 {
				t.Fatalf("takeovers = %d, want exactly one at generation %d", len(got), dead.Generation+1)
			}
			// The dead holder's lease is gone: a second takeover of it fails,
			// and so do the dead holder's fenced writes.
			s := open(t, loc, "takeover", nil)
			if _, ok, err := s.TakeOverLease(ctx, "host:200", dead, time.Hour); ok || err != nil {
				t.Errorf("second takeover of the same lease = %v, %v; want false", ok, err)
			}
			if err := deadStore.Put(ctx, "inflight", 1); !errors.Is(err, ErrFenced) {
				t.Errorf("dead holder's write = %v, want ErrFenced", err)
			}
			if err := got[0].Put(ctx, "inflight", 2); err != nil {
				t.Errorf("new holder's write = %v", err)
			}
			if le, err := s.ReadLease(ctx); err != nil || le.Generation != got[0].Generation() || !strings.HasPrefix(le.Holder, "host:1") || le.Holder == "host:1" {
				t.Errorf("lease = %+v, %v; want a taker's, generation %d", le, err, got[0].Generation())
			}
		})
	}
}

// KeepLease keeps a short lease alive well past its ttl, reports its loss
// once and stops renewing; stop waits for the renewer.
func TestKeepLease(t *testing.T) {
	ctx := context.Background()
	const ttl = 60 * time.Millisecond
	loc := filepath.ToSlash(t.TempDir())
	a, b := open(t, loc, "keep", nil), open(t, loc, "keep", nil)
	if ok, err := a.AcquireLease(ctx, "a", ttl); !ok || err != nil {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	errs := make(chan error, 10)
	stop := a.KeepLease(ctx, "a", ttl, func(err error) { errs <- err })
	defer stop()
	time.Sleep(4 * ttl)
	if ok, err := b.AcquireLease(ctx, "b", ttl); ok || err != nil {
		t.Fatalf("b took a kept lease after 4 ttls: %v, %v", ok, err)
	}
	// Someone frees the lease and b takes it: a's renewer must say so.
	if err := a.ReleaseLease(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.AcquireLease(ctx, "b", time.Minute); !ok || err != nil {
		t.Fatalf("b acquire after release: %v, %v", ok, err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("onErr(%v), want ErrLeaseLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("KeepLease did not report the lost lease")
	}
	time.Sleep(3 * ttl)
	if len(errs) != 0 {
		t.Fatalf("renewing went on after the lease was lost: %v", <-errs)
	}
	if le, err := b.ReadLease(ctx); err != nil || le.Holder != "b" {
		t.Fatalf("lease = %+v, %v; want b's", le, err)
	}
}
