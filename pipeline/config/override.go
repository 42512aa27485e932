package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// IsTestFile reports whether a file name is a `bulkflow test` file
// (NAME.test.yaml or NAME.test.yml), which sits beside pipeline files but
// is not one: commands that load every *.yaml of a folder skip it.
func IsTestFile(name string) bool {
	return strings.HasSuffix(name, ".test.yaml") || strings.HasSuffix(name, ".test.yml")
}

// Override sets one option of one stage from the command line, as
// `--set STAGE.KEY=VALUE` does. KEY is an option of the stage's source,
// transform or sink (auth.login_url for a nested one), an output field of
// a map stage (its expression), or "filter" for a filter stage. VALUE is
// read as a YAML value (30s, 500, true, [a, b], or text), decoded and
// validated exactly like the same key written in the file.
type Override struct {
	Stage string
	Key   string // dotted for nested options
	Value string
}

// ParseOverride parses STAGE.KEY=VALUE.
func ParseOverride(s string) (Override, error) {
	lhs, v, ok := strings.Cut(s, "=")
	stage, key, ok2 := strings.Cut(lhs, ".")
	if !ok || !ok2 || stage == "" || key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
		return Override{}, fmt.Errorf("--set %q: want STAGE.KEY=VALUE, e.g. --set load.instance_url=https://acme.my.salesforce.com", lhs)
	}
	return Override{Stage: stage, Key: key, Value: v}, nil
}

// String returns "--set STAGE.KEY" (never the value: it may be a secret).
func (o Override) String() string { return "--set " + o.Stage + "." + o.Key }

// Options change how a pipeline file is loaded.
type Options struct {
	// Set are --set overrides, applied in order.
	Set []Override
	// InstanceURL, when set, replaces the instance_url of every
	// "salesforce" sink (--instance-url).
	InstanceURL string
	// LookupEnv resolves ${NAME} (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
}

// LoadFileWith is LoadFile with overrides.
func LoadFileWith(path string, reg *pipeline.Registry, o Options) (*pipeline.Graph, error) {
	r := LoadAllFile(path, reg, o)
	if len(r.Errs) > 0 {
		return nil, errors.Join(r.Errs...)
	}
	return r.Graph, nil
}

// Result is what LoadAll found: the graph (nil when the file could not be
// parsed at all) and every problem, in file order.
type Result struct {
	Graph *pipeline.Graph
	// Errs are the problems found (mostly *pipeline.ConfigError).
	Errs []error
	// Broken names the stages whose own declaration has a problem; the
	// graph holds them with whatever could be decoded.
	Broken map[string]bool
}

