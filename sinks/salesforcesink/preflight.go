package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// PreflightError lists what the pre-flight found wrong with the pipeline
// (as opposed to a failure to reach Salesforce, returned as a plain
// error): unknown object or field (with the closest name), a column the
// operation cannot write, a value type the field cannot take, a missing
// required field, an Id column on insert. The CLI reports each problem
// at the sink stage's position and exits 2.
type PreflightError struct {
	Object    string
	Operation string
	Problems  []string
}

// Error lists the problems.
func (e *PreflightError) Error() string {
	return fmt.Sprintf("salesforce sink: pre-flight %s %s: %s", e.Operation, e.Object, strings.Join(e.Problems, "; "))
}

// Preflight is the one pre-flight check of a "salesforce" sink stage that
// `bulkflow validate` and `bulkflow run` share: it opens a sink for in
// (authenticating, or opening the instance_url's instance) with the ledger
// and the API budget guard off, runs Check and closes it. It makes only
// GET requests and leaves nothing behind. Problems with the pipeline are a
// *PreflightError; anything else (Salesforce unreachable, a refused token)
// is returned wrapped as is.
func Preflight(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) error {
	po := *opts
	po.Ledger, po.MinAPIRemaining = LedgerOff, 0
	if err := po.Validate(); err != nil {
		return &PreflightError{Object: po.Object, Operation: po.Operation, Problems: []string{err.Error()}}
	}
	probe := &Sink{opts: &po, op: po.operation(), schema: in, idCol: -1}
	if err := probe.checkColumns(); err != nil {
		return &PreflightError{Object: po.Object, Operation: string(probe.op), Problems: []string{err.Error()}}
	}
	sk, err := Open(ctx, env, &po, in)
	if err != nil {
		return err
	}
	err = sk.Check(ctx, in)
	if cerr := sk.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// typeFits reports whether a value of pipeline type t can be written to a
// field of describe type sfType (unknown types fit: the check only refuses
// what Salesforce would refuse for every row).
func typeFits(t pipeline.Type, sfType string) bool {
	if t == pipeline.TypeAny {
		return true
	}
	switch strings.ToLower(sfType) {
	case "double", "currency", "percent", "int", "long":
		return t == pipeline.TypeInt || t == pipeline.TypeFloat || t == pipeline.TypeDecimal
	case "boolean":
		return t == pipeline.TypeBool
	case "date":
		return t == pipeline.TypeDate || t == pipeline.TypeTimestamp
	case "datetime":
		return t == pipeline.TypeTimestamp || t == pipeline.TypeDate
	}
	return true
}

// conversionHint says how a mapping converts a value for a field type.
func conversionHint(sfType string) string {
	switch strings.ToLower(sfType) {
	case "double", "currency", "percent":
		return "convert it in the mapping (e.g. float(x)) or declare the source column as float or decimal"
	case "int", "long":
		return "convert it in the mapping (e.g. int(x)) or declare the source column as int"
	case "boolean":
		return "convert it in the mapping (e.g. x == \"yes\") or declare the source column as bool"
	case "date", "datetime":
		return "convert it in the mapping (e.g. date(x) / timestamp(x)) or declare the source column's type"
	}
	return "convert it in the mapping"
}

// describeObject describes the sink's object; a 404 becomes a problem
// naming the closest object the org has.
func (s *Sink) describeObject(ctx context.Context) (*salesforce.DescribeResult, error) {
	d, err := s.client.Describe(ctx, s.opts.Object)
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, salesforce.ErrNotFound) {
		return nil, fmt.Errorf("salesforce sink: check: %w", err)
	}
	msg := fmt.Sprintf("object %s: the org has no such object", s.opts.Object)
	if names, lerr := s.client.ObjectNames(ctx); lerr == nil {
		if c := pipeline.Closest(s.opts.Object, names); c != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", c)
		}
	}
	return nil, &PreflightError{Object: s.opts.Object, Operation: string(s.op), Problems: []string{msg}}
}

// fieldNames returns the describe's field names.
func fieldNames(d *salesforce.DescribeResult) []string {
	out := make([]string, len(d.Fields))
	for i := range d.Fields {
		out[i] = d.Fields[i].Name
	}
	return out
}
