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
		printConfigErr(stderr, e)
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
	where := func(s *pipeline.StageSpec, err error) error {
		var ce *pipeline.ConfigError
		if errors.As(err, &ce) {
			return err
		}
		return &pipeline.ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q (%s %q): %v", s.Name, s.Kind, s.Type, err)}
	}
	for progress := true; progress; {
		progress = false
		for i := range g.Stages {
			s := &g.Stages[i]
			if done[s.Name] {
				continue
			}
			ready := true
			for _, in := range s.Inputs {
				ready = ready && done[in]
			}
			if !ready {
				continue
			}
			done[s.Name], progress = true, true
			if broken[s.Name] || s.Options == nil && s.Kind != pipeline.KindSink {
				continue
			}
			var in *pipeline.Schema
			for _, name := range s.Inputs {
				if out[name] == nil {
					in = nil
					break
				}
				if in == nil {
					in = out[name]
				} else if !in.Equal(out[name]) {
					errs = append(errs, &pipeline.ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q: inputs %q and %q have different columns (%s) vs (%s); fan-in needs equal schemas, add a map stage to align them", s.Name, s.Inputs[0], name, in, out[name])})
					in = nil
					break
				}
			}
			switch s.Kind {
			case pipeline.KindSource:
				src, err := reg.OpenSource(ctx, env, s.Type, s.Options)
				if err != nil {
					errs = append(errs, where(s, err))
					continue
				}
				schema, err := src.Schema(ctx)
				src.Close()
				if err != nil {
					errs = append(errs, where(s, err))
					continue
				}
				out[s.Name] = schema
			case pipeline.KindTransform:
				if in == nil {
					continue
				}
				t, err := reg.NewTransform(env, s.Type, s.Options)
				if err != nil {
					errs = append(errs, where(s, err))
					continue
				}
				schema, err := t.Check(in)
				if err != nil {
					if mo, ok := s.Options.(*mapping.Options); ok {
						errs = append(errs, mapErrors(in, env, mo)...)
					} else {
						errs = append(errs, where(s, err))
					}
					continue
				}
				out[s.Name] = schema
			}
		}
	}
	return out, errs
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
