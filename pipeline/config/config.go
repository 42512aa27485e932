// Package config loads pipeline files: YAML with line and column positions,
// strict per-plugin decoding, ${ENV} and ${file:PATH} interpolation, and a
// check of the stage graph. Every error names file:line:col and, for
// misspelled keys, suggests the closest known one.
//
// # File shape
//
//	name: accounts                 # required
//	description: ...               # optional
//	dead_letter: out/dead-letter/  # default "dead-letter/"; one folder per run below it
//	lookups:                       # optional tables for lookup(table, key)
//	  countries: {url: pipelines/data/countries.csv, key: code, value: name}
//	stages:
//	  - name: read
//	    source: {type: csv, url: pipelines/data/accounts.csv}
//	  - name: clean
//	    inputs: [read]
//	    filter: 'status != "deleted"'
//	  - name: map
//	    inputs: [clean]
//	    workers: 2               # transform goroutines (default 1)
//	    ordered: true            # keep input order with several workers (default true)
//	    map:
//	      External_Id__c: account_id
//	  - name: write
//	    inputs: [map]
//	    sink: {type: csv, url: out/accounts.csv}
//
// A stage has exactly one of source, transform, map, filter or sink.
// `map:` and `filter:` are shorthands for the "map" and "filter"
// transforms; `transform: {type: NAME, ...}` names any registered one.
//
// # Interpolation
//
// In any string value, ${NAME} is replaced by the environment variable NAME
// (an unset variable is an error), ${NAME:-DEFAULT} by NAME or, when NAME is
// unset, by DEFAULT, ${file:PATH} by the contents of the file PATH (relative
// to the current directory, like every path in a pipeline file; one trailing
// newline removed; a regular file of at most MaxSecretFileSize bytes), and
// $${ by a literal ${.
//
// Every interpolated value of at least redact.MinLen bytes is registered
// with package redact as a secret, wherever it sits, so it is masked in
// errors, logs, reports and dead-letter reasons. ${NAME:public} (or
// ${NAME:public:-DEFAULT}) opts a value that is not secret out, e.g. an
// object name that should stay readable in messages.
//
// # Limits
//
// A pipeline file may be at most MaxFileSize bytes and nest at most
// MaxDepth levels (block indentation, list dashes and flow brackets
// counted together); both are checked before the YAML parser sees the data.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// Limits on pipeline files and on ${file:PATH}, checked before anything is
// parsed or read whole.
const (
	// MaxFileSize is the largest pipeline file accepted (10 MiB; real ones
	// are a few KiB).
	MaxFileSize = 10 << 20
	// MaxDepth is the deepest nesting accepted in a pipeline file (real
	// ones nest fewer than 10 levels; the YAML parser's cost grows steeply
	// with depth).
	MaxDepth = 100
	// MaxSecretFileSize is the largest file ${file:PATH} reads (1 MiB).
	MaxSecretFileSize = 1 << 20
)

// LoadFile reads and decodes a pipeline file with the plugins of reg.
func LoadFile(path string, reg *pipeline.Registry) (*pipeline.Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read pipeline file: %w", err)
	}
	return Load(path, data, reg, os.LookupEnv)
}

// Load decodes pipeline file data; name is the file name used in errors and
// in positions. lookupEnv resolves ${NAME} (os.LookupEnv in
// production). The returned graph has been checked (Graph.Check) but nothing
// has been opened.
func Load(name string, data []byte, reg *pipeline.Registry, lookupEnv func(string) (string, bool)) (*pipeline.Graph, error) {
	r := LoadAll(name, data, reg, Options{LookupEnv: lookupEnv})
	if len(r.Errs) > 0 {
		return nil, errors.Join(r.Errs...)
	}
	return r.Graph, nil
}

