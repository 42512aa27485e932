package salesforcetest

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"time"
)

// startJobLocked launches the background processing of a closed job.
// s.mu must be held.
func (s *Server) startJobLocked(j *job) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go s.runJob(j)
}

// abortUnprocessedLocked records the rows an abort leaves unprocessed:
// every uploaded row when processing has not reached the rows yet, else
// the rows after the last processed one. s.mu must be held.
func (s *Server) abortUnprocessedLocked(j *job) {
	if j.query || j.settled {
		return
	}
	j.settled = true
	if j.rows != nil {
		if s.opts.CountWholeBatches && j.batchEnd > j.next {
			j.processed += int64(j.batchEnd - j.next)
		}
		j.unprocessed = append(j.unprocessed, j.rows.rows(j.next)...)
		return
	}
	if j.data == nil {
		return
	}
	header, rows, err := parseUpload(j.data, delimiters[j.delimiter])
	if err != nil {
		return
	}
	j.header = header
	j.unprocessed = rows.rows(0)
}

// sleep waits d or until the server closes; it reports whether d elapsed.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// runJob processes one job: UploadComplete → InProgress → terminal. It is
// owned by the server (s.wg) and stops when the server closes.
func (s *Server) runJob(j *job) {
	defer s.wg.Done()
	s.mu.Lock()
	delay := s.faults.ProcessingDelay
	s.mu.Unlock()
	if !s.sleep(delay) {
		return
	}
	s.mu.Lock()
	if j.state != StateUploadComplete {
		s.mu.Unlock()
		return
	}
	j.state = StateInProgress
	j.modstamp = s.now()
	start := s.now()
	s.notifyLocked()
	faults := s.faults
	s.mu.Unlock()
	s.logf("salesforcetest: job %s -> InProgress", j.id)

	if j.query {
		s.runQuery(j, start)
		return
	}
	s.runIngest(j, faults, start)
}

// failLocked moves j to Failed. s.mu must be held.
func (s *Server) failLocked(j *job, start time.Time, msg string) {
	j.state = StateFailed
	j.errorMessage = msg
	s.finishLocked(j, start)
}

func (s *Server) finishLocked(j *job, start time.Time) {
	j.modstamp = s.now()
	j.totalMS = s.now().Sub(start).Milliseconds()
	j.activeMS = j.totalMS
	s.notifyLocked()
	s.logf("salesforcetest: job %s -> %s %s", j.id, j.state, j.errorMessage)
}

// parseCSV splits upload data into the header and rows.
func parseCSV(data []byte, delim rune) ([]string, [][]string, error) {
	if len(data) == 0 {
		return nil, nil, nil
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, err
	}
	header = append([]string(nil), header...)
	var rows [][]string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return header, rows, err
		}
		rows = append(rows, rec)
	}
	return header, rows, nil
}

// checkLineEndings reports whether data uses only the job's line ending
// outside quoted values (contract §3.3).
func checkLineEndings(data []byte, crlf bool) bool {
	if !crlf && bytes.IndexByte(data, '"') < 0 {
		return bytes.IndexByte(data, '\r') < 0 // no quotes: any "\r" is a line ending
	}
	inQuote := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '"' {
			inQuote = !inQuote
			continue
		}
		if inQuote {
			continue
		}
		switch c {
		case '\r':
			if !crlf || i+1 >= len(data) || data[i+1] != '\n' {
				return false
			}
			i++
		case '\n':
			if crlf {
				return false
			}
		}
	}
	if crlf && len(data) > 0 && !bytes.HasSuffix(data, []byte("\r\n")) {
		return false
	}
	return true
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// validateUpload performs the job-level checks that fail a job before any
// row is processed. It returns the errorMessage, or "".
func (s *Server) validateUpload(j *job) (header []string, rows *table, p *plan, msg string) {
	if j.tooLarge {
		return nil, nil, nil, "InvalidBatch : Exceeded max size limit of 150 MB for the upload"
	}
	data := j.data
	delim := delimiters[j.delimiter]
	if bytes.HasPrefix(data, utf8BOM) {
		header, rows, _ = parseUpload(data[3:], delim)
		if len(data) > 3 && data[3] == '"' {
			return header, rows, nil, "InvalidBatch : Failed to parse CSV. Found unescaped quote. A value with quote should be within a quote"
		}
		if len(header) > 0 {
			header[0] = "\uFEFF" + header[0]
		}
		return header, rows, nil, "InvalidBatch : Field name not found : " + firstOr(header, "\uFEFF")
	}
	header, rows, err := parseUpload(data, delim)
	// An LF job's text that parseStrict found free of quotes and "\r"
	// (rows.lfOnly) has valid line endings: no scan of its own for them.
	if crlf := j.lineEnding == "CRLF"; (crlf || !rows.lfOnly) && !checkLineEndings(data, crlf) {
		return header, rows, nil, "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is " + j.lineEnding
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) && (errors.Is(pe.Err, csv.ErrBareQuote) || errors.Is(pe.Err, csv.ErrQuote)) {
			return header, rows, nil, "InvalidBatch : Failed to parse CSV. Found unescaped quote. A value with quote should be within a quote"
		}
		return header, rows, nil, "InvalidBatch : Failed to parse CSV. " + err.Error()
	}
	if rows.len() == 0 && s.opts.FailEmptyUpload {
		return header, rows, nil, "InvalidBatch : No data found"
	}
	if len(header) == 0 {
		return header, rows, &plan{idCol: -1, extCol: -1}, ""
	}
	p, msg = s.planHeader(j, header)
	if msg != "" {
		return header, rows, nil, msg
	}
	if j.operation == "insert" || j.operation == "upsert" {
		p.src = p.rowSource(j.object, rows)
	}
	for r := 0; r < rows.len(); r++ {
		if n := rows.width(r); n != len(header) {
			return header, rows, nil, fmt.Sprintf("InvalidBatch : Failed to parse CSV. Row has %d fields, header has %d", n, len(header))
		}
	}
	return header, rows, p, ""
}

