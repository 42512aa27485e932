package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve"
	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve/servetest"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// The serve command's tests: flags, listening, TLS, the deployment
// example and a Salesforce sync served with the real runner. The
// scheduler, leases, status page and auth are tested in package serve.

// serveWait waits for a run reported by serve.Options.RunDone.
func serveWait(t *testing.T, ch <-chan state.RunRecord) state.RunRecord {
	t.Helper()
	select {
	case rec := <-ch:
		return rec
	case <-time.After(15 * time.Second): // a safety net, not an ordering device
		t.Fatal("run did not finish")
		return state.RunRecord{}
	}
}

// runServeBackground runs the serve command in this process with args
// until stop is called. It returns the base URL the command printed
// (http://127.0.0.1:PORT or https://...), its stderr, and stop, which
// cancels its context and returns its exit code.
func runServeBackground(t *testing.T, args []string) (base string, stderr *servetest.SafeBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr = &servetest.SafeBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- runServe(ctx, args, pw, stderr)
		pw.Close()
	}()
	stop = func() int {
		cancel()
		select {
		case code := <-exit:
			return code
		case <-time.After(15 * time.Second):
			t.Fatal("runServe did not stop")
			return -1
		}
	}
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	base = regexp.MustCompile(`https?://127\.0\.0\.1:\d+`).FindString(line)
	if err != nil || base == "" {
		stop()
		t.Fatalf("serve printed %q (%v); stderr:\n%s", line, err, stderr.String())
	}
	return base, stderr, stop
}

// TestRunServeListensAndStops runs the command itself: it listens, serves,
// and exits 0 when its context is cancelled.
func TestRunServeListensAndStops(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	base, stderr, stop := runServeBackground(t, []string{"--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0"})
	if !strings.HasPrefix(base, "http://") {
		t.Errorf("address %q, want http://", base)
	}
	if code, body := servetest.Do(t, "GET", base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code := stop(); code != exitOK {
		t.Errorf("exit = %d, want 0; stderr:\n%s", code, stderr.String())
	}
}

func TestServeRefusesToStart(t *testing.T) {
	tests := []struct {
		name, sched string
		extra       string // another file in DIR: "broken" or ""
		want        []string
	}{
		{"bad cron", `"*/15 * * *"`, "", []string{"people.yaml:2:", "*/15 * * *", "does not parse"}},
		{"bad cron field", `"61 * * * *"`, "", []string{"people.yaml:2:", "61"}},
		{"bad timezone", `{cron: "0 * * * *", timezone: Mars/Olympus}`, "", []string{"people.yaml:2:", "Mars/Olympus"}},
		{"bad CRON_TZ", `"CRON_TZ=Mars/Olympus 0 * * * *"`, "", []string{"people.yaml:2:", "Mars/Olympus"}},
		{"CRON_TZ without fields", `"CRON_TZ=UTC"`, "", []string{"people.yaml:2:", "no fields"}},
		{"two time zones", `{cron: "CRON_TZ=UTC 0 * * * *", timezone: UTC}`, "", []string{"not both"}},
		{"empty schedule", `{timezone: UTC}`, "", []string{"people.yaml:2:", "schedule is empty"}},
		{"unknown key", `{cron: "0 * * * *", timezon: UTC}`, "", []string{"people.yaml:2:", "timezon", `did you mean "timezone"`}},
		{"nothing scheduled", "-", "", []string{"no pipeline file has a schedule"}},
		{"invalid pipeline", "", "broken", []string{"broken.yaml: invalid pipeline", "nosuchstage"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, stateDir := servetest.Fixture(t, tc.sched)
			if tc.extra == "broken" {
				os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("name: broken\nstages:\n  - name: read\n    source: {type: csv, url: nowhere.csv}\n  - name: write\n    inputs: [nosuchstage]\n    sink: {type: csv, url: out.csv}\n"), 0o644)
			}
			var stdout, stderr bytes.Buffer
			code := runServe(context.Background(), []string{"--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0"}, &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit = %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			for _, w := range append(tc.want, "refusing to start") {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			t.Log(stderr.String())
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q; want nothing (not listening)", stdout.String())
			}
		})
	}
	t.Run("empty directory", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := runServe(context.Background(), []string{"--pipelines", t.TempDir()}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "no pipeline file has a schedule") {
			t.Errorf("exit = %d, stderr:\n%s", code, stderr.String())
		}
	})
	t.Run("non-loopback addr", func(t *testing.T) {
		dir, _ := servetest.Fixture(t, "")
		var stdout, stderr bytes.Buffer
		code := runServe(context.Background(), []string{"--pipelines", dir, "--addr", "0.0.0.0:0"}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "--allow-non-loopback") {
			t.Errorf("exit = %d, stderr:\n%s", code, stderr.String())
		}
	})
}

