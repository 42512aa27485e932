package exprenv

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Env compiles expressions against one input schema and runs them. Build it
// with New during a transform's Check; Compile it from one goroutine at a
// time; once every program is compiled, Runner may be called from any number
// of goroutines.
type Env struct {
	schema  *pipeline.Schema
	opts    []expr.Option
	lookups *lookups
	regexps *regexCache

	pool sync.Pool // of *Runner
}

// Program is one compiled expression. It is immutable and may be run by
// several Runners at once.
type Program struct {
	prog *vm.Program
	// fast evaluates the program without the VM when it can (see
	// fast.go); nil when some node is not supported.
	fast fastFn
	// text is fast's text form (text.go), for Runner.RunText; nil when
	// the program has no fast path or its result is cast.
	text textFn
	// builds is set when text may build a string.
	builds bool
	// field is the schema index of the field the program is (a plain
	// rename), constant its value when it is a literal (hasConst);
	// field is -1 otherwise, and both are unset without a fast path.
	field    int
	constant any
	hasConst bool
	// fields are the schema indexes the program reads, which a Runner
	// copies into the VM's variables; all is set when it reads $env.
	fields []int
	all    bool
	// Expr is the expression's source text.
	Expr string
	// Type is the pipeline type of the expression's result; TypeAny when
	// the checker cannot tell.
	Type pipeline.Type
}

// Schema returns the input schema expressions are compiled against.
func (e *Env) Schema() *pipeline.Schema { return e.schema }

// Fields returns the names of the input columns p reads, in schema order;
// ok is false when it may read any (it uses $env).
func (p *Program) Fields(in *pipeline.Schema) (names []string, ok bool) {
	if p.all {
		return nil, false
	}
	idx := slices.Clone(p.fields)
	slices.Sort(idx)
	for _, i := range idx {
		names = append(names, in.Field(i).Name)
	}
	return names, true
}

// New returns an Env for rows of schema in. Lookup tables are taken from
// penv.Lookups and resolved against penv.BaseDir; penv may be nil when no
// expression uses lookup().
func New(in *pipeline.Schema, penv *pipeline.Env) *Env {
	e := &Env{
		schema:  in,
		lookups: newLookups(penv),
		regexps: &regexCache{},
	}
	env := types.Map{"null": types.Nil}
	for _, f := range in.Fields() {
		env[f.Name] = typeOf(f.Type)
	}
	e.opts = append([]expr.Option{expr.Env(env)}, e.functions()...)
	return e
}

// typeOf returns the checker type of values of pipeline type t.
func typeOf(t pipeline.Type) types.Type {
	switch t {
	case pipeline.TypeString, pipeline.TypeDecimal:
		return types.String
	case pipeline.TypeInt:
		return types.Int64
	case pipeline.TypeFloat:
		return types.Float64
	case pipeline.TypeBool:
		return types.Bool
	case pipeline.TypeDate, pipeline.TypeTimestamp:
		return types.TypeOf(time.Time{})
	default:
		return types.Any
	}
}

var timeType = reflect.TypeOf(time.Time{})

// pipelineType returns the pipeline type of a checker result type.
func pipelineType(t reflect.Type) pipeline.Type {
	if t == nil {
		return pipeline.TypeAny
	}
	if t == timeType {
		return pipeline.TypeTimestamp
	}
	switch t.Kind() {
	case reflect.String:
		return pipeline.TypeString
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return pipeline.TypeInt
	case reflect.Float32, reflect.Float64:
		return pipeline.TypeFloat
	case reflect.Bool:
		return pipeline.TypeBool
	default:
		return pipeline.TypeAny
	}
}

// Error is an expression that does not compile. Its message is one line.
type Error struct {
	// Expr is the expression's source text.
	Expr string
	// Line and Col locate the problem in Expr (1-based; 0 when unknown).
	Line, Col int
	// Msg says what is wrong, e.g. `unknown name "frist" (did you mean "first"?)`.
	Msg string
}

// Error returns "msg at column C in: expr" (with the line too when the
// expression spans several), the expression's newlines folded to spaces.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	switch {
	case e.Col > 0 && strings.Contains(e.Expr, "\n"):
		fmt.Fprintf(&b, " at line %d, column %d", e.Line, e.Col)
	case e.Col > 0:
		fmt.Fprintf(&b, " at column %d", e.Col)
	}
	b.WriteString(" in: ")
	b.WriteString(strings.Join(strings.Fields(e.Expr), " "))
	return b.String()
}

