package obs

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

// Progress display modes (the --progress flag).
const (
	ProgressAuto  = "auto"  // a live display on a terminal, plain lines otherwise
	ProgressPlain = "plain" // a plain line every 2 s
	ProgressNone  = "none"
)

// Cadences of the displays: a terminal is redrawn 5 times a second; plain
// lines come every 10 s when stderr is not a terminal (logs stay short),
// every 2 s with --progress plain.
const (
	TerminalInterval  = 200 * time.Millisecond
	AutoPlainInterval = 10 * time.Second
	PlainInterval     = 2 * time.Second
)

// barWidth is the width of the bar between its brackets.
const barWidth = 30

// Display shows a run's progress on a writer: on a terminal, a frame of
// a bar line and one line per Salesforce sink, redrawn in place; elsewhere
// one plain line per update. Its Update is RunOptions.Progress. A Display
// is safe for concurrent use.
type Display struct {
	w        io.Writer
	live     bool // redraw in place (a terminal)
	Interval time.Duration

	mu    sync.Mutex
	lines int // lines of the last frame, to move back over them
	phase Phase
}

// Phase is what Frame remembers between frames: when reading ended, so
// that the rate shown after it is the loading phase's own (rows settled
// per second since reading ended), not a read rate falling towards zero.
// The zero value is a run that has not finished reading.
type Phase struct {
	readEnd   time.Duration // Elapsed when Reading was first seen false; 0 while reading
	settledAt int64         // rows settled at that moment
	ended     bool
}

// NewDisplay returns the display for mode (auto, plain or none; nil for
// none) writing to w. auto draws a live frame when w (or what
// redact.Writer wraps) is a terminal.
func NewDisplay(w io.Writer, mode string) *Display {
	switch mode {
	case ProgressNone:
		return nil
	case ProgressPlain:
		return &Display{w: w, Interval: PlainInterval}
	}
	if f, ok := redact.Unwrap(w).(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &Display{w: w, live: true, Interval: TerminalInterval}
	}
	return &Display{w: w, Interval: AutoPlainInterval}
}

// Install sets opts.Progress and opts.ProgressInterval to d's (nothing for
// a nil d).
func (d *Display) Install(opts *pipeline.RunOptions) {
	if d == nil {
		return
	}
	opts.Progress, opts.ProgressInterval = d.Update, d.Interval
}

// Update shows p.
func (d *Display) Update(p pipeline.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	lines := Frame(p, &d.phase)
	if !d.live {
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		fmt.Fprintf(d.w, "progress: %s\n", strings.Join(lines, " | "))
		return
	}
	var b strings.Builder
	if d.lines > 1 {
		fmt.Fprintf(&b, "\x1b[%dA", d.lines-1) // back to the frame's first line
	}
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("\r\x1b[2K" + l)
	}
	for i := len(lines); i < d.lines; i++ {
		b.WriteString("\n\r\x1b[2K") // a sink line that went away
	}
	if extra := d.lines - len(lines); extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	d.lines = len(lines)
	io.WriteString(d.w, b.String())
}

// Writer returns a writer for what else goes to the display's terminal
// (log lines): on a live display each write first erases the frame, so
// that a log line never lands inside it; the next update draws the frame
// again below. For a nil or plain display it returns w.
func (d *Display) Writer(w io.Writer) io.Writer {
	if d == nil || !d.live {
		return w
	}
	return &frameWriter{d: d, w: w}
}

type frameWriter struct {
	d *Display
	w io.Writer
}

func (fw *frameWriter) Write(p []byte) (int, error) {
	fw.d.mu.Lock()
	defer fw.d.mu.Unlock()
	fw.d.erase()
	return fw.w.Write(p)
}

