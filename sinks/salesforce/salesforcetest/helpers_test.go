package salesforcetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// testClock is a settable clock for deterministic timestamps.
type testClock struct{ ns atomic.Int64 }

func newTestClock(s string) *testClock {
	c := &testClock{}
	c.set(s)
	return c
}

func (c *testClock) set(s string) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	c.ns.Store(t.UnixNano())
}

func (c *testClock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// tc is a tiny HTTP client for the emulator's API.
type tc struct {
	t     testing.TB
	srv   *salesforcetest.Server
	token string
	base  string // /services/data/v62.0
}

func newTC(t testing.TB, opts *salesforcetest.Options) *tc {
	t.Helper()
	srv := salesforcetest.NewServer(opts)
	t.Cleanup(srv.Close)
	return &tc{t: t, srv: srv, token: srv.AccessToken(), base: "/services/data/v62.0"}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) String() string { return string(r.body) }

// do sends a request; a path not starting with "/services" or "/id" or
// "/__" is relative to the data base path. hdr holds key, value pairs.
func (c *tc) do(method, path string, body any, hdr ...string) resp {
	c.t.Helper()
	if !strings.HasPrefix(path, "/services") && !strings.HasPrefix(path, "/id/") && !strings.HasPrefix(path, "/__") {
		path = c.base + path
	}
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		ctype = "text/csv"
	case []byte:
		rd = bytes.NewReader(b)
		ctype = "text/csv"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
		ctype = "application/json; charset=UTF-8"
	}
	req, err := http.NewRequest(method, c.srv.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (c *tc) expect(r resp, status int) resp {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	return r
}

// createJob creates an ingest job and returns its id.
func (c *tc) createJob(req map[string]any) string {
	c.t.Helper()
	r := c.expect(c.do("POST", "/jobs/ingest", req), 200)
	var ji struct{ ID string }
	if err := json.Unmarshal(r.body, &ji); err != nil {
		c.t.Fatalf("decode create response %s: %v", r.body, err)
	}
	return ji.ID
}

// runJob creates, uploads, closes and waits for a job to reach a terminal
// state; it returns the job id.
func (c *tc) runJob(req map[string]any, csv string) string {
	c.t.Helper()
	id := c.createJob(req)
	c.expect(c.do("PUT", "/jobs/ingest/"+id+"/batches", csv), 201)
	c.expect(c.do("PATCH", "/jobs/ingest/"+id, map[string]string{"state": "UploadComplete"}), 200)
	c.awaitTerminal(id)
	return id
}

func (c *tc) awaitTerminal(id string) salesforcetest.JobInfo {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, st := range []string{salesforcetest.StateJobComplete, salesforcetest.StateFailed, salesforcetest.StateAborted} {
		if err := c.srv.AwaitJobState(ctx, id, st); err == nil {
			break
		} else if ctx.Err() != nil {
			c.t.Fatalf("job %s did not finish: %v", id, err)
		}
	}
	ji, _ := c.srv.Job(id)
	return ji
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n got: %q\nwant: %q", name, got, want)
	}
}
