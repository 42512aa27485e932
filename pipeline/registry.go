package pipeline

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Kind is the kind of a plugin.
type Kind string

// The plugin kinds.
const (
	KindSource    Kind = "source"
	KindTransform Kind = "transform"
	KindSink      Kind = "sink"
)

// Spec describes a plugin to the config loader and to users.
type Spec struct {
	// Summary is a one-line description.
	Summary string
	// Example is a YAML snippet of the plugin's options (without "type").
	// A test walks the registry and checks that every example decodes.
	Example string
	// NewOptions returns a pointer to a new options struct with defaults set.
	// The loader decodes the plugin's YAML into it strictly: unknown keys are
	// errors. Nil means the plugin takes no options.
	NewOptions func() any
}

type entry struct {
	spec      Spec
	source    SourceFunc
	transform TransformFunc
	sink      SinkFunc
}

// Registry maps plugin type names to constructors, per kind. The zero value
// is an empty registry ready to use; it is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	entries map[Kind]map[string]entry
}

var defaultRegistry Registry

// DefaultRegistry returns the process-wide registry that plugin packages fill
// from their init functions.
func DefaultRegistry() *Registry { return &defaultRegistry }

func (r *Registry) register(kind Kind, name string, e entry, nilFunc bool) {
	if name == "" {
		panic(fmt.Sprintf("pipeline: Register %s with an empty name", kind))
	}
	if nilFunc {
		panic(fmt.Sprintf("pipeline: Register %s %q with a nil constructor", kind, name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = make(map[Kind]map[string]entry)
	}
	if r.entries[kind] == nil {
		r.entries[kind] = make(map[string]entry)
	}
	if _, dup := r.entries[kind][name]; dup {
		panic(fmt.Sprintf("pipeline: Register called twice for %s %q", kind, name))
	}
	r.entries[kind][name] = e
}

// Clone returns a new registry holding every plugin of r. Registering into
// the clone leaves r unchanged: commands that run a pipeline with extra or
// substituted plugins (plan, replay) clone the default registry.
func (r *Registry) Clone() *Registry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c := &Registry{entries: make(map[Kind]map[string]entry, len(r.entries))}
	for kind, m := range r.entries {
		c.entries[kind] = make(map[string]entry, len(m))
		for name, e := range m {
			c.entries[kind][name] = e
		}
	}
	return c
}

// TypedSource adapts a source constructor that takes its own options type
// to a SourceFunc. Options of another type (a plugin bug: the registry hands
// a plugin what its Spec.NewOptions made) are an error naming both types,
// never a panic.
func TypedSource[O any, S Source](name string, open func(ctx context.Context, env *Env, o *O) (S, error)) SourceFunc {
	return func(ctx context.Context, env *Env, opts any) (Source, error) {
		o, ok := opts.(*O)
		if !ok {
			return nil, fmt.Errorf("%s: options are %T, want %T", name, opts, o)
		}
		src, err := open(ctx, env, o)
		if err != nil {
			return nil, err // not a typed nil in a non-nil interface
		}
		return src, nil
	}
}

// TypedSink adapts a sink constructor that takes its own options type to a
// SinkFunc, as TypedSource does for sources: options of another type are
// an error naming both types, never a panic.
func TypedSink[O any, S Sink](name string, open func(ctx context.Context, env *Env, o *O, in *Schema) (S, error)) SinkFunc {
	return func(ctx context.Context, env *Env, opts any, in *Schema) (Sink, error) {
		o, ok := opts.(*O)
		if !ok {
			return nil, fmt.Errorf("%s: options are %T, want %T", name, opts, o)
		}
		sk, err := open(ctx, env, o, in)
		if err != nil {
			return nil, err // not a typed nil in a non-nil interface
		}
		return sk, nil
	}
}

// TypedTransform adapts a transform constructor that takes its own options
// type to a TransformFunc, as TypedSource does for sources.
func TypedTransform[O any, T Transform](name string, build func(env *Env, o *O) (T, error)) TransformFunc {
	return func(env *Env, opts any) (Transform, error) {
		o, ok := opts.(*O)
		if !ok {
			return nil, fmt.Errorf("%s: options are %T, want %T", name, opts, o)
		}
		t, err := build(env, o)
		if err != nil {
			return nil, err // not a typed nil in a non-nil interface
		}
		return t, nil
	}
}

// RegisterSource registers a source type. It panics if name is empty, fn is
// nil, or the name is already registered as a source.
func (r *Registry) RegisterSource(name string, spec Spec, fn SourceFunc) {
	r.register(KindSource, name, entry{spec: spec, source: fn}, fn == nil)
}

// RegisterTransform registers a transform type. It panics if name is empty,
// fn is nil, or the name is already registered as a transform.
func (r *Registry) RegisterTransform(name string, spec Spec, fn TransformFunc) {
	r.register(KindTransform, name, entry{spec: spec, transform: fn}, fn == nil)
}

// RegisterSink registers a sink type. It panics if name is empty, fn is nil,
// or the name is already registered as a sink.
func (r *Registry) RegisterSink(name string, spec Spec, fn SinkFunc) {
	r.register(KindSink, name, entry{spec: spec, sink: fn}, fn == nil)
}

// Names returns the registered names of a kind, sorted.
func (r *Registry) Names(kind Kind) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.entries[kind]))
	for n := range r.entries[kind] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *Registry) lookup(kind Kind, name string) (entry, error) {
	r.mu.RLock()
	e, ok := r.entries[kind][name]
	r.mu.RUnlock()
	if !ok {
		return entry{}, fmt.Errorf("unknown %s type %q (registered: %v)", kind, name, r.Names(kind))
	}
	return e, nil
}

// Spec returns the spec of a registered plugin.
func (r *Registry) Spec(kind Kind, name string) (Spec, error) {
	e, err := r.lookup(kind, name)
	return e.spec, err
}

// NewOptions returns a fresh options value for a registered plugin, or nil
// if it takes none.
func (r *Registry) NewOptions(kind Kind, name string) (any, error) {
	e, err := r.lookup(kind, name)
	if err != nil {
		return nil, err
	}
	if e.spec.NewOptions == nil {
		return nil, nil
	}
	return e.spec.NewOptions(), nil
}

// OpenSource opens a source of the named type.
func (r *Registry) OpenSource(ctx context.Context, env *Env, name string, opts any) (Source, error) {
	e, err := r.lookup(KindSource, name)
	if err != nil {
		return nil, err
	}
	return e.source(ctx, env, opts)
}

// NewTransform builds a transform of the named type.
func (r *Registry) NewTransform(env *Env, name string, opts any) (Transform, error) {
	e, err := r.lookup(KindTransform, name)
	if err != nil {
		return nil, err
	}
	return e.transform(env, opts)
}

// OpenSink opens a sink of the named type for rows of schema in.
func (r *Registry) OpenSink(ctx context.Context, env *Env, name string, opts any, in *Schema) (Sink, error) {
	e, err := r.lookup(KindSink, name)
	if err != nil {
		return nil, err
	}
	return e.sink(ctx, env, opts, in)
}
