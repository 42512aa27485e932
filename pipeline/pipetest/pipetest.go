// Package pipetest runs the test cases written beside a pipeline file:
// input rows for a source stage, and the rows and dead letters expected at
// a later stage. It runs the pipeline's real transforms (and, for a CSV
// source, the real CSV source on the test's rows) and never opens a sink,
// so a test moves no data anywhere. `bulkflow test` is its command line.
//
// # Test files
//
// Tests live in a file NAME.test.yaml beside NAME.yaml, or under a
// `tests:` key of the pipeline file itself:
//
//	pipeline: quickstart.yaml    # the pipeline, relative to this file (default: NAME.yaml)
//	tests:
//	  - name: a US account is mapped
//	    input:
//	      stage: read            # the source stage the rows replace (default: the only source)
//	      rows:                  # or csv: rows.csv (relative to this file)
//	        - {account_id: A-1, company: " Acme ", country: us, status: active}
//	    stage: map               # whose output is checked (default: what the sinks would receive)
//	    expect:
//	      rows:                  # in order; only the fields written are compared
//	        - {External_Id__c: A-1, Name: Acme, BillingCountry: US}
//	      dead_letters:          # in input order
//	        - {row: 2, code: expr_error, field: Active__c}
//	      filtered: 0            # rows a filter dropped (optional)
//
// Input rows are written to a CSV file and read by the pipeline's own CSV
// source options (column types, null_values) when the input stage is a
// CSV source; otherwise by a CSV source typed like the real source's
// schema. Expected values are compared as text (pipeline.Text); null
// matches only a null.
package pipetest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// File is a test file as written.
type File struct {
	// Pipeline is the pipeline file, relative to the test file.
	Pipeline string `yaml:"pipeline"`
	// Tests are the test cases, run in order.
	Tests []Case `yaml:"tests"`
}

// Case is one test case.
type Case struct {
	// Name says what the case checks; required.
	Name string `yaml:"name"`
	// Input is what a source stage yields.
	Input Input `yaml:"input"`
	// Stage is the stage whose output is checked; for a sink, the rows it
	// would receive. Default: the pipeline's sink (its input).
	Stage string `yaml:"stage"`
	// Expect is what Stage should produce.
	Expect Expect `yaml:"expect"`
}

// Input is the rows a test feeds in place of a source stage's.
type Input struct {
	// Stage is the source stage replaced (default: the only source).
	Stage string `yaml:"stage"`
	// Rows are the input rows (field: value), inline.
	Rows []yaml.MapSlice `yaml:"rows"`
	// CSV is a CSV file of input rows, relative to the test file.
	CSV string `yaml:"csv"`
}

// Expect is a case's expected outcome.
type Expect struct {
	// Rows are the expected output rows in order; only the fields written
	// are compared. Nil means "not checked", an empty list means none.
	Rows []yaml.MapSlice `yaml:"rows"`
	// DeadLetters are the rows expected to be dead-lettered on the way, in
	// input order.
	DeadLetters []DeadLetter `yaml:"dead_letters"`
	// Filtered, when set, is how many rows filters dropped.
	Filtered *int `yaml:"filtered"`
}

// DeadLetter is one expected dead letter.
type DeadLetter struct {
	// Row is the 1-based input row (0: not checked).
	Row int `yaml:"row"`
	// Code is the error code, e.g. expr_error (required).
	Code string `yaml:"code"`
	// Field is the field named by the error ("" : not checked).
	Field string `yaml:"field"`
	// Stage is the stage that dead-lettered the row ("" : not checked).
	Stage string `yaml:"stage"`
}

// Result is the outcome of one case.
type Result struct {
	// File is the test file, Pipeline the pipeline file it tests.
	File     string `json:"file"`
	Pipeline string `json:"pipeline"`
	// Name is the case's name.
	Name string `json:"name"`
	// Passed is true when Diffs is empty.
	Passed bool `json:"passed"`
	// Diffs are the differences, each naming the row and field.
	Diffs []string `json:"diffs,omitempty"`
	// Seconds is how long the case took (set by the caller).
	Seconds float64 `json:"seconds"`
}

