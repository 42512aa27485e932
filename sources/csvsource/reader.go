package csvsource

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"
	"unicode/utf8"
)

// This file holds the record reader. It is hand-written rather than built on
// encoding/csv for three reasons:
//
//   - encoding/csv rewrites "\r\n" inside quoted fields to "\n". Salesforce
//     stores what it is sent, so a source must hand on field contents
//     byte-exact.
//   - a dead letter needs the raw text of a bad record and the physical line it
//     starts on; encoding/csv reports only line/column of errors and cannot
//     give back the raw record bytes without re-reading the input.
//   - after a malformed record encoding/csv has already consumed an
//     unpredictable amount of input; this reader always consumes whole
//     physical lines, so it resynchronises on the next line.
//
// It reports each field as a span of one byte slice: a line without quotes
// is used as it is (fields are the text between delimiters); otherwise field
// contents are unquoted into a reused buffer first. The source copies a
// record's bytes once into memory shared by many records and slices its
// string values from that copy (see batchBuilder).
//
// Most records are one line without quotes, and readSpans takes them
// straight from the bufio.Reader's buffer (Peek, Discard) in one pass each:
// bytes.IndexByte finds the line end, the line is split at its delimiters
// eight bytes at a time (splitFields), which also tells whether it is all
// ASCII (then valid UTF-8 with no further check). Quotes are looked for
// once over the buffer, not per line: noQuote remembers how far ahead the
// buffer is known to hold none. Any other record (quoted, longer than the
// buffered bytes, the last one without a terminator) takes the general
// path, which reads physical lines with bufio.Reader.ReadSlice.

// parseError is a malformed record found by the record reader.
type parseError struct {
	code  string // pipeline.RowError code: "bad_quote"
	field int    // 0-based index of the field where it was found
	msg   string
}

// recordReader splits a byte stream into records of fields.
type recordReader struct {
	br    *bufio.Reader
	comma byte
	quote byte
	eol   byte // record terminator: '\n', or '\r' for bare-CR objects (see begin)

	lines int64 // physical lines consumed so far
	start int64 // physical line (1-based) the last record started on

	// noQuote is how many of br's buffered bytes, from its read position,
	// are known to hold no quote character (0: unknown). Reading through
	// anything but the fast path of readSpans resets it.
	noQuote int
	// ascii tells that the last record read by readSpans is all ASCII,
	// hence valid UTF-8.
	ascii bool

	raw  []byte // the last record's raw bytes, terminator included
	own  []byte // owned buffer raw is copied to when a record spans lines
	buf  []byte // field contents of a quoted record, concatenated
	ends []int  // end offset in buf of each field of a quoted record

	// After readSpans, field i of the last record is
	// text[spans[i].start:spans[i].end]. text aliases raw or buf: it is
	// valid until the next read.
	text  []byte
	spans []span

	// fields are the last record's fields as strings, set by read (not by
	// readSpans).
	fields []string
}

// span is the position of one field's contents in recordReader.text.
type span struct{ start, end int }

const readBufferSize = 1 << 20

// newRecordReader returns a reader of r buffering size bytes.
func newRecordReader(r io.Reader, comma, quote byte, size int) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, size), comma: comma, quote: quote, eol: '\n'}
}

// crProbe is how much of an object's start begin looks at to tell its
// line ends (at most the smallest buffer a recordReader is given).
const crProbe = 64 << 10

// begin starts an object: it skips a UTF-8 byte order mark and chooses the
// object's record terminator. That is "\n" (a "\r" before it is dropped
// too), unless the object's start shows classic Mac OS line ends (Excel's
// "CSV (Macintosh)"): then a bare "\r" ends records, and a "\n" is field
// content like any other byte. Without this, such an object would read as
// one long header line and no rows.
func (rr *recordReader) begin() {
	rr.noQuote = 0
	if bom, _ := rr.br.Peek(3); string(bom) == "\uFEFF" {
		rr.br.Discard(3)
	}
	rr.eol = '\n'
	head, _ := rr.br.Peek(min(crProbe, rr.br.Size()))
	if crOnly(head, rr.quote, len(head) == crProbe) {
		rr.eol = '\r'
	}
}

// crOnly reports whether head, the start of an object, uses bare "\r" line
// ends: the first line end outside quotes is a "\r" not followed by "\n",
// and no "\n" outside quotes follows in head. more tells that the object
// goes on after head (a "\r" ending head then says nothing).
func crOnly(head []byte, quote byte, more bool) bool {
	quoted, cr := false, false
	for i, c := range head {
		switch {
		case c == quote:
			quoted = !quoted
		case quoted:
		case c == '\n':
			return false
		case c == '\r' && !cr:
			if i+1 < len(head) && head[i+1] == '\n' || i+1 == len(head) && more {
				return false
			}
			cr = true
		}
	}
	return cr
}

// reset makes rr read from r with fresh line numbers, reusing its buffers.
func (rr *recordReader) reset(r io.Reader) {
	rr.br.Reset(r)
	rr.lines, rr.start, rr.noQuote = 0, 0, 0
}

