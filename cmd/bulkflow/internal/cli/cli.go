// Package cli holds what bulkflow's commands share beyond the engine: the
// process exit codes. Each command's implementation lives in a package of
// its own under cmd/bulkflow/internal and returns one of these codes.
package cli

// Exit codes of every bulkflow command (README: "Exit codes").
const (
	// ExitOK: every row loaded or filtered; a command that did its work.
	ExitOK = 0
	// ExitFailed: the run failed or was cancelled; a command that failed.
	ExitFailed = 1
	// ExitUsage: an invalid pipeline file, flag or argument.
	ExitUsage = 2
	// ExitPartial: the run finished with dead-lettered rows.
	ExitPartial = 3
)