// Compile compiles src against the schema with the helpers, plus extra
// expr options (expr.AsBool() for a filter). Errors are *Error. Literal
// regexReplace patterns and lookup table names are checked here, and the
// tables the expression names are loaded.
//
// Compile must not be called concurrently with itself or with Runner.
func (e *Env) Compile(src string, extra ...expr.Option) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Expr: src, Msg: "empty expression"}
	}
	opts := e.opts
	if len(extra) > 0 {
		opts = append(append([]expr.Option(nil), e.opts...), extra...)
	}
	// The program run is compiled with checked arithmetic (arith.go). Its
	// patch is an expr visitor, and with a visitor expr's last type check
	// does not look inside calls it typed before (trim(compnay) would
	// compile), so the errors are those of a plain compile first.
	if _, err := expr.Compile(src, opts...); err != nil {
		return nil, e.compileError(src, err)
	}
	prog, err := expr.Compile(src, append(opts[:len(opts):len(opts)], arithOptions()...)...)
	if err != nil {
		return nil, e.compileError(src, err)
	}
	node := prog.Node()
	w := &walker{env: e, src: src, seen: make([]bool, e.schema.Len())}
	ast.Walk(&node, w)
	if w.err != nil {
		return nil, w.err
	}
	if err := e.lookups.load(w.tables, w.allTables); err != nil {
		return nil, &Error{Expr: src, Msg: err.Error()}
	}
	p := &Program{prog: prog, Expr: src, Type: pipelineType(node.Type()), fields: w.fields, all: w.all, field: -1}
	if id, ok := node.(*ast.IdentifierNode); ok {
		// A plain rename keeps the field's type (date, decimal).
		if i := e.schema.Index(id.Value); i >= 0 {
			p.Type = e.schema.Field(i).Type
		}
	}
	p.fast = e.programFastPath(node, extra)
	if p.fast != nil && e.uncast(extra) {
		c := &fastCompiler{env: e, shortCircuit: true}
		p.text, p.builds = c.text(node), builds(node)
		if v, ok := c.constant(node); ok {
			if v, err := Normalize(v, p.Type); err == nil {
				p.constant, p.hasConst = v, true
			}
		}
		if id, ok := node.(*ast.IdentifierNode); ok {
			p.field = e.schema.Index(id.Value)
		}
	}
	return p, nil
}

// uncast reports whether the extra options leave a program's result as
// it is (no AsBool, AsInt, ...) and short-circuit && and ||.
func (e *Env) uncast(extra []expr.Option) bool {
	c := conf.CreateNew()
	for _, o := range extra {
		o(c)
	}
	switch c.Expect {
	case reflect.Invalid, reflect.Interface, reflect.String:
		return c.ShortCircuit
	}
	return false
}

// Field returns the schema index of the input field p is when it is a
// plain field name (a rename), or -1. Its result is the field's value,
// Normalized to p.Type: Runner.Run decides when Normalize fails.
func (p *Program) Field() int { return p.field }

// Constant returns p's value when p is a literal ("Open", 42, null):
// what every Run returns.
func (p *Program) Constant() (v any, ok bool) { return p.constant, p.hasConst }

// Builds reports whether RunText may return a built string (see
// RunText).
func (p *Program) Builds() bool { return p.builds }

// programFastPath returns the fast path of a whole program compiled with
// the extra options, or nil. Of expr's options, those that change what the
// compiled program does are looked at: the cast of the result (AsBool,
// AsInt, ...), short-circuiting, and functions or builtins added, disabled
// or folded (then no fast path at all).
func (e *Env) programFastPath(node ast.Node, extra []expr.Option) fastFn {
	c := conf.CreateNew()
	for _, o := range extra {
		o(c)
	}
	if len(c.Functions) > 0 || len(c.Disabled) > 0 || len(c.ConstFns) > 0 {
		// The helpers and builtins may not be the ones the fast
		// paths know.
		return nil
	}
	f := e.fastPath(node, c.ShortCircuit)
	if f == nil {
		return nil
	}
	switch c.Expect {
	case reflect.Invalid, reflect.Interface, reflect.String:
		return f
	case reflect.Bool:
		// OpCast 3 (runtime.ToBool): nil is false, a bool is itself,
		// anything else panics.
		return func(row pipeline.Row) (any, bool) {
			v, ok := f(row)
			if !ok {
				return nil, false
			}
			switch v.(type) {
			case nil:
				return false, true
			case bool:
				return v, true
			}
			return nil, false
		}
	}
	return nil
}

