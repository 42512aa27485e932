package transformtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/transforms/transformtest"
)

// fakeOptions configure fakeTransform.
type fakeOptions struct {
	Flaw string // "" for a correct transform, else the flaw the suite must catch
}

// fakeTransform keeps rows whose id is even, filters odd ones and
// dead-letters rows whose id is a multiple of 5; it reads only id. Its flaw
// option breaks one part of the contract.
type fakeTransform struct {
	flaw    string
	checked bool
}

func (f *fakeTransform) Check(in *pipeline.Schema) (*pipeline.Schema, error) {
	if in.Index("id") != 0 {
		return nil, errors.New("want id first")
	}
	f.checked = true
	return in, nil
}

func (f *fakeTransform) Apply(ctx context.Context, in *pipeline.Batch) (*pipeline.Batch, error) {
	if !f.checked {
		return nil, errors.New("Apply before Check")
	}
	out := pipeline.NewBatch(in.Schema(), in.Len())
	for i := range in.Len() {
		row, o := in.Row(i), in.Origin(i)
		id, _ := row[0].(int64)
		switch {
		case f.flaw == "loses" && i == in.Len()-1:
		case f.flaw == "mutates" && i == 0:
			row[1] = "changed"
			out.Append(row, o)
		case f.flaw == "reads-other" && row[2] == nil:
			out.Drop(pipeline.Drop{Row: row, Origin: o})
		case id%5 == 0:
			out.Drop(pipeline.Drop{Row: row, Origin: o, Err: &pipeline.RowError{Code: "fake_error", Err: fmt.Errorf("id %d", id)}})
			if f.flaw == "twice" {
				out.Append(row, o)
			}
		case id%2 == 0:
			out.Append(row, o)
		default:
			out.Drop(pipeline.Drop{Row: row, Origin: o})
		}
	}
	return out, nil
}

// ReleasesRows claims, with the "releases" flaw, what the fake does not
// do: it forwards its input's rows.
func (f *fakeTransform) ReleasesRows() bool { return f.flaw == "releases" }

func (f *fakeTransform) ColumnsUsed() ([]string, bool) {
	if f.flaw == "columns" {
		return []string{"id", "nope"}, true
	}
	return []string{"id"}, true
}

// registry returns a registry with the fake transform as "fake"; the
// "panics" flaw asserts the options' type without a check.
func registry(flaw string) *pipeline.Registry {
	var reg pipeline.Registry
	reg.RegisterTransform("fake", pipeline.Spec{NewOptions: func() any { return &fakeOptions{} }},
		func(env *pipeline.Env, opts any) (pipeline.Transform, error) {
			if flaw == "panics" {
				return &fakeTransform{flaw: opts.(*fakeOptions).Flaw}, nil
			}
			o, ok := opts.(*fakeOptions)
			if !ok || o == nil || o.Flaw == "bad" {
				return nil, fmt.Errorf("fake: options %#v", opts)
			}
			return &fakeTransform{flaw: o.Flaw}, nil
		})
	return &reg
}

type fakeHarness struct{ flaw string }

func (h fakeHarness) Options() any      { return &fakeOptions{Flaw: h.flaw} }
func (h fakeHarness) BadOptions() []any { return []any{&fakeOptions{Flaw: "bad"}} }

// TestSuiteOnFake runs the suite on the correct fake transform, or, in
// the child process of TestSuiteCatchesFlaws, on a flawed one.
func TestSuiteOnFake(t *testing.T) {
	flaw := os.Getenv("TRANSFORMTEST_FLAW")
	transformtest.RunConformance(t, registry(flaw), "fake", fakeHarness{flaw: flaw})
}

// TestSuiteCatchesFlaws runs the suite on transforms that break one rule
// each, in a child test process, and requires it to fail saying why.
func TestSuiteCatchesFlaws(t *testing.T) {
	if os.Getenv("TRANSFORMTEST_FLAW") != "" {
		t.Skip("in the child process")
	}
	for _, tc := range []struct{ flaw, want string }{
		{"loses", "did not settle"},
		{"twice", "settled twice"},
		{"mutates", "Apply changed input row"},
		{"panics", "panicked"},
		{"columns", `ColumnsUsed names "nope"`},
		{"reads-other", "with only [id]"},
		{"releases", "says it releases its input's rows"},
	} {
		t.Run(tc.flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestSuiteOnFake$", "-test.count=1")
			cmd.Env = append(os.Environ(), "TRANSFORMTEST_FLAW="+tc.flaw)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a transform that %s:\n%s", tc.flaw, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("the suite failed without saying %q:\n%s", tc.want, out)
			}
		})
	}
}
