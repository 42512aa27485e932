package salesforcesink

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// preflightError is the *pipeline.PreflightError of the pre-flight of
// operation op on object: unknown object or field (with the closest
// name), a column the operation cannot write, a value type the field
// cannot take, a missing required field, an Id column on insert.
func preflightError(op, object string, problems ...string) *pipeline.PreflightError {
	return &pipeline.PreflightError{Sink: "salesforce sink", Target: op + " " + object, Problems: problems}
}

// Preflight checks the org of o's instance_url (see Preflight and
// pipeline.Preflighter); without an instance_url there is no org to check
// and it returns nil.
func (o *Options) Preflight(ctx context.Context, env *pipeline.Env, in *pipeline.Schema) error {
	if o.InstanceURL == "" {
		return nil
	}
	return Preflight(ctx, env, o, in)
}

// Preflight is the one pre-flight check of a "salesforce" sink stage that
// `bulkflow validate` and `bulkflow run` share: it opens a sink for in
// (authenticating, or opening the instance_url's instance) with the ledger
// and the API budget guard off, runs Check and closes it. It makes only
// GET requests and leaves nothing behind. Problems with the pipeline are a
// *pipeline.PreflightError; anything else (Salesforce unreachable, a refused token)
// is returned wrapped as is.
func Preflight(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) error {
	po := *opts
	po.Ledger, po.MinAPIRemaining = LedgerOff, 0
	if err := po.Validate(); err != nil {
		return preflightError(po.Operation, po.Object, err.Error())
	}
	probe := &Sink{opts: &po, op: po.operation(), schema: in, idCol: -1}
	if err := probe.checkColumns(); err != nil {
		return preflightError(string(probe.op), po.Object, err.Error())
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
	return nil, preflightError(string(s.op), s.opts.Object, msg)
}

// fieldNames returns the describe's field names.
func fieldNames(d *salesforce.DescribeResult) []string {
	out := make([]string, len(d.Fields))
	for i := range d.Fields {
		out[i] = d.Fields[i].Name
	}
	return out
}
