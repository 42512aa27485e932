package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// StageSpec is one stage of a Graph as declared in a pipeline file: exactly
// one of a source, a transform or a sink, named, with the stages it reads.
type StageSpec struct {
	// Name is unique within the graph.
	Name string
	// Kind says whether the stage is a source, transform or sink.
	Kind Kind
	// Type is the registered plugin type name ("csv", "map", ...).
	Type string
	// Options is the plugin's decoded options (from Spec.NewOptions).
	Options any
	// Inputs names the stages this stage reads (none for sources). Several
	// inputs are merged (fan-in); their schemas must be equal.
	Inputs []string
	// Workers is how many goroutines run a transform (default 1).
	Workers int
	// Unordered lets a transform with several workers emit batches as they
	// finish instead of in input order.
	Unordered bool
	// Incremental, on a source stage, reads only rows newer than the last
	// committed watermark.
	Incremental *Incremental
	// Sync, on a sink stage, sends only new and changed rows.
	Sync *SyncSpec
	// Pos is where the stage is declared, for error messages.
	Pos Position
}

// Graph is a whole pipeline: its stages and run-level settings. It is what
// the config loader produces and what Prepare checks.
type Graph struct {
	// Name is the pipeline's name.
	Name string
	// File is the pipeline file's path, FileHash its sha256 (hex).
	File     string
	FileHash string
	// Stages in declaration order.
	Stages []StageSpec
	// DeadLetter is the location prefix dead letters are written under
	// (one folder per run).
	DeadLetter string
	// Lookups are lookup tables for expressions.
	Lookups map[string]LookupSpec
	// BaseDir resolves relative paths.
	BaseDir string
	// Schedule is when `bulkflow serve` runs the pipeline (nil: never).
	Schedule *Schedule
	// State is where the pipeline's state (watermarks, sync manifests, run
	// history, lease) lives: a directory or blob URL ("" = the default).
	State string
}

