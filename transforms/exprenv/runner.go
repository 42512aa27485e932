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

	// row is the bound row. Its fields are copied into vars lazily, when
	// a program that needs them runs on the VM: gen counts Binds, and
	// copied[i] (allCopied for every field) is the gen field i was
	// copied at.
	row       pipeline.Row
	hasRow    bool
	gen       uint64
	copied    []uint64
	allCopied uint64

	// buf is Run's scratch buffer. text is where RunText's text forms
	// write the strings it hands out, in place: text[:len(text)] holds
	// those strings and is never written again (a text form only
	// appends), so it outlives Release and strings handed out before
	// stay valid. It is a pipeline.StringArena that is appended to
	// directly instead of copied into, saving a copy per string.
	buf  []byte
	text []byte
}

// Chunks of Runner.text: a new one is started when less than
// minTextRoom bytes are left (a longer string makes append move the
// chunk, which is still correct: see RunText).
const (
	textChunk   = 128 << 10
	minTextRoom = 1 << 10
)

// Runner returns a Runner for e's programs, reusing a released one when it
// can. It may be called from several goroutines once compiling is done.
func (e *Env) Runner() *Runner {
	if r, ok := e.pool.Get().(*Runner); ok {
		return r
	}
	return &Runner{e: e, vars: make(map[string]any), names: e.schema.Names(), copied: make([]uint64, e.schema.Len())}
}

// Release gives r back to its Env for reuse; r must not be used after.
func (r *Runner) Release() {
	clear(r.vars)
	r.row, r.hasRow = nil, false
	r.e.pool.Put(r)
}

// Bind makes row (of the Env's schema) the values the next Runs see. Row is
// read by those Runs, so it must not change until the next Bind. Only the
// fields a program run on the VM reads are copied into its variables, and
// only once per Bind.
func (r *Runner) Bind(row pipeline.Row) {
	r.row, r.hasRow = row, true
	r.gen++
}

// bindFor copies into the VM's variables the fields of the bound row that p
// reads and that are not copied yet.
func (r *Runner) bindFor(p *Program) {
	if !r.hasRow || r.allCopied == r.gen {
		return
	}
	if p.all {
		for i, n := range r.names {
			r.vars[n] = r.row[i]
		}
		r.allCopied = r.gen
		return
	}
	for _, i := range p.fields {
		if r.copied[i] != r.gen {
			r.vars[r.names[i]] = r.row[i]
			r.copied[i] = r.gen
		}
	}
}

// Run evaluates p on the bound row and returns its result as a value of
// p.Type (see Normalize). A runtime error, such as a helper rejecting its
// input, is returned with a one-line message.
//
// Programs with a fast path (see fast.go) are evaluated without the VM
// when the row's values allow; otherwise, and for every failure, the VM
// decides.
func (r *Runner) Run(p *Program) (any, error) {
	if r.hasRow {
		if p.text != nil {
			b, v, kind := p.text(r.row, r.buf[:0])
			r.buf = b[:0]
			if kind == textBuilt {
				v = string(b)
			}
			if kind != textVM {
				if v, err := Normalize(v, p.Type); err == nil {
					return v, nil
				}
			}
		} else if p.fast != nil {
			if v, ok := p.fast(r.row); ok {
				if v, err := Normalize(v, p.Type); err == nil {
					return v, nil
				}
			}
		}
	}
	return r.runVM(p)
}

// runVM evaluates p on the VM.
func (r *Runner) runVM(p *Program) (any, error) {
	r.bindFor(p)
	v, err := r.vm.Run(p.prog, r.vars)
	if err != nil {
		return nil, runtimeError(err)
	}
	return Normalize(v, p.Type)
}

// RunText is Run for a caller that stores many results, such as a map
// transform filling a batch. A string the evaluation builds (a
// concatenation, upper(s) of a lower-case s, a date written in Salesforce
// form) is returned with built set, boxed without an allocation of its
// own: its bytes and its string header are in an arena the Runner keeps
// (never written again; pipeline.AppendBoxed). Otherwise the result is v,
// exactly what Run returns (values, errors) — a string RunText builds is
// what Run would return.
func (r *Runner) RunText(p *Program) (v any, built bool, err error) {
	if p.text != nil && r.hasRow {
		if cap(r.text)-len(r.text) < minTextRoom {
			r.text = make([]byte, 0, textChunk)
		}
		start := len(r.text)
		b, v, kind := p.text(r.row, r.text)
		switch kind {
		case textBuilt:
			switch p.Type {
			case pipeline.TypeString, pipeline.TypeAny, pipeline.TypeDecimal:
				// b[start:] is the string, appended after the strings
				// handed out before; when append moved b to a larger
				// array, the old one still holds those (and b a copy).
				r.text, v = pipeline.AppendBoxed(b, start, textChunk)
				return v, true, nil
			}
		case textValue:
			if _, isStr := v.(string); isStr && p.Type == pipeline.TypeString {
				return v, false, nil // what Normalize returns
			}
			if v, err := Normalize(v, p.Type); err == nil {
				return v, false, nil
			}
		}
		v, err = r.runVM(p)
		return v, false, err
	}
	v, err = r.Run(p)
	return v, false, err
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
			return v, nil // v, not x: no new box
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
			return v, nil
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