// LoadAll is Load that goes on after a problem: it returns every problem
// it finds in one pass (every unknown key, every value of the wrong kind,
// every graph problem), sorted by position, and the graph as far as it
// could be decoded, so that `bulkflow validate` can check the expressions
// of the stages that did decode. o.Set and o.InstanceURL override options.
func LoadAll(name string, data []byte, reg *pipeline.Registry, o Options) *Result {
	sum := sha256.Sum256(data)
	lookupEnv := o.LookupEnv
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	l := &loader{file: name, reg: reg, env: lookupEnv, instanceURL: o.InstanceURL, broken: map[string]bool{}}
	if len(o.Set) > 0 {
		l.over = &overrides{set: o.Set, used: make([]bool, len(o.Set))}
	}
	res := &Result{Broken: l.broken}
	fail := func(err error) *Result { res.Errs = []error{err}; return res }
	if len(data) > MaxFileSize {
		return fail(&pipeline.ConfigError{Pos: pipeline.Position{File: name}, Msg: fmt.Sprintf("the pipeline file is larger than %d MiB (the limit): is it the right file?", MaxFileSize>>20)})
	}
	if err := checkDepth(name, data, MaxDepth); err != nil {
		return fail(err)
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return fail(l.yamlErr(err))
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return fail(&pipeline.ConfigError{Pos: pipeline.Position{File: name, Line: 1, Col: 1}, Msg: "the pipeline file is empty: it needs name and stages"})
	}
	if len(f.Docs) > 1 {
		return fail(l.errAt(f.Docs[1].Body, "only one YAML document is allowed per pipeline file"))
	}
	l.interpolate(f.Docs[0].Body)
	if len(l.errs) > 0 {
		res.Errs = l.errs
		return res
	}
	g := &pipeline.Graph{File: name, FileHash: hex.EncodeToString(sum[:])}
	l.top(f.Docs[0].Body, g)
	fillLookupConnections(g)
	l.unusedOverrides(g)
	if len(g.Stages) > 0 {
		if err := g.Check(); err != nil {
			// "its output goes nowhere" next to another problem is mostly
			// that problem's echo (a misspelled input, a consumer that did
			// not decode): it is left out then.
			var nowhere, other []error
			for _, e := range splitErrors(err) {
				if strings.Contains(e.Error(), "its output goes nowhere") {
					nowhere = append(nowhere, e)
				} else {
					other = append(other, e)
				}
			}
			l.errs = append(l.errs, other...)
			if len(l.errs) == 0 {
				l.errs = nowhere
			}
		}
	}
	res.Graph, res.Errs = g, SortErrors(l.errs)
	return res
}

// splitErrors returns the errors errors.Join joined into err.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// SplitErrors returns the errors errors.Join joined into err (recursively);
// err itself when it joins none, nil for nil.
func SplitErrors(err error) []error {
	if err == nil {
		return nil
	}
	return splitErrors(err)
}

