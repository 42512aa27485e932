package salesforcesink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/scratch"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// Open validates opts, connects (authenticating, or opening the instance
// of an instance_url opener such as "emulator:"), opens the ledger and
// the spool and returns a sink for rows of schema in.
func Open(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) (*Sink, error) {
	if env == nil {
		env = &pipeline.Env{}
	}
	s, err := newSink(env, opts, in)
	if err != nil {
		return nil, err
	}
	if err := s.connect(ctx, env); err != nil {
		return nil, fmt.Errorf("salesforce sink: connect: %w", err)
	}
	if err := s.openLedger(ctx, env); err != nil {
		s.closeEmulator()
		s.closeLedger()
		return nil, err
	}
	if s.spool == "" {
		if s.scratch, err = scratch.New("", "bulkflow-sf-"); err != nil {
			s.closeEmulator()
			s.closeLedger()
			return nil, fmt.Errorf("salesforce sink: spool directory: %w", err)
		}
		s.spool = s.scratch.Path
	}
	if opts.MinAPIRemaining > 0 {
		s.readLimits(ctx)
	}
	return s, nil
}

// newSink checks opts and the input columns without I/O and returns the
// unconnected sink.
func newSink(env *pipeline.Env, opts *Options, in *pipeline.Schema) (*Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{opts: opts, op: opts.operation(), schema: in, log: env.Logger, delim: opts.delimiter(),
		enc: newEncoder(in, opts.delimiter(), opts.lineEnding()), idCol: -1, runID: env.RunID, codes: map[string]int64{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", "salesforce", "object", opts.Object)
	if s.runID == "" {
		s.runID = pipeline.NewRunID(time.Now())
	}
	if err := s.checkColumns(); err != nil {
		return nil, err
	}
	if opts.ArchiveResults != "" {
		loc, err := blobio.Parse(env.BaseDir, opts.ArchiveResults)
		if err != nil {
			return nil, fmt.Errorf("archive_results: %w", err)
		}
		s.archive = &loc
	}
	return s, nil
}

// connect opens the sink's client (see dial), counting its API calls.
// Ingest job creation is repeatable: the client may retry it.
func (s *Sink) connect(ctx context.Context, env *pipeline.Env) error {
	o := s.opts
	copts := &salesforce.Options{APIVersion: o.APIVersion, Logger: env.Logger,
		ResponseCompression: salesforce.Compression(o.ResponseCompression), RepeatableCreate: true}
	auth, inst, err := dial(ctx, env, Connection{InstanceURL: o.InstanceURL, Auth: o.Auth})
	if err != nil {
		return err
	}
	if inst != nil {
		s.inst = inst
		copts.HTTPClient = inst.HTTPClient
		s.log.Info("salesforce sink: opened an instance for instance_url; nothing reaches Salesforce", "instance_url", o.InstanceURL, "url", inst.URL)
	}
	if testClientOptions != nil {
		testClientOptions(copts)
	}
	copts.HTTPClient = countingClient(copts.HTTPClient, &s.apiCalls, &s.usage)
	if s.client, err = salesforce.NewClient(ctx, auth, copts); err != nil {
		s.closeEmulator()
		return err
	}
	return nil
}

// openLedger opens the run's ledger (unless ledger: off), refuses a
// resume with other options or input fields, records the attempt and
// spools under the ledger.
func (s *Sink) openLedger(ctx context.Context, env *pipeline.Env) error {
	where := s.opts.ledgerLocation()
	if where == "" {
		return nil
	}
	var err error
	if s.ledger, err = openLedger(ctx, env.BaseDir, where, env.Pipeline, s.runID); err != nil {
		return fmt.Errorf("salesforce sink: ledger: %w", err)
	}
	fp := s.fingerprint()
	if prev, ok := s.ledger.last(runKey); ok && prev.Options != fp {
		return fmt.Errorf("salesforce sink: ledger %s: run %s was started with other sink options or input fields "+
			"(%s, now %s); resuming would cut the rows into other jobs and could load rows twice. "+
			"Resume with the original pipeline file, or start a new run", s.ledger.where, s.runID, prev.Options, fp)
	}
	if s.ledger.resuming() {
		s.log.Info("salesforce sink: resuming: the ledger holds chunks of an earlier attempt of this run; "+
			"they are matched by content and never uploaded twice", "run", s.runID, "ledger", s.ledger.where,
			"chunks", s.ledger.chunks())
	}
	if err := s.ledger.append(ctx, ledgerRecord{Chunk: runKey, State: "opened", Options: fp, Provenance: s.opts.Provenance}); err != nil {
		return fmt.Errorf("salesforce sink: %w", err)
	}
	s.spool = s.ledger.spoolDir()
	return nil
}

// readLimits reads DailyApiRequests for min_api_remaining; without it the
// budget guard relies on Sforce-Limit-Info.
func (s *Sink) readLimits(ctx context.Context) {
	lim, err := s.client.Limits(ctx)
	if err != nil {
		s.log.Warn("salesforce sink: min_api_remaining: could not read /limits; relying on Sforce-Limit-Info", "err", err)
		return
	}
	if l, ok := lim["DailyApiRequests"]; ok {
		s.limitRemaining, s.limitCalls, s.limitKnown = l.Remaining, s.apiCalls.Load(), true
	}
}

// fingerprint sums up what decides how rows are cut into chunks and
// encoded: a resume must use the same.
func (s *Sink) fingerprint() string {
	o := s.opts
	fp := fmt.Sprintf("object=%s op=%s ext=%s max_job_rows=%d max_job_bytes=%d delim=%s eol=%s fields=%s",
		o.Object, s.op, o.ExternalIDField, o.MaxJobRows, o.MaxJobBytes, s.delim, o.lineEnding(), strings.Join(s.schema.Names(), ","))
	if a := o.api(); a != APIBulk {
		// The path decides how rows are cut (rest.go); ledgers of Bulk
		// runs keep their fingerprint.
		fp += fmt.Sprintf(" api=%s rest_max_rows=%d", a, o.restMaxRows())
	}
	return fp
}

func (s *Sink) closeLedger() {
	if s.ledger != nil {
		if err := s.ledger.close(); err != nil {
			s.log.Error("salesforce sink: ledger: close", "err", err)
		}
	}
}

// checkColumns applies the I/O-free header rules of the operation.
func (s *Sink) checkColumns() error {
	names := s.schema.Names()
	find := func(name string) int {
		for i, n := range names {
			if strings.EqualFold(n, name) {
				return i
			}
		}
		return -1
	}
	switch s.op {
	case salesforce.OpDelete, salesforce.OpHardDelete:
		if len(names) != 1 || !strings.EqualFold(names[0], "Id") {
			return fmt.Errorf("operation %s needs exactly one input field, Id (got %s)", s.op, strings.Join(names, ", "))
		}
		s.idCol = 0
	case salesforce.OpUpdate:
		if s.idCol = find("Id"); s.idCol < 0 {
			return fmt.Errorf("operation update needs an Id field (got %s)", strings.Join(names, ", "))
		}
	case salesforce.OpUpsert:
		if s.idCol = find(s.opts.ExternalIDField); s.idCol < 0 && !strings.EqualFold(s.opts.ExternalIDField, "Id") {
			return fmt.Errorf("operation upsert needs the external id field %s among the input fields (got %s)",
				s.opts.ExternalIDField, strings.Join(names, ", "))
		}
	}
	return nil
}