func firstOr(ss []string, def string) string {
	if len(ss) > 0 {
		return ss[0]
	}
	return def
}

func (s *Server) runIngest(j *job, faults Faults, start time.Time) {
	header, rows, p, msg := s.validateUpload(j)
	s.mu.Lock()
	if j.state != StateInProgress {
		// Aborted while the upload was validated; the abort recorded
		// every row as unprocessed.
		s.mu.Unlock()
		return
	}
	j.header = header
	if msg != "" {
		if !s.opts.UnprocessedHeaderOnlyOnHeaderFailure {
			j.unprocessed = rows.rows(0)
		}
		s.failLocked(j, start, msg)
		s.mu.Unlock()
		return
	}
	j.rows = rows
	n := rows.len()
	if j.operation == "insert" || j.operation == "upsert" {
		st := s.storeLocked(j.object)
		if p != nil {
			// Size the indexes of the fields the rows set for every row,
			// so that they do not grow mid-job.
			for i, f := range st.indexed {
				for _, c := range p.cols {
					if !c.rel && c.field == f {
						st.index[i].one.reserve(n)
						break
					}
				}
			}
		}
	}
	if p != nil {
		st := s.storeLocked(j.object)
		for i, f := range st.indexed {
			for col, c := range p.cols {
				if !c.rel && c.field == f {
					p.touch = append(p.touch, touchCol{x: &st.index[i].one, f: f, col: col})
				}
			}
		}
	}
	var fast *fastInsert
	var st *objStore // with fast, the job's store
	if p != nil && j.operation == "insert" && !(faults.LockErrorRate > 0) && !s.generalOnly {
		// Lock errors draw a random number per row: those jobs take
		// the general path.
		st = s.storeLocked(j.object)
		fast = newFastInsert(j.object, p, st)
	}
	s.mu.Unlock()

	batch := s.opts.BatchSize
	chunk := min(batch, 200)
	if s.opts.ProcessingRate == 0 {
		chunk = min(batch, 2000)
	}
	for b := 0; b < n; b += batch {
		bend := min(b+batch, n)
		s.mu.Lock()
		if j.state != StateInProgress {
			s.mu.Unlock()
			return
		}
		if s.recordsUsed+int64(bend-b) > s.opts.DailyRecordLimit || s.batchesUsed >= s.opts.DailyBatchLimit {
			j.unprocessed = append(j.unprocessed, rows.rows(b)...)
			s.failLocked(j, start, fmt.Sprintf("ExceededQuota : Exceeded the daily allocation of %d records / %d batches",
				s.opts.DailyRecordLimit, s.opts.DailyBatchLimit))
			s.mu.Unlock()
			return
		}
		s.recordsUsed += int64(bend - b)
		s.batchesUsed++
		j.batchEnd = bend
		s.mu.Unlock()
		for c := b; c < bend; c += chunk {
			cend := min(c+chunk, bend)
			s.mu.Lock()
			if j.state != StateInProgress {
				// Aborted: abortUnprocessedLocked recorded the rest.
				s.mu.Unlock()
				return
			}
			// The chunk is one transaction: its records share one
			// SystemModstamp (objStore.touch).
			txStore := s.storeLocked(j.object)
			txStore.txMod = s.now().UnixMilli()
			for i := c; i < cend; i++ {
				if (i-c)%touchRows == 0 && len(p.touch) > 0 {
					p.touchRows(rows, i, min(i+touchRows, cend))
				}
				if faults.FailJobAfterRows > 0 && j.processed >= faults.FailJobAfterRows {
					if s.opts.CountWholeBatches {
						j.processed += int64(bend - i)
					}
					j.unprocessed = append(j.unprocessed, rows.rows(i)...)
					s.failLocked(j, start, fmt.Sprintf("InternalServerError : Job failed after %d records (emulator fault injection)", faults.FailJobAfterRows))
					txStore.txMod = 0
					s.mu.Unlock()
					return
				}
				p.row = rows.split(i, p.row[:0])
				j.processed++
				j.next = i + 1
				if fast != nil {
					if rec := fast.insertLocked(s, j.object, p, st, p.row, i); rec != nil {
						j.success.add(okResult{rec.n, int32(i), true, false})
						continue
					}
				}
				res := s.applyRowLocked(j, p, rowVals{p.row, i}, faults.LockErrorRate)
				if res.err != "" {
					j.failed++
					j.failures = append(j.failures, res)
				} else {
					j.success.add(okResult{res.rec.n, res.row, res.created, res.rec.named})
				}
			}
			txStore.txMod = 0
			j.modstamp = s.now()
			s.notifyLocked()
			s.mu.Unlock()
			if s.opts.ProcessingRate > 0 {
				if !s.sleep(time.Duration(float64(cend-c) / s.opts.ProcessingRate * float64(time.Second))) {
					return
				}
			} else if s.ctx.Err() != nil {
				return
			}
		}
	}
	s.mu.Lock()
	if j.state == StateInProgress {
		j.state = StateJobComplete
		s.finishLocked(j, start)
	}
	s.mu.Unlock()
}

