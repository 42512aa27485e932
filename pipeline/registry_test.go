package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

func TestRegistryPanics(t *testing.T) {
	src := func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) { return nil, nil }
	tests := []struct {
		name string
		reg  func(r *pipeline.Registry)
		want string
	}{
		{"empty name", func(r *pipeline.Registry) { r.RegisterSource("", pipeline.Spec{}, src) }, "empty name"},
		{"nil func", func(r *pipeline.Registry) { r.RegisterSource("x", pipeline.Spec{}, nil) }, "nil constructor"},
		{"duplicate", func(r *pipeline.Registry) {
			r.RegisterSource("x", pipeline.Spec{}, src)
			r.RegisterSource("x", pipeline.Spec{}, src)
		}, `called twice for source "x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("panic = %v, want it to contain %q", r, tc.want)
				}
			}()
			var r pipeline.Registry
			tc.reg(&r)
		})
	}
}

func TestRegistryLookup(t *testing.T) {
	var r pipeline.Registry
	pipelinetest.Register(&r, pipelinetest.NewCollector())
	// The same name may be used by different kinds.
	r.RegisterSink("rows", pipeline.Spec{}, func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
		return nil, nil
	})
	if got := strings.Join(r.Names(pipeline.KindSink), ","); got != "collect,rows" {
		t.Errorf("Names(sink) = %s, want collect,rows (sorted)", got)
	}
	if _, err := r.NewOptions(pipeline.KindSource, "nope"); err == nil || !strings.Contains(err.Error(), `unknown source type "nope" (registered: [rows])`) {
		t.Errorf("NewOptions(unknown) error = %v", err)
	}
	opts, err := r.NewOptions(pipeline.KindSource, "rows")
	if _, ok := opts.(*pipelinetest.SourceOptions); !ok || err != nil {
		t.Errorf("NewOptions(rows) = %T, %v", opts, err)
	}
}

// ExampleRegistry registers a plugin in a registry of its own (tests use
// one so they do not depend on import side effects) and lists it.
func ExampleRegistry() {
	var reg pipeline.Registry
	reg.RegisterSource("numbers", pipeline.Spec{Summary: "counts up", Example: "rows: 3\n",
		NewOptions: func() any { return &pipelinetest.SourceOptions{} }},
		func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) {
			return pipelinetest.NewSource(*opts.(*pipelinetest.SourceOptions)), nil
		})
	fmt.Println(reg.Names(pipeline.KindSource))
	spec, _ := reg.Spec(pipeline.KindSource, "numbers")
	fmt.Println(spec.Summary)
	// Output:
	// [numbers]
	// counts up
}

func TestClosest(t *testing.T) {
	keys := []string{"name", "description", "dead_letter", "lookups", "schedule", "state", "stages"}
	tests := []struct{ got, want string }{
		{"stagse", "stages"},
		{"stat", "state"},
		{"Stages", "stages"},
		{"deadletter", "dead_letter"},
		{"shedule", "schedule"},
		{"nmae", "name"},
		{"zzzzzz", ""},
		{"x", ""},
	}
	for _, tc := range tests {
		if got := pipeline.Closest(tc.got, keys); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.got, got, tc.want)
		}
	}
}

// TestRegistryClone checks that a clone holds every plugin and that
// registering into it leaves the original unchanged.
func TestRegistryClone(t *testing.T) {
	var r pipeline.Registry
	src := func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) { return nil, nil }
	r.RegisterSource("a", pipeline.Spec{Summary: "A"}, src)
	c := r.Clone()
	if spec, err := c.Spec(pipeline.KindSource, "a"); err != nil || spec.Summary != "A" {
		t.Fatalf("clone lost source a: %+v %v", spec, err)
	}
	c.RegisterSource("b", pipeline.Spec{}, src)
	if _, err := r.Spec(pipeline.KindSource, "b"); err == nil {
		t.Error("registering into the clone changed the original")
	}
	if got := c.Names(pipeline.KindSource); len(got) != 2 {
		t.Errorf("clone sources = %v, want a and b", got)
	}
	var empty pipeline.Registry
	if n := empty.Clone().Names(pipeline.KindSink); len(n) != 0 {
		t.Errorf("clone of an empty registry has sinks %v", n)
	}
}

// TestTypedSource checks the adapter: its own options reach the
// constructor, another type is an error naming both, and a failed
// constructor gives a nil Source, not a typed nil.
func TestTypedSource(t *testing.T) {
	type opts struct{ N int }
	var got int
	fn := pipeline.TypedSource("x", func(ctx context.Context, env *pipeline.Env, o *opts) (*pipelinetest.Source, error) {
		got = o.N
		if o.N < 0 {
			return nil, errors.New("negative")
		}
		return pipelinetest.NewSource(pipelinetest.SourceOptions{}), nil
	})
	if src, err := fn(context.Background(), nil, &opts{N: 3}); err != nil || src == nil || got != 3 {
		t.Errorf("own options: src %v, err %v, N %d", src, err, got)
	}
	if _, err := fn(context.Background(), nil, &struct{}{}); err == nil || !strings.Contains(err.Error(), "x: options are *struct {}, want *pipeline_test.opts") {
		t.Errorf("other options: err %v", err)
	}
	if src, err := fn(context.Background(), nil, &opts{N: -1}); err == nil || src != nil {
		t.Errorf("failed constructor: src %#v, err %v", src, err)
	}
}

// TestTypedSink checks the sink adapter like TestTypedSource: its own
// options reach the constructor, another type (or none) is an error naming
// both, and a failed constructor gives a nil Sink, not a typed nil.
func TestTypedSink(t *testing.T) {
	type opts struct{ N int }
	var got int
	fn := pipeline.TypedSink("x", func(ctx context.Context, env *pipeline.Env, o *opts, in *pipeline.Schema) (*pipelinetest.Sink, error) {
		got = o.N
		if o.N < 0 {
			return nil, errors.New("negative")
		}
		return &pipelinetest.Sink{}, nil
	})
	in := pipeline.MustSchema(pipeline.Field{Name: "a", Type: pipeline.TypeString})
	for _, tc := range []struct {
		name    string
		opts    any
		wantErr string // "" = opens
		wantN   int
	}{
		{"own options", &opts{N: 3}, "", 3},
		{"other options", &struct{}{}, "x: options are *struct {}, want *pipeline_test.opts", 0},
		{"nil options", nil, "x: options are <nil>, want *pipeline_test.opts", 0},
		{"failed constructor", &opts{N: -1}, "negative", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = 0
			sk, err := fn(context.Background(), nil, tc.opts, in)
			if tc.wantErr == "" {
				if err != nil || sk == nil || got != tc.wantN {
					t.Fatalf("sink %v, err %v, N %d", sk, err, got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if sk != nil {
				t.Errorf("sink %#v on error, want a nil interface", sk)
			}
			if got != tc.wantN {
				t.Errorf("constructor saw N %d, want %d", got, tc.wantN)
			}
		})
	}
}

// TestTypedTransform checks the transform adapter like TestTypedSource.
func TestTypedTransform(t *testing.T) {
	type opts struct{ N int }
	fn := pipeline.TypedTransform("x", func(env *pipeline.Env, o *opts) (*pipelinetest.Transform, error) {
		if o.N < 0 {
			return nil, errors.New("negative")
		}
		return pipelinetest.NewTransform(pipelinetest.TransformOptions{}), nil
	})
	for _, tc := range []struct {
		name    string
		opts    any
		wantErr string // "" = builds
	}{
		{"own options", &opts{N: 1}, ""},
		{"other options", &struct{}{}, "x: options are *struct {}, want *pipeline_test.opts"},
		{"nil options", nil, "x: options are <nil>, want *pipeline_test.opts"},
		{"failed constructor", &opts{N: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := fn(nil, tc.opts)
			switch {
			case tc.wantErr == "" && (err != nil || tr == nil):
				t.Fatalf("transform %v, err %v", tr, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			case tc.wantErr != "" && tr != nil:
				t.Errorf("transform %#v on error, want a nil interface", tr)
			}
		})
	}
}
