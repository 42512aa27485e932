package obs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// ServiceName is the OpenTelemetry service.name of bulkflow's spans unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
const ServiceName = "bulkflow"

// shutdownTimeout bounds the flush of the spans still queued at exit.
const shutdownTimeout = 5 * time.Second

// TracingEnabled reports whether the environment asks for traces: an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), the SDK is not disabled
// (OTEL_SDK_DISABLED=true) and OTEL_TRACES_EXPORTER is unset or "otlp".
func TracingEnabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	if e := os.Getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// StartTracing installs the process's tracer provider when TracingEnabled:
// spans go in batches to the OTLP/HTTP endpoint (protobuf), configured by
// the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers,
// compression, timeout, TLS); the sampler by OTEL_TRACES_SAMPLER; the
// resource by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. Every span
// started under a run gets its run id (bulkflow.run_id). Export errors are
// logged to log at warn level (secrets masked).
//
// When tracing is not enabled nothing is installed: the spans bulkflow
// starts are OpenTelemetry's no-op spans. The returned function flushes
// and stops the provider (within a few seconds); call it once, at exit.
func StartTracing(ctx context.Context, log *slog.Logger) (shutdown func(), err error) {
	if !TracingEnabled() {
		return func() {}, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry: the OTLP/HTTP exporter (OTEL_EXPORTER_OTLP_* variables): %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry: resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(runIDProcessor{}), sdktrace.WithBatcher(redactingExporter{exp}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("OpenTelemetry: exporting spans failed; the run goes on without them", "err", err)
	}))
	otel.SetTracerProvider(tp)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("OpenTelemetry: flushing the last spans failed", "err", err)
		}
	}, nil
}

// runIDProcessor puts the run id of the context a span starts in on the
// span (pipeline.RunIDFrom): the engine's, the sinks' and the HTTP spans
// alike, so that a trace backend finds all of a run's spans by its id.
type runIDProcessor struct{}

func (runIDProcessor) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	if id := pipeline.RunIDFrom(parent); id != "" {
		s.SetAttributes(attribute.String(pipeline.AttrRunID, id))
	}
}

func (runIDProcessor) OnEnd(sdktrace.ReadOnlySpan)      {}
func (runIDProcessor) Shutdown(context.Context) error   { return nil }
func (runIDProcessor) ForceFlush(context.Context) error { return nil }

// redactingExporter masks secrets (package redact) in the names, status
// messages and string attributes of spans before they leave the process:
// attributes hold names from the pipeline file (an object, a stage), and
// a secret may sit anywhere there.
type redactingExporter struct{ sdktrace.SpanExporter }

func (e redactingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if !redact.Active() {
		return e.SpanExporter.ExportSpans(ctx, spans)
	}
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = redactSpan(s)
	}
	return e.SpanExporter.ExportSpans(ctx, out)
}

// redactSpan returns s with secrets masked.
func redactSpan(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	stub := tracetest.SpanStubFromReadOnlySpan(s)
	stub.Name = redact.Redact(stub.Name)
	stub.Status.Description = redact.Redact(stub.Status.Description)
	attrs := make([]attribute.KeyValue, len(stub.Attributes))
	for i, a := range stub.Attributes {
		if a.Value.Type() == attribute.STRING {
			a.Value = attribute.StringValue(redact.Redact(a.Value.AsString()))
		}
		attrs[i] = a
	}
	stub.Attributes = attrs
	return stub.Snapshot()
}
