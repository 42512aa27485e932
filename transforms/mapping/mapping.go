// Package mapping is the "map" transform: it builds each output row from
// expressions over the input row, one expression per output field.
//
//	map:
//	  Name:            first_name + " " + last_name
//	  BillingCountry:  upper(country)
//	  CloseDate:       sfDate(closed_on, "02/01/2006")
//	  IsActive__c:     sfBool(active)
//	  Tier__c:         revenue > 1000000 ? "Enterprise" : "SMB"
//
// The output schema has one field per expression, in the order written,
// typed from the expression's result type (a bare field name keeps the
// field's type; a result the checker cannot type is "any"). Output rows keep
// their input rows' origins. The expression language and its helpers
// (sfDate, sfDateTime, sfBool, coalesce, regexReplace, lookup, null, ...)
// are described in package exprenv.
//
// # Options
//
// Options is filled by the config loader from the `map:` shorthand (through
// SetExprs, with each expression's position), or decoded from:
//
//	fields:
//	  - name: Name              # output field name (required, unique)
//	    expr: first + " " + last
//
// # Errors
//
// Check returns a *pipeline.ConfigError at the expression's position when an
// expression does not compile: an unknown field (with a suggestion), a type
// mismatch, an invalid literal regexReplace pattern, an unknown lookup table
// or time zone, e.g.
//
//	pipelines/accounts.yaml:12:11: map field "Name": unknown name "frist" (did you mean "first"?) at column 1 in: frist + " " + last
//
// At run time a row whose expression fails (a helper rejects its input, a
// nil dereference) or yields a value of the wrong type is dead-lettered with
// a *pipeline.RowError of code "expr_error" naming the field; the other rows
// continue.
package mapping

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/transforms/exprenv"
)

// CodeExprError is the RowError code of rows an expression failed on.
const CodeExprError = "expr_error"

// Options configures a map transform.
type Options struct {
	// Fields are the output fields, in order.
	Fields []pipeline.ExprField `yaml:"fields"`
}

// SetExprs sets the output fields; the config loader calls it for the
// `map:` shorthand.
func (o *Options) SetExprs(fields []pipeline.ExprField) {
	o.Fields = append([]pipeline.ExprField(nil), fields...)
}

// Validate checks that there is at least one field, and that every field has
// a name, an expression, and a name no other field has.
func (o *Options) Validate() error {
	if len(o.Fields) == 0 {
		return errors.New("map needs at least one field, e.g. map: {Name: first + \" \" + last}")
	}
	seen := make(map[string]pipeline.Position, len(o.Fields))
	for i, f := range o.Fields {
		switch {
		case f.Name == "":
			return &pipeline.ConfigError{Pos: f.Pos, Msg: fmt.Sprintf("map field %d has no name", i+1)}
		case f.Expr == "":
			return &pipeline.ConfigError{Pos: f.Pos, Msg: fmt.Sprintf("map field %q has no expression", f.Name)}
		}
		if p, dup := seen[f.Name]; dup {
			msg := fmt.Sprintf("map field %q appears twice", f.Name)
			if p.Line > 0 {
				msg += " (first at " + p.String() + ")"
			}
			return &pipeline.ConfigError{Pos: f.Pos, Msg: msg}
		}
		seen[f.Name] = f.Pos
	}
	return nil
}

// Transform is a map transform. Check must be called once before Apply;
// Apply may then be called from several goroutines at once.
type Transform struct {
	fields []pipeline.ExprField
	penv   *pipeline.Env

	env   *exprenv.Env
	progs []*exprenv.Program
	out   *pipeline.Schema
	// steps is the plan of eval, one per program, decided at Check.
	steps []step
	// slabs recycles the memory of the output rows once the engine has
	// released a batch (pipeline.SlabPool).
	slabs pipeline.SlabPool
}

// stepKind is how eval fills an output field.
type stepKind uint8

const (
	// stepRun runs the program (Runner.RunText).
	stepRun stepKind = iota
	// stepRename copies input field src (a bare field name).
	stepRename
	// stepConst stores the program's constant value.
	stepConst
)

// step is the plan of one output field: what eval checked on every row
// through p.Field() and p.Constant(), decided once at Check.
type step struct {
	kind stepKind
	// text: a rename whose result is a string, for which a string or
	// a null input is the result as is (what Normalize returns).
	text  bool
	src   int
	typ   pipeline.Type
	konst any
	p     *exprenv.Program
}

// plan returns the steps of progs.
func plan(progs []*exprenv.Program) []step {
	steps := make([]step, len(progs))
	for j, p := range progs {
		s := step{kind: stepRun, src: -1, typ: p.Type, p: p}
		if i := p.Field(); i >= 0 {
			s.kind, s.src, s.text = stepRename, i, p.Type == pipeline.TypeString
		} else if v, ok := p.Constant(); ok {
			s.kind, s.konst = stepConst, v
		}
		steps[j] = s
	}
	return steps
}

