package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

// preflight checks every "salesforce" sink stage that has an instance_url
// (the "emulator:" one included) against the org's describe metadata:
// it opens the sink (authenticating, or starting the in-process emulator),
// calls (*salesforcesink.Sink).Check with the stage's input schema and
// closes the sink. Check makes only GET requests. Each problem is printed
// to stderr as one line naming the sink stage's position in the pipeline
// file and the column, e.g.
//
//	bulkflow: pipelines/x.yaml:31:5: stage "load": pre-flight: column Nmae: Account has no such field
//
// The returned error joins *pipeline.ConfigError values for problems with
// the pipeline (unknown object or field, field not writable, required
// field missing, bad external id or relationship column) and plain errors
// for failures to reach Salesforce; preflightExit maps it to an exit code.
func preflight(ctx context.Context, g *pipeline.Graph, plan *pipeline.Plan, env *pipeline.Env, stderr io.Writer) error {
	schemas := plan.Schemas()
	var errs []error
	report := func(err error) {
		errs = append(errs, err)
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
	}
	for i := range g.Stages {
		st := &g.Stages[i]
		if st.Kind != pipeline.KindSink || st.Type != "salesforce" {
			continue
		}
		o, ok := st.Options.(*salesforcesink.Options)
		if !ok || o.InstanceURL == "" {
			continue
		}
		where := func(format string, args ...any) *pipeline.ConfigError {
			return &pipeline.ConfigError{Pos: st.Pos, Msg: fmt.Sprintf("stage %q: pre-flight: ", st.Name) + fmt.Sprintf(format, args...)}
		}
		// A check must leave nothing behind: no ledger, no API budget stop.
		po := *o
		po.Ledger, po.MinAPIRemaining = salesforcesink.LedgerOff, 0
		sk, err := salesforcesink.Open(ctx, env, &po, schemas[st.Name])
		if err != nil {
			if strings.HasPrefix(err.Error(), "salesforce sink: connect") || strings.HasPrefix(err.Error(), "salesforce sink: spool") {
				report(fmt.Errorf("%s: stage %q: pre-flight: %w", st.Pos, st.Name, err))
			} else {
				report(where("%v", err)) // the operation's input fields
			}
			continue
		}
		err = sk.Check(ctx, schemas[st.Name])
		if cerr := sk.Close(context.WithoutCancel(ctx)); cerr != nil {
			report(fmt.Errorf("%s: stage %q: pre-flight: %w", st.Pos, st.Name, cerr))
		}
		if err == nil {
			continue
		}
		switch inner := errors.Unwrap(err); {
		case errors.Is(err, salesforce.ErrNotFound):
			report(where("object %s: %v", o.Object, err))
		case inner != nil && isJoin(inner):
			for _, e := range inner.(interface{ Unwrap() []error }).Unwrap() {
				report(where("%v", e))
			}
		case inner != nil && !isTransport(err):
			report(where("%v", inner))
		default:
			report(fmt.Errorf("%s: stage %q: pre-flight: %w", st.Pos, st.Name, err))
		}
	}
	return errors.Join(errs...)
}

// isJoin reports whether err is an errors.Join list.
func isJoin(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

// isTransport reports whether a Check error is a failure to talk to
// Salesforce rather than a finding about the pipeline.
func isTransport(err error) bool {
	var ae *salesforce.APIError
	return !errors.As(err, &ae) || ae.StatusCode >= 500 || ae.StatusCode == 401 || ae.StatusCode == 403
}

// preflightExit maps a preflight error to an exit code: 0 for none, 2 when
// every problem is in the pipeline file, 1 when Salesforce could not be
// reached or answered with an error.
func preflightExit(err error) int {
	if err == nil {
		return exitOK
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *pipeline.ConfigError
		if !errors.As(e, &ce) {
			return exitFailed
		}
	}
	return exitUsage
}
