package salesforce

import (
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the OpenTelemetry instrumentation name of the client's
// spans.
const tracerName = "github.com/bulkflow/bulkflow/sinks/salesforce"

// tracedClient returns a copy of hc whose transport makes one span per
// HTTP request ("HTTP GET", ...), a child of the span in the request's
// context. Attributes are the method, the host, the URL path (never the
// query, never a header or body: tokens stay out of traces) and the
// status. Without a tracer provider the spans are no-ops.
func tracedClient(hc *http.Client) *http.Client {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &tracingTransport{base: base}
	return &c
}

type tracingTransport struct{ base http.RoundTripper }

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := otel.Tracer(tracerName).Start(req.Context(), "HTTP "+req.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", req.Method),
			attribute.String("server.address", req.URL.Hostname()), attribute.String("url.path", req.URL.Path)))
	if !span.IsRecording() {
		return t.base.RoundTrip(req)
	}
	defer span.End()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		span.SetStatus(codes.Error, "no response")
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}