// SortErrors sorts errors by position (file, line, column); errors without
// a position keep their order after those with one. It sorts in place and
// returns errs.
func SortErrors(errs []error) []error {
	pos := func(e error) (pipeline.Position, bool) {
		var ce *pipeline.ConfigError
		if errors.As(e, &ce) && ce.Pos.Line > 0 {
			return ce.Pos, true
		}
		return pipeline.Position{}, false
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := pos(errs[i])
		b, bok := pos(errs[j])
		switch {
		case aok != bok:
			return aok
		case !aok:
			return false
		case a.File != b.File:
			return a.File < b.File
		case a.Line != b.Line:
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return errs
}

type loader struct {
	file    string
	secrets map[ast.Node]bool // scalars whose value came from ${...}
	reg     *pipeline.Registry
	env     func(string) (string, bool)
	errs    []error

	over         *overrides      // --set
	instanceURL  string          // --instance-url
	instanceUsed bool            // a salesforce sink took it
	broken       map[string]bool // stages with a problem of their own
}

func (l *loader) pos(n ast.Node) pipeline.Position {
	if n == nil || n.GetToken() == nil {
		return pipeline.Position{File: l.file}
	}
	p := n.GetToken().Position
	return pipeline.Position{File: l.file, Line: p.Line, Col: p.Column}
}

func (l *loader) errAt(n ast.Node, format string, args ...any) error {
	return &pipeline.ConfigError{Pos: l.pos(n), Msg: fmt.Sprintf(format, args...)}
}

func (l *loader) add(n ast.Node, format string, args ...any) {
	l.errs = append(l.errs, l.errAt(n, format, args...))
}

// yamlErr turns a goccy error into a ConfigError at its token, without the
// source excerpt (which could show interpolated secrets).
func (l *loader) yamlErr(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := pipeline.Position{File: l.file}
		if tk := ye.GetToken(); tk != nil {
			p.Line, p.Col = tk.Position.Line, tk.Position.Column
		}
		return &pipeline.ConfigError{Pos: p, Msg: ye.GetMessage()}
	}
	return &pipeline.ConfigError{Pos: pipeline.Position{File: l.file}, Msg: err.Error()}
}

var interp = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}`)

// interpolate replaces ${...} in every string scalar, in place, and
// registers each interpolated value with package redact.
func (l *loader) interpolate(root ast.Node) {
	ast.Walk(visitFunc(func(n ast.Node) {
		s, ok := n.(*ast.StringNode)
		if !ok || !strings.Contains(s.Value, "${") {
			return
		}
		if l.secrets == nil {
			l.secrets = map[ast.Node]bool{}
		}
		l.secrets[n] = true
		s.Value = interp.ReplaceAllStringFunc(s.Value, func(m string) string {
			if m == "$${" {
				return "${"
			}
			v, public, err := l.resolve(m[2 : len(m)-1])
			if err != nil {
				var unset unsetError
				if errors.As(err, &unset) {
					l.add(n, "%v", err)
				} else {
					l.add(n, "%s: %v", m, err)
				}
				return ""
			}
			if !public {
				redact.Register(v)
			}
			return v
		})
	}), root)
}

// resolve returns the value of one ${ref}: file:PATH, NAME, NAME:-DEFAULT,
// NAME:public or NAME:public:-DEFAULT. Its errors never hold the value.
func (l *loader) resolve(ref string) (v string, public bool, err error) {
	if p, ok := strings.CutPrefix(ref, "file:"); ok {
		v, err := readSecretFile(p)
		return v, false, err
	}
	name, rest, _ := strings.Cut(ref, ":")
	if rest, public = strings.CutPrefix(rest, "public"); public {
		rest, _ = strings.CutPrefix(rest, ":")
	}
	def, hasDef := strings.CutPrefix(rest, "-")
	if !validEnvName(name) {
		return "", false, fmt.Errorf("%q is not a valid variable name (use ${NAME}, ${NAME:-DEFAULT}, ${NAME:public} or ${file:PATH}; write $${ for a literal ${)", name)
	}
	if rest != "" && !hasDef {
		return "", false, fmt.Errorf("%q after the variable name is not understood (use ${NAME:-DEFAULT}, ${NAME:public} or ${NAME:public:-DEFAULT})", ref[len(name):])
	}
	if v, ok := l.env(name); ok {
		return v, public, nil
	}
	if hasDef {
		return def, public, nil
	}
	return "", false, unsetError(name)
}

// unsetError reports an unset environment variable (by name: the message
// needs no other context).
type unsetError string

func (e unsetError) Error() string {
	return fmt.Sprintf("environment variable %s is not set (it is used as ${%s}); export it or use ${file:PATH}", string(e), string(e))
}

// readSecretFile reads a ${file:PATH} file: a regular file of at most
// MaxSecretFileSize bytes (never more than that plus one byte is read), with
// one trailing newline removed.
func readSecretFile(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("cannot read the file: %v", errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is %s, not a regular file; point it at a file holding the value", p, fileKind(fi.Mode()))
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("cannot read the file: %v", errors.Unwrap(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file; point it at a file holding the value", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the file: %v", err)
	}
	if len(b) > MaxSecretFileSize {
		return "", fmt.Errorf("%s is larger than %d MiB, the limit for ${file:PATH}; it should hold one value such as a key or a token", p, MaxSecretFileSize>>20)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

// show quotes a scalar's value for an error message, unless it came from
// interpolation (it may be a secret).
func (l *loader) show(n ast.Node, v string) string {
	if l.secrets[n] {
		return "the interpolated value"
	}
	return strconv.Quote(v)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

type visitFunc func(ast.Node)

func (f visitFunc) Visit(n ast.Node) ast.Visitor { f(n); return f }

// mapping returns n as a mapping node (nil with an error added otherwise).
func (l *loader) mapping(n ast.Node, what string) *ast.MappingNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m
	case *ast.MappingValueNode:
		// A single-key mapping parses as a bare MappingValueNode.
		return &ast.MappingNode{BaseNode: m.BaseNode, Values: []*ast.MappingValueNode{m}}
	}
	l.add(n, "%s must be a mapping (key: value lines), not %s", what, kindOf(n))
	return nil
}

func kindOf(n ast.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Type() {
	case ast.SequenceType:
		return "a list"
	case ast.StringType:
		return "a string"
	case ast.IntegerType, ast.FloatType:
		return "a number"
	case ast.BoolType:
		return "a boolean"
	case ast.NullType:
		return "an empty value"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	}
	return strings.ToLower(n.Type().String())
}

func keyName(mv *ast.MappingValueNode) string {
	if mv.Key == nil {
		return ""
	}
	if s, ok := mv.Key.(*ast.StringNode); ok {
		return s.Value
	}
	return mv.Key.String()
}

// scalar returns a scalar node's text (the string value for strings).
func (l *loader) scalar(n ast.Node, what string) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return v.GetToken().Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	}
	l.add(n, "%s must be a single value, not %s", what, kindOf(n))
	return "", false
}

var topKeys = []string{"name", "description", "dead_letter", "lookups", "schedule", "state", "stages", "tests"}

func (l *loader) unknownKey(mv *ast.MappingValueNode, where string, known []string) {
	k := keyName(mv)
	l.add(mv.Key, "unknown key %q in %s%s (known: %s)", k, where, suggest(k, known), strings.Join(known, ", "))
}

func suggest(got string, known []string) string {
	if s := pipeline.Closest(got, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

func (l *loader) top(body ast.Node, g *pipeline.Graph) {
	m := l.mapping(body, "the pipeline file")
	if m == nil {
		return
	}
	var stages ast.Node
	seen := map[string]bool{}
	for _, mv := range m.Values {
		k := keyName(mv)
		if seen[k] {
			l.add(mv.Key, "key %q appears twice", k)
			continue
		}
		seen[k] = true
		switch k {
		case "name":
			g.Name, _ = l.scalar(mv.Value, "name")
		case "description":
			l.scalar(mv.Value, "description")
		case "dead_letter":
			g.DeadLetter, _ = l.scalar(mv.Value, "dead_letter")
		case "lookups":
			g.Lookups = map[string]pipeline.LookupSpec{}
			if lm := l.mapping(mv.Value, "lookups"); lm != nil {
				for _, e := range lm.Values {
					var spec pipeline.LookupSpec
					if l.decode(e.Value, &spec, fmt.Sprintf("lookup %q", keyName(e))) {
						if (spec.URL == "") == (spec.Query == "") || spec.Key == "" || spec.Value == "" {
							l.add(e.Key, "lookup %q needs key, value and one of url or query (a CSV file, or a SOQL query, "+
								"with its key column and its value column)", keyName(e))
						}
						g.Lookups[keyName(e)] = spec
					}
				}
			}
		case "schedule":
			g.Schedule = l.schedule(mv.Value)
		case "state":
			g.State, _ = l.scalar(mv.Value, "state")
		case "stages":
			stages = mv.Value
		case "tests":
			// Test cases for `bulkflow test` (package pipetest reads them).
		default:
			l.unknownKey(mv, "the pipeline file", topKeys)
		}
	}
	top := pipeline.Position{File: l.file, Line: 1, Col: 1}
	if g.Name == "" && !seen["name"] {
		l.errs = append(l.errs, &pipeline.ConfigError{Pos: top, Msg: "the pipeline has no name: add name: <something> at the top"})
	}
	if stages == nil {
		l.errs = append(l.errs, &pipeline.ConfigError{Pos: top, Msg: "the pipeline has no stages: add a stages: list with at least a source and a sink"})
		return
	}
	seq, ok := stages.(*ast.SequenceNode)
	if !ok {
		l.add(stages, "stages must be a list (lines starting with -), not %s", kindOf(stages))
		return
	}
	for _, sn := range seq.Values {
		st, ok := l.stage(sn)
		if !ok && st.Name != "" && l.broken != nil {
			l.broken[st.Name] = true
		}
		if ok || st.Name != "" && st.Kind != "" {
			g.Stages = append(g.Stages, st)
		}
	}
}

var stageKeys = []string{"name", "inputs", "source", "transform", "map", "filter", "sink", "workers", "ordered", "incremental", "sync"}

func (l *loader) stage(n ast.Node) (pipeline.StageSpec, bool) {
	st := pipeline.StageSpec{Pos: l.pos(n), Workers: 1}
	m := l.mapping(n, "a stage")
	if m == nil {
		return st, false
	}
	if len(m.Values) > 0 {
		st.Pos = l.pos(m.Values[0].Key)
	}
	nerr := len(l.errs)
	var body *ast.MappingValueNode
	ordered := true
	for _, mv := range m.Values {
		switch k := keyName(mv); k {
		case "name":
			st.Name, _ = l.scalar(mv.Value, "name")
		case "inputs":
			switch v := mv.Value.(type) {
			case *ast.SequenceNode:
				for _, in := range v.Values {
					if s, ok := l.scalar(in, "an input"); ok {
						st.Inputs = append(st.Inputs, s)
					}
				}
			case *ast.StringNode:
				st.Inputs = []string{v.Value}
			default:
				l.add(mv.Value, "inputs must be a list of stage names, e.g. inputs: [read]")
			}
		case "workers":
			s, _ := l.scalar(mv.Value, "workers")
			w, err := strconv.Atoi(s)
			if err != nil || w < 1 || w > 256 {
				l.add(mv.Value, "workers must be a whole number from 1 to 256, not %s", l.show(mv.Value, s))
			}
			st.Workers = w
		case "ordered":
			s, _ := l.scalar(mv.Value, "ordered")
			b, err := strconv.ParseBool(s)
			if err != nil {
				l.add(mv.Value, "ordered must be true or false, not %s", l.show(mv.Value, s))
			}
			ordered = b
		case "incremental":
			st.Incremental = l.incremental(mv)
		case "sync":
			st.Sync = l.sync(mv)
		case "source", "transform", "map", "filter", "sink":
			if body != nil {
				l.add(mv.Key, "a stage has exactly one of source, transform, map, filter or sink; this one already has %s", keyName(body))
				continue
			}
			body = mv
		default:
			l.unknownKey(mv, "a stage", stageKeys)
		}
	}
	st.Unordered = !ordered
	if st.Name == "" {
		l.add(n, "the stage has no name: add name: <something>")
	}
	if body == nil {
		l.add(n, "stage %q has none of source, transform, map, filter or sink", st.Name)
		return st, false
	}
	switch keyName(body) {
	case "source":
		st.Kind = pipeline.KindSource
		st.Type, st.Options = l.plugin(body.Value, pipeline.KindSource, st.Name)
	case "sink":
		st.Kind = pipeline.KindSink
		st.Type, st.Options = l.plugin(body.Value, pipeline.KindSink, st.Name)
	case "transform":
		st.Kind = pipeline.KindTransform
		st.Type, st.Options = l.plugin(body.Value, pipeline.KindTransform, st.Name)
	case "map":
		st.Kind, st.Type = pipeline.KindTransform, "map"
		var fields []pipeline.ExprField
		if mm := l.mapping(body.Value, "map"); mm != nil {
			for _, e := range mm.Values {
				expr, ok := l.scalar(e.Value, fmt.Sprintf("the expression of map field %q", keyName(e)))
				if ok {
					fields = append(fields, pipeline.ExprField{Name: keyName(e), Expr: expr, Pos: l.pos(e.Value)})
				}
			}
		}
		st.Options = l.exprOptions(body, "map", l.exprOverrides(st.Name, "map", fields))
	case "filter":
		st.Kind, st.Type = pipeline.KindTransform, "filter"
		if expr, ok := l.scalar(body.Value, "filter"); ok {
			fields := l.exprOverrides(st.Name, "filter", []pipeline.ExprField{{Name: "filter", Expr: expr, Pos: l.pos(body.Value)}})
			st.Options = l.exprOptions(body, "filter", fields)
		}
	}
	if st.Kind != pipeline.KindTransform && (st.Workers != 1 || !ordered) {
		l.add(body.Key, "workers and ordered apply to transform stages only")
	}
	if st.Incremental != nil && st.Kind != pipeline.KindSource {
		l.add(body.Key, "incremental applies to source stages only (stage %q is a %s)", st.Name, st.Kind)
	}
	if st.Sync != nil && st.Kind != pipeline.KindSink {
		l.add(body.Key, "sync applies to sink stages only (stage %q is a %s)", st.Name, st.Kind)
	}
	return st, len(l.errs) == nerr
}

func (l *loader) exprOptions(body *ast.MappingValueNode, typ string, fields []pipeline.ExprField) any {
	opts, err := l.reg.NewOptions(pipeline.KindTransform, typ)
	if err != nil {
		l.add(body.Key, "%v", err)
		return nil
	}
	setter, ok := opts.(pipeline.ExprSetter)
	if !ok {
		l.add(body.Key, "transform %q does not take expressions (a plugin bug)", typ)
		return nil
	}
	setter.SetExprs(fields)
	l.validate(body.Key, opts, typ)
	return opts
}

// plugin decodes {type: NAME, ...options} into the plugin's options, then
// the stage's overrides.
func (l *loader) plugin(n ast.Node, kind pipeline.Kind, stage string) (string, any) {
	m := l.mapping(n, string(kind))
	if m == nil {
		return "", nil
	}
	var typ string
	var typeNode ast.Node
	rest := &ast.MappingNode{BaseNode: m.BaseNode, Start: m.Start, End: m.End, IsFlowStyle: m.IsFlowStyle}
	for _, mv := range m.Values {
		if keyName(mv) == "type" {
			typ, _ = l.scalar(mv.Value, "type")
			typeNode = mv.Value
			continue
		}
		rest.Values = append(rest.Values, mv)
	}
	names := l.reg.Names(kind)
	if typeNode == nil {
		l.add(n, "the %s has no type: add type: <one of %s>", kind, strings.Join(names, ", "))
		return "", nil
	}
	opts, err := l.reg.NewOptions(kind, typ)
	if err != nil {
		l.add(typeNode, "unknown %s type %q%s (registered: %s)", kind, typ, suggest(typ, names), strings.Join(names, ", "))
		return typ, nil
	}
	what := fmt.Sprintf("%s %q", kind, typ)
	if opts == nil {
		if len(rest.Values) > 0 {
			l.add(rest.Values[0].Key, "%s takes no options", what)
		}
		l.applyOverrides(stage, string(kind), typ, nil, what)
		return typ, nil
	}
	if len(rest.Values) > 0 {
		l.decode(rest, opts, what)
	}
	l.applyOverrides(stage, string(kind), typ, opts, what)
	// Validate also after a problem above: the keys that did decode may
	// have problems of their own, and they are reported in the same pass.
	l.validate(typeNode, opts, typ)
	return typ, opts
}

func (l *loader) validate(at ast.Node, opts any, typ string) {
	if v, ok := opts.(pipeline.Validator); ok {
		// One problem per line: Validate may join several.
		for _, err := range SplitErrors(v.Validate()) {
			var ce *pipeline.ConfigError
			if errors.As(err, &ce) {
				l.errs = append(l.errs, err)
				continue
			}
			if strings.HasPrefix(err.Error(), typ+": ") {
				l.add(at, "%v", err)
			} else {
				l.add(at, "%s: %v", typ, err)
			}
		}
	}
}

// decode strictly decodes n into v (a pointer to a struct with yaml tags),
// after checkShape has reported every unknown key and wrongly typed value.
func (l *loader) decode(n ast.Node, v any, what string) bool {
	if ok, good := l.checkShape(n, v, what); !ok {
		if m, isMap := good.(*ast.MappingNode); isMap && len(m.Values) > 0 {
			// The keys without a problem, so that Validate can report
			// what else is wrong (and a value that decodes itself its
			// own problem).
			l.decodeNode(good, v, what)
		}
		return false
	}
	return l.decodeNode(n, v, what)
}

// decodeNode decodes n into v, adding the decoder's error in the user's
// words at the key it is about.
func (l *loader) decodeNode(n ast.Node, v any, what string) bool {
	err := yaml.NodeToValue(n, v, yaml.Strict(), yaml.DisallowUnknownField())
	if err == nil {
		return true
	}
	var uf *yaml.UnknownFieldError
	if errors.As(err, &uf) {
		known := yamlKeys(v)
		key := strings.TrimSuffix(strings.TrimPrefix(uf.Message, `unknown field "`), `"`)
		p := pipeline.Position{File: l.file}
		if uf.Token != nil {
			p.Line, p.Col = uf.Token.Position.Line, uf.Token.Position.Column
		}
		l.errs = append(l.errs, &pipeline.ConfigError{Pos: p, Msg: fmt.Sprintf("unknown option %q for %s%s (known: %s)", key, what, suggest(key, known), strings.Join(known, ", "))})
		return false
	}
	e := l.yamlErr(err).(*pipeline.ConfigError)
	var ye yaml.Error
	if errors.As(err, &ye) && err != error(ye) {
		// A value that decodes itself wrapped the decoder's error
		// ("columns: want a list ...: %w"): keep its words, and the
		// position, which is within the value's own bytes, is not the
		// file's.
		if outer, ok := strings.CutSuffix(err.Error(), ye.Error()); ok {
			e.Msg = outer + ye.GetMessage()
		}
		e.Pos.Line = 0
	}
	e.Msg = what + ": " + userWords(e.Msg)
	if e.Pos.Line == 0 {
		// An error of a value that decodes itself ("columns: ...") has
		// no token: place it at its key, else at the mapping.
		e.Pos = l.pos(n)
		if m, ok := asMapping(n); ok {
			for _, mv := range m.Values {
				if strings.HasPrefix(strings.TrimPrefix(e.Msg, what+": "), keyName(mv)+":") {
					e.Pos = l.pos(mv.Value)
				}
			}
		}
	}
	l.errs = append(l.errs, e)
	return false
}

// yamlKeys lists the yaml keys of a struct (pointer).
func yamlKeys(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		out = append(out, tag)
	}
	return out
}
