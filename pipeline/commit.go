package pipeline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// FinalWriter is implemented by sinks whose Write makes its rows final when
// it returns (the Salesforce sink: a job's rows are in the org once its
// results are read). Their Close only releases resources, so an error from
// Close does not undo rows already counted as loaded.
//
// Every other sink follows the Sink contract: its output exists only once
// Close succeeds. For those the engine records each row a Write loaded (in
// a temporary file, so memory does not grow with the output) and, when
// Close fails, dead-letters them with code sink_failed instead of counting
// them as loaded: the report never says "loaded" for a row that is in no
// output.
type FinalWriter interface {
	// WritesAreFinal reports whether rows are final when Write returns.
	WritesAreFinal() bool
}

// ErrPartialOutput is wrapped by a sink's Close error when part of its
// output may already be visible despite the failure (a file sink writing
// to standard output or a FIFO, which cannot be taken back; blobio's
// direct writers wrap it). The rows the engine dead-letters then are not
// marked retryable: sending them again may write them twice.
var ErrPartialOutput = blobio.ErrPartialOutput

// commitLog records the rows a sink loaded until its Close commits them.
// Rows are appended from the sink's writers (concurrently) and read back
// only when Close fails. It spools to an unlinked temporary file; if that
// file cannot be written it keeps the batches in memory instead.
type commitLog struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	mem   []*Batch // after a spool error: batches kept as they are
	rows  int64
	err   error // the spool's first error (then mem is used)
	buf   []byte
	width int
}

// newCommitLog returns a log for a sink, or nil when the sink's writes are
// final and nothing needs recording.
func newCommitLog(sink Sink, in *Schema) *commitLog {
	if fw, ok := sink.(FinalWriter); ok && fw.WritesAreFinal() {
		return nil
	}
	return &commitLog{width: in.Len()}
}

// add records the rows of b that the sink loaded (all of them when failed
// is nil, otherwise those whose index is not in failed). It reports
// whether it kept b's rows in memory (after a spool error) rather than
// copying them to the spool.
func (l *commitLog) add(b *Batch, failed map[int]bool) (kept bool) {
	if l == nil || b.Len() == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil && l.err == nil {
		f, err := os.CreateTemp("", "bulkflow-commit-*")
		if err == nil {
			os.Remove(f.Name()) // unlinked: the space is freed when f is closed
			l.f, l.w = f, bufio.NewWriterSize(f, 256<<10)
		} else {
			l.err = err
		}
	}
	if l.err != nil {
		l.keep(b, failed)
		return true
	}
	spooled := int64(0)
	for i := range b.rows {
		if failed[i] {
			continue
		}
		l.buf = appendRecord(l.buf[:0], b.rows[i], b.origins[i])
		if _, err := l.w.Write(l.buf); err != nil {
			// From now on batches stay in memory, this one whole; the rows
			// of it already spooled are not read back from the file.
			l.err = err
			l.rows -= spooled
			l.keep(b, failed)
			return true
		}
		l.rows++
		spooled++
	}
	return false
}

// keep holds b's loaded rows in memory. l.mu is held.
func (l *commitLog) keep(b *Batch, failed map[int]bool) {
	kept := NewBatch(b.schema, b.Len()-len(failed))
	for i := range b.rows {
		if !failed[i] {
			kept.Append(b.rows[i], b.origins[i])
		}
	}
	l.mem = append(l.mem, kept)
}

// each calls fn with the recorded rows, in batches of at most n rows.
func (l *commitLog) each(n int, schema *Schema, fn func(*Batch)) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.mem {
		for i := 0; i < b.Len(); i += n {
			j := min(i+n, b.Len())
			part := NewBatch(schema, 0)
			part.rows, part.origins = b.rows[i:j], b.origins[i:j]
			fn(part)
		}
	}
	if l.w != nil && l.rows > 0 {
		if err := l.w.Flush(); err != nil {
			return fmt.Errorf("read back the rows sent to the sink: %w", err)
		}
		if _, err := l.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("read back the rows sent to the sink: %w", err)
		}
		r := bufio.NewReaderSize(l.f, 256<<10)
		b := NewBatch(schema, n)
		for range l.rows {
			row, origin, err := readRecord(r, l.width)
			if err != nil {
				return fmt.Errorf("read back the rows sent to the sink: %w", err)
			}
			b.Append(row, origin)
			if b.Len() == n {
				fn(b)
				b = NewBatch(schema, n)
			}
		}
		if b.Len() > 0 {
			fn(b)
		}
	}
	return nil
}

