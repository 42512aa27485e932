package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bulkflow/bulkflow/pipeline"
)

// preflight runs the pre-flight of every sink stage whose options can
// check their destination (pipeline.Preflighter: the "salesforce" sink
// describes the object and its fields, the "emulator:" instance
// included), the one pre-flight `validate` and `run` share. Pre-flights
// change nothing at the destination. Each problem is printed to stderr as
// one line naming the sink stage's position in the pipeline file, e.g.
//
//	bulkflow: pipelines/x.yaml:31:5: stage "load": pre-flight: column Nmae: Account has no such field (did you mean Name?)
//
// The returned error joins *pipeline.ConfigError values for problems with
// the pipeline (a *pipeline.PreflightError) and plain errors for failures
// to reach the destination; preflightExit maps it to an exit code.
func preflight(ctx context.Context, g *pipeline.Graph, plan *pipeline.Plan, env *pipeline.Env, stderr io.Writer) error {
	schemas := plan.Schemas()
	var errs []error
	report := func(err error) {
		errs = append(errs, err)
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
	}
	for i := range g.Stages {
		st := &g.Stages[i]
		pf, ok := st.Options.(pipeline.Preflighter)
		if st.Kind != pipeline.KindSink || !ok {
			continue
		}
		err := pf.Preflight(ctx, env, schemas[st.Name])
		var pe *pipeline.PreflightError
		switch {
		case err == nil:
		case errors.As(err, &pe):
			for _, p := range pe.Problems {
				report(&pipeline.ConfigError{Pos: st.Pos, Msg: fmt.Sprintf("stage %q: pre-flight: %s", st.Name, p)})
			}
		default:
			report(fmt.Errorf("%s: stage %q: pre-flight: %w", st.Pos, st.Name, err))
		}
	}
	return errors.Join(errs...)
}

// preflightExit maps a preflight error to an exit code: 0 for none, 2 when
// every problem is in the pipeline file, 1 when a destination could not be
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
