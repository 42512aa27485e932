package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes carried by RowError.Code. Plugins may use their own codes
// (lower-case words joined by underscores); these are the engine's.
const (
	CodeCancelled  = "cancelled"   // the run was stopped before the row reached a sink
	CodeAborted    = "aborted"     // another stage failed and the run drained
	CodeSinkFailed = "sink_failed" // a sink failed the whole batch
	// CodeUnsettled: a resumed attempt stopped before settling the row, and an
	// earlier attempt of the same run may have loaded it (RecoveryResume).
	CodeUnsettled = "unsettled"
	CodeRowFailed = "row_failed" // a row failed without a more precise code
)

// RowError is why one row was dead-lettered. Plugins return it (inside a
// Drop or a RowErrors) so dead letters can name the place and the cause;
// callers use errors.Is on Err for the kind and errors.As for the location.
type RowError struct {
	Origin Origin // where the row came from; filled in by the engine when zero
	Stage  string // stage name; filled in by the engine
	Code   string // machine-readable kind, e.g. "field_count", "expr_error"
	Field  string // the field involved, if any (several: joined with ";")
	Err    error  // the cause
	// Retryable says that sending the row again unchanged may succeed
	// (a lock, a limit, a cancelled run); false means the data must be
	// fixed first.
	Retryable bool
	// Ref names the remote operation the row failed in, if any (for the
	// Salesforce sink, the ingest job id).
	Ref string
}

// Error returns "origin: stage: field: message".
func (e *RowError) Error() string {
	var parts []string
	if o := e.Origin.String(); o != "" {
		parts = append(parts, o)
	}
	if e.Stage != "" {
		parts = append(parts, "stage "+e.Stage)
	}
	if e.Field != "" {
		parts = append(parts, "field "+e.Field)
	}
	msg := "<nil>"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	parts = append(parts, msg)
	return strings.Join(parts, ": ")
}

// Unwrap returns the cause.
func (e *RowError) Unwrap() error { return e.Err }

// NewRowError returns a RowError with the given code and a formatted cause.
func NewRowError(code, field, format string, args ...any) *RowError {
	return &RowError{Code: code, Field: field, Err: fmt.Errorf(format, args...)}
}

// RowFailure is one failed row of a batch passed to Sink.Write.
type RowFailure struct {
	Index int   // index of the row in the batch
	Err   error // why; a *RowError when the sink knows a code
}

// RowErrors is returned by Sink.Write when some rows of the batch failed and
// the rest were loaded. The engine dead-letters exactly the listed rows.
type RowErrors struct {
	Failures []RowFailure
}

// Add records that row i failed with err.
func (e *RowErrors) Add(i int, err error) {
	e.Failures = append(e.Failures, RowFailure{Index: i, Err: err})
}

// Error summarises the failures.
func (e *RowErrors) Error() string {
	if len(e.Failures) == 0 {
		return "no rows failed"
	}
	return fmt.Sprintf("%d rows failed; first: row %d: %v", len(e.Failures), e.Failures[0].Index, e.Failures[0].Err)
}

// Position is a place in a pipeline file.
type Position struct {
	File string
	Line int
	Col  int
}

// String returns "file:line:col".
func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// ConfigError is an error in a pipeline file, located at Pos.
type ConfigError struct {
	Pos Position
	Msg string
}

// Error returns "file:line:col: message".
func (e *ConfigError) Error() string {
	if e.Pos.File == "" && e.Pos.Line == 0 {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// ErrAccounting is wrapped by the error Run returns when the engine's row
// accounting does not balance.
var ErrAccounting = errors.New("row accounting does not balance")