// erase clears the frame's lines and leaves the cursor at the start of
// its first line. d.mu is held.
func (d *Display) erase() {
	if d.lines == 0 {
		return
	}
	var b strings.Builder
	if d.lines > 1 {
		fmt.Fprintf(&b, "\x1b[%dA", d.lines-1)
	}
	for i := range d.lines {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("\r\x1b[2K")
	}
	if d.lines > 1 {
		fmt.Fprintf(&b, "\x1b[%dA", d.lines-1)
	}
	io.WriteString(d.w, b.String())
	d.lines = 0
}

// Finish ends a live frame: the cursor moves below it, so that what comes
// next (the summary) does not overwrite it.
func (d *Display) Finish() {
	if d == nil || !d.live {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lines > 0 {
		io.WriteString(d.w, "\n")
	}
	d.lines = 0
}

// Frame returns the lines that show p: the rows line (a bar with
// percentage and ETA while reading an input of known size, a counter
// otherwise; the loading phase's rate once reading ended) and one line per
// live sink. ph carries the phase between frames.
func Frame(p pipeline.Progress, ph *Phase) []string {
	secs := max(p.Elapsed.Seconds(), 0.001)
	settled := p.Loaded + p.Filtered + p.DeadLettered
	outcome := fmt.Sprintf("loaded %d filtered %d dead-lettered %d", p.Loaded, p.Filtered, p.DeadLettered)
	var first string
	switch {
	case p.Reading:
		rate := float64(p.Read) / secs
		if f := p.Input.Fraction(); f >= 0 {
			eta := "ETA -"
			if f > 0 {
				eta = "ETA " + fmtDuration(time.Duration(float64(p.Elapsed)*(1-f)/f))
			}
			first = fmt.Sprintf("reading %s %3.0f%% %s | read %d rows (%s rows/s) %s | %s",
				bar(f), f*100, sizeText(p.Input), p.Read, fmtRate(rate), eta, outcome)
		} else {
			first = fmt.Sprintf("reading | read %d rows (%s rows/s) | %s", p.Read, fmtRate(rate), outcome)
		}
	default:
		if !ph.ended {
			ph.ended, ph.readEnd, ph.settledAt = true, p.Elapsed, settled
		}
		// Rows in flight (read, not yet loaded, filtered or dead-lettered).
		left := max(p.Read+p.FannedOut-settled, 0)
		since := max((p.Elapsed - ph.readEnd).Seconds(), 0.001)
		rate := float64(settled-ph.settledAt) / since
		loading := "all rows settled"
		if left > 0 {
			loading = fmt.Sprintf("%d in flight", left)
			if rate > 0 {
				loading += fmt.Sprintf(" (%s rows/s)", fmtRate(rate))
				loading += " ETA " + fmtDuration(time.Duration(float64(left)/rate*float64(time.Second)))
			}
		}
		first = fmt.Sprintf("read %d rows in %s | %s | %s", p.Read, fmtDuration(ph.readEnd), outcome, loading)
	}
	lines := []string{fmt.Sprintf("%s %s", fmtDuration(p.Elapsed), first)}
	for _, s := range p.Sinks {
		lines = append(lines, fmt.Sprintf("  %s: jobs %d open, %d in progress, %d complete | records %d processed, %d failed | %d requests",
			s.Stage, s.JobsOpen, s.JobsInProgress, s.JobsComplete, s.Processed, s.Failed, s.Requests))
	}
	return lines
}

// bar draws f (0..1) as [=====>    ].
func bar(f float64) string {
	n := int(f * barWidth)
	if n >= barWidth {
		return "[" + strings.Repeat("=", barWidth) + "]"
	}
	return "[" + strings.Repeat("=", n) + ">" + strings.Repeat(" ", barWidth-n-1) + "]"
}

func sizeText(in pipeline.InputSize) string {
	switch in.Unit {
	case "bytes":
		return fmt.Sprintf("%s/%s", fmtBytes(in.Done), fmtBytes(in.Total))
	case "rows":
		return fmt.Sprintf("%d/%d rows", in.Done, in.Total)
	}
	return ""
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func fmtRate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

// fmtDuration shows d to the second (to the tenth under a minute).
func fmtDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
