package redact

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// Writer returns an io.Writer that masks secrets (the process-wide set) in
// each Write before passing it to w. Each Write is masked on its own, so a
// secret split across two writes is not caught: write whole lines or
// messages (fmt.Fprintf, a slog handler and json.Encoder do). Unwrap gives
// back w.
func Writer(w io.Writer) io.Writer {
	if rw, ok := w.(*writer); ok {
		return rw
	}
	return &writer{w: w}
}

type writer struct{ w io.Writer }

func (rw *writer) Write(p []byte) (int, error) {
	if !Active() {
		return rw.w.Write(p)
	}
	s := string(p)
	r := Redact(s)
	if r == s {
		return rw.w.Write(p)
	}
	if _, err := io.WriteString(rw.w, r); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Unwrap returns the writer a Writer wraps (w itself for any other writer),
// e.g. to ask whether it is a terminal.
func Unwrap(w io.Writer) io.Writer {
	if rw, ok := w.(*writer); ok {
		return rw.w
	}
	return w
}

// Handler returns a slog.Handler that masks secrets (the process-wide set)
// in the message and in every attribute's value (strings, errors, Stringers
// and any other value whose printed form holds a secret; groups included)
// before passing the record to h.
func Handler(h slog.Handler) slog.Handler {
	if rh, ok := h.(*handler); ok {
		return rh
	}
	return &handler{h: h}
}

type handler struct{ h slog.Handler }

func (rh *handler) Enabled(ctx context.Context, l slog.Level) bool { return rh.h.Enabled(ctx, l) }

func (rh *handler) Handle(ctx context.Context, r slog.Record) error {
	if !Active() {
		return rh.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a))
		return true
	})
	return rh.h.Handle(ctx, out)
}

func (rh *handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = attr(a)
	}
	return &handler{h: rh.h.WithAttrs(red)}
}

func (rh *handler) WithGroup(name string) slog.Handler {
	return &handler{h: rh.h.WithGroup(name)}
}

// attr masks secrets in a's value.
func attr(a slog.Attr) slog.Attr {
	if !Active() {
		return a
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = attr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			s = fmt.Sprintf("%+v", x)
		}
		if r := Redact(s); r != s {
			return slog.String(a.Key, r)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
