// Package filter is the "filter" transform: it keeps the rows for which a
// boolean expression is true and drops the others as filtered (not
// dead-lettered).
//
//	filter: amount > 0 && status != "closed" && sfBool(active)
//
// The output schema is the input schema; kept rows are passed on unchanged.
// The expression language and its helpers are described in package exprenv.
//
// # Options
//
// Options is filled by the config loader from the `filter:` shorthand
// (through SetExprs, with the expression's position), or decoded from:
//
//	expr:
//	  expr: amount > 0          # the condition (required)
//
// # Errors
//
// Check returns a *pipeline.ConfigError at the expression's position when
// the expression does not compile or is not boolean, e.g.
//
//	pipelines/accounts.yaml:9:9: filter: expected bool, but got string at column 1 in: status
//
// A null result counts as false: the row is filtered, as in SQL (sfBool of a
// blank cell is null). At run time a row on which the expression fails is
// dead-lettered with a *pipeline.RowError of code "expr_error"; the other
// rows continue.
package filter

import (
	"context"
	"errors"
	"fmt"

	"github.com/expr-lang/expr"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/transforms/exprenv"
)

// CodeExprError is the RowError code of rows the expression failed on.
const CodeExprError = "expr_error"

// Options configures a filter transform.
type Options struct {
	// Expr is the condition; rows where it is false are filtered out.
	Expr pipeline.ExprField `yaml:"expr"`

	n int // expressions given to SetExprs, when it was called
}

// SetExprs sets the condition; the config loader calls it for the
// `filter:` shorthand. Validate reports a count other than one.
func (o *Options) SetExprs(exprs []pipeline.ExprField) {
	o.n = len(exprs)
	if len(exprs) > 0 {
		o.Expr = exprs[0]
	}
}

// Validate checks that there is exactly one, non-empty expression.
func (o *Options) Validate() error {
	if o.n > 1 {
		return &pipeline.ConfigError{Pos: o.Expr.Pos, Msg: fmt.Sprintf("filter takes exactly one expression, got %d (join conditions with &&)", o.n)}
	}
	if o.Expr.Expr == "" {
		return &pipeline.ConfigError{Pos: o.Expr.Pos, Msg: "filter needs an expression, e.g. filter: amount > 0"}
	}
	return nil
}

// Transform is a filter transform. Check must be called once before Apply;
// Apply may then be called from several goroutines at once.
type Transform struct {
	field pipeline.ExprField
	penv  *pipeline.Env

	env  *exprenv.Env
	prog *exprenv.Program
	out  *pipeline.Schema
}

// New returns a filter transform for opts. env supplies the lookup tables
// and may be nil.
func New(env *pipeline.Env, opts *Options) (*Transform, error) {
	if opts == nil {
		return nil, errors.New("filter: no options")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Transform{field: opts.Expr, penv: env}, nil
}

func init() {
	pipeline.DefaultRegistry().RegisterTransform("filter", pipeline.Spec{
		Summary:    "Keep the rows for which a boolean expression is true",
		Example:    "expr:\n  expr: amount > 0 && status != \"closed\"\n",
		NewOptions: func() any { return &Options{} },
	}, pipeline.TypedTransform("filter", New))
}

// Check compiles the expression against in; the output schema is in.
func (t *Transform) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	env := exprenv.New(in, t.penv)
	p, err := env.Compile(t.field.Expr, expr.AsBool())
	if err == nil && p.Type != pipeline.TypeBool && p.Type != pipeline.TypeAny {
		err = &exprenv.Error{Expr: t.field.Expr, Msg: fmt.Sprintf("expected bool, but got %s", p.Type)}
	}
	if err != nil {
		return nil, &pipeline.ConfigError{Pos: t.field.Pos, Msg: fmt.Sprintf("filter: %s", err)}
	}
	t.env, t.prog, t.out = env, p, in
	return in, nil
}

// ColumnsUsed returns the input columns the expression reads (after
// Check); see pipeline.ColumnUser. A filter passes its rows on, so the
// engine also keeps what the stages after it read.
func (t *Transform) ColumnsUsed() ([]string, bool) {
	if t.prog == nil {
		return nil, false
	}
	return t.prog.Fields(t.out)
}

// Apply keeps the rows of in for which the expression is true, drops the
// others as filtered, and dead-letters the rows it fails on.
func (t *Transform) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	if t.out == nil {
		return nil, errors.New("filter: Apply called before Check")
	}
	n := in.Len()
	out := pipeline.NewBatch(t.out, n)
	r := t.env.Runner()
	defer r.Release()
	for i := 0; i < n; i++ {
		if i&1023 == 1023 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		row := in.Row(i)
		r.Bind(row)
		v, err := r.Run(t.prog)
		keep, ok := v.(bool)
		if err == nil && !ok && v != nil {
			err = fmt.Errorf("result %v is not a bool", v)
		}
		switch {
		case err != nil:
			out.Drop(pipeline.Drop{Row: row, Origin: in.Origin(i), Err: &pipeline.RowError{
				Code: CodeExprError,
				Err:  fmt.Errorf("%s: %w", t.field.Expr, err),
			}})
		case keep:
			out.Append(row, in.Origin(i))
		default:
			out.Drop(pipeline.Drop{Row: row, Origin: in.Origin(i)})
		}
	}
	return out, nil
}

// Interface guards: a filter transform is a pipeline.Transform, and its
// options are filled by the config loader and validated.
var (
	_ pipeline.Transform  = (*Transform)(nil)
	_ pipeline.ColumnUser = (*Transform)(nil)
	_ pipeline.ExprSetter = (*Options)(nil)
	_ pipeline.Validator  = (*Options)(nil)
)
