package exprenv

import (
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Runner evaluates compiled programs on rows. A Runner holds an expr VM and
// a reused variables map, so it is not safe for concurrent use: each worker
// takes its own with Env.Runner and gives it back with Release.
type Runner struct {
	e     *Env
	vm    vm.VM
	vars  map[string]any
	names []string
}

// Runner returns a Runner for e's programs, reusing a released one when it
// can. It may be called from several goroutines once compiling is done.
func (e *Env) Runner() *Runner {
	if r, ok := e.pool.Get().(*Runner); ok {
		return r
	}
	return &Runner{e: e, vars: make(map[string]any, len(e.bind)+1), names: e.schema.Names()}
}

// Release gives r back to its Env for reuse; r must not be used after.
func (r *Runner) Release() {
	clear(r.vars)
	r.e.pool.Put(r)
}

// Bind makes row (of the Env's schema) the values the next Runs see. Only
// the fields the compiled programs read are copied.
func (r *Runner) Bind(row pipeline.Row) {
	if r.e.bindAll {
		for i, n := range r.names {
			r.vars[n] = row[i]
		}
		return
	}
	for _, i := range r.e.bind {
		r.vars[r.names[i]] = row[i]
	}
}

// Run evaluates p on the bound row and returns its result as a value of
// p.Type (see Normalize). A runtime error, such as a helper rejecting its
// input, is returned with a one-line message.
func (r *Runner) Run(p *Program) (any, error) {
	v, err := r.vm.Run(p.prog, r.vars)
	if err != nil {
		return nil, runtimeError(err)
	}
	return Normalize(v, p.Type)
}

// runtimeError strips expr's source snippet from a VM error, keeping the
// cause a helper returned (so errors.Is still works on it).
func runtimeError(err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return err
	}
	if fe.Prev != nil {
		return fe.Prev
	}
	return errors.New(fe.Message)
}

// Normalize converts an expression result to the Go type pipeline uses for
// t: every integer kind becomes int64 and float32 float64; nil stays nil (null).
// It fails when the value does not fit t, or, for TypeAny, is not a pipeline
// value at all (a list or a map, say).
func Normalize(v any, t pipeline.Type) (any, error) {
	var got pipeline.Type
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if t == pipeline.TypeDecimal {
			return x, nil
		}
		got = pipeline.TypeString
	case int64:
		got = pipeline.TypeInt
	case int:
		v, got = int64(x), pipeline.TypeInt
	case int32:
		v, got = int64(x), pipeline.TypeInt
	case int16:
		v, got = int64(x), pipeline.TypeInt
	case int8:
		v, got = int64(x), pipeline.TypeInt
	case uint:
		v, got = int64(x), pipeline.TypeInt
	case uint64:
		v, got = int64(x), pipeline.TypeInt
	case uint32:
		v, got = int64(x), pipeline.TypeInt
	case uint16:
		v, got = int64(x), pipeline.TypeInt
	case uint8:
		v, got = int64(x), pipeline.TypeInt
	case float64:
		got = pipeline.TypeFloat
	case float32:
		v, got = float64(x), pipeline.TypeFloat
	case bool:
		got = pipeline.TypeBool
	case time.Time:
		if t == pipeline.TypeDate {
			return x, nil
		}
		got = pipeline.TypeTimestamp
	default:
		return nil, fmt.Errorf("result of type %T is not a field value", v)
	}
	switch {
	case got == t || t == pipeline.TypeAny:
		return v, nil
	case t == pipeline.TypeFloat && got == pipeline.TypeInt:
		return float64(v.(int64)), nil
	}
	return nil, fmt.Errorf("result %v is %s, want %s", v, got, t)
}
