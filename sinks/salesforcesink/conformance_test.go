package salesforcesink_test

import (
	"context"
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