// compileError turns an expr error into a one-line *Error.
func (e *Env) compileError(src string, err error) error {
	out := &Error{Expr: src, Msg: err.Error()}
	var fe *file.Error
	if errors.As(err, &fe) {
		out.Msg = fe.Message
		out.Line, out.Col = fe.Line, fe.Column+1
		if name, ok := strings.CutPrefix(fe.Message, "unknown name "); ok {
			out.Msg = fmt.Sprintf("unknown name %q", name)
			if regexp.MustCompile(`lookup\(\s*` + regexp.QuoteMeta(name) + `\s*,`).MatchString(src) {
				// lookup(countries, x): a table name, not a field.
				out.Msg += fmt.Sprintf(`: lookup table names are quoted strings, write lookup("%s", ...)`, name)
			} else if s := pipeline.Closest(name, e.schema.Names()); s != "" {
				out.Msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
		}
	}
	out.Msg = strings.Join(strings.Fields(out.Msg), " ")
	return out
}

// walker collects what Compile checks after type checking: the fields a
// program reads, literal regexReplace patterns and lookup table names.
type walker struct {
	env       *Env
	src       string
	err       *Error
	tables    []string
	allTables bool

	seen   []bool // by schema index
	fields []int
	all    bool // $env is read
}

// Visit implements ast.Visitor.
func (w *walker) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if n.Value == "$env" {
			w.all = true
		} else if i := w.env.schema.Index(n.Value); i >= 0 && !w.seen[i] {
			w.seen[i] = true
			w.fields = append(w.fields, i)
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || w.env.schema.Index(id.Value) >= 0 {
			return
		}
		switch id.Value {
		case "regexReplace":
			if len(n.Arguments) != 3 {
				return
			}
			if pat, ok := literal(n.Arguments[1]); ok {
				if _, err := w.env.regexps.get(pat); err != nil {
					w.fail(n.Arguments[1], err.Error())
				}
			}
		case "sfDateTime":
			if len(n.Arguments) != 3 {
				return
			}
			if tz, ok := literal(n.Arguments[2]); ok {
				if _, err := location(tz); err != nil {
					w.fail(n.Arguments[2], "sfDateTime: "+err.Error())
				}
			}
		case "lookup":
			if len(n.Arguments) != 2 {
				return
			}
			if name, ok := literal(n.Arguments[0]); ok {
				if !w.env.lookups.declared(name) {
					w.fail(n.Arguments[0], w.env.lookups.unknown(name))
				}
				w.tables = append(w.tables, name)
			} else {
				w.allTables = true
			}
		}
	}
}

func (w *walker) fail(n ast.Node, msg string) {
	if w.err != nil {
		return
	}
	fe := (&file.Error{Location: n.Location(), Message: msg}).Bind(file.NewSource(w.src))
	w.err = &Error{Expr: w.src, Line: fe.Line, Col: fe.Column + 1, Msg: strings.Join(strings.Fields(msg), " ")}
}

// literal returns the value of a string literal node.
func literal(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.ConstantNode:
		s, ok := n.Value.(string)
		return s, ok
	}
	return "", false
}

// regexCache holds compiled regexReplace patterns by source text.
type regexCache struct {
	m  sync.Map // string → *regexp.Regexp
	n  int64    // approximate size; guarded by mu
	mu sync.Mutex
}

// maxRegexps bounds the cache for patterns built per row.
const maxRegexps = 1024

func (c *regexCache) get(pat string) (*regexp.Regexp, error) {
	if re, ok := c.m.Load(pat); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("regexReplace: invalid pattern %q: %s", pat, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	c.mu.Lock()
	if c.n < maxRegexps {
		c.n++
		c.m.Store(pat, re)
	}
	c.mu.Unlock()
	return re, nil
}