// LoadAllFile reads a pipeline file and loads it with LoadAll.
func LoadAllFile(path string, reg *pipeline.Registry, o Options) *Result {
	f, err := os.Open(path)
	if err != nil {
		return &Result{Errs: []error{fmt.Errorf("read pipeline file: %w", err)}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return &Result{Errs: []error{fmt.Errorf("read pipeline file: %w", err)}}
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	return LoadAll(path, data, reg, o)
}

// overrides holds the --set overrides of one load and which were used.
type overrides struct {
	set  []Override
	used []bool
}

// forStage returns the indexes of the overrides of a stage.
func (ov *overrides) forStage(name string) []int {
	if ov == nil {
		return nil
	}
	var out []int
	for i, o := range ov.set {
		if o.Stage == name {
			out = append(out, i)
			ov.used[i] = true
		}
	}
	return out
}

// overrideValue parses an override's VALUE: flow lists and mappings and
// scalars as YAML, anything else (emulator:, a: b) as text.
func overrideValue(v string) any {
	t := strings.TrimSpace(v)
	if t == "" {
		return ""
	}
	var out any
	if err := yaml.Unmarshal([]byte(v), &out); err != nil {
		return v
	}
	switch out.(type) {
	case map[string]any:
		if t[0] != '{' {
			return v
		}
	case []any:
		if t[0] != '[' {
			return v
		}
	case nil:
		if t != "null" && t != "~" {
			return v
		}
	}
	return out
}

// overrideNode returns the mapping node KEY: VALUE (nested for a dotted
// key) of an override.
func overrideNode(o Override) (ast.Node, error) {
	var v any = overrideValue(o.Value)
	parts := strings.Split(o.Key, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		v = yaml.MapSlice{{Key: parts[i], Value: v}}
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseBytes(b, 0)
	if err != nil {
		return nil, err
	}
	return f.Docs[0].Body, nil
}

// applyOverrides decodes a stage's --set overrides into its plugin
// options, with the same checks as the file's keys.
func (l *loader) applyOverrides(stage, kind, typ string, opts any, what string) {
	var list []Override
	if l.instanceURL != "" && kind == string(pipeline.KindSink) && typ == "salesforce" {
		l.instanceUsed = true
		list = append(list, Override{Stage: stage, Key: "instance_url", Value: l.instanceURL})
	}
	for _, i := range l.over.forStage(stage) {
		list = append(list, l.over.set[i])
	}
	for _, o := range list {
		if len(o.Value) >= redact.MinLen && o.Key != "instance_url" {
			redact.Register(o.Value)
		}
		n, err := overrideNode(o)
		if err != nil {
			l.errs = append(l.errs, &pipeline.ConfigError{Pos: pipeline.Position{File: o.String()}, Msg: "the value is not understood: " + err.Error()})
			continue
		}
		file := o.String()
		if o.Key == "instance_url" && o.Value == l.instanceURL {
			file = "--instance-url"
		}
		// Values of MinLen bytes or more were registered above: the CLI's
		// output masks them, as it does interpolated ones.
		sub := &loader{file: file, reg: l.reg, env: l.env}
		if opts == nil {
			sub.add(n, "%s takes no options", what)
		} else if sub.decode(n, opts, what) {
			sub.errs = nil
		}
		for _, e := range sub.errs {
			var ce *pipeline.ConfigError
			if errors.As(e, &ce) {
				ce.Pos = pipeline.Position{File: file}
			}
			l.errs = append(l.errs, e)
		}
	}
}

// exprOverrides applies a map or filter stage's overrides to its fields:
// --set map.Name=EXPR replaces (or adds) the expression of field Name,
// --set live.filter=EXPR the filter's.
func (l *loader) exprOverrides(stage, typ string, fields []pipeline.ExprField) []pipeline.ExprField {
	for _, i := range l.over.forStage(stage) {
		o := l.over.set[i]
		pos := pipeline.Position{File: o.String()}
		if typ == "filter" && o.Key != "filter" {
			l.errs = append(l.errs, &pipeline.ConfigError{Pos: pos, Msg: fmt.Sprintf("stage %q is a filter: the one key --set takes is filter (--set %s.filter=EXPR)", stage, stage)})
			continue
		}
		replaced := false
		for j := range fields {
			if fields[j].Name == o.Key {
				fields[j].Expr, fields[j].Pos, replaced = o.Value, pos, true
			}
		}
		if !replaced {
			fields = append(fields, pipeline.ExprField{Name: o.Key, Expr: o.Value, Pos: pos})
		}
	}
	return fields
}

// unusedOverrides reports overrides naming no stage.
func (l *loader) unusedOverrides(g *pipeline.Graph) {
	if l.instanceURL != "" && !l.instanceUsed {
		l.errs = append(l.errs, &pipeline.ConfigError{Pos: pipeline.Position{File: "--instance-url"}, Msg: "the pipeline has no salesforce sink to point at it"})
	}
	if l.over == nil {
		return
	}
	var names []string
	for _, s := range g.Stages {
		names = append(names, s.Name)
	}
	for i, o := range l.over.set {
		if !l.over.used[i] {
			l.errs = append(l.errs, &pipeline.ConfigError{Pos: pipeline.Position{File: o.String()}, Msg: fmt.Sprintf("the pipeline has no stage %q%s (stages: %s)", o.Stage, suggest(o.Stage, names), strings.Join(names, ", "))})
		}
	}
}
