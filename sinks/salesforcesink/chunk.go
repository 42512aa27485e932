package salesforcesink

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// chunk is one job's worth of rows, spooled to memory or a file.
type chunk struct {
	rows   []int  // batch indices in upload order
	path   string // spool file; "" when data holds the CSV
	data   []byte // the CSV, when it is kept in memory (ledger off)
	bytes  int64
	digest string // hex sha256 of the CSV bytes (ledger on only)

	key string // ledger key (chunkKey, or digest.occurrence for legacy ledgers)
	// batch, attempt and index are the chunk's position in the cut: the
	// engine's batch number, the lock-retry attempt, the chunk within them.
	batch       int64
	attempt     int
	index       int
	from        string       // origin of the first row
	lastOfCut   bool         // the last chunk of the batch's first attempt
	redrives    int          // chunks made of its rows an aborted job left unprocessed
	lastState   string       // last ledger state this process wrote
	unprocessed []int        // rows in the unprocessedrecords of its last job
	readers     atomic.Int32 // open upload readers of data (see body)
	// finalJobState is the state of its last job whose results were read.
	finalJobState string
}

// body returns the chunk's CSV as a replayable upload body. The readers
// of an in-memory CSV are counted (chunk.readers), so that releaseData
// knows when nothing can read c.data any more.
func (c *chunk) body() (salesforce.UploadBody, error) {
	if c.path == "" {
		data := c.data
		return salesforce.UploadBody{Size: int64(len(data)), Open: func() (io.ReadCloser, error) {
			c.readers.Add(1)
			return &chunkReader{r: bytes.NewReader(data), c: c}, nil
		}}, nil
	}
	return salesforce.FileBody(c.path)
}

// chunkReader reads a chunk's in-memory CSV for one upload attempt. Read
// and Close exclude each other, and Read fails once closed: after Close
// returns, the reader touches the CSV no more, whatever goroutine of the
// HTTP transport still holds it (RoundTrip may close a request body after
// it returns).
type chunkReader struct {
	mu     sync.Mutex
	r      *bytes.Reader
	c      *chunk
	closed bool
}

func (cr *chunkReader) Read(p []byte) (int, error) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.closed {
		return 0, os.ErrClosed
	}
	return cr.r.Read(p)
}

// Close implements io.Closer; only its first call counts.
func (cr *chunkReader) Close() error {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if !cr.closed {
		cr.closed = true
		cr.c.readers.Add(-1)
	}
	return nil
}

// spoolBufs holds the CSV buffers of chunks whose jobs are done (as
// *[]byte): a run of 10,000-row chunks allocated (and cleared) a buffer
// of megabytes per job, a third of the sink's garbage (issue 23).
var spoolBufs sync.Pool

// getSpoolBuf returns an empty buffer of at least size bytes.
func getSpoolBuf(size int) []byte {
	if p, _ := spoolBufs.Get().(*[]byte); p != nil && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

// putSpoolBuf gives buf back for a later chunk.
func putSpoolBuf(buf []byte) {
	if cap(buf) > 0 && cap(buf) <= 2*memSpoolLimit {
		buf = buf[:0]
		spoolBufs.Put(&buf)
	}
}

// releaseData drops the chunk's in-memory CSV, giving its buffer back for
// a later chunk when no upload reader of it is open.
func (c *chunk) releaseData() {
	if c.data != nil && c.readers.Load() == 0 {
		putSpoolBuf(c.data)
	}
	c.data = nil
}

// memSpoolLimit bounds the CSV of a chunk kept in memory; a larger one
// spills to a spool file.
const memSpoolLimit = 16 << 20

// spoolChunk writes the header and as many pending rows as fit in
// max_job_bytes and maxRows to the chunk's CSV. With a ledger the CSV goes
// to a spool file, and its sha256 is the ledger's chunk key (a resume
// uploads the file again); without one it stays in memory up to
// memSpoolLimit (nothing reads it back but the upload) and spills to a file
// beyond. It returns the chunk (nil if every candidate row was too large on
// its own) and the rows left.
func (s *Sink) spoolChunk(st *batchState, pending []int, maxRows int) (*chunk, []int, error) {
	line := s.enc.header(nil)
	hdr := int64(len(line))
	c := &chunk{bytes: hdr, rows: make([]int, 0, min(maxRows, len(pending)))}
	var sp *spoolFile
	if s.ledger != nil {
		var err error
		if sp, err = s.newSpoolFile(c, true); err != nil {
			return nil, nil, err
		}
	}
	buf := getSpoolBuf(int(max(min(s.chunkHint.Load(), memSpoolLimit), 64<<10)))
	buf = append(buf, line...)
	k, backoff := 0, 0 // backoff: see recordNext
	for ; k < len(pending) && len(c.rows) < maxRows; k++ {
		i := pending[k]
		n := len(buf)
		buf = s.enc.recordNext(buf, st.cells[i], &backoff)
		if st.plain != nil {
			// A cell with a '"', CR, LF or the delimiter is quoted.
			st.plain[i] = bytes.IndexByte(buf[n:], '"') < 0
		}
		size := int64(len(buf) - n)
		if hdr+size > s.opts.MaxJobBytes {
			buf = buf[:n]
			st.fail(i, s.rowErr(CodeRowTooLarge, "", "", "the encoded row is %d bytes, above max_job_bytes %d", size, s.opts.MaxJobBytes))
			continue
		}
		if c.bytes+size > s.opts.MaxJobBytes {
			buf = buf[:n]
			break
		}
		c.bytes += size
		c.rows = append(c.rows, i)
		if sp == nil && len(buf) > memSpoolLimit {
			var err error
			if sp, err = s.newSpoolFile(c, false); err != nil {
				return nil, nil, err
			}
		}
		if sp != nil {
			sp.w.Write(buf) // errors stick in the bufio.Writer: see close
			buf = buf[:0]
		}
	}
	if sp == nil {
		if len(c.rows) == 0 {
			putSpoolBuf(buf)
			return nil, pending[k:], nil
		}
		c.data = buf
		s.chunkHint.Store(int64(len(buf)) + int64(len(buf))/8)
		return c, pending[k:], nil
	}
	sp.w.Write(buf)
	putSpoolBuf(buf) // the bufio.Writer copied it (or wrote it through)
	if err := sp.close(); err != nil || len(c.rows) == 0 {
		os.Remove(c.path)
		if err != nil {
			return nil, nil, err
		}
		return nil, pending[k:], nil
	}
	if sp.h != nil {
		c.digest = hex.EncodeToString(sp.h.Sum(nil))
	}
	return c, pending[k:], nil
}

// spoolFile is a chunk's CSV being written to a spool file.
type spoolFile struct {
	f *os.File
	w *bufio.Writer
	h hash.Hash // sha256 of the bytes written, when asked for
}

// newSpoolFile creates c's spool file (setting c.path), hashing what is
// written when digest is set.
func (s *Sink) newSpoolFile(c *chunk, digest bool) (*spoolFile, error) {
	f, err := os.CreateTemp(s.spool, "job-*.csv")
	if err != nil {
		return nil, err
	}
	c.path = f.Name()
	sp := &spoolFile{f: f}
	var w io.Writer = f
	if digest {
		sp.h = sha256.New()
		w = io.MultiWriter(f, sp.h)
	}
	sp.w = bufio.NewWriterSize(w, 256<<10)
	return sp, nil
}

// close flushes and closes the file, returning the first write error.
func (sp *spoolFile) close() error {
	err := sp.w.Flush()
	if cerr := sp.f.Close(); err == nil {
		err = cerr
	}
	return err
}