// readLine reads the next physical line (with its terminator, rr.eol, if
// any). When
// appendTo is true the line is appended to rr.own and rr.raw is set to it;
// otherwise rr.raw may alias bufio's buffer until the next read. It reports
// false at end of input with nothing read.
func (rr *recordReader) readLine(appendTo bool) (bool, error) {
	rr.noQuote = 0
	line, err := rr.br.ReadSlice(rr.eol)
	got := len(line)
	if err == bufio.ErrBufferFull || appendTo {
		if !appendTo {
			rr.own = rr.own[:0]
		}
		rr.own = append(rr.own, line...)
		for err == bufio.ErrBufferFull {
			line, err = rr.br.ReadSlice(rr.eol)
			got += len(line)
			rr.own = append(rr.own, line...)
		}
		line = rr.own
	}
	rr.raw = line
	switch {
	case err == nil:
		rr.lines++
		return true, nil
	case err == io.EOF:
		if got == 0 {
			return false, nil
		}
		rr.lines++ // a last line without "\n"
		return true, nil
	default:
		return false, err
	}
}

// grow appends the next physical line to the current record. It reports
// false at end of input.
func (rr *recordReader) grow() (bool, error) {
	if len(rr.own) == 0 || &rr.own[0] != &rr.raw[0] {
		rr.own = append(rr.own[:0], rr.raw...)
	}
	return rr.readLine(true)
}

// isBlank reports whether a line is empty apart from its terminator.
func isBlank(line []byte) bool {
	switch len(line) {
	case 0:
		return true
	case 1:
		return line[0] == '\n' || line[0] == '\r'
	case 2:
		return line[0] == '\r' && line[1] == '\n'
	}
	return false
}

// trimEOL removes a trailing "\n", "\r\n" or "\r" (the terminator of a
// bare-CR object, or a "\r" before end of input).
func trimEOL(b []byte) []byte {
	n := len(b)
	if n > 0 && b[n-1] == '\n' {
		n--
	}
	if n > 0 && b[n-1] == '\r' {
		n--
	}
	return b[:n]
}

// rawText returns the last record's raw text without its line terminator.
func (rr *recordReader) rawText() string { return string(trimEOL(rr.raw)) }

// read reads the next record into rr.fields (one string per record, which
// the fields are sliced from), as readSpans does.
func (rr *recordReader) read() (*parseError, error) {
	pe, err := rr.readSpans()
	if pe != nil || err != nil {
		return pe, err
	}
	s := string(rr.text)
	rr.fields = rr.fields[:0]
	for _, sp := range rr.spans {
		rr.fields = append(rr.fields, s[sp.start:sp.end])
	}
	return nil, nil
}

// readSpans reads the next record into rr.text and rr.spans, copying
// nothing for a record without quotes. It skips blank lines. It returns
// io.EOF at end of input, a *parseError for a malformed record (consumed,
// with the reader positioned at the next line), or an I/O error.
func (rr *recordReader) readSpans() (*parseError, error) {
	if done := rr.readBuffered(); done {
		return nil, nil
	}
	rr.ascii = false
	for {
		ok, err := rr.readLine(false)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, io.EOF
		}
		if !isBlank(rr.raw) {
			break
		}
	}
	rr.start = rr.lines
	if bytes.IndexByte(rr.raw, rr.quote) < 0 {
		// Fast path, most records: no quote, so one line whose fields are
		// separated by every delimiter.
		line := trimEOL(rr.raw)
		rr.text = line
		rr.spans = rr.spans[:0]
		pos := 0
		for {
			i := bytes.IndexByte(line[pos:], rr.comma)
			if i < 0 {
				rr.spans = append(rr.spans, span{pos, len(line)})
				return nil, nil
			}
			rr.spans = append(rr.spans, span{pos, pos + i})
			pos += i + 1
		}
	}
	rr.buf = rr.buf[:0]
	rr.ends = rr.ends[:0]
	raw := rr.raw
	pos := 0
	q, comma := rr.quote, rr.comma
	for {
		if pos < len(raw) && raw[pos] == q {
			// Quoted field: runs to the next quote not followed by another.
			pos++
			for {
				i := bytes.IndexByte(raw[pos:], q)
				if i < 0 {
					rr.buf = append(rr.buf, raw[pos:]...)
					pos = len(raw)
					more, err := rr.grow()
					if err != nil {
						return nil, err
					}
					if !more {
						return &parseError{code: "bad_quote", field: len(rr.ends), msg: "unterminated quoted field (runs to end of object)"}, nil
					}
					raw = rr.raw
					continue
				}
				rr.buf = append(rr.buf, raw[pos:pos+i]...)
				pos += i + 1
				if pos < len(raw) && raw[pos] == q {
					rr.buf = append(rr.buf, q)
					pos++
					continue
				}
				break
			}
			rr.ends = append(rr.ends, len(rr.buf))
			switch {
			case pos < len(raw) && raw[pos] == comma:
				pos++
				continue
			case len(trimEOL(raw[pos:])) == 0:
				// End of record.
			default:
				return &parseError{code: "bad_quote", field: len(rr.ends) - 1, msg: "unexpected text after closing quote"}, nil
			}
			break
		}
		// Unquoted field: runs to the next delimiter or the end of the line.
		rest := raw[pos:]
		i := bytes.IndexByte(rest, comma)
		last := i < 0
		field := rest
		if last {
			field = trimEOL(rest)
		} else {
			field = rest[:i]
			pos += i + 1
		}
		if bytes.IndexByte(field, q) >= 0 {
			return &parseError{code: "bad_quote", field: len(rr.ends), msg: "bare quote in unquoted field"}, nil
		}
		rr.buf = append(rr.buf, field...)
		rr.ends = append(rr.ends, len(rr.buf))
		if last {
			break
		}
	}
	rr.text = rr.buf
	rr.spans = rr.spans[:0]
	prev := 0
	for _, e := range rr.ends {
		rr.spans = append(rr.spans, span{prev, e})
		prev = e
	}
	return nil, nil
}

