package pipeline

import "time"

// Progress is what RunOptions.Progress receives while a run goes: the
// counts so far, how much of their input the sources have read (when they
// know its size), and the live state of the sinks that report it.
type Progress struct {
	Counts
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Reading is true until every source has read its last row.
	Reading bool
	// Input is how far the sources have read, when every source knows
	// its input's size (Sizer); Input.Total is 0 when one does not.
	Input InputSize
	// Sinks holds the live state of each sink stage that reports it
	// (LiveReporter), in the pipeline's stage order.
	Sinks []SinkLive
}

// InputSize is how much input a source reads in all (Total) and has read
// so far (Done), in Unit.
type InputSize struct {
	Done, Total int64
	// Unit is "rows" (a known row count, e.g. from Parquet footers) or
	// "bytes" (object sizes from the listing). Progress.Input may also be
	// "permille" when sources measure in different units.
	Unit string
}

// Fraction returns Done/Total in [0, 1], or -1 when the total is unknown.
func (s InputSize) Fraction() float64 {
	if s.Total <= 0 {
		return -1
	}
	return min(max(float64(s.Done)/float64(s.Total), 0), 1)
}

// Sizer is an optional interface of a Source: the size of what it reads,
// when knowing it is cheap (object sizes from the listing, row counts
// from Parquet footers). InputSize is called after Schema, from the
// progress goroutine, concurrently with Read; Total is 0 when the size is
// not known.
type Sizer interface {
	InputSize() InputSize
}

// SinkLive is a sink's live state, for progress displays: the remote
// jobs it has open and what the destination reported processing.
type SinkLive struct {
	// Stage is the sink stage's name (set by the engine).
	Stage string `json:"stage"`
	// JobsOpen are jobs created and receiving data; JobsInProgress are
	// closed and being processed; JobsComplete have ended (in any state).
	JobsOpen       int `json:"jobs_open"`
	JobsInProgress int `json:"jobs_in_progress"`
	JobsComplete   int `json:"jobs_complete"`
	// Processed and Failed are records the destination reported
	// processed and failed so far (from its polls and results).
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
	// Requests is the API requests made so far (Bulk and REST alike).
	Requests int64 `json:"requests"`
}

// LiveReporter is an optional interface of a Sink with state worth showing
// while the run goes (e.g. the Salesforce sink's jobs). Live is called
// from the progress goroutine, concurrently with Write.
type LiveReporter interface {
	Live() SinkLive
}

// progress returns the run's Progress now.
func (r *runner) progress(start time.Time) Progress {
	p := Progress{Counts: r.counts(), Elapsed: r.opts.Now().Sub(start), Reading: r.sourcesLeft.Load() > 0}
	var rows, bytes, permille InputSize
	n, known := 0, true
	for _, s := range r.plan.stages {
		switch s.spec.Kind {
		case KindSource:
			n++
			sz, ok := s.source.(Sizer)
			var in InputSize
			if ok {
				in = sz.InputSize()
			}
			if in.Total <= 0 {
				known = false
				continue
			}
			if d := r.sourcesDone[s]; d != nil && d.Load() {
				in.Done = in.Total
			}
			in.Done = min(in.Done, in.Total)
			switch in.Unit {
			case "rows":
				rows.Done, rows.Total = rows.Done+in.Done, rows.Total+in.Total
			default:
				bytes.Done, bytes.Total = bytes.Done+in.Done, bytes.Total+in.Total
			}
			permille.Done += int64(in.Fraction() * 1000)
			permille.Total += 1000
		case KindSink:
			if lr, ok := r.sinks[s].(LiveReporter); ok {
				l := lr.Live()
				l.Stage = s.spec.Name
				p.Sinks = append(p.Sinks, l)
			}
		}
	}
	switch {
	case !known || n == 0:
	case bytes.Total == 0:
		p.Input, p.Input.Unit = rows, "rows"
	case rows.Total == 0:
		p.Input, p.Input.Unit = bytes, "bytes"
	default:
		p.Input, p.Input.Unit = permille, "permille"
	}
	return p
}
