package salesforce

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline/readbuf"
)

// Result CSV column names (contract §4.1).
const (
	ColID      = "sf__Id"
	ColCreated = "sf__Created"
	ColError   = "sf__Error"
)

// ResultReader streams the rows of a successfulResults, failedResults or
// unprocessedrecords CSV (contract §4.1). Columns are located by
// case-insensitive name, never by position. A 0-byte body reads as empty.
// A ResultReader must not be used concurrently.
//
// Rows are parsed exactly as encoding/csv parses them (no trimming, lazy
// quotes off, any number of fields per row): by a fast path for the shape
// Salesforce writes, and by encoding/csv itself for anything else.
type ResultReader struct {
	delim byte
	stop  [256]bool       // bytes that end or complicate an unquoted field
	in    *readbuf.Buffer // input; in.Buf[in.Pos:in.End] is not parsed yet
	line  int             // line where the next record starts
	rec   []string        // fields of the last record, aliasing buf or unq
	unq   []byte          // the last record's quoted fields with "" escapes, unescaped

	csv      *csv.Reader // reads the rest of the input once set
	csvLines int         // lines before the input of csv

	started bool
	header  []string
	cols    []string // echoed (non sf__) columns
	colIdx  []int
	idIdx   int
	crIdx   int
	errIdx  int
	// echoFrom is the position of the first echoed column in the header
	// when the echoed columns are adjacent (the row's Values are then a
	// part of the record), else -1.
	echoFrom int
	vals     []string // the row's Values when they are not a part of the record
	row      ResultRow
}

// ResultRow is one row of a result CSV. It is reused by the next Read, and
// so is the memory of its strings: ID, Error and Values are valid only
// until the next Read. Copy (strings.Clone) whatever is kept longer.
type ResultRow struct {
	// ID is sf__Id ("" for failed inserts and unprocessed rows).
	ID string
	// Created is sf__Created == "true".
	Created bool
	// Error is the raw sf__Error text; see RowError.
	Error string
	// Values are the echoed upload columns, aligned with Columns().
	Values []string
	// Line is the 1-based line where the row starts.
	Line int
}

// RowError parses the row's sf__Error; it is the zero RowError for rows
// without one. Its strings share the row's memory (valid until the next
// Read).
func (r *ResultRow) RowError() RowError {
	if r.Error == "" {
		return RowError{}
	}
	return ParseRowError(r.Error)
}

// NewResultReader returns a reader over a result CSV using the job's
// column delimiter ("" means COMMA).
func NewResultReader(r io.Reader, delim ColumnDelimiter) *ResultReader {
	// Every delimiter of the contract is an ASCII byte.
	rr := &ResultReader{in: readbuf.New(r, resultBufSize), delim: byte(delim.Rune()), stop: quoteStop, line: 1, idIdx: -1, crIdx: -1, errIdx: -1}
	rr.stop[rr.delim] = true
	return rr
}

func (rr *ResultReader) start() error {
	if rr.started {
		return nil
	}
	rr.started = true
	h, _, err := rr.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("result csv header: %w", err)
	}
	rr.header = make([]string, len(h))
	for i, name := range h {
		rr.header[i] = strings.Clone(name)
	}
	for i, name := range rr.header {
		switch {
		case strings.EqualFold(name, ColID):
			rr.idIdx = i
		case strings.EqualFold(name, ColCreated):
			rr.crIdx = i
		case strings.EqualFold(name, ColError):
			rr.errIdx = i
		default:
			rr.cols = append(rr.cols, name)
			rr.colIdx = append(rr.colIdx, i)
		}
	}
	rr.vals = make([]string, len(rr.cols))
	rr.echoFrom = -1
	if len(rr.colIdx) > 0 && rr.colIdx[len(rr.colIdx)-1]-rr.colIdx[0] == len(rr.colIdx)-1 {
		rr.echoFrom = rr.colIdx[0] // the echoed columns are adjacent (after the sf__ ones, as Salesforce writes them)
	}
	return nil
}

// Columns returns the echoed upload columns (the header minus sf__
// columns), reading the header if needed. It is nil for an empty body.
func (rr *ResultReader) Columns() ([]string, error) {
	if err := rr.start(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return rr.cols, nil
}

// Index returns the position in Columns() of the named column
// (case-insensitive), or -1.
func (rr *ResultReader) Index(name string) int {
	_ = rr.start()
	for i, c := range rr.cols {
		if strings.EqualFold(c, name) {
			return i
		}
	}
	return -1
}

// Read returns the next row, or io.EOF after the last. The returned row,
// and the memory of its strings, are reused by the next call.
func (rr *ResultReader) Read() (*ResultRow, error) {
	if err := rr.start(); err != nil {
		return nil, err
	}
	rec, line, err := rr.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("result csv: %w", err)
	}
	field := func(i int) string {
		if i >= 0 && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	rr.row.ID = field(rr.idIdx)
	rr.row.Created = strings.EqualFold(field(rr.crIdx), "true")
	rr.row.Error = field(rr.errIdx)
	rr.row.Line = line
	if n := len(rr.cols); rr.echoFrom >= 0 && len(rec) == len(rr.header) {
		// The values are a part of the record: no copy of its strings.
		rr.row.Values = rec[rr.echoFrom : rr.echoFrom+n : rr.echoFrom+n]
	} else {
		for j, i := range rr.colIdx {
			rr.vals[j] = field(i)
		}
		rr.row.Values = rr.vals
	}
	return &rr.row, nil
}

// RowError is a parsed sf__Error (contract §4.2):
// "<StatusCode>:<message>:<comma-separated fields> --".
type RowError struct {
	Code    string   // e.g. REQUIRED_FIELD_MISSING; empty if the text had none
	Message string   // may contain colons
	Fields  []string // may be empty
}

// Error implements error.
func (e RowError) Error() string {
	s := e.Code
	if s != "" && e.Message != "" {
		s += ": "
	}
	s += e.Message
	if len(e.Fields) > 0 {
		s += " (fields: " + strings.Join(e.Fields, ", ") + ")"
	}
	return s
}

// String returns the wire form, "CODE:message:Field1,Field2 --".
func (e RowError) String() string {
	if e.Code == "" {
		return e.Message
	}
	if len(e.Fields) == 0 {
		return e.Code + ":" + e.Message + ":--"
	}
	return e.Code + ":" + e.Message + ":" + strings.Join(e.Fields, ",") + " --"
}

// ParseRowError splits an sf__Error value. The code is the text before the
// first colon when it looks like a status code (letters, digits and
// underscores); the fields are the text after the last colon, before the
// trailing " --". Anything that does not fit becomes Message alone.
func ParseRowError(sfError string) RowError {
	code, rest, ok := strings.Cut(sfError, ":")
	if !ok || !isWord(code) {
		return RowError{Message: sfError}
	}
	trimmed, ok := strings.CutSuffix(rest, "--")
	if !ok {
		return RowError{Code: code, Message: rest}
	}
	i := strings.LastIndexByte(trimmed, ':')
	if i < 0 {
		return RowError{Code: code, Message: strings.TrimSuffix(trimmed, " ")}
	}
	re := RowError{Code: code, Message: trimmed[:i]}
	for f := range strings.SplitSeq(trimmed[i+1:], ",") {
		if f = strings.TrimSpace(f); f != "" {
			re.Fields = append(re.Fields, f)
		}
	}
	return re
}