// BadFileError is a test file that cannot be run: unreadable, malformed,
// or naming stages or fields the pipeline does not have.
type BadFileError struct {
	File string
	Err  error
}

// Error returns "FILE: reason".
func (e *BadFileError) Error() string { return e.File + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *BadFileError) Unwrap() error { return e.Err }

// Options tune how a test file's pipeline is loaded.
type Options struct {
	// Registry holds the plugins (default pipeline.DefaultRegistry()).
	Registry *pipeline.Registry
	// Load loads a pipeline file (default config.LoadFile); the CLI passes
	// one that applies --set overrides.
	Load func(path string, reg *pipeline.Registry) (*pipeline.Graph, error)
}

// Find returns the test files of path: path itself when it is a file (a
// NAME.test.yaml, or a pipeline file with a tests: key or a NAME.test.yaml
// beside it), or every such file in a directory (not recursive), sorted.
func Find(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		if config.IsTestFile(path) {
			return []string{path}, nil
		}
		var out []string
		if hasTestsKey(path) {
			out = append(out, path)
		}
		if side := strings.TrimSuffix(path, filepath.Ext(path)) + ".test.yaml"; fileExists(side) {
			out = append(out, side)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s has no tests: add a tests: list to it or write %s (see bulkflow test --help)", path, filepath.Base(strings.TrimSuffix(path, filepath.Ext(path))+".test.yaml"))
		}
		return out, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("cannot list %s: %w", path, errors.Unwrap(err))
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(path, e.Name())
		switch {
		case e.IsDir():
		case config.IsTestFile(p):
			out = append(out, p)
		case (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) && hasTestsKey(p):
			out = append(out, p)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("no test files in %s (NAME.test.yaml beside NAME.yaml, or a tests: list in a pipeline file)", path)
	}
	return out, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// hasTestsKey reports whether a YAML file has a top-level tests: key.
func hasTestsKey(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	var top map[string]any
	if yaml.Unmarshal(b, &top) != nil {
		return false
	}
	_, ok := top["tests"]
	return ok
}

// RunFile runs every case of a test file (or of a pipeline file's tests:
// key). It returns a *BadFileError when the file cannot be run at all.
func RunFile(ctx context.Context, path string, o Options) ([]Result, error) {
	if o.Registry == nil {
		o.Registry = pipeline.DefaultRegistry()
	}
	if o.Load == nil {
		o.Load = config.LoadFile
	}
	bad := func(err error) ([]Result, error) { return nil, &BadFileError{File: path, Err: err} }
	data, err := os.ReadFile(path)
	if err != nil {
		return bad(fmt.Errorf("cannot read the test file: %w", errors.Unwrap(err)))
	}
	pipeFile := path
	var tf File
	if config.IsTestFile(path) {
		if err := yaml.UnmarshalWithOptions(data, &tf, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
			return bad(yamlError(err))
		}
		if tf.Pipeline == "" {
			base := strings.TrimSuffix(strings.TrimSuffix(path, ".yml"), ".yaml")
			tf.Pipeline = filepath.Base(strings.TrimSuffix(base, ".test")) + ".yaml"
		}
		pipeFile = filepath.Join(filepath.Dir(path), tf.Pipeline)
	} else {
		var inline struct {
			Tests []Case `yaml:"tests"`
		}
		if err := yaml.UnmarshalWithOptions(data, &inline); err != nil {
			return bad(yamlError(err))
		}
		// Strict decoding of the tests alone: the rest is the pipeline's.
		var raw struct {
			Tests any `yaml:"tests"`
		}
		_ = yaml.Unmarshal(data, &raw)
		b, _ := yaml.Marshal(raw.Tests)
		if err := yaml.UnmarshalWithOptions(b, &inline.Tests, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
			return bad(fmt.Errorf("tests: %w", yamlError(err)))
		}
		tf.Tests = inline.Tests
	}
	if len(tf.Tests) == 0 {
		return bad(errors.New("no test cases: add at least one under the tests key"))
	}
	g, err := o.Load(pipeFile, o.Registry)
	if err != nil {
		return bad(fmt.Errorf("pipeline %s is invalid (run bulkflow validate %s): %w", pipeFile, pipeFile, err))
	}
	dir := filepath.Dir(path)
	var results []Result
	for i, c := range tf.Tests {
		if c.Name == "" {
			return bad(fmt.Errorf("test %d has no name: add name: <what it checks>", i+1))
		}
		r, err := runCase(ctx, o.Registry, g, dir, &c)
		if err != nil {
			return bad(fmt.Errorf("test %q: %w", c.Name, err))
		}
		r.File, r.Pipeline = path, pipeFile
		results = append(results, *r)
	}
	return results, nil
}

// yamlError shortens a goccy error to its first line with its position,
// without Go type names.
func yamlError(err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg := ye.GetMessage()
		if tk := ye.GetToken(); tk != nil {
			return fmt.Errorf("line %d, column %d: %s", tk.Position.Line, tk.Position.Column, friendly(msg))
		}
		return errors.New(friendly(msg))
	}
	return errors.New(friendly(strings.SplitN(err.Error(), "\n", 2)[0]))
}

