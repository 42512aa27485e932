package salesforce

import (
	"bufio"
	"encoding/csv"
	"errors"
	"io"
	"strings"
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

// ReadEcho is Read for a row the caller expects to echo vals (aligned with
// Columns()), none of which holds a '"', CR or LF: the caller must know
// that (a value with one would be read as matching text encoding/csv
// reads as something else, or refuses). When the next record is
// one line whose sf__ fields are of the strict shape and whose echoed
// fields are vals, each quoted or not, it returns that row with Values set
// to vals and true, having compared the line with vals as it went instead
// of splitting it into fields first. Otherwise it returns what Read
// returns, and false.
//
// Why (issue 23): reading a million rows' successful results and comparing
// every echoed field with the row it names was the largest cost of a
// Bulk API load beside the plan's own work; nearly every result row is
// the one the matcher expects next, and this decides it in one pass over
// the line. Encoding/csv reads such a line into exactly these fields: a
// quoted field without '"', CR or LF is its text between the quotes.
func (rr *ResultReader) ReadEcho(vals []string) (*ResultRow, bool, error) {
	if err := rr.start(); err != nil {
		return nil, false, err
	}
	if rr.csv == nil && rr.echoFrom >= 0 && len(vals) == len(rr.cols) && rr.echoFrom+len(vals) == len(rr.header) {
		if n, ok := rr.echo(vals); ok {
			rr.row.Values = vals
			rr.row.Line = rr.line
			rr.in.Pos += n
			rr.line++
			return &rr.row, true, nil
		}
	}
	row, err := rr.Read()
	return row, false, err
}

// echo matches the record at the start of the unparsed input against vals
// (see ReadEcho) and returns its length; it sets the row's ID, Created and
// Error. The header's echoed columns are its last len(vals).
func (rr *ResultReader) echo(vals []string) (int, bool) {
	b := rr.in.Buf[rr.in.Pos:rr.in.End]
	if len(b) == 0 || b[0] == '\n' || b[0] == '\r' {
		return 0, false // a blank line, which encoding/csv skips
	}
	atEOF := rr.in.Err == io.EOF
	i := 0
	var id, created, sfErr string
	for h := 0; h < rr.echoFrom; h++ {
		if h > 0 {
			if i >= len(b) || b[i] != rr.delim {
				return 0, false
			}
			i++
		}
		var v []byte
		if i < len(b) && b[i] == '"' {
			j := i + 1
			for j < len(b) && !quoteStop[b[j]] {
				j++
			}
			if j >= len(b) || b[j] != '"' {
				return 0, false // a CR, LF, inner quote or the end of the input: not for this path
			}
			v, i = b[i+1:j], j+1
		} else {
			j := i
			for j < len(b) && !rr.stop[b[j]] {
				j++
			}
			v, i = b[i:j], j
		}
		switch h {
		case rr.idIdx:
			id = alias(v)
		case rr.crIdx:
			created = alias(v)
		case rr.errIdx:
			sfErr = alias(v)
		}
	}
	for k, v := range vals {
		if k > 0 || rr.echoFrom > 0 {
			if i >= len(b) || b[i] != rr.delim {
				return 0, false
			}
			i++
		}
		quoted := i < len(b) && b[i] == '"'
		if quoted {
			i++
		}
		end := i + len(v)
		if end >= len(b) || alias(b[i:end]) != v || !quoted && strings.IndexByte(v, rr.delim) >= 0 {
			// (end == len(b): the field may go on past the input.) An
			// unquoted field holding the delimiter would be two fields.
			return 0, false
		}
		i = end
		if quoted {
			if b[i] != '"' {
				return 0, false
			}
			i++
		}
		// The field ends here: the next value checks that a delimiter
		// follows, and the switch below that the line ends.
	}
	switch {
	case i == len(b) && atEOF:
	case i < len(b) && b[i] == '\n':
		i++
	case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
		i += 2
	default:
		return 0, false
	}
	rr.row.ID, rr.row.Created, rr.row.Error = id, strings.EqualFold(created, "true"), sfErr
	return i, true
}