// New returns a map transform for opts. env supplies the lookup tables and
// may be nil.
func New(env *pipeline.Env, opts *Options) (*Transform, error) {
	if opts == nil {
		return nil, errors.New("map: no options")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Transform{fields: append([]pipeline.ExprField(nil), opts.Fields...), penv: env}, nil
}

func init() {
	pipeline.DefaultRegistry().RegisterTransform("map", pipeline.Spec{
		Summary:    "Build each output field from an expression over the input row",
		Example:    "fields:\n  - name: Name\n    expr: first_name + \" \" + last_name\n  - name: BillingCountry\n    expr: upper(country)\n",
		NewOptions: func() any { return &Options{} },
	}, pipeline.TypedTransform("map", New))
}

// Check compiles every expression against in and returns the output schema.
func (t *Transform) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	env := exprenv.New(in, t.penv)
	progs := make([]*exprenv.Program, len(t.fields))
	out := make([]pipeline.Field, len(t.fields))
	for i, f := range t.fields {
		p, err := env.Compile(f.Expr)
		if err != nil {
			return nil, &pipeline.ConfigError{Pos: f.Pos, Msg: fmt.Sprintf("map field %q: %s", f.Name, err)}
		}
		progs[i] = p
		out[i] = pipeline.Field{Name: f.Name, Type: p.Type}
	}
	schema, err := pipeline.NewSchema(out...)
	if err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	t.env, t.progs, t.out = env, progs, schema
	t.steps = plan(progs)
	return schema, nil
}

// ColumnsUsed returns the input columns the expressions read (after
// Check); see pipeline.ColumnUser.
func (t *Transform) ColumnsUsed() ([]string, bool) {
	if t.env == nil {
		return nil, false
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range t.progs {
		fs, ok := p.Fields(t.env.Schema())
		if !ok {
			return nil, false
		}
		for _, f := range fs {
			if !seen[f] {
				seen[f] = true
				names = append(names, f)
			}
		}
	}
	return names, true
}

// Apply evaluates the expressions on every row of in. Rows an expression
// fails on are dropped with a RowError of code CodeExprError.
//
// Allocations are per batch, not per value: the output rows share one
// slab of values; strings the expressions build are kept, and boxed, in
// the Runner's arena (exprenv.Runner.RunText); fields that are renames are
// copied and constants stored without running anything.
func (t *Transform) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	if t.out == nil {
		return nil, errors.New("map: Apply called before Check")
	}
	n, w := in.Len(), len(t.progs)
	// rows[i] is input row i's output, nil when it is dropped; without
	// drops the output shares the input's origins (no copy per row).
	rows := make([]pipeline.Row, n)
	var drops []pipeline.Drop
	slab := t.slabs.Get(n * w)
	r := t.env.Runner()
	defer r.Release()
	for i := 0; i < n; i++ {
		if i&1023 == 1023 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		row := in.Row(i)
		r.Bind(row)
		dst := pipeline.Row(slab[i*w : (i+1)*w : (i+1)*w])
		if j, err := t.eval(r, row, dst); err != nil {
			clear(dst)
			f := t.fields[j]
			drops = append(drops, pipeline.Drop{Row: row, Origin: in.Origin(i), Err: &pipeline.RowError{
				Code:  CodeExprError,
				Field: f.Name,
				Err:   fmt.Errorf("%s: %w", f.Expr, err),
			}})
			continue
		}
		rows[i] = dst
	}
	var out *pipeline.Batch
	if len(drops) == 0 {
		out = in.Derive(t.out, rows)
	} else {
		out = pipeline.NewBatch(t.out, n-len(drops))
		for i, row := range rows {
			if row != nil {
				out.Append(row, in.Origin(i))
			}
		}
		for _, d := range drops {
			out.Drop(d)
		}
	}
	out.Recycle(&t.slabs, slab) // the rows of out, and of no other batch
	return out, nil
}

// ReleasesRows implements pipeline.RowReleaser: Apply's output rows are
// values copied into a slab of its own, and only its drops hold input rows.
func (t *Transform) ReleasesRows() bool { return true }

// eval fills dst from row, which r is bound to; on failure it returns the
// index of the failing field. It follows t.steps: renames are copied and
// constants stored without running anything.
func (t *Transform) eval(r *exprenv.Runner, row, dst pipeline.Row) (int, error) {
	steps := t.steps
	dst = dst[:len(steps)] // one bounds check, not one per field
	for j := range steps {
		st := &steps[j]
		switch st.kind {
		case stepConst:
			dst[j] = st.konst
			continue
		case stepRename:
			v := row[st.src]
			if st.text {
				switch v.(type) {
				case string, nil:
					dst[j] = v // what Normalize returns
					continue
				}
			}
			if v, err := exprenv.Normalize(v, st.typ); err == nil {
				dst[j] = v
				continue
			} // else Run writes the error
		}
		v, _, err := r.RunText(st.p)
		if err != nil {
			return j, err
		}
		dst[j] = v
	}
	return 0, nil
}

// Interface guards: a map transform is a pipeline.Transform, and its options
// are filled by the config loader and validated.
var (
	_ pipeline.Transform  = (*Transform)(nil)
	_ pipeline.ColumnUser = (*Transform)(nil)
	_ pipeline.ExprSetter = (*Options)(nil)
	_ pipeline.Validator  = (*Options)(nil)
)
