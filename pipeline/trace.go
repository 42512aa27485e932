package pipeline

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the OpenTelemetry instrumentation name of the engine's
// spans. Plugins name their own tracers after their package.
const TracerName = "github.com/bulkflow/bulkflow/pipeline"

// Span attribute keys the engine and plugins share: every span of a run
// carries AttrRunID, so a trace backend can find a run's spans by its id.
const (
	AttrRunID    = "bulkflow.run_id"
	AttrPipeline = "bulkflow.pipeline"
	AttrStage    = "bulkflow.stage"
)

type runIDKey struct{}

// RunIDFrom returns the run id Run put in ctx ("" outside a run), for
// plugins' span attributes and logs.
func RunIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(runIDKey{}).(string)
	return id
}

// ContextWithRunID returns ctx carrying run id id, as the context Run
// gives stages and plugins does (RunIDFrom).
func ContextWithRunID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, runIDKey{}, id)
}

// startRunSpan starts the run's span ("bulkflow.run") and puts the run id
// in ctx. Without a tracer provider (OpenTelemetry's default) it costs a
// context value and a no-op span.
func startRunSpan(ctx context.Context, rep *Report) (context.Context, func(*Report)) {
	ctx = ContextWithRunID(ctx, rep.RunID)
	ctx, span := otel.Tracer(TracerName).Start(ctx, "bulkflow.run", trace.WithAttributes(
		attribute.String(AttrRunID, rep.RunID), attribute.String(AttrPipeline, rep.Pipeline)))
	return ctx, func(rep *Report) {
		c := rep.Counts
		span.SetAttributes(attribute.String("bulkflow.status", rep.Status),
			attribute.Int64("bulkflow.rows.read", c.Read), attribute.Int64("bulkflow.rows.loaded", c.Loaded),
			attribute.Int64("bulkflow.rows.filtered", c.Filtered), attribute.Int64("bulkflow.rows.dead_lettered", c.DeadLettered))
		if rep.Status == StatusFailed {
			span.SetStatus(codes.Error, "run failed")
		}
		span.End()
	}
}

// startStageSpans starts one span per stage ("bulkflow.stage"), children of
// the run's span in ctx, before any stage goroutine starts.
func (r *runner) startStageSpans(ctx context.Context) {
	for _, s := range r.plan.stages {
		sctx, _ := otel.Tracer(TracerName).Start(ctx, "bulkflow.stage "+s.spec.Name, trace.WithAttributes(
			attribute.String(AttrRunID, RunIDFrom(ctx)), attribute.String(AttrStage, s.spec.Name),
			attribute.String("bulkflow.stage.kind", string(s.spec.Kind)), attribute.String("bulkflow.stage.type", s.spec.Type)))
		r.spans[s] = sctx
	}
}

// stageCtx returns ctx (its cancellation and values) with stage s's span,
// so that what the stage does (a sink's jobs, HTTP calls) nests under it.
func (r *runner) stageCtx(ctx context.Context, s *planStage) context.Context {
	if sctx, ok := r.spans[s]; ok {
		return trace.ContextWithSpan(ctx, trace.SpanFromContext(sctx))
	}
	return ctx
}

// stageEnv returns a copy of env whose logger names the stage.
func (r *runner) stageEnv(env *Env, s *planStage) *Env {
	e := *env
	e.Logger = r.log.With("stage", s.spec.Name)
	return &e
}

// sourceEnv returns a copy of env whose logger names the source stage
// (Prepare opens sources before Run; env's logger may be nil there).
func sourceEnv(env *Env, stage string) *Env {
	if env == nil || env.Logger == nil {
		return env
	}
	e := *env
	e.Logger = env.Logger.With("stage", stage)
	return &e
}

// endStage ends stage s's span with its counts.
func (r *runner) endStage(s *planStage) {
	sctx, ok := r.spans[s]
	if !ok {
		return
	}
	span := trace.SpanFromContext(sctx)
	c := r.counters[s]
	span.SetAttributes(attribute.Int64("bulkflow.rows.in", c.in.Load()), attribute.Int64("bulkflow.rows.out", c.out.Load()),
		attribute.Int64("bulkflow.rows.loaded", c.loaded.Load()), attribute.Int64("bulkflow.rows.dead_lettered", c.deadLettered.Load()))
	span.End()
}

// endStages ends the spans of stages that never ran (the run stopped
// while opening sinks); ending a span twice does nothing.
func (r *runner) endStages() {
	for _, sctx := range r.spans {
		trace.SpanFromContext(sctx).End()
	}
}