// Check validates the graph's shape without opening anything: unique names,
// known inputs, sources without inputs, every other stage with inputs, no
// stage reading a sink, no cycle, and no stage whose output goes nowhere.
func (g *Graph) Check() error {
	byName := map[string]*StageSpec{}
	var errs []error
	bad := func(s *StageSpec, format string, args ...any) {
		errs = append(errs, &ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q: ", s.Name) + fmt.Sprintf(format, args...)})
	}
	if len(g.Stages) == 0 {
		return &ConfigError{Pos: Position{File: g.File}, Msg: "the pipeline has no stages"}
	}
	for i := range g.Stages {
		s := &g.Stages[i]
		if s.Name == "" {
			errs = append(errs, &ConfigError{Pos: s.Pos, Msg: "stage has no name"})
			continue
		}
		if prev, dup := byName[s.Name]; dup {
			bad(s, "name already used by the stage at %s", prev.Pos)
			continue
		}
		byName[s.Name] = s
	}
	consumers := map[string]int{}
	for i := range g.Stages {
		s := &g.Stages[i]
		switch {
		case s.Kind == KindSource && len(s.Inputs) > 0:
			bad(s, "a source stage takes no inputs")
		case s.Kind != KindSource && len(s.Inputs) == 0:
			bad(s, "a %s stage needs inputs: list the stages it reads, e.g. inputs: [read]", s.Kind)
		}
		seen := map[string]bool{}
		for _, in := range s.Inputs {
			src, ok := byName[in]
			switch {
			case !ok:
				bad(s, "unknown input %q%s", in, didYouMean(in, keys(byName)))
			case seen[in]:
				bad(s, "input %q listed twice", in)
			case in == s.Name:
				bad(s, "a stage cannot read itself")
			case src.Kind == KindSink:
				bad(s, "input %q is a sink; sinks have no output", in)
			}
			seen[in] = true
			consumers[in]++
		}
	}
	for i := range g.Stages {
		s := &g.Stages[i]
		if s.Kind != KindSink && s.Name != "" && consumers[s.Name] == 0 {
			bad(s, "its output goes nowhere: add a stage that lists %q in its inputs (every row must end in a sink)", s.Name)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if _, err := g.order(); err != nil {
		return err
	}
	readersOf, inputsOf := g.edges()
	for i := range g.Stages {
		s := &g.Stages[i]
		if s.Kind != KindSource || s.Incremental == nil || s.Incremental.Lookback == "" {
			continue
		}
		for _, sink := range reachable(s, KindSink, readersOf) {
			if sink.Sync == nil {
				errs = append(errs, &ConfigError{Pos: s.Incremental.Pos, Msg: fmt.Sprintf("stage %q: incremental lookback reads again rows already sent, and sink stage %q has no sync: it would send them again "+
					"(a second record each for an insert); give it sync: {mode: changed, key: ...}, whose manifest filters the rows it already holds", s.Name, sink.Name)})
			}
		}
	}
	// Each sink keeps the ledger of a run in LOCATION/FOLDER/RUN_ID/: two
	// sinks with one location would write one ledger, their chunk records
	// under the same keys (with other options, the second to open refuses
	// the run as started with other sink options).
	ledgers := map[string]*StageSpec{}
	for i := range g.Stages {
		s := &g.Stages[i]
		l, ok := s.Options.(RunLedger)
		if s.Kind != KindSink || !ok || l.LedgerLocation() == "" {
			continue
		}
		at := strings.TrimSuffix(l.LedgerLocation(), "/")
		if !strings.Contains(at, "://") {
			if !filepath.IsAbs(at) {
				at = filepath.Join(g.BaseDir, at)
			}
			at = filepath.Clean(at)
		}
		at += "\x00" + l.LedgerFolder(g.Name)
		if prev := ledgers[at]; prev != nil {
			errs = append(errs, &ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q: keeps its run ledger where sink stage %q does (%s): a run would write "+
				"one ledger for both sinks and mix their records (a resume could take one sink's jobs for the other's); give each sink "+
				"its own ledger: folder (e.g. ledger: .bulkflow/ledger/%s/)",
				s.Name, prev.Name, l.LedgerLocation(), s.Name)})
			continue
		}
		ledgers[at] = s
	}
	for i := range g.Stages {
		s := &g.Stages[i]
		if s.Kind != KindSink || s.Sync == nil || !s.Sync.DeleteMissing {
			continue
		}
		for _, src := range reachable(s, KindSource, inputsOf) {
			if src.Incremental != nil {
				errs = append(errs, &ConfigError{Pos: s.Sync.Pos, Msg: fmt.Sprintf("stage %q: sync delete_missing cannot be used with the incremental source %q: "+
					"an incremental run reads only rows past the watermark, so every key it did not read would look deleted and be deleted; "+
					"drop incremental (the sync already sends only new and changed rows) or delete_missing", s.Name, src.Name)})
			}
		}
	}
	return errors.Join(errs...)
}

// edges returns, for reachable, the stages that read a stage and the
// stages it reads. The graph's inputs must name its stages.
func (g *Graph) edges() (readersOf, inputsOf func(*StageSpec) []*StageSpec) {
	readers := map[string][]*StageSpec{}
	byName := map[string]*StageSpec{}
	for i := range g.Stages {
		byName[g.Stages[i].Name] = &g.Stages[i]
		for _, in := range g.Stages[i].Inputs {
			readers[in] = append(readers[in], &g.Stages[i])
		}
	}
	readersOf = func(st *StageSpec) []*StageSpec { return readers[st.Name] }
	inputsOf = func(st *StageSpec) []*StageSpec {
		var ins []*StageSpec
		for _, in := range st.Inputs {
			ins = append(ins, byName[in])
		}
		return ins
	}
	return readersOf, inputsOf
}

// Downstream returns the stages of kind (any kind when kind is "") that
// stage s of a checked graph feeds, directly or through other stages, s
// included.
func (g *Graph) Downstream(s *StageSpec, kind Kind) []*StageSpec {
	readersOf, _ := g.edges()
	return reachable(s, kind, readersOf)
}

// Upstream returns the stages of kind (any kind when kind is "") that
// feed stage s of a checked graph, directly or through other stages, s
// included.
func (g *Graph) Upstream(s *StageSpec, kind Kind) []*StageSpec {
	_, inputsOf := g.edges()
	return reachable(s, kind, inputsOf)
}

// reachable returns the stages of kind (of any kind when kind is "") that
// s reaches by next (its inputs, or the stages that read it), each once, s
// included. The graph must have no cycle.
func reachable(s *StageSpec, kind Kind, next func(*StageSpec) []*StageSpec) []*StageSpec {
	var out []*StageSpec
	seen := map[string]bool{}
	var walk func(*StageSpec)
	walk = func(st *StageSpec) {
		if seen[st.Name] {
			return
		}
		seen[st.Name] = true
		if kind == "" || st.Kind == kind {
			out = append(out, st)
		}
		for _, n := range next(st) {
			walk(n)
		}
	}
	walk(s)
	return out
}

// order returns the stages in topological order, or an error naming a cycle.
func (g *Graph) order() ([]*StageSpec, error) {
	byName := map[string]*StageSpec{}
	for i := range g.Stages {
		byName[g.Stages[i].Name] = &g.Stages[i]
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var out []*StageSpec
	var path []string
	var visit func(s *StageSpec) error
	visit = func(s *StageSpec) error {
		switch color[s.Name] {
		case grey:
			i := 0
			for j, n := range path {
				if n == s.Name {
					i = j
				}
			}
			cycle := append(append([]string{}, path[i:]...), s.Name)
			return &ConfigError{Pos: s.Pos, Msg: "the stages form a cycle: " + strings.Join(cycle, " -> ")}
		case black:
			return nil
		}
		color[s.Name] = grey
		path = append(path, s.Name)
		for _, in := range s.Inputs {
			if err := visit(byName[in]); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		color[s.Name] = black
		out = append(out, s)
		return nil
	}
	for i := range g.Stages {
		if err := visit(&g.Stages[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Plan is a checked graph ready to run: sources are open, transforms are
// built and checked, and every stage's input and output schema is known.
// A Plan runs once; Close releases it if it is not run.
type Plan struct {
	graph  *Graph
	reg    *Registry
	env    *Env
	stages []*planStage // topological order
	byName map[string]*planStage
}

type planStage struct {
	spec      *StageSpec
	in        *Schema // nil for sources
	out       *Schema // nil for sinks
	source    Source
	transform Transform
	consumers []*planStage
}

// Prepare checks the graph and readies it to run: it opens every source and
// reads its schema, builds every transform and checks it against its input
// schema (compiling expressions), and checks that fan-in inputs agree.
// Sinks are not opened. Errors name the pipeline file position of the stage
// at fault. The returned Plan must be run or closed.
func Prepare(ctx context.Context, reg *Registry, g *Graph, env *Env) (*Plan, error) {
	if err := g.Check(); err != nil {
		return nil, err
	}
	ordered, err := g.order()
	if err != nil {
		return nil, err
	}
	p := &Plan{graph: g, reg: reg, env: env, byName: map[string]*planStage{}}
	fail := func(err error) (*Plan, error) {
		p.Close()
		return nil, err
	}
	for _, s := range ordered {
		ps := &planStage{spec: s}
		p.stages = append(p.stages, ps)
		p.byName[s.Name] = ps
		for i, in := range s.Inputs {
			up := p.byName[in]
			up.consumers = append(up.consumers, ps)
			if i == 0 {
				ps.in = up.out
			} else if !ps.in.Equal(up.out) {
				return fail(&ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q: inputs %q and %q have different columns (%s) vs (%s); fan-in needs equal schemas, add a map stage to align them",
					s.Name, s.Inputs[0], in, ps.in, up.out)})
			}
		}
		where := func(err error) error {
			var ce *ConfigError
			if errors.As(err, &ce) {
				return err
			}
			return &ConfigError{Pos: s.Pos, Msg: fmt.Sprintf("stage %q (%s %q): %v", s.Name, s.Kind, s.Type, err)}
		}
		switch s.Kind {
		case KindSource:
			src, err := reg.OpenSource(ctx, sourceEnv(env, s.Name), s.Type, s.Options)
			if err != nil {
				return fail(where(err))
			}
			ps.source = src
			if ps.out, err = src.Schema(ctx); err != nil {
				return fail(where(err))
			}
			if s.Incremental != nil {
				if _, _, err := checkCursor(s, ps.out); err != nil {
					return fail(err)
				}
			}
		case KindTransform:
			t, err := reg.NewTransform(env, s.Type, s.Options)
			if err != nil {
				return fail(where(err))
			}
			ps.transform = t
			if ps.out, err = t.Check(ps.in); err != nil {
				return fail(where(err))
			}
		case KindSink:
			// Opened by Run: opening a sink may create output.
			if s.Sync != nil && ps.in.Index(s.Sync.Key) < 0 {
				return fail(&ConfigError{Pos: s.Sync.Pos, Msg: fmt.Sprintf("stage %q: sync key %q is not a field of the sink's input (fields: %s)%s; add it to the mapping",
					s.Name, s.Sync.Key, ps.in, didYouMean(s.Sync.Key, ps.in.Names()))})
			}
		default:
			return fail(where(fmt.Errorf("unknown stage kind %q", s.Kind)))
		}
	}
	if err := p.project(ctx); err != nil {
		return fail(err)
	}
	return p, nil
}

// project has every source that is a Projector read only the columns the
// stages after it read, then checks the transforms again against the
// narrower schemas. A source fed to a sink (directly or through filters),
// or to a transform that cannot tell what it reads, keeps all its columns;
// so do all sources of a graph with fan-in, whose inputs must keep equal
// schemas.
func (p *Plan) project(ctx context.Context) error {
	for _, s := range p.stages {
		if len(s.spec.Inputs) > 1 {
			return nil
		}
	}
	changed := false
	for _, s := range p.stages {
		pr, ok := s.source.(Projector)
		if !ok {
			continue
		}
		need, all := p.needs(s)
		if all {
			continue
		}
		if inc := s.spec.Incremental; inc != nil {
			need[inc.Cursor] = true // the engine filters on it
		}
		var names []string
		for _, n := range s.out.Names() {
			if need[n] {
				names = append(names, n)
			}
		}
		if len(names) == 0 || len(names) == s.out.Len() {
			continue
		}
		if err := pr.Project(names); err != nil {
			return fmt.Errorf("stage %q: read only columns %s: %w", s.spec.Name, strings.Join(names, ", "), err)
		}
		out, err := s.source.Schema(ctx)
		if err != nil {
			return fmt.Errorf("stage %q: %w", s.spec.Name, err)
		}
		s.out, changed = out, true
	}
	if !changed {
		return nil
	}
	for _, s := range p.stages {
		if len(s.spec.Inputs) == 0 {
			continue
		}
		s.in = p.byName[s.spec.Inputs[0]].out
		if s.transform != nil {
			out, err := s.transform.Check(s.in)
			if err != nil {
				return fmt.Errorf("stage %q: check against the projected columns (%s): %w", s.spec.Name, s.in, err)
			}
			s.out = out
		}
	}
	return nil
}

// needs returns the columns of s's output that the stages after it read,
// or all=true when some stage may read any of them.
func (p *Plan) needs(s *planStage) (need map[string]bool, all bool) {
	need = map[string]bool{}
	for _, c := range s.consumers {
		cu, ok := c.transform.(ColumnUser)
		if !ok {
			return nil, true // a sink, or a transform that cannot tell
		}
		used, ok := cu.ColumnsUsed()
		if !ok {
			return nil, true
		}
		for _, n := range used {
			need[n] = true
		}
		if c.out.Equal(c.in) {
			// The rows pass through (a filter): what the stages after it
			// read is read from these rows too.
			more, all := p.needs(c)
			if all {
				return nil, true
			}
			for n := range more {
				need[n] = true
			}
		}
	}
	return need, false
}

// Schemas returns each stage's output schema (input schema for sinks), by
// stage name.
func (p *Plan) Schemas() map[string]*Schema {
	m := map[string]*Schema{}
	for _, s := range p.stages {
		if s.out != nil {
			m[s.spec.Name] = s.out
		} else {
			m[s.spec.Name] = s.in
		}
	}
	return m
}

// Close releases the plan's open sources. It is safe to call more than once.
func (p *Plan) Close() error {
	var errs []error
	for _, s := range p.stages {
		if s.source != nil {
			if err := s.source.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close source %q: %w", s.spec.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// didYouMean returns ` (did you mean "x"?)` for the closest candidate within
// a small edit distance, or "".
func didYouMean(got string, candidates []string) string {
	if s := Closest(got, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
