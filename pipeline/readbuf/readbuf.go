// Package readbuf is a read buffer for parsers that scan their input in
// place (fields and records that alias the buffer) and hand the rest of
// it to a general reader when they meet something outside their fast path:
// the Salesforce result parser (sinks/salesforce) and the sync manifest
// reader (pipeline/sync/changes). bufio.Reader does not fit them: Peek and
// Discard cost a copy per record, and it cannot be told to keep the bytes
// a parser still points into.
package readbuf

import (
	"bytes"
	"io"
)

// maxEmptyReads is how many reads in a row may return neither data nor an
// error before Fill gives up with io.ErrNoProgress (as bufio.Reader does).
const maxEmptyReads = 100

// Buffer holds input read from a source: Buf[Pos:End] is what the parser
// has not consumed yet. The parser advances Pos itself.
type Buffer struct {
	Buf      []byte
	Pos, End int
	// Err is the error that ended the source, once a read returned one
	// (io.EOF at its end); nil while more input may come.
	Err error
	src io.Reader
}

// New returns a buffer of size bytes over src.
func New(src io.Reader, size int) *Buffer {
	return &Buffer{Buf: make([]byte, size), src: src}
}

// Fill moves the unconsumed bytes to the front of Buf (Pos becomes 0),
// doubles Buf when they fill it, and reads more after them. It reports
// whether it read any byte; Err is set when the source ended or failed.
// Bytes before Pos are overwritten: the caller saves what it still needs
// of them first.
func (b *Buffer) Fill() bool {
	if b.Err != nil {
		return false
	}
	b.End = copy(b.Buf, b.Buf[b.Pos:b.End])
	b.Pos = 0
	if b.End == len(b.Buf) {
		b.Buf = append(b.Buf, make([]byte, len(b.Buf))...)
	}
	for range maxEmptyReads {
		n, err := b.src.Read(b.Buf[b.End:])
		b.End += n
		if err != nil {
			b.Err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	b.Err = io.ErrNoProgress
	return false
}

// Rest returns a reader of the unconsumed bytes, then of what the source
// has left: after a read error, that error again. Buf must not change
// while the reader is in use.
func (b *Buffer) Rest() io.Reader {
	r := io.Reader(bytes.NewReader(b.Buf[b.Pos:b.End]))
	switch {
	case b.Err == nil:
		r = io.MultiReader(r, b.src)
	case b.Err != io.EOF:
		r = io.MultiReader(r, errReader{b.Err})
	}
	return r
}

// errReader replays the read error that ended the input.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
