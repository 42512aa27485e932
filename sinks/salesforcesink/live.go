package salesforcesink

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

var _ pipeline.LiveReporter = (*Sink)(nil)

// tracerName is the OpenTelemetry instrumentation name of the sink's spans.
const tracerName = "github.com/bulkflow/bulkflow/sinks/salesforcesink"

// liveJobs are the sink's Bulk jobs that have not ended, by job id, for
// Live and the jobs' spans.
type liveJobs struct {
	mu   sync.Mutex
	jobs map[string]*liveJob
}

type liveJob struct {
	state             salesforce.JobState
	processed, failed int64
	span              trace.Span // the chunk's span (startChunkSpan)
}

// liveJob notes job id's state and record counts (at creation and at each
// poll), and names the job on the span in ctx.
func (s *Sink) liveJob(ctx context.Context, id string, state salesforce.JobState, processed, failed int64) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	if s.live.jobs == nil {
		s.live.jobs = map[string]*liveJob{}
	}
	j := s.live.jobs[id]
	if j == nil {
		j = &liveJob{span: trace.SpanFromContext(ctx)}
		j.span.SetAttributes(attribute.String("salesforce.job.id", id))
		s.live.jobs[id] = j
	}
	j.state, j.processed, j.failed = state, processed, failed
}

// liveEnd takes a job that ended (its stat is recorded) off the live
// jobs and puts its outcome on its span.
func (s *Sink) liveEnd(stat JobStat) {
	s.live.mu.Lock()
	j := s.live.jobs[stat.ID]
	delete(s.live.jobs, stat.ID)
	s.live.mu.Unlock()
	if j == nil {
		return
	}
	j.span.SetAttributes(attribute.String("salesforce.job.state", stat.State),
		attribute.Int64("salesforce.job.processed", stat.Processed), attribute.Int64("salesforce.job.succeeded", stat.Succeeded),
		attribute.Int64("salesforce.job.failed", stat.Failed), attribute.Int64("salesforce.job.unprocessed", stat.Unprocessed))
	if stat.Error != "" || stat.State != string(salesforce.StateJobComplete) {
		j.span.SetStatus(codes.Error, "job "+stat.State)
	}
}

// startChunkSpan starts the span of one chunk's load ("salesforce.job"):
// the job or jobs it takes (an upload retried in a new job), their HTTP
// calls as children. liveJob and liveEnd add the job's id and outcome.
func (s *Sink) startChunkSpan(ctx context.Context, c *chunk) (context.Context, trace.Span) {
	return otel.Tracer(tracerName).Start(ctx, "salesforce.job", trace.WithAttributes(
		attribute.String("salesforce.object", s.opts.Object), attribute.String("salesforce.operation", string(s.op)),
		attribute.Int("salesforce.job.rows", len(c.rows))))
}

// Live returns the sink's jobs (open, in progress, ended) and the records
// Salesforce reported processed and failed so far, from the polls of the
// jobs still running and the results of those that ended, and the API
// requests made (Bulk and REST) (pipeline.LiveReporter).
func (s *Sink) Live() pipeline.SinkLive {
	l := pipeline.SinkLive{Requests: s.apiCalls.Load()}
	s.mu.Lock()
	l.JobsComplete = len(s.jobs)
	for _, j := range s.jobs {
		l.Processed += j.Succeeded + j.Failed
		l.Failed += j.Failed
	}
	s.mu.Unlock()
	s.live.mu.Lock()
	for _, j := range s.live.jobs {
		switch j.state {
		case salesforce.StateOpen, "":
			l.JobsOpen++
		default:
			l.JobsInProgress++
		}
		l.Processed += j.processed
		l.Failed += j.failed
	}
	s.live.mu.Unlock()
	return l
}
