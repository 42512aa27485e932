package obs

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// TestRedactingExporter sends a span holding a registered secret in its
// name, an attribute and its status through the exporter wrapper: what
// reaches the exporter holds the mask, not the secret, and keeps the
// other attributes, the run id the processor added among them.
func TestRedactingExporter(t *testing.T) {
	const secret = "Zq99cnry!trace"
	redact.Register(secret)
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(runIDProcessor{}),
		sdktrace.WithSyncer(redactingExporter{mem}))
	// A stage and an object named by a secret (a pipeline file may
	// interpolate any value).
	_, span := tp.Tracer("t").Start(pipeline.ContextWithRunID(context.Background(), "run-7"), "stage "+secret)
	span.SetAttributes(attribute.String("salesforce.object", secret), attribute.Int("rows", 3))
	span.SetStatus(codes.Error, "job of "+secret+" failed")
	span.End() // exported now (WithSyncer); the exporter's Shutdown would drop what it holds
	defer tp.Shutdown(context.Background())
	got := mem.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans exported, want 1", len(got))
	}
	s := got[0]
	text := s.Name + " " + s.Status.Description
	attrs := map[string]string{}
	for _, a := range s.Attributes {
		attrs[string(a.Key)] = a.Value.String()
		text += " " + a.Value.String()
	}
	if strings.Contains(strings.ToLower(text), "cnry") || !strings.Contains(text, redact.Mask) {
		t.Errorf("exported span %q: want the secret masked", text)
	}
	if attrs["rows"] != "3" || attrs[pipeline.AttrRunID] != "run-7" {
		t.Errorf("attributes %v: want rows 3 and the run id", attrs)
	}
}