// readBuffered is the fast path of readSpans: when the next line that is
// not blank is whole in br's buffer and holds no quote, it reads it as
// readSpans would and reports true. Otherwise it has consumed at most
// blank lines and reports false.
func (rr *recordReader) readBuffered() bool {
	for {
		win, _ := rr.br.Peek(rr.br.Buffered())
		i := bytes.IndexByte(win, rr.eol)
		if i < 0 {
			return false // a partial line: the general path refills
		}
		line := win[:i+1]
		if rr.noQuote <= i {
			j := bytes.IndexByte(win[rr.noQuote:], rr.quote)
			if j < 0 {
				rr.noQuote = len(win)
			} else {
				rr.noQuote += j
			}
			if rr.noQuote <= i {
				return false // quoted: the general path
			}
		}
		rr.br.Discard(len(line))
		rr.noQuote = max(rr.noQuote-len(line), 0)
		rr.lines++
		if isBlank(line) {
			continue
		}
		rr.start = rr.lines
		rr.raw = line
		rr.text = trimEOL(line)
		rr.spans, rr.ascii = splitFields(rr.spans[:0], win, len(rr.text), rr.comma)
		return true
	}
}

// splitFields appends to spans the fields of b[:n], which holds no quote,
// separated by comma, and reports whether b[:n] is all ASCII. It reads b
// eight bytes at a time (past n when b is long enough: those bytes are
// ignored) and gathers the positions of commas in 64 bytes into one bit
// mask before walking them, so that a branch is taken per delimiter and
// per 64 bytes rather than per byte.
func splitFields(spans []span, b []byte, n int, comma byte) ([]span, bool) {
	commas := ones * uint64(comma)
	var seen uint64 // the OR of every byte: its high bits tell non-ASCII
	start := 0
	for base := 0; base < n; base += 64 {
		end := min(base+64, n)
		var mask uint64 // bit k: b[base+k] is a comma
		i := base
		for ; i+8 <= end; i += 8 {
			w := binary.LittleEndian.Uint64(b[i : i+8])
			seen |= w
			mask |= zeroBytes(w^commas) << (i - base)
		}
		if i < end { // the last 1 to 7 bytes
			var w uint64
			if i+8 <= len(b) {
				w = binary.LittleEndian.Uint64(b[i : i+8])
			} else {
				var tail [8]byte
				copy(tail[:], b[i:end])
				w = binary.LittleEndian.Uint64(tail[:])
			}
			w &= 1<<(8*(end-i)) - 1
			seen |= w
			mask |= zeroBytes(w^commas) & (1<<(end-i) - 1) << (i - base)
		}
		for mask != 0 {
			j := base + bits.TrailingZeros64(mask)
			spans = append(spans, span{start, j})
			start = j + 1
			mask &= mask - 1
		}
	}
	return append(spans, span{start, n}), seen&high == 0
}

// Constants of zeroBytes and splitFields.
const (
	ones = 0x0101010101010101 // 0x01 in every byte
	low7 = 0x7f7f7f7f7f7f7f7f // the low seven bits of every byte
	high = 0x8080808080808080 // the high bit of every byte
	// gather moves bit 8k of a word to bit 56+k when multiplied by it
	// (each product bit lands in a distinct place, so nothing carries).
	gather = 0x0102040810204080
)

// zeroBytes returns a bit per byte of x, bit k set iff byte k (little
// endian) is zero.
func zeroBytes(x uint64) uint64 {
	// The high bit of each byte of z is set iff that byte of x is zero:
	// exact, as no byte's sum carries into the next.
	z := ^((x&low7 + low7) | x | low7)
	return (z >> 7) * gather >> 56
}

// invalidUTF8Field returns the index of the first field of the last record
// that is not valid UTF-8, or -1.
func (rr *recordReader) invalidUTF8Field() int {
	if rr.ascii {
		return -1
	}
	if utf8.Valid(rr.raw) {
		return -1
	}
	for i, sp := range rr.spans {
		if !utf8.Valid(rr.text[sp.start:sp.end]) {
			return i
		}
	}
	return 0
}
