package obs

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestFrames renders the progress display at fixed points of a run (its
// times, counts and sizes given) and compares each frame with the golden
// file: the bar with percentage and ETA while reading an input of known
// size, the counter when the size is unknown, the loading phase's own
// rate and ETA once reading ended, the Salesforce sink's line, the end.
func TestFrames(t *testing.T) {
	sink := pipeline.SinkLive{Stage: "load", JobsOpen: 1, JobsInProgress: 2, JobsComplete: 3, Processed: 30000, Failed: 12, Requests: 41}
	steps := []struct {
		name string
		p    pipeline.Progress
	}{
		{"start, size known", pipeline.Progress{Reading: true, Elapsed: 200 * time.Millisecond,
			Input: pipeline.InputSize{Total: 10 << 20, Unit: "bytes"}}},
		{"reading 45%", pipeline.Progress{Reading: true, Elapsed: 9 * time.Second,
			Counts: pipeline.Counts{Read: 45000, Loaded: 30000, Filtered: 100, DeadLettered: 12},
			Input:  pipeline.InputSize{Done: 45 << 20 / 10, Total: 10 << 20, Unit: "bytes"}, Sinks: []pipeline.SinkLive{sink}}},
		{"reading, Parquet rows", pipeline.Progress{Reading: true, Elapsed: 2 * time.Second,
			Counts: pipeline.Counts{Read: 250}, Input: pipeline.InputSize{Done: 250, Total: 1000, Unit: "rows"}}},
		{"reading, size unknown", pipeline.Progress{Reading: true, Elapsed: 3 * time.Second, Counts: pipeline.Counts{Read: 1200}}},
		{"reading ended", pipeline.Progress{Elapsed: 20 * time.Second,
			Counts: pipeline.Counts{Read: 100000, Loaded: 60000, Filtered: 200, DeadLettered: 20}, Sinks: []pipeline.SinkLive{sink}}},
		{"loading", pipeline.Progress{Elapsed: 30 * time.Second,
			Counts: pipeline.Counts{Read: 100000, Loaded: 80000, Filtered: 200, DeadLettered: 20}, Sinks: []pipeline.SinkLive{sink}}},
		{"done", pipeline.Progress{Elapsed: 41 * time.Second,
			Counts: pipeline.Counts{Read: 100000, Loaded: 99750, Filtered: 200, DeadLettered: 50},
			Sinks:  []pipeline.SinkLive{{Stage: "load", JobsComplete: 10, Processed: 99800, Failed: 50, Requests: 66}}}},
	}
	var out strings.Builder
	var ph Phase // one run: the phase carries over
	for _, st := range steps {
		out.WriteString("== " + st.name + "\n")
		for _, l := range Frame(st.p, &ph) {
			out.WriteString(l + "\n")
		}
	}
	pipelinetest.Golden(t, "testdata/frames.golden", []byte(out.String()), *update)
}

// TestDisplayPlain checks the plain display: one line per update, sink
// lines joined to it.
func TestDisplayPlain(t *testing.T) {
	var buf bytes.Buffer
	d := NewDisplay(&buf, ProgressPlain)
	if d.Interval != PlainInterval {
		t.Errorf("interval %v, want %v", d.Interval, PlainInterval)
	}
	d.Update(pipeline.Progress{Reading: true, Elapsed: time.Second, Counts: pipeline.Counts{Read: 10},
		Sinks: []pipeline.SinkLive{{Stage: "load", JobsOpen: 1}}})
	d.Finish()
	want := "progress: 1.0s reading | read 10 rows (10.0 rows/s) | loaded 0 filtered 0 dead-lettered 0 | load: jobs 1 open, 0 in progress, 0 complete | records 0 processed, 0 failed | 0 requests\n"
	if buf.String() != want {
		t.Errorf("got  %q\nwant %q", buf.String(), want)
	}
	if NewDisplay(&buf, ProgressNone) != nil || NewDisplay(&buf, ProgressAuto).Interval != AutoPlainInterval {
		t.Error("none must give no display, auto on a buffer plain lines every 10 s")
	}
}

// TestDisplayWriter checks that a log line written through a live
// display's Writer erases the frame first, so that it never lands inside
// it, and that the next update draws the frame afresh below it.
func TestDisplayWriter(t *testing.T) {
	var buf bytes.Buffer
	d := &Display{w: &buf, live: true, Interval: TerminalInterval}
	p := pipeline.Progress{Reading: true, Elapsed: time.Second, Counts: pipeline.Counts{Read: 10},
		Sinks: []pipeline.SinkLive{{Stage: "load"}}}
	d.Update(p)
	buf.Reset()
	d.Writer(&buf).Write([]byte("level=WARN msg=hello\n"))
	if want := "\x1b[1A\r\x1b[2K\n\r\x1b[2K\x1b[1Alevel=WARN msg=hello\n"; buf.String() != want {
		t.Errorf("log write: %q, want %q", buf.String(), want)
	}
	buf.Reset()
	d.Update(p)
	if strings.Contains(buf.String(), "\x1b[1A") || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("the frame after a log line must be drawn fresh (2 lines, no cursor up): %q", buf.String())
	}
	if w := NewDisplay(&buf, ProgressPlain).Writer(&buf); w != &buf {
		t.Error("a plain display's Writer must be the writer itself")
	}
}