// total returns the number of rows recorded.
func (l *commitLog) total() int64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.rows
	for _, b := range l.mem {
		n += int64(b.Len())
	}
	return n
}

// close releases the spool file.
func (l *commitLog) close() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close()
}

// Record encoding: the origin (object, line, row), then one tagged value
// per column.
const (
	tagNil byte = iota
	tagString
	tagInt
	tagFloat
	tagFalse
	tagTrue
	tagTime
)

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendRecord(dst []byte, row Row, o Origin) []byte {
	dst = appendString(dst, o.Object)
	dst = binary.AppendVarint(dst, o.Line)
	dst = binary.AppendVarint(dst, o.Row)
	dst = binary.AppendUvarint(dst, uint64(len(row)))
	for _, v := range row {
		switch x := v.(type) {
		case nil:
			dst = append(dst, tagNil)
		case string:
			dst = appendString(append(dst, tagString), x)
		case int64:
			dst = binary.AppendVarint(append(dst, tagInt), x)
		case float64:
			dst = binary.LittleEndian.AppendUint64(append(dst, tagFloat), math.Float64bits(x))
		case bool:
			if x {
				dst = append(dst, tagTrue)
			} else {
				dst = append(dst, tagFalse)
			}
		case time.Time:
			tb, err := x.MarshalBinary()
			if err != nil { // a zone offset time cannot encode: keep the instant
				tb, _ = x.UTC().MarshalBinary()
			}
			dst = appendString(append(dst, tagTime), string(tb))
		default: // not a type the engine carries; its text is what a dead letter shows
			dst = appendString(append(dst, tagString), Text(v))
		}
	}
	return dst
}

func readString(r *bufio.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

func readRecord(r *bufio.Reader, width int) (Row, Origin, error) {
	var o Origin
	var err error
	if o.Object, err = readString(r); err != nil {
		return nil, o, err
	}
	if o.Line, err = binary.ReadVarint(r); err != nil {
		return nil, o, err
	}
	if o.Row, err = binary.ReadVarint(r); err != nil {
		return nil, o, err
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, o, err
	}
	row := make(Row, n, max(int(n), width))
	for i := range row {
		tag, err := r.ReadByte()
		if err != nil {
			return nil, o, err
		}
		switch tag {
		case tagNil:
		case tagString:
			if row[i], err = readString(r); err != nil {
				return nil, o, err
			}
		case tagInt:
			if row[i], err = binary.ReadVarint(r); err != nil {
				return nil, o, err
			}
		case tagFloat:
			var b [8]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, o, err
			}
			row[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
		case tagFalse, tagTrue:
			row[i] = tag == tagTrue
		case tagTime:
			s, err := readString(r)
			if err != nil {
				return nil, o, err
			}
			var t time.Time
			if err := t.UnmarshalBinary([]byte(s)); err != nil {
				return nil, o, err
			}
			row[i] = t
		default:
			return nil, o, fmt.Errorf("corrupt record: tag %d", tag)
		}
	}
	return row, o, nil
}

// uncommit moves the rows a sink loaded but failed to commit (its Close
// returned cause) from loaded to the dead letters, code sink_failed:
// retryable unless the sink says part of its output may be visible. Rows
// that cannot be read back from the log are counted lost.
func (r *runner) uncommit(s *planStage, cl *commitLog, cause error) {
	total := cl.total()
	if total == 0 {
		return
	}
	c := r.counters[s]
	c.loaded.Add(-total)
	r.loaded.Add(-total)
	retryable := !errors.Is(cause, ErrPartialOutput)
	var back int64
	err := cl.each(syncBatchRows, s.in, func(b *Batch) {
		back += int64(b.Len())
		drops := make([]Drop, b.Len())
		for i := range drops {
			drops[i] = Drop{Row: b.rows[i], Origin: b.origins[i], Err: &RowError{Code: CodeSinkFailed, Retryable: retryable,
				Err: fmt.Errorf("not committed: the sink took the row but failed to commit its output: %w", cause)}}
		}
		r.settle(s, s.in, drops)
	})
	if err != nil {
		r.lost.Add(total - back)
		r.fail(fmt.Errorf("stage %q: %d rows the sink failed to commit could not be dead-lettered: %w", s.spec.Name, total-back, err))
	}
}
