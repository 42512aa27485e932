package salesforce

import (
	"bufio"
	"encoding/csv"
	"errors"
	"io"
	"unsafe"
)

// The result files are large (a million rows are about 90 MB of CSV) and
// read whole. encoding/csv allocates a string per record, and cannot be
// told to return fields that alias its buffer instead, which made it most
// of the cost of reading them. ResultReader therefore parses the strict
// shape that Salesforce and the emulator write by hand, with fields that
// alias its buffer, and hands any other input to encoding/csv from the
// first record outside that shape on, so that every corner case and every
// error stays encoding/csv's.

// parseResult says what parse found at the start of the unparsed input.
type parseResult int

const (
	parsed parseResult = iota // a record of the strict shape
	short                     // the input read so far ends inside a record
	odd                       // a record outside the strict shape
)

// quoteStop marks the bytes that end a run of plain text inside quotes.
var quoteStop = [256]bool{'"': true, '\r': true, '\n': true}

// resultBufSize is the initial size of the reader's buffer: few reads
// through the gzip decoder.
const resultBufSize = 64 << 10

// next returns the fields of the next record and the line where it starts.
// The fields are valid until the next call.
//
// Records of the strict shape (see parse) are parsed in the reader's
// buffer. At the first record outside it, the rest of the input goes to an
// encoding/csv Reader configured as before the fast path existed
// (FieldsPerRecord -1), whose lines, in FieldPos and in errors, are
// shifted by the lines already read.
func (rr *ResultReader) next() ([]string, int, error) {
	for rr.csv == nil {
		if rr.in.Pos == rr.in.End && rr.in.Err == io.EOF {
			return nil, 0, io.EOF
		}
		n, lines, res := rr.parse(rr.in.Err == io.EOF)
		switch {
		case res == parsed:
			line := rr.line
			rr.in.Pos += n
			rr.line += lines
			return rr.rec, line, nil
		case res == short && rr.in.Err == nil:
			rr.in.Fill()
		default: // odd, or cut short by a read error
			rr.fallBack()
		}
	}
	rec, err := rr.csv.Read()
	if err != nil {
		if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
			pe.StartLine += rr.csvLines
			pe.Line += rr.csvLines
		}
		return nil, 0, err
	}
	line, _ := rr.csv.FieldPos(0)
	return rec, line + rr.csvLines, nil
}

// parse parses the record at the start of buf[pos:end] into rr.rec and
// returns its length in bytes and in lines. The strict shape is: each field
// either unquoted, without quotes or carriage returns, or quoted, without
// carriage returns and with inner quotes doubled; the record ends with
// "\n", "\r\n" or, when atEOF, at the end of the input. Anything else is
// odd: blank lines (encoding/csv skips them), bare or stray quotes, a lone
// "\r", an unterminated quote, "\r\n" inside quotes (encoding/csv turns it
// into "\n").
func (rr *ResultReader) parse(atEOF bool) (n, lines int, res parseResult) {
	b := rr.in.Buf[rr.in.Pos:rr.in.End]
	if len(b) == 0 {
		return 0, 0, short
	}
	if b[0] == '\n' || b[0] == '\r' {
		return 0, 0, odd
	}
	rr.rec, rr.unq = rr.rec[:0], rr.unq[:0]
	i := 0
	for {
		// A field starts at i.
		if i < len(b) && b[i] == '"' {
			i++
			from, mark, esc := i, len(rr.unq), false
			for {
				// Four bytes a step first: quoted text is most of the input.
				for i+4 <= len(b) && !(quoteStop[b[i]] || quoteStop[b[i+1]] || quoteStop[b[i+2]] || quoteStop[b[i+3]]) {
					i += 4
				}
				for i < len(b) && !quoteStop[b[i]] {
					i++
				}
				switch {
				case i == len(b) && atEOF:
					return 0, 0, odd // unterminated quote
				case i == len(b) || i+1 == len(b) && !atEOF:
					return 0, 0, short // the field goes on past the input, or b[i] needs the byte after it
				case b[i] == '\n':
					lines++
					i++
					continue
				case b[i] == '\r':
					return 0, 0, odd
				case i+1 < len(b) && b[i+1] == '"':
					rr.unq = append(rr.unq, b[from:i+1]...)
					i += 2
					from, esc = i, true
					continue
				}
				break // the closing quote
			}
			if esc {
				rr.unq = append(rr.unq, b[from:i]...)
				rr.rec = append(rr.rec, alias(rr.unq[mark:]))
			} else {
				rr.rec = append(rr.rec, alias(b[from:i]))
			}
			i++
		} else {
			j := i
			for j < len(b) && !rr.stop[b[j]] {
				j++
			}
			if j < len(b) && b[j] == '"' {
				return 0, 0, odd // bare quote
			}
			rr.rec = append(rr.rec, alias(b[i:j]))
			i = j
		}
		// The field ends at i.
		if i == len(b) {
			if !atEOF {
				return 0, 0, short
			}
			return i, lines + 1, parsed
		}
		switch b[i] {
		case rr.delim:
			i++
			continue
		case '\n':
			return i + 1, lines + 1, parsed
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				return i + 2, lines + 1, parsed
			}
			if i+1 == len(b) && !atEOF {
				return 0, 0, short
			}
		}
		return 0, 0, odd // a lone "\r", or text after a closing quote
	}
}

// fallBack hands the rest of the input, from the record at pos on, to
// encoding/csv.
func (rr *ResultReader) fallBack() {
	rr.csv = csv.NewReader(bufio.NewReaderSize(rr.in.Rest(), resultBufSize))
	rr.csv.Comma = rune(rr.delim)
	rr.csv.ReuseRecord = true
	rr.csv.FieldsPerRecord = -1
	rr.csvLines = rr.line - 1
}

// alias returns b as a string sharing its memory: b must not change while
// the string is in use.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