// friendly rewrites goccy's unknown-field message in the test file's terms.
func friendly(msg string) string {
	if k, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return "unknown key " + k + " (test files know pipeline, tests, and per test: name, input {stage, rows, csv}, stage, expect {rows, dead_letters {row, code, field, stage}, filtered})"
	}
	return msg
}

// runCase runs one case against graph g.
func runCase(ctx context.Context, reg *pipeline.Registry, g *pipeline.Graph, dir string, c *Case) (*Result, error) {
	res := &Result{Name: c.Name}
	byName := map[string]*pipeline.StageSpec{}
	var names, sources, sinks []string
	for i := range g.Stages {
		s := &g.Stages[i]
		byName[s.Name] = s
		names = append(names, s.Name)
		switch s.Kind {
		case pipeline.KindSource:
			sources = append(sources, s.Name)
		case pipeline.KindSink:
			sinks = append(sinks, s.Name)
		}
	}
	// The input stage.
	in := c.Input.Stage
	if in == "" {
		if len(sources) != 1 {
			return nil, fmt.Errorf("the pipeline has %d sources (%s): say which one the rows replace with input: {stage: NAME}", len(sources), strings.Join(sources, ", "))
		}
		in = sources[0]
	}
	src, ok := byName[in]
	if !ok || src.Kind != pipeline.KindSource {
		return nil, fmt.Errorf("input stage %q is not a source stage of the pipeline%s (sources: %s)", in, suggest(in, sources), strings.Join(sources, ", "))
	}
	// The checked stage.
	target := c.Stage
	if target == "" {
		if len(sinks) != 1 {
			return nil, fmt.Errorf("the pipeline has %d sinks (%s): say which stage's output to check with stage: NAME", len(sinks), strings.Join(sinks, ", "))
		}
		target = sinks[0]
	}
	if _, ok := byName[target]; !ok {
		return nil, fmt.Errorf("stage %q is not in the pipeline%s (stages: %s)", target, suggest(target, names), strings.Join(names, ", "))
	}
	if (c.Input.Rows == nil) == (c.Input.CSV == "") {
		return nil, errors.New("input needs exactly one of rows (inline) or csv (a file)")
	}
	env := &pipeline.Env{RunID: "test", Pipeline: g.Name, Lookups: g.Lookups, BaseDir: g.BaseDir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tmp, err := os.MkdirTemp("", "bulkflow-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out, err := execute(ctx, reg, g, env, src, target, c, dir, tmp)
	if err != nil {
		return nil, err
	}
	res.Diffs = compare(c, target, out)
	res.Passed = len(res.Diffs) == 0
	return res, nil
}

// outcome is what a case produced.
type outcome struct {
	schema   *pipeline.Schema // of the target's output (a sink: its input)
	rows     []pipeline.Row
	origins  []pipeline.Origin
	dead     []deadLetter
	filtered int
}

type deadLetter struct {
	row   int
	stage string
	err   *pipeline.RowError
	msg   string
}

// inputSource returns the options of the CSV source that reads the case's
// input: the real source's when it is a CSV source, else one typed like
// the real source's schema (all strings when it cannot be opened).
func inputSource(ctx context.Context, reg *pipeline.Registry, env *pipeline.Env, src *pipeline.StageSpec, c *Case, dir, tmp string) (*csvsource.Options, error) {
	opts, err := reg.NewOptions(pipeline.KindSource, "csv")
	if err != nil {
		return nil, err
	}
	co := opts.(*csvsource.Options)
	if real, ok := src.Options.(*csvsource.Options); ok {
		cp := *real
		co = &cp
	} else if s, err := reg.OpenSource(ctx, env, src.Type, src.Options); err == nil {
		schema, err := s.Schema(ctx)
		s.Close()
		if err == nil {
			for _, f := range schema.Fields() {
				if f.Type != pipeline.TypeString && f.Type != pipeline.TypeAny {
					co.Columns = append(co.Columns, csvsource.Column{Name: f.Name, Type: f.Type.String()})
				}
			}
		}
	}
	if c.Input.CSV != "" {
		co.URL = filepath.Join(dir, c.Input.CSV)
		return co, nil
	}
	// Inline rows: a standard CSV file with the union of the rows' fields.
	header := true
	co.Delimiter, co.Quote, co.Header = ",", `"`, &header
	co.OnError = csvsource.OnErrorDeadLetter
	var cols []string
	seen := map[string]bool{}
	for _, r := range c.Input.Rows {
		for _, it := range r {
			k := fmt.Sprint(it.Key)
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	// Typed columns the rows do not have would make the header check fail.
	var keep csvsource.Columns
	for _, col := range co.Columns {
		if seen[col.Name] {
			keep = append(keep, col)
		}
	}
	co.Columns = keep
	p := filepath.Join(tmp, "input.csv")
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	w := csv.NewWriter(f)
	w.Write(cols)
	for _, r := range c.Input.Rows {
		rec := make([]string, len(cols))
		for _, it := range r {
			k := fmt.Sprint(it.Key)
			for j, name := range cols {
				if name == k {
					rec[j] = scalarText(it.Value)
				}
			}
		}
		w.Write(rec)
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		return nil, err
	}
	co.URL = p
	return co, nil
}

// scalarText is the text of a YAML value as a CSV cell or an expected
// value: nil is empty.
func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case uint64:
		return strconv.FormatUint(x, 10)
	case int:
		return strconv.Itoa(x)
	}
	return pipeline.Text(v)
}

// execute reads the input through a CSV source and runs every transform
// between it and target, one batch at a time, in graph order.
func execute(ctx context.Context, reg *pipeline.Registry, g *pipeline.Graph, env *pipeline.Env, src *pipeline.StageSpec, target string, c *Case, dir, tmp string) (*outcome, error) {
	co, err := inputSource(ctx, reg, env, src, c, dir, tmp)
	if err != nil {
		return nil, err
	}
	if err := co.Validate(); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	s, err := reg.OpenSource(ctx, env, "csv", co)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	defer s.Close()
	schema, err := s.Schema(ctx)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	o := &outcome{}
	settle := func(stage string, drops []pipeline.Drop) {
		for _, d := range drops {
			if d.Err == nil {
				o.filtered++
				continue
			}
			msg := d.Err.Error()
			if c.Input.CSV == "" {
				msg = strings.ReplaceAll(msg, co.URL, "input")
			}
			dl := deadLetter{row: inputRow(d.Origin), stage: stage, msg: msg}
			if !errors.As(d.Err, &dl.err) {
				dl.err = &pipeline.RowError{Code: pipeline.CodeRowFailed, Err: d.Err}
			}
			o.dead = append(o.dead, dl)
		}
	}
	in := pipeline.NewBatch(schema, 0)
	for {
		b, err := s.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		settle(src.Name, b.Drops())
		for i := range b.Len() {
			in.Append(b.Row(i), b.Origin(i))
		}
	}
	outputs := map[string]*pipeline.Batch{src.Name: in}
	for _, st := range downstream(g, src.Name, target) {
		var inb *pipeline.Batch
		for _, name := range st.Inputs {
			b, ok := outputs[name]
			if !ok {
				continue // an input the test does not feed
			}
			if inb == nil {
				inb = pipeline.NewBatch(b.Schema(), b.Len())
			} else if !inb.Schema().Equal(b.Schema()) {
				return nil, fmt.Errorf("stage %q: inputs have different columns", st.Name)
			}
			for i := range b.Len() {
				inb.Append(b.Row(i), b.Origin(i))
			}
		}
		if inb == nil {
			continue
		}
		if st.Kind == pipeline.KindSink {
			outputs[st.Name] = inb
			continue
		}
		t, err := reg.NewTransform(env, st.Type, st.Options)
		if err != nil {
			return nil, fmt.Errorf("stage %q: %w", st.Name, err)
		}
		if _, err := t.Check(inb.Schema()); err != nil {
			return nil, fmt.Errorf("stage %q: %w", st.Name, err)
		}
		ob, err := t.Apply(ctx, inb)
		if err != nil {
			return nil, fmt.Errorf("stage %q failed: %w", st.Name, err)
		}
		settle(st.Name, ob.Drops())
		outputs[st.Name] = ob
	}
	b, ok := outputs[target]
	if !ok {
		return nil, fmt.Errorf("stage %q is not fed by input stage %q: no row of the input reaches it", target, src.Name)
	}
	o.schema = b.Schema()
	for i := range b.Len() {
		o.rows = append(o.rows, b.Row(i))
		o.origins = append(o.origins, b.Origin(i))
	}
	sort.SliceStable(o.dead, func(i, j int) bool { return o.dead[i].row < o.dead[j].row })
	return o, nil
}

// inputRow is the 1-based input row of an origin.
func inputRow(o pipeline.Origin) int {
	if o.Row > 0 {
		return int(o.Row)
	}
	if o.Line > 1 {
		return int(o.Line - 1)
	}
	return 0
}

// downstream returns the stages after from up to and including target, in
// an order where every stage follows its inputs.
func downstream(g *pipeline.Graph, from, target string) []*pipeline.StageSpec {
	done := map[string]bool{from: true}
	var order []*pipeline.StageSpec
	for progress := true; progress && !done[target]; {
		progress = false
		for i := range g.Stages {
			st := &g.Stages[i]
			if done[st.Name] || st.Kind == pipeline.KindSource {
				continue
			}
			ready, fed := true, false
			for _, in := range st.Inputs {
				if done[in] {
					fed = true
				} else if g.Stages[indexOf(g, in)].Kind != pipeline.KindSource {
					ready = false
				}
			}
			if ready && fed {
				done[st.Name] = true
				order = append(order, st)
				progress = true
			}
		}
	}
	return order
}

func indexOf(g *pipeline.Graph, name string) int {
	for i := range g.Stages {
		if g.Stages[i].Name == name {
			return i
		}
	}
	return 0
}

func suggest(got string, known []string) string {
	if s := pipeline.Closest(got, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// maxShown is how many unexpected rows (and dead letters) a failure lists.
const maxShown = 5

// compare returns the differences between what a case expected and what
// it got, each naming the row and field.
func compare(c *Case, target string, o *outcome) []string {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	if c.Expect.Rows != nil {
		for i, want := range c.Expect.Rows {
			if i >= len(o.rows) {
				add("row %d: missing: stage %q produced %d rows, the test expects %d", i+1, target, len(o.rows), len(c.Expect.Rows))
				break
			}
			for _, it := range want {
				field := fmt.Sprint(it.Key)
				j := o.schema.Index(field)
				if j < 0 {
					add("row %d: stage %q has no field %q%s (fields: %s)", i+1, target, field, suggest(field, o.schema.Names()), strings.Join(o.schema.Names(), ", "))
					continue
				}
				got := o.rows[i][j]
				if !sameValue(it.Value, got) {
					add("row %d field %s: want %s, got %s%s", i+1, field, show(it.Value), show(got), rowNote(o, i))
				}
			}
		}
		for i := len(c.Expect.Rows); i < len(o.rows); i++ {
			if i == len(c.Expect.Rows)+maxShown {
				add("... and %d more unexpected rows", len(o.rows)-i)
				break
			}
			add("row %d: unexpected: stage %q produced %d rows, the test expects %d; the extra row is %s", i+1, target, len(o.rows), len(c.Expect.Rows), showRow(o.schema, o.rows[i]))
		}
	}
	want := c.Expect.DeadLetters
	for i, w := range want {
		if i >= len(o.dead) {
			add("dead letter %d: missing: want %s, but %d rows were dead-lettered", i+1, showWantDL(w), len(o.dead))
			continue
		}
		got := o.dead[i]
		var bad []string
		if w.Row != 0 && w.Row != got.row {
			bad = append(bad, fmt.Sprintf("row: want %d, got %d", w.Row, got.row))
		}
		if w.Code != got.err.Code {
			bad = append(bad, fmt.Sprintf("code: want %s, got %s", w.Code, got.err.Code))
		}
		if w.Field != "" && w.Field != got.err.Field {
			bad = append(bad, fmt.Sprintf("field: want %s, got %q", w.Field, got.err.Field))
		}
		if w.Stage != "" && w.Stage != got.stage {
			bad = append(bad, fmt.Sprintf("stage: want %s, got %s", w.Stage, got.stage))
		}
		if len(bad) > 0 {
			add("dead letter %d (input row %d): %s (reason: %s)", i+1, got.row, strings.Join(bad, "; "), got.msg)
		}
	}
	for i := len(want); i < len(o.dead); i++ {
		if i == len(want)+maxShown {
			add("... and %d more unexpected dead letters", len(o.dead)-i)
			break
		}
		d := o.dead[i]
		add("dead letter %d: unexpected: input row %d, stage %s, code %s, field %q: %s", i+1, d.row, d.stage, d.err.Code, d.err.Field, d.msg)
	}
	if f := c.Expect.Filtered; f != nil && *f != o.filtered {
		add("filtered: want %d rows, got %d", *f, o.filtered)
	}
	return diffs
}

func rowNote(o *outcome, i int) string {
	if r := inputRow(o.origins[i]); r > 0 {
		return fmt.Sprintf(" (from input row %d)", r)
	}
	return ""
}

// sameValue compares an expected YAML value with a produced one as text;
// null matches only null.
func sameValue(want, got any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	if reflect.TypeOf(want).Kind() == reflect.Float64 {
		if g, ok := got.(float64); ok {
			return g == want.(float64)
		}
	}
	return scalarText(want) == pipeline.Text(got)
}

func show(v any) string {
	if v == nil {
		return "null"
	}
	return strconv.Quote(scalarText(v))
}

func showRow(s *pipeline.Schema, r pipeline.Row) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = s.Field(i).Name + ": " + show(v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func showWantDL(w DeadLetter) string {
	s := "code " + w.Code
	if w.Row > 0 {
		s = fmt.Sprintf("input row %d, %s", w.Row, s)
	}
	if w.Field != "" {
		s += ", field " + w.Field
	}
	return s
}
