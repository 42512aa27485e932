// Package obs is how bulkflow's commands are observed from outside: the
// log flags and handler every command shares (--log-level, --log-format,
// log/slog with secrets masked and one set of keys), and OpenTelemetry
// tracing, switched on by the standard OTEL_* environment variables.
//
// It sits under cmd/bulkflow because only the program decides where logs
// and traces go: the engine and the plugins take a *slog.Logger from
// pipeline.Env and create spans with the OpenTelemetry API alone, which is
// a no-op until StartTracing installs an exporter.
//
// # Log keys
//
// Every command logs the same keys for the same things: run_id (the run),
// stage (the pipeline stage), job_id (a Salesforce job), pipeline, err.
// Older plugin log calls that say "job" or "run" are renamed on the way
// out, so a log query need not know which package wrote the line.
package obs

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// LogOptions are the values of the --log-level and --log-format flags.
type LogOptions struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is text (logfmt-style key=value) or json (one object a line).
	Format string
}

// AddLogFlags registers --log-level (default defaultLevel) and
// --log-format (default text) on fs, storing them in o.
func AddLogFlags(fs *flag.FlagSet, o *LogOptions, defaultLevel string) {
	fs.StringVar(&o.Level, "log-level", defaultLevel, "least severe log messages written to stderr: debug, info, warn or error")
	fs.StringVar(&o.Format, "log-format", "text", "log line format on stderr: text (key=value) or json (one object a line)")
}

// Check returns an error naming the flag when a value is not one the
// flags take.
func (o LogOptions) Check() error {
	if _, err := parseLevel(o.Level); err != nil {
		return err
	}
	switch o.Format {
	case "", "text", "json":
		return nil
	}
	return fmt.Errorf("--log-format must be text or json, not %q", o.Format)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "", "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", s)
}

// NewLogger returns a logger writing to w at o's level and in o's format,
// with secrets masked (package redact) and keys renamed to bulkflow's log
// keys (see the package doc). An invalid o (see Check) logs at warn, as
// text.
func (o LogOptions) NewLogger(w io.Writer) *slog.Logger {
	level, err := parseLevel(o.Level)
	if err != nil {
		level = slog.LevelWarn
	}
	ho := &slog.HandlerOptions{Level: level, ReplaceAttr: renameKey}
	var h slog.Handler
	if o.Format == "json" {
		h = slog.NewJSONHandler(w, ho)
	} else {
		h = slog.NewTextHandler(w, ho)
	}
	return slog.New(redact.Handler(h))
}

// keyNames maps keys some log calls use to bulkflow's log keys.
var keyNames = map[string]string{"job": "job_id", "run": "run_id"}

// renameKey is the handlers' ReplaceAttr: top-level keys only (a group's
// members keep their names).
func renameKey(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 {
		if k, ok := keyNames[a.Key]; ok {
			a.Key = k
		}
	}
	return a
}
