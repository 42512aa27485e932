package jobs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// csvPart is one spooled part of a split upload.
type csvPart struct {
	path string
	size int64
	rows int64
}

// splitCSV streams the CSV at in into parts of at most maxBytes bytes each
// under dir, cutting only between records and starting each part with the
// header line. A UTF-8 byte order mark is dropped. It returns the parts and
// the header's line ending ("LF" or "CRLF"). Bad input (empty file, no data
// rows, unterminated quote, a record too large for one job) is a
// *usageError.
func splitCSV(ctx context.Context, in blobio.Location, maxBytes int64, dir string) ([]csvPart, string, error) {
	rc, err := blobio.NewReader(ctx, in)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	rr := &recordReader{r: bufio.NewReaderSize(rc, 256<<10)}
	header, err := rr.next()
	if err == io.EOF {
		return nil, "", usagef("the file is empty")
	}
	if err != nil {
		return nil, "", err
	}
	header = bytes.TrimPrefix(header, []byte("\xef\xbb\xbf"))
	le := "LF"
	if bytes.HasSuffix(header, []byte("\r\n")) {
		le = "CRLF"
	}
	if !bytes.HasSuffix(header, []byte("\n")) {
		return nil, "", usagef("the file has a header line but no data rows")
	}
	if int64(len(header)) >= maxBytes {
		return nil, "", usagef("the header line alone is %d bytes, not below --max-job-bytes %d", len(header), maxBytes)
	}
	pw := &partWriter{dir: dir, header: header}
	defer pw.abandon()
	for {
		rec, err := rr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", err
		}
		if len(bytes.TrimRight(rec, "\r\n")) == 0 {
			continue // blank line
		}
		if int64(len(header)+len(rec)) > maxBytes {
			return nil, "", usagef("the record at line %d is %d bytes: with the header it does not fit in --max-job-bytes %d",
				rr.startLine, len(rec), maxBytes)
		}
		if err := pw.add(ctx, rec, maxBytes); err != nil {
			return nil, "", err
		}
	}
	if err := pw.finish(); err != nil {
		return nil, "", err
	}
	if len(pw.parts) == 0 {
		return nil, "", usagef("the file has a header line but no data rows")
	}
	return pw.parts, le, nil
}

// partWriter writes records into part files under dir, each starting with
// the header line.
type partWriter struct {
	dir    string
	header []byte
	parts  []csvPart // finished parts
	f      *os.File  // the open part, or nil
	bw     *bufio.Writer
	cur    csvPart
}

// add appends rec to the open part, first finishing it when rec would take
// it past maxBytes, and opening a new part when none is open.
func (pw *partWriter) add(ctx context.Context, rec []byte, maxBytes int64) error {
	if pw.f != nil && pw.cur.size+int64(len(rec)) > maxBytes {
		if err := pw.finish(); err != nil {
			return err
		}
	}
	if pw.f == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		pw.cur = csvPart{path: filepath.Join(pw.dir, fmt.Sprintf("part-%04d.csv", len(pw.parts)+1))}
		f, err := os.Create(pw.cur.path)
		if err != nil {
			return err
		}
		pw.f, pw.bw = f, bufio.NewWriterSize(f, 256<<10)
		pw.bw.Write(pw.header) // an error sticks in bw and surfaces at the next Write or Flush
		pw.cur.size = int64(len(pw.header))
	}
	if _, err := pw.bw.Write(rec); err != nil {
		return err
	}
	pw.cur.size += int64(len(rec))
	pw.cur.rows++
	return nil
}

// finish flushes and closes the open part, if any, and records it.
func (pw *partWriter) finish() error {
	if pw.f == nil {
		return nil
	}
	err := pw.bw.Flush()
	if cerr := pw.f.Close(); err == nil {
		err = cerr
	}
	pw.parts = append(pw.parts, pw.cur)
	pw.f = nil
	return err
}

// abandon closes a part left open by an error (the spool folder is removed
// by the caller).
func (pw *partWriter) abandon() {
	if pw.f != nil {
		pw.f.Close()
	}
}

// recordReader reads whole CSV records (with their line terminators),
// joining physical lines while a quoted value is open.
type recordReader struct {
	r         *bufio.Reader
	line      int // physical lines read
	startLine int // 1-based line where the last record starts
}

// next returns the next record, or io.EOF.
func (rr *recordReader) next() ([]byte, error) {
	var rec []byte
	inQuote := false
	rr.startLine = rr.line + 1
	for {
		line, err := rr.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			rec = append(rec, line...)
			inQuote = toggleQuotes(line, inQuote)
			continue
		}
		if len(line) > 0 {
			rr.line++
			rec = append(rec, line...)
			inQuote = toggleQuotes(line, inQuote)
		}
		if err == io.EOF {
			if len(rec) == 0 {
				return nil, io.EOF
			}
			if inQuote {
				return nil, usagef("the record starting at line %d has an unterminated quoted value", rr.startLine)
			}
			return rec, nil
		}
		if err != nil {
			return nil, err
		}
		if !inQuote {
			return rec, nil
		}
	}
}

// toggleQuotes returns the quote state after b.
func toggleQuotes(b []byte, in bool) bool {
	return in != (bytes.Count(b, []byte{'"'})%2 == 1)
}