// TestServeSyncMetrics serves a change-detecting Salesforce sync twice and
// checks the metrics that come from the run report: jobs by state, the API
// allowance left and sync decisions.
func TestServeSyncMetrics(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"pipelines/sync.yaml": strings.Replace(syncPipeline(srv, "50%"), "state: state/\n", "state: state/\nschedule: \""+servetest.Never+"\"\n", 1),
		"data/accounts.csv":   syncCSV("A1,Ada,111", "A2,Bob,222", "A3,Cy,333", "A3,Cy again,000"),
	})
	done := make(chan state.RunRecord, 2)
	s, err := serve.New(context.Background(), serve.Options{Dir: "pipelines", Grace: time.Minute, Runner: serveRunner{},
		RunDone: func(name string, rec state.RunRecord) { done <- rec }}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(0) })
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for range 2 {
		if code, body := servetest.Do(t, "POST", ts.URL+"/run/accounts-sync"); code != http.StatusAccepted {
			t.Fatalf("POST /run = %d %s", code, body)
		}
		if rec := serveWait(t, done); rec.Status != pipeline.StatusPartial || rec.Counts.DeadLettered != 1 {
			t.Fatalf("run = %+v", rec)
		}
	}
	// The runs table links each run's dead letters, and the link serves
	// the file.
	_, page := servetest.Do(t, "GET", ts.URL+"/")
	_, runsTable, _ := strings.Cut(page, `<table class="runs">`)
	links := regexp.MustCompile(`href="(/dead-letters/accounts-sync/[^/"]+/0)">load.csv<`).FindAllStringSubmatch(runsTable, -1)
	if len(links) != 2 {
		t.Fatalf("status page has %d dead-letter links, want 2:\n%s", len(links), page)
	}
	if code, body := servetest.Do(t, "GET", ts.URL+links[0][1]); code != 200 || !strings.Contains(body, "duplicate_key") || !strings.Contains(body, "Cy again") {
		t.Errorf("GET %s = %d\n%s", links[0][1], code, body)
	}
	for _, bad := range []string{"/dead-letters/accounts-sync/nosuchrun/0", strings.TrimSuffix(links[0][1], "0") + "7", "/dead-letters/nosuch/x/0"} {
		if code, _ := servetest.Do(t, "GET", ts.URL+bad); code != 404 {
			t.Errorf("GET %s = %d, want 404", bad, code)
		}
	}
	_, metrics := servetest.Do(t, "GET", ts.URL+"/metrics")
	for _, want := range []string{
		`bulkflow_salesforce_jobs_total{pipeline="accounts-sync",stage="load",state="JobComplete"} 1`,
		`bulkflow_sync_keys_total{kind="new",pipeline="accounts-sync",stage="load"} 3`,
		`bulkflow_sync_keys_total{kind="unchanged",pipeline="accounts-sync",stage="load"} 3`,
		`bulkflow_sync_keys_total{kind="loaded",pipeline="accounts-sync",stage="load"} 3`,
		`bulkflow_salesforce_api_requests_remaining{pipeline="accounts-sync",stage="load"}`,
		`bulkflow_last_success_timestamp_seconds{pipeline="accounts-sync"}`,
		`bulkflow_rows_total{outcome="filtered",pipeline="accounts-sync"} 3`,
		`bulkflow_rows_total{outcome="dead_lettered",pipeline="accounts-sync"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

// TestRunServeRefusesExposure: the command refuses to start beyond
// loopback without tokens and TLS, before listening.
func TestRunServeRefusesExposure(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	tokens := servetest.WriteTokenFile(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "0.0.0.0:0"}, "pass --allow-non-loopback together with tokens"},
		{[]string{"--addr", "0.0.0.0:0", "--allow-non-loopback"}, "needs tokens (--token-file FILE or --token-env VAR) and TLS"},
		{[]string{"--addr", "0.0.0.0:0", "--allow-non-loopback", "--token-file", tokens}, "needs TLS"},
		{[]string{"--addr", "127.0.0.1:0", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--addr", "127.0.0.1:0", "--tls-cert", "nosuch.pem", "--tls-key", "nosuch.key"}, "--tls-cert nosuch.pem / --tls-key nosuch.key"},
	} {
		var stdout, stderr servetest.SafeBuffer
		code := runServe(context.Background(), append([]string{"--pipelines", dir, "--state", stateDir}, c.args...), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("serve %v: exit %d, stderr:\n%s\nwant %q", c.args, code, stderr.String(), c.want)
		}
		if stdout.String() != "" {
			t.Errorf("serve %v listened: %q", c.args, stdout.String())
		}
	}
}

// TestRunServeTLS runs the command with --allow-non-loopback, tokens and a
// certificate: it serves https only, with the tokens required.
func TestRunServeTLS(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	certFile, keyFile, pool := servetest.SelfSignedCert(t)
	base, stderr, stop := runServeBackground(t, []string{"--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0", "--allow-non-loopback",
		"--token-file", servetest.WriteTokenFile(t), "--tls-cert", certFile, "--tls-key", keyFile})
	if !strings.HasPrefix(base, "https://") {
		stop()
		t.Fatalf("address %q, want https://", base)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp := servetest.AuthDo(t, c, "GET", base+"/healthz", ""); resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("GET /healthz over TLS = %d (TLS %v)", resp.StatusCode, resp.TLS != nil)
	}
	if resp := servetest.AuthDo(t, c, "GET", base+"/", ""); resp.StatusCode != 401 {
		t.Errorf("GET / without a token over TLS = %d, want 401", resp.StatusCode)
	}
	if resp := servetest.AuthDo(t, c, "GET", base+"/", servetest.ReadToken); resp.StatusCode != 200 {
		t.Errorf("GET / with a read token over TLS = %d, want 200", resp.StatusCode)
	}
	// Plain http to the TLS port gets no page.
	if resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain http to the TLS listener answered 200")
		}
	}
	// A client that does not trust the certificate cannot connect.
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("a client without the certificate connected")
	}
	c.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	if code := stop(); code != exitOK {
		t.Errorf("exit = %d; stderr:\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "no tokens configured") {
		t.Errorf("warned about missing tokens although they were given:\n%s", stderr.String())
	}
}

// TestRunServeWarnsWithoutTokens: on loopback without tokens serve works
// and says so.
func TestRunServeWarnsWithoutTokens(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	base, stderr, stop := runServeBackground(t, []string{"--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0"})
	if code, _ := servetest.Do(t, "GET", base+"/"); code != 200 {
		t.Errorf("GET / without tokens configured = %d, want 200", code)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "no tokens configured") {
		t.Errorf("no warning about missing tokens:\n%s", stderr.String())
	}
}

// TestServeDeploymentExample starts the two replicas of
// pipelines/deploy/serve-deployment.yaml with its own arguments (paths,
// the address and the Secrets' files replaced by the test's): the example
// passes serve's exposure checks, serves its probes over https without a
// token, /metrics as it says, and everything else only with a token.
func TestServeDeploymentExample(t *testing.T) {
	y, err := os.ReadFile(filepath.Join("..", "..", "pipelines", "deploy", "serve-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type probe struct {
		HTTPGet struct{ Path, Scheme string } `yaml:"httpGet"`
	}
	var dep struct {
		Kind string
		Spec struct {
			Replicas int
			Template struct {
				Spec struct {
					Containers []struct {
						Args           []string
						ReadinessProbe probe `yaml:"readinessProbe"`
						LivenessProbe  probe `yaml:"livenessProbe"`
					}
				}
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(y))
	for dep.Kind != "Deployment" {
		if err := dec.Decode(&dep); err != nil {
			t.Fatalf("no Deployment in the example: %v", err)
		}
	}
	if dep.Spec.Replicas != 2 || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("example: %d replicas, %d containers; want 2 and 1", dep.Spec.Replicas, len(dep.Spec.Template.Spec.Containers))
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("example args %q: want serve ...", c.Args)
	}

	dir, stateDir := servetest.Fixture(t, "")
	certFile, keyFile, pool := servetest.SelfSignedCert(t)
	replace := map[string]string{"--pipelines": dir, "--state": stateDir, "--addr": "127.0.0.1:0",
		"--token-file": servetest.WriteTokenFile(t), "--tls-cert": certFile, "--tls-key": keyFile}
	var args []string
	for _, a := range c.Args[1:] {
		name, value, hasValue := strings.Cut(a, "=")
		if v, ok := replace[name]; ok && hasValue {
			if name == "--addr" {
				if host, _, _ := net.SplitHostPort(value); host == "localhost" || net.ParseIP(host).IsLoopback() {
					t.Errorf("the example listens on loopback (%s): a pod must listen on its IP", value)
				}
			}
			a = name + "=" + v
			delete(replace, name)
		}
		args = append(args, a)
	}
	if len(replace) != 0 {
		t.Fatalf("the example lacks %v (args %q)", replace, c.Args)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	st, err := state.Open(context.Background(), stateDir, "people")
	if err != nil {
		t.Fatal(err)
	}
	// Both replicas at once, on one state.
	type replica struct {
		base   string
		stderr *servetest.SafeBuffer
		stop   func() int
	}
	var replicas []replica
	for range dep.Spec.Replicas {
		base, stderr, stop := runServeBackground(t, args)
		replicas = append(replicas, replica{base, stderr, stop})
	}
	for i, r := range replicas {
		base, stderr := r.base, r.stderr
		for _, p := range []probe{c.ReadinessProbe, c.LivenessProbe} {
			if scheme := strings.ToLower(p.HTTPGet.Scheme); scheme+"://" != base[:len(scheme)+3] {
				t.Errorf("probe scheme %q, but serve listens on %s", p.HTTPGet.Scheme, base)
			}
			if resp := servetest.AuthDo(t, client, "GET", base+p.HTTPGet.Path, ""); resp.StatusCode != 200 {
				t.Errorf("replica %d: probe %s = %d, want 200", i, p.HTTPGet.Path, resp.StatusCode)
			}
		}
		if resp := servetest.AuthDo(t, client, "GET", base+"/metrics", ""); resp.StatusCode != 200 {
			t.Errorf("replica %d: /metrics without a token = %d; the example serves it to the scraper", i, resp.StatusCode)
		}
		for _, path := range []string{"/", "/reports/people/x.json"} {
			if resp := servetest.AuthDo(t, client, "GET", base+path, ""); resp.StatusCode != 401 {
				t.Errorf("replica %d: GET %s without a token = %d, want 401", i, path, resp.StatusCode)
			}
		}
		if resp := servetest.AuthDo(t, client, "POST", base+"/run/people", servetest.ReadToken); resp.StatusCode != 403 {
			t.Errorf("replica %d: POST /run with a read token = %d, want 403", i, resp.StatusCode)
		}
		if resp := servetest.AuthDo(t, client, "POST", base+"/run/people", servetest.RunToken); resp.StatusCode != 202 {
			t.Errorf("replica %d: POST /run with a run token = %d, want 202", i, resp.StatusCode)
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if runs, err := st.Runs(context.Background(), 0); err != nil || len(runs) > i {
				if err != nil || runs[0].Status != pipeline.StatusSucceeded {
					t.Errorf("replica %d: runs = %+v, %v", i, runs, err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: the run was not recorded\n%s", i, stderr.String())
			}
		}
	}
	client.CloseIdleConnections()
	for i, r := range replicas {
		if code := r.stop(); code != exitOK {
			t.Errorf("replica %d exited %d:\n%s", i, code, r.stderr.String())
		}
	}
}

// serve takes run's log flags: --log-format json makes the server's lines
// JSON objects (the no-tokens warning here); a bad value is refused.
func TestRunServeLogFlags(t *testing.T) {
	dir, stateDir := servetest.Fixture(t, "")
	_, stderr, stop := runServeBackground(t, []string{"--pipelines", dir, "--state", stateDir, "--addr", "127.0.0.1:0", "--log-format", "json"})
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var warned bool
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && strings.Contains(fmt.Sprint(m["msg"]), "no tokens configured") && m["level"] == "WARN" {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no JSON warning line about missing tokens:\n%s", stderr.String())
	}
	var out, errb bytes.Buffer
	if code := runServe(context.Background(), []string{"--pipelines", dir, "--log-format", "yaml"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--log-format must be text or json") {
		t.Errorf("--log-format yaml: exit %d, stderr %q", code, errb.String())
	}
}
