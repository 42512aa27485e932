package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/redact"
	"github.com/bulkflow/bulkflow/transforms/exprenv"
	"github.com/bulkflow/bulkflow/transforms/mapping"
)

const validateUsage = `Usage: bulkflow validate FILE [--offline] [--json] [--set STAGE.KEY=VALUE ...] [--instance-url URL]

Decodes the pipeline file strictly, opens each source to read its real header,
compiles every expression against it and checks the stage graph. Then, unless
--offline, checks every salesforce sink that has an instance_url ("emulator:"
included) against the object's describe: mapped fields exist and are writable
for the operation, required fields are present on insert, the external id and
relationship columns are valid (GET requests only). No row moves.

Every problem found is reported in one pass, sorted by file position, with a
count. Exit codes: 0 valid, 2 problems in the pipeline file, 1 Salesforce could
not be reached.

Flags:`

// runValidate implements `bulkflow validate`.
func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	offline := fs.Bool("offline", false, "skip the pre-flight of salesforce sinks against the org's describe metadata")
	asJSON := fs.Bool("json", false, "print the outcome as JSON on stdout: {file, pipeline, valid, problems: [{file, line, col, message}], stages}")
	var ov overrideFlags
	ov.register(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(stderr, validateUsage)
		fs.PrintDefaults()
	}
	file, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if file == "" {
		fs.Usage()
		return exitUsage
	}
	v := validateFile(ctx, file, ov.options(), *offline)
	if *asJSON {
		writeValidateJSON(stdout, file, v)
		return v.code
	}
	for _, e := range v.errs {
		cli.PrintError(stderr, e)
	}
	if len(v.errs) > 0 {
		fmt.Fprintf(stderr, "bulkflow: %s: %s\n", file, countProblems(len(v.errs)))
		return v.code
	}
	fmt.Fprintf(stdout, "%s: pipeline %q is valid\n", file, v.graph.Name)
	for _, s := range v.graph.Stages {
		fmt.Fprintf(stdout, "  %-10s %-9s %-10s -> %s\n", s.Name, s.Kind, s.Type, v.schemas[s.Name])
	}
	return exitOK
}

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// validation is the outcome of validateFile.
type validation struct {
	graph   *pipeline.Graph
	schemas map[string]*pipeline.Schema
	errs    []error // sorted by position
	code    int
}

// validateFile finds every problem of a pipeline file it can in one pass:
// the loader's (unknown keys, wrongly typed values, graph shape), then,
// for the stages that decoded, the sources' headers and every expression
// of every transform, then (when all that is clean and not offline) the
// sinks' pre-flight.
func validateFile(ctx context.Context, file string, o config.Options, offline bool) *validation {
	reg := pipeline.DefaultRegistry()
	res := config.LoadAllFile(file, reg, o)
	v := &validation{graph: res.Graph, errs: res.Errs, code: exitOK}
	if res.Graph == nil {
		v.code = exitUsage
		return v
	}
	g := res.Graph
	env := &pipeline.Env{
		RunID:    pipeline.NewRunID(time.Now()),
		Pipeline: g.Name,
		Lookups:  g.Lookups,
		Logger:   slog.New(redact.Handler(slog.NewTextHandler(io.Discard, nil))),
	}
	var prepErr error
	if len(v.errs) == 0 {
		// The real path: if it passes, there is nothing more to find
		// before the pre-flight.
		plan, err := pipeline.Prepare(ctx, reg, g, env)
		prepErr = err
		if err == nil {
			defer plan.Close()
			v.schemas = plan.Schemas()
			if !offline {
				if err := preflight(ctx, g, plan, env, io.Discard); err != nil {
					v.errs = config.SortErrors(config.SplitErrors(err))
					v.code = preflightExit(err)
				}
			}
			return v
		}
	}
	_, errs := checkStages(ctx, reg, g, env, res.Broken)
	// Prepare's problem is among them unless checkStages does not look
	// for its kind (an incremental cursor, a sync key): add it then.
	seen := map[string]bool{}
	for _, e := range errs {
		seen[e.Error()] = true
	}
	for _, e := range config.SplitErrors(prepErr) {
		if !seen[e.Error()] {
			errs = append(errs, e)
		}
	}
	v.errs = config.SortErrors(append(v.errs, errs...))
	if len(v.errs) > 0 {
		v.code = exitUsage
	}
	return v
}

