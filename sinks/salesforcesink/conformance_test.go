package salesforcesink_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
	"github.com/bulkflow/bulkflow/sinks/sinktest"
)

// conformanceHarness runs the sink conformance suite against an emulator:
// inserts into Account, read back from the emulator's record store.
type conformanceHarness struct {
	t   *testing.T
	srv *salesforcetest.Server
}

func (h *conformanceHarness) MakeSink(ctx context.Context, schema *pipeline.Schema) (pipeline.Sink, error) {
	if h.srv != nil {
		h.srv.Close()
	}
	h.srv = salesforcetest.NewServer(nil)
	h.t.Cleanup(h.srv.Close)
	o := salesforcesink.NewOptions()
	o.Object, o.Operation = "Account", "insert"
	o.InstanceURL = h.srv.URL
	o.Auth.AccessToken = h.srv.AccessToken()
	o.MaxJobRows, o.Concurrency = 20, 2
	o.PollInitial, o.PollMax = 10*time.Millisecond, 50*time.Millisecond
	o.Ledger = "off"
	return salesforcesink.Open(ctx, &pipeline.Env{RunID: "conformance"}, o, schema)
}

func (h *conformanceHarness) ReadBack(ctx context.Context) ([]map[string]string, error) {
	return h.srv.Records("Account"), nil
}

// RejectedName is longer than Account.Name's 255 characters
// (STRING_TOO_LONG).
func (h *conformanceHarness) RejectedName() (string, bool) { return strings.Repeat("n", 300), true }

func (h *conformanceHarness) Unimplementable() []string { return nil }

func TestConformance(t *testing.T) {
	sinktest.RunConformance(t, func(t *testing.T) sinktest.Harness { return &conformanceHarness{t: t} })
}

// planHarness runs the sink conformance suite against the plan sink that
// `bulkflow plan` stands in for the sink with (opened through the
// options' pipeline.Planner): the rows that land are those of its job
// files, read back as CSV. max_job_bytes is small, so the suite's batches
// span several job files and a long Name is refused locally
// (row_too_large).
type planHarness struct {
	t   *testing.T
	dir string
	n   int
}

// planMaxJobBytes is the harness's max_job_bytes: above the suite's
// largest row (about 1,100 bytes), below RejectedName's.
const planMaxJobBytes = 4000

func (h *planHarness) MakeSink(ctx context.Context, schema *pipeline.Schema) (pipeline.Sink, error) {
	h.n++
	h.dir = filepath.Join(h.t.TempDir(), fmt.Sprintf("plan-%d", h.n))
	o := salesforcesink.NewOptions()
	o.Object, o.Operation, o.InstanceURL = "Account", "insert", "http://127.0.0.1:1" // never contacted
	o.Auth.AccessToken = "plan"
	o.MaxJobBytes = planMaxJobBytes
	o.API = salesforcesink.APIBulk // job files (api auto would plan the suite's small inputs as REST requests)
	var p pipeline.Planner = o
	return p.OpenPlan(ctx, &pipeline.Env{RunID: "conformance"}, schema, h.dir)
}

func (h *planHarness) ReadBack(ctx context.Context) ([]map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(h.dir, "job-*.csv"))
	if err != nil {
		return nil, err
	}
	var rows []map[string]string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if len(recs) < 2 {
			return nil, fmt.Errorf("%s: a job file without rows", f)
		}
		for _, rec := range recs[1:] {
			row := map[string]string{}
			for i, name := range recs[0] {
				row[name] = rec[i]
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// RejectedName is longer than max_job_bytes: the plan refuses the row as
// the sink would, before any upload.
func (h *planHarness) RejectedName() (string, bool) {
	return strings.Repeat("n", planMaxJobBytes), true
}

func (h *planHarness) Unimplementable() []string { return nil }

func TestPlanConformance(t *testing.T) {
	sinktest.RunConformance(t, func(t *testing.T) sinktest.Harness { return &planHarness{t: t} })
}
