package salesforcesink

import (
	"strings"
	"testing"
)

// TestResumeHintOfReplay checks the command the sink's messages name to
// resume a run: `bulkflow run FILE --resume RUN` for a run, and the
// command the CLI set (SetResumeCommand, as `bulkflow replay` does) for a
// replay, which `run --resume` would not resume (it reads the pipeline's
// source, not the dead letter).
func TestResumeHintOfReplay(t *testing.T) {
	run := &Sink{opts: NewOptions(), runID: "r1"}
	run.opts.SetProvenance("p.yaml", "d", nil)
	if got, want := run.resumeHint(), "bulkflow run p.yaml --resume r1"; got != want {
		t.Errorf("run: hint %q, want %q", got, want)
	}

	const replay = "bulkflow replay file:///dl/x.csv --pipeline p.yaml --resume r2"
	opts := NewOptions()
	opts.SetProvenance("p.yaml", "d", nil)
	// The CLI reaches the options through this interface (cmd/bulkflow/replay.go).
	var setter interface{ SetResumeCommand(string) } = opts
	setter.SetResumeCommand(replay)
	rs := &Sink{opts: opts, runID: "r2"}
	if got := rs.resumeHint(); got != replay {
		t.Errorf("replay: hint %q, want %q", got, replay)
	}
	msg := rs.rowErr(CodeJobIncomplete, "", "750x", "not confirmed").Error()
	if !strings.Contains(msg, "`"+replay+"`") || strings.Contains(msg, "bulkflow run") {
		t.Errorf("replay: row error %q does not name %q alone", msg, replay)
	}
}
