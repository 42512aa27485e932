package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/bulkflow/bulkflow/pipeline"
)

// otlpReceiver is an in-process OTLP/HTTP trace receiver: it decodes each
// protobuf ExportTraceServiceRequest posted to /v1/traces and keeps the
// spans.
type otlpReceiver struct {
	mu      sync.Mutex
	spans   []span
	headers []http.Header
}

// span is a received span, flattened.
type span struct {
	Name, ID, Parent, TraceID string
	Attrs                     map[string]string
	Resource                  map[string]string
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.GetKey()] = v.GetStringValue()
		default:
			b, _ := json.Marshal(v.GetValue())
			m[kv.GetKey()] = string(b)
		}
	}
	return m
}

func (rcv *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want protobuf at /v1/traces", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	rcv.headers = append(rcv.headers, r.Header.Clone())
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				rcv.spans = append(rcv.spans, span{Name: sp.GetName(), ID: hex.EncodeToString(sp.GetSpanId()),
					Parent: hex.EncodeToString(sp.GetParentSpanId()), TraceID: hex.EncodeToString(sp.GetTraceId()),
					Attrs: attrMap(sp.GetAttributes()), Resource: res})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Write(out)
}

// TestTracesQuickstart runs the quickstart (its load stage through Bulk
// jobs, by --set) with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an
// in-process OTLP/HTTP receiver, and checks the span tree: one run span,
// a span per stage under it, a salesforce.job span per Bulk job under the
// load stage (id, object, operation, rows, outcome), HTTP spans under the
// jobs; every span of the run has its run id; no attribute holds the
// access token or a query string. Without the variable, nothing is sent.
func TestTracesQuickstart(t *testing.T) {
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	root := repoRoot(t)
	t.Chdir(t.TempDir())
	copyTree(t, filepath.Join(root, "pipelines"), "pipelines")
	args := []string{"run", "pipelines/quickstart.yaml", "--progress", "none", "--json", "--set", "load.api=bulk"}

	// Off by default: no endpoint, no export.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	var stdout, stderr bytes.Buffer
	if code := realMain(args, &stdout, &stderr); code != exitPartial {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if len(rcv.spans) != 0 {
		t.Fatalf("%d spans exported with no endpoint set", len(rcv.spans))
	}

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "bulkflow-test")
	stdout.Reset()
	stderr.Reset()
	if code := realMain(args, &stdout, &stderr); code != exitPartial {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var rep pipeline.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()

	byID := map[string]span{}
	var runs []span
	for _, s := range rcv.spans {
		byID[s.ID] = s
		if s.Name == "bulkflow.run" {
			runs = append(runs, s)
		}
		if s.Resource["service.name"] != "bulkflow-test" {
			t.Errorf("span %s: service.name %q, want OTEL_SERVICE_NAME's", s.Name, s.Resource["service.name"])
		}
		for k, v := range s.Attrs {
			if strings.Contains(v, "?") || strings.Contains(strings.ToLower(v), "token") || strings.Contains(strings.ToLower(k), "header") {
				t.Errorf("span %s: attribute %s=%q may leak a secret", s.Name, k, v)
			}
		}
	}
	if len(runs) != 1 || runs[0].Parent != "" || runs[0].Attrs[pipeline.AttrRunID] != rep.RunID || runs[0].Attrs["bulkflow.status"] != "partial" {
		t.Fatalf("run spans %+v, want one root span of run %s, status partial", runs, rep.RunID)
	}
	run := runs[0]
	stages := map[string]span{}
	jobs := 0
	for _, s := range rcv.spans {
		if s.TraceID != run.TraceID {
			continue // the pre-flight is --offline-less here: its describe calls are no run's
		}
		if s.Attrs[pipeline.AttrRunID] != rep.RunID {
			t.Errorf("span %s (%v) lacks the run id", s.Name, s.Attrs)
		}
		parent := byID[s.Parent]
		switch {
		case strings.HasPrefix(s.Name, "bulkflow.stage "):
			if s.Parent != run.ID {
				t.Errorf("stage span %s is not a child of the run span", s.Name)
			}
			stages[s.Attrs[pipeline.AttrStage]] = s
		case s.Name == "salesforce.job":
			jobs++
			if parent.Attrs[pipeline.AttrStage] != "load" {
				t.Errorf("job span under %s, want the load stage", parent.Name)
			}
			for _, k := range []string{"salesforce.job.id", "salesforce.object", "salesforce.operation", "salesforce.job.rows", "salesforce.job.state"} {
				if s.Attrs[k] == "" {
					t.Errorf("job span lacks %s: %v", k, s.Attrs)
				}
			}
			if s.Attrs["salesforce.job.state"] != "JobComplete" || s.Attrs["salesforce.object"] != "Account" {
				t.Errorf("job span %v: want an Account job, JobComplete", s.Attrs)
			}
		case strings.HasPrefix(s.Name, "HTTP "):
			if parent.Name != "salesforce.job" && !strings.HasPrefix(parent.Name, "bulkflow.stage ") {
				t.Errorf("HTTP span under %q", parent.Name)
			}
			if !strings.HasPrefix(s.Attrs["url.path"], "/services/") || s.Attrs["http.response.status_code"] == "" {
				t.Errorf("HTTP span attributes %v", s.Attrs)
			}
		}
	}
	for _, name := range []string{"read", "live", "map", "load"} {
		if _, ok := stages[name]; !ok {
			t.Errorf("no span for stage %s", name)
		}
	}
	var reportJobs []any
	if sinks, ok := rep.Sinks["load"].(map[string]any); ok {
		reportJobs, _ = sinks["jobs"].([]any)
	}
	if jobs == 0 || jobs != len(reportJobs) {
		t.Errorf("%d job spans, the report lists %d jobs", jobs, len(reportJobs))
	}
	httpUnderJobs := 0
	for _, s := range rcv.spans {
		if strings.HasPrefix(s.Name, "HTTP ") && byID[s.Parent].Name == "salesforce.job" {
			httpUnderJobs++
		}
	}
	if httpUnderJobs < 4*jobs { // create, upload, close, a poll, results
		t.Errorf("%d HTTP spans under %d jobs, want at least 4 a job", httpUnderJobs, jobs)
	}
	if os.Getenv("CI") == "" {
		t.Logf("%d spans: %d stages, %d jobs, %d HTTP calls under jobs", len(rcv.spans), len(stages), jobs, httpUnderJobs)
	}
}