// touchRows are the rows whose index slots runIngest touches at a time:
// their cache lines (a few KiB) stay cached until the rows are applied.
const touchRows = 64

// touchCol is a column holding the values of an indexed field.
type touchCol struct {
	x   *keyIndex
	f   *FieldDescribe
	col int
	// hashes are the hashes of the keys of rows [from, from+n) that the
	// last touchRows computed, or 0 for a row it skipped: the row's
	// lookup reuses its hash (see hash) rather than hashing the key again.
	from, n int
	hashes  [touchRows]uint32
}

// hash returns the hash of k, the key of row r in column tc.col: the one
// touchRows computed when it hashed that row, else (or with tc nil)
// keyHash(k). A hash of 0 is computed again, which is correct and rare.
func (tc *touchCol) hash(r int, k string) uint32 {
	if tc == nil {
		return keyHash(k)
	}
	if i := r - tc.from; i >= 0 && i < tc.n {
		if h := tc.hashes[i]; h != 0 {
			return h
		}
	}
	return keyHash(k)
}

// touchRows loads the index slots where the lookups of the keys of rows
// [from, to) start: the CPU fetches them from memory in parallel, where
// the lookups one row at a time (of a table of millions of slots) would
// each wait for a cache miss of their own. s.mu must be held.
func (p *plan) touchRows(t *table, from, to int) {
	var sum uint64
	for i := range p.touch {
		tc := &p.touch[i]
		tc.from, tc.n = from, 0
		if len(tc.x.slots) == 0 {
			continue
		}
		// Hash first, then load: the loop of bare loads keeps many
		// cache misses in flight at once.
		for r := from; r < to; r++ {
			h := uint32(0)
			v := t.value(r, tc.col)
			// Unless v is its own key, skip it: not worth indexKey's copy.
			if v != "" && v != "#N/A" && (tc.f.CaseSensitive || isLowerASCII(v)) {
				h = keyHash(v)
			}
			tc.hashes[r-from] = h
		}
		tc.n = to - from
		slots, mask := tc.x.slots, uint32(len(tc.x.slots)-1)
		for _, h := range tc.hashes[:tc.n] {
			if h != 0 {
				sum += slots[h&mask]
			}
		}
	}
	p.touched += sum // keeps the loads
}

// isLowerASCII reports whether v is ASCII without upper-case letters
// (strings.ToLower returns it unchanged).
func isLowerASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x80 || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}