// checkStages opens every source of g (to read its schema) and checks every
// transform against its input, going on after a problem: a stage whose
// input could not be checked is skipped, a map stage reports every field
// that does not compile. Stages in broken (their declaration has a problem
// already reported) are skipped.
func checkStages(ctx context.Context, reg *pipeline.Registry, g *pipeline.Graph, env *pipeline.Env, broken map[string]bool) (map[string]*pipeline.Schema, []error) {
	out := map[string]*pipeline.Schema{}
	var errs []error
	done := map[string]bool{}
	for progress := true; progress; {
		progress = false
		for i := range g.Stages {
			s := &g.Stages[i]
			if done[s.Name] || !inputsDone(s, done) {
				continue
			}
			done[s.Name], progress = true, true
			if broken[s.Name] || s.Options == nil && s.Kind != pipeline.KindSink {
				continue
			}
			in, err := stageInput(s, out)
			if err != nil {
				errs = append(errs, err)
			}
			schema, stageErrs := checkStage(ctx, reg, env, s, in)
			errs = append(errs, stageErrs...)
			if schema != nil {
				out[s.Name] = schema
			}
		}
	}
	return out, errs
}

// inputsDone reports whether every input of s has been checked.
func inputsDone(s *pipeline.StageSpec, done map[string]bool) bool {
	for _, in := range s.Inputs {
		if !done[in] {
			return false
		}
	}
	return true
}

// stageInput is the schema s receives: its inputs' (equal) schemas, nil
// when one of them is unknown (a broken stage upstream, already reported)
// or when they differ (reported here).
func stageInput(s *pipeline.StageSpec, out map[string]*pipeline.Schema) (*pipeline.Schema, error) {
	var in *pipeline.Schema
	for _, name := range s.Inputs {
		if out[name] == nil {
			return nil, nil
		}
		if in == nil {
			in = out[name]
		} else if !in.Equal(out[name]) {
			return nil, &pipeline.ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q: inputs %q and %q have different columns (%s) vs (%s); fan-in needs equal schemas, add a map stage to align them", s.Name, s.Inputs[0], name, in, out[name])}
		}
	}
	return in, nil
}

// checkStage opens a source to read its real schema, or checks a
// transform against its input (every field of a map stage on its own), and
// returns the stage's output schema (nil for sinks and on errors).
func checkStage(ctx context.Context, reg *pipeline.Registry, env *pipeline.Env, s *pipeline.StageSpec, in *pipeline.Schema) (*pipeline.Schema, []error) {
	where := func(err error) []error {
		var ce *pipeline.ConfigError
		if errors.As(err, &ce) {
			return []error{err}
		}
		return []error{&pipeline.ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q (%s %q): %v", s.Name, s.Kind, s.Type, err)}}
	}
	switch s.Kind {
	case pipeline.KindSource:
		src, err := reg.OpenSource(ctx, env, s.Type, s.Options)
		if err != nil {
			return nil, where(err)
		}
		schema, err := src.Schema(ctx)
		src.Close()
		if err != nil {
			return nil, where(err)
		}
		return schema, nil
	case pipeline.KindTransform:
		if in == nil {
			return nil, nil
		}
		t, err := reg.NewTransform(env, s.Type, s.Options)
		if err != nil {
			return nil, where(err)
		}
		schema, err := t.Check(in)
		if err != nil {
			if mo, ok := s.Options.(*mapping.Options); ok {
				return nil, mapErrors(in, env, mo)
			}
			return nil, where(err)
		}
		return schema, nil
	}
	return nil, nil
}

// mapErrors compiles each field of a map stage on its own, so that every
// field that does not compile is reported, not just the first.
func mapErrors(in *pipeline.Schema, env *pipeline.Env, o *mapping.Options) []error {
	var errs []error
	for _, f := range o.Fields {
		if _, err := exprenv.New(in, env).Compile(f.Expr); err != nil {
			errs = append(errs, &pipeline.ConfigError{Pos: f.Pos, Msg: fmt.Sprintf("map field %q: %s", f.Name, err)})
		}
	}
	return errs
}

// validateProblem is one problem in `validate --json`.
type validateProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

func writeValidateJSON(w io.Writer, file string, v *validation) {
	type stage struct {
		Name   string `json:"name"`
		Kind   string `json:"kind"`
		Type   string `json:"type"`
		Schema string `json:"schema,omitempty"`
	}
	out := struct {
		File     string            `json:"file"`
		Pipeline string            `json:"pipeline,omitempty"`
		Valid    bool              `json:"valid"`
		Count    int               `json:"count"`
		Problems []validateProblem `json:"problems"`
		Stages   []stage           `json:"stages,omitempty"`
	}{File: file, Valid: len(v.errs) == 0, Count: len(v.errs), Problems: []validateProblem{}}
	for _, e := range v.errs {
		p := validateProblem{File: file, Message: e.Error()}
		var ce *pipeline.ConfigError
		if errors.As(e, &ce) {
			p = validateProblem{File: ce.Pos.File, Line: ce.Pos.Line, Col: ce.Pos.Col, Message: ce.Msg}
		}
		out.Problems = append(out.Problems, p)
	}
	if v.graph != nil {
		out.Pipeline = v.graph.Name
		for _, s := range v.graph.Stages {
			st := stage{Name: s.Name, Kind: string(s.Kind), Type: s.Type}
			if sc := v.schemas[s.Name]; sc != nil {
				st.Schema = sc.String()
			}
			out.Stages = append(out.Stages, st)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}
