package changes

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"unsafe"
)

// This file is the external sort shared by the run (rows passed to Add) and
// the outcomes: records are buffered in memory up to a byte limit, sorted by
// (key bytes, sequence number) and spilled to a chunk file; reading merges
// the chunks with a heap. A record is
//
//	uvarint len(key), key, uvarint seq, uint64 aux (little endian),
//	uvarint len(payload), payload
//
// seq is the record's position in input order, so that among equal keys the
// merge yields the earliest first. aux is a small fixed field the merge can
// read without the payload (the row hash for runs, op and result for
// outcomes). Chunk files are private to one process and never outlive the
// Differ, so the format has no header or checksum.

const (
	// minFanIn and maxFanIn bound the most chunk files merged at once
	// (spool.fanIn); more are first merged into bigger chunks, which bounds
	// open files and read buffers.
	minFanIn, maxFanIn = 64, 512
	// fanInBuf is the memory limit per chunk file that spool.fanIn allows
	// for. A merge runs after freeze has freed the spool's buffers, so
	// its read buffers may take half the limit, minReadBuf per file: the
	// default 16 MiB gives the most fan-in, 512 files of 16 KiB.
	fanInBuf = 2 * minReadBuf
	// ioBuf is the buffer size of every file written.
	ioBuf = 1 << 20
	// minReadBuf and maxReadBuf bound the read buffer of a chunk file.
	minReadBuf, maxReadBuf = 16 << 10, 256 << 10
	// maxKeyLen bounds keys (and destination ids); longer ones are refused
	// when added and treated as corruption when read.
	maxKeyLen = 1 << 20
	// maxPayload bounds an encoded row read back from a chunk file.
	maxPayload = 1 << 30
)

// memRec is one buffered record: its key is blocks[blk][k0:k1] and its
// payload blocks[blk][k1:p1].
type memRec struct {
	blk, k0, k1, p1 uint32
	seq, aux        uint64
	// pre is the key's first 8 bytes, big-endian, zero-padded: most
	// comparisons of the sort end there, without reaching the blocks.
	pre uint64
}

// keyPrefix returns the first 8 bytes of key as a big-endian number,
// zero-padded: keys whose prefixes differ compare as their prefixes do.
func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// blockSize is the size of the buffer's blocks. Records are appended to
// fixed blocks rather than one growing slice, so the buffer is never copied
// and its memory is reused after each spill.
const blockSize = 1 << 20

const memRecSize = int(unsafe.Sizeof(memRec{}))

// memBuf is an in-memory buffer of records: their keys and payloads are in
// blocks.
type memBuf struct {
	blocks [][]byte // blocks[:cur+1] are in use
	cur    int
	used   int // bytes in use in blocks
	recs   []memRec
}

// spool buffers records and spills them in sorted chunks. It is not safe for
// concurrent use.
type spool struct {
	name  string // "run" or "outcomes": file names and errors
	dir   string
	limit int
	memBuf
	// async spills in the background: the buffer is limit/2 bytes, and
	// while a full one is sorted and written (by a goroutine that the next
	// spill, freeze or wait joins) records go into the other, spare.
	// Sorting and writing then take the other core, not the adding one.
	async    bool
	spare    memBuf
	spilling chan spillDone // the background spill in progress, or nil
	chunks   []string
	seq      uint64
	files    int // chunk files created so far, for unique names
	frozen   bool
}

// spillDone is the end of a background spill: its buffer, empty again.
type spillDone struct {
	buf memBuf
	err error
}

// bufLimit is the size of the buffer being filled.
func (s *spool) bufLimit() int {
	if s.async {
		return max(s.limit/2, 1)
	}
	return s.limit
}

// add buffers one record, spilling when the buffer reaches the limit.
func (s *spool) add(key []byte, aux uint64, payload []byte) error {
	if s.frozen {
		return fmt.Errorf("changes: %s: add after the records were merged", s.name)
	}
	need := len(key) + len(payload)
	if len(s.blocks) == 0 || len(s.blocks[s.cur])+need > cap(s.blocks[s.cur]) {
		if len(s.blocks) > 0 {
			s.cur++
		}
		switch {
		case s.cur < len(s.blocks) && cap(s.blocks[s.cur]) >= need:
			// reuse a block from before the last spill
		case s.cur < len(s.blocks):
			s.blocks[s.cur] = make([]byte, 0, need)
		default:
			s.blocks = append(s.blocks, make([]byte, 0, max(need, min(blockSize, s.bufLimit()))))
		}
	}
	if len(s.recs) == cap(s.recs) { // double: append grows large slices by 1.25x
		s.recs = slices.Grow(s.recs, max(2*cap(s.recs), 64)-len(s.recs))
	}
	b := s.blocks[s.cur]
	k0 := len(b)
	b = append(b, key...)
	k1 := len(b)
	b = append(b, payload...)
	s.blocks[s.cur] = b
	s.used += need
	s.recs = append(s.recs, memRec{blk: uint32(s.cur), k0: uint32(k0), k1: uint32(k1), p1: uint32(len(b)), seq: s.seq, aux: aux, pre: keyPrefix(key)})
	s.seq++
	if s.used+len(s.recs)*memRecSize >= s.bufLimit() {
		if s.async {
			return s.spillAsync()
		}
		return s.spill()
	}
	return nil
}

// sort sorts the records by (key, seq).
func (b *memBuf) sort() {
	bl := b.blocks
	slices.SortFunc(b.recs, func(x, y memRec) int {
		if x.pre != y.pre {
			return cmp.Compare(x.pre, y.pre)
		}
		if c := bytes.Compare(bl[x.blk][x.k0:x.k1], bl[y.blk][y.k0:y.k1]); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
}

// spillTo sorts the records, writes them to cw and empties the buffer
// (keeping its memory).
func (b *memBuf) spillTo(cw *chunkWriter) error {
	b.sort()
	for _, r := range b.recs {
		bl := b.blocks[r.blk]
		cw.write(bl[r.k0:r.k1], r.seq, r.aux, bl[r.k1:r.p1])
	}
	err := cw.finish()
	for i := range b.blocks {
		b.blocks[i] = b.blocks[i][:0]
	}
	b.cur, b.used, b.recs = 0, 0, b.recs[:0]
	return err
}

// spill sorts the buffered records and writes them to a new chunk file.
func (s *spool) spill() error {
	if len(s.recs) == 0 {
		return nil
	}
	cw, err := s.newChunk()
	if err != nil {
		return err
	}
	if err := s.spillTo(cw); err != nil {
		return err
	}
	s.chunks = append(s.chunks, cw.path)
	return nil
}

// spillAsync hands the full buffer to a goroutine that sorts and writes it
// to a new chunk file, and goes on with the spare buffer (once the
// previous background spill, if any, is done).
func (s *spool) spillAsync() error {
	if err := s.wait(); err != nil {
		return err
	}
	cw, err := s.newChunk()
	if err != nil {
		return err
	}
	s.chunks = append(s.chunks, cw.path)
	full := s.memBuf
	s.memBuf, s.spare = s.spare, memBuf{}
	done := make(chan spillDone, 1)
	s.spilling = done
	go func() { // joined by wait
		err := full.spillTo(cw)
		done <- spillDone{buf: full, err: err}
	}()
	return nil
}

// wait waits for the background spill, if any, and returns its error.
func (s *spool) wait() error {
	if s.spilling == nil {
		return nil
	}
	d := <-s.spilling
	s.spilling = nil
	s.spare = d.buf
	return d.err
}

// skip takes the next input sequence number for a record kept outside
// the spool (a walked diff's new and changed rows, online.go).
func (s *spool) skip() uint64 {
	s.seq++
	return s.seq - 1
}

// discard ends adding without a merge: nothing reads the records again (a
// walked diff, online.go). Its chunk files stay until the Differ's Close.
func (s *spool) discard() {
	s.frozen = true
	s.wait() // the spill's error does not matter: nothing reads its chunk
	s.memBuf, s.spare = memBuf{}, memBuf{}
}

// freeze ends adding: small inputs stay sorted in memory, larger ones are
// spilled entirely and merged down to at most fanIn() chunk files.
func (s *spool) freeze() error {
	if s.frozen {
		return nil
	}
	s.frozen = true
	if err := s.wait(); err != nil {
		return err
	}
	s.spare = memBuf{}
	if len(s.chunks) == 0 {
		s.sort()
		return nil
	}
	if err := s.spill(); err != nil {
		return err
	}
	s.memBuf = memBuf{} // the merge reads files only; free the buffer
	for fan := s.fanIn(); len(s.chunks) > fan; {
		// Merge just enough chunks that the rest and the merged one fit
		// in one final merge: each merge pass rewrites what it reads, so
		// 300 chunks and a fan-in of 256 merge 45 of them, not 256.
		group := s.chunks[:min(fan, len(s.chunks)-fan+1)]
		merged, err := s.mergeChunks(group)
		if err != nil {
			return err
		}
		for _, p := range group {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("changes: %s: remove merged chunk: %w", s.name, err)
			}
		}
		s.chunks = append(slices.Clone(s.chunks[len(group):]), merged)
	}
	return nil
}

// fanIn returns the most chunk files merged at once: one per fanInBuf
// bytes of the memory limit, between minFanIn and maxFanIn. An extra merge
// pass rewrites what it merges, after the input ended: with the default
// limit a run of 10,000,000 rows of 15 fields (bench sync-diff) spills
// about 320 chunks, which the diff merges at once. (With a fan-in of 256,
// freeze first merged 65 of them, 0.8 s of the diff's 2.7 s.)
func (s *spool) fanIn() int {
	return min(max(s.limit/fanInBuf, minFanIn), maxFanIn)
}

// mergeChunks merges chunk files into one new chunk file.
func (s *spool) mergeChunks(paths []string) (string, error) {
	cs, err := s.openFiles(paths)
	if err != nil {
		return "", err
	}
	m, err := newMerger(cs)
	if err != nil {
		m.close()
		return "", err
	}
	defer m.close()
	cw, err := s.newChunk()
	if err != nil {
		return "", err
	}
	for c := m.top(); c != nil; c = m.top() {
		p, err := c.payload()
		if err != nil {
			cw.abort()
			return "", err
		}
		cw.write(c.key, c.seq, c.aux, p)
		if err := m.advance(); err != nil {
			cw.abort()
			return "", err
		}
	}
	if err := cw.finish(); err != nil {
		return "", err
	}
	return cw.path, nil
}

// open returns a merger over every record added, in (key, seq) order. The
// spool must be frozen. The caller closes the merger.
func (s *spool) open() (*merger, error) {
	if !s.frozen {
		return nil, fmt.Errorf("changes: %s: read before freeze", s.name)
	}
	var cs []*cursor
	if len(s.chunks) == 0 {
		cs = []*cursor{{mem: s}}
	} else {
		var err error
		if cs, err = s.openFiles(s.chunks); err != nil {
			return nil, err
		}
	}
	m, err := newMerger(cs)
	if err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

// openFiles opens a cursor per chunk file. The read buffers share a quarter
// of the memory limit, each between minReadBuf and maxReadBuf bytes (so up
// to half of it at the most files fanIn allows): their total grows little
// with the number of chunks (a 1M-row run has a few dozen, a 10M-row run
// hundreds), so peak memory stays flat.
func (s *spool) openFiles(paths []string) ([]*cursor, error) {
	size := min(max(s.limit/4/max(len(paths), 1), minReadBuf), maxReadBuf)
	cs := make([]*cursor, 0, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			for _, c := range cs {
				c.close()
			}
			return nil, fmt.Errorf("changes: %s: open spill file: %w", s.name, err)
		}
		cs = append(cs, &cursor{f: f, br: bufio.NewReaderSize(f, size), path: p})
	}
	return cs, nil
}

// chunkWriter writes one chunk file.
type chunkWriter struct {
	path string
	f    *os.File
	bw   *bufio.Writer
	rec  []byte // the record being written
}

func (s *spool) newChunk() (*chunkWriter, error) {
	cw, err := s.newChunkNamed(fmt.Sprintf("%s-%06d", s.name, s.files))
	s.files++
	return cw, err
}

// newChunkNamed creates a chunk-format file named name in the spool's
// directory.
func (s *spool) newChunkNamed(name string) (*chunkWriter, error) {
	p := filepath.Join(s.dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("changes: %s: create spill file: %w", s.name, err)
	}
	return &chunkWriter{path: p, f: f, bw: bufio.NewWriterSize(f, ioBuf)}, nil
}

// write appends a record; errors are sticky in the bufio.Writer and
// reported by finish.
func (w *chunkWriter) write(key []byte, seq, aux uint64, payload []byte) {
	r := binary.AppendUvarint(w.rec[:0], uint64(len(key)))
	r = append(r, key...)
	r = binary.AppendUvarint(r, seq)
	r = binary.LittleEndian.AppendUint64(r, aux)
	r = binary.AppendUvarint(r, uint64(len(payload)))
	if len(r)+len(payload) <= 4096 { // one copy into the buffer, not four
		r = append(r, payload...)
		w.bw.Write(r)
	} else {
		w.bw.Write(r)
		w.bw.Write(payload)
	}
	w.rec = r[:0]
}

func (w *chunkWriter) finish() error {
	err := w.bw.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(w.path)
		return fmt.Errorf("changes: write spill file %s: %w", w.path, err)
	}
	return nil
}

func (w *chunkWriter) abort() {
	w.f.Close()
	os.Remove(w.path)
}

// cursor reads the records of one chunk file, or of a frozen spool's memory
// buffer when mem is set. key and payload are valid until the next call of
// next.
type cursor struct {
	mem *spool
	i   int

	f    *os.File
	br   *bufio.Reader
	path string

	key      []byte
	pre      uint64 // keyPrefix(key): the merge compares it first
	seq, aux uint64
	pay      []byte
	payLen   int
	payRead  bool
	aux8     [8]byte
}

// next moves to the next record; it returns false at the end.
func (c *cursor) next() (bool, error) {
	if c.mem != nil {
		if c.i >= len(c.mem.recs) {
			return false, nil
		}
		r := c.mem.recs[c.i]
		c.i++
		b := c.mem.blocks[r.blk]
		c.key, c.pre, c.seq, c.aux = b[r.k0:r.k1], r.pre, r.seq, r.aux
		c.pay, c.payRead = b[r.k1:r.p1], true
		return true, nil
	}
	if !c.payRead && c.payLen > 0 {
		if _, err := c.br.Discard(c.payLen); err != nil {
			return false, c.fail(err)
		}
	}
	if c.nextBuffered() {
		return true, nil
	}
	kl, err := binary.ReadUvarint(c.br)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, c.fail(err)
	}
	if kl > maxKeyLen {
		return false, c.fail(fmt.Errorf("key length %d", kl))
	}
	c.key = grow(c.key, int(kl))
	if _, err := io.ReadFull(c.br, c.key); err != nil {
		return false, c.fail(err)
	}
	c.pre = keyPrefix(c.key)
	if c.seq, err = binary.ReadUvarint(c.br); err != nil {
		return false, c.fail(err)
	}
	if _, err := io.ReadFull(c.br, c.aux8[:]); err != nil {
		return false, c.fail(err)
	}
	c.aux = binary.LittleEndian.Uint64(c.aux8[:])
	pl, err := binary.ReadUvarint(c.br)
	if err != nil {
		return false, c.fail(err)
	}
	if pl > maxPayload {
		return false, c.fail(fmt.Errorf("payload length %d", pl))
	}
	c.payLen, c.payRead = int(pl), false
	return true, nil
}

// nextBuffered reads the next record's header (key, seq, aux, payload
// length) straight from the read buffer when all of it is there and
// well-formed; otherwise it reads nothing and returns false, and next reads
// the fields one by one (and reports what is wrong).
func (c *cursor) nextBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	kl, n := binary.Uvarint(b)
	if n <= 0 || kl > maxKeyLen || uint64(len(b)-n) < kl {
		return false
	}
	p := n + int(kl)
	seq, m := binary.Uvarint(b[p:])
	if m <= 0 || len(b)-p-m < 8 {
		return false
	}
	q := p + m + 8
	pl, r := binary.Uvarint(b[q:])
	if r <= 0 || pl > maxPayload {
		return false
	}
	c.key = append(c.key[:0], b[n:p]...)
	c.pre = keyPrefix(c.key)
	c.seq, c.aux = seq, binary.LittleEndian.Uint64(b[p+m:])
	c.payLen, c.payRead = int(pl), false
	c.br.Discard(q + r) // buffered: cannot fail
	return true
}

// payload returns the current record's payload, reading it if needed.
func (c *cursor) payload() ([]byte, error) {
	if c.payRead {
		return c.pay, nil
	}
	c.pay = grow(c.pay, c.payLen)
	if _, err := io.ReadFull(c.br, c.pay); err != nil {
		return nil, c.fail(err)
	}
	c.payRead = true
	return c.pay, nil
}

func (c *cursor) fail(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("changes: read spill file %s: %w", c.path, err)
}

func (c *cursor) close() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// grow returns b resized to n bytes, reallocating only when it is too small.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, max(n, 2*cap(b)))
	}
	return b[:n]
}

// merger is a k-way merge of cursors in (key, seq) order (container/heap).
type merger struct {
	h   []*cursor
	all []*cursor
}

func newMerger(cs []*cursor) (*merger, error) {
	m := &merger{all: cs, h: make([]*cursor, 0, len(cs))}
	for _, c := range cs {
		ok, err := c.next()
		if err != nil {
			return m, err
		}
		if ok {
			m.h = append(m.h, c)
		}
	}
	heap.Init(m)
	return m, nil
}

func (m *merger) Len() int { return len(m.h) }
func (m *merger) Less(i, j int) bool {
	if a, b := m.h[i].pre, m.h[j].pre; a != b {
		return a < b
	}
	if c := bytes.Compare(m.h[i].key, m.h[j].key); c != 0 {
		return c < 0
	}
	return m.h[i].seq < m.h[j].seq
}
func (m *merger) Swap(i, j int) { m.h[i], m.h[j] = m.h[j], m.h[i] }
func (m *merger) Push(x any)    { m.h = append(m.h, x.(*cursor)) }
func (m *merger) Pop() any {
	c := m.h[len(m.h)-1]
	m.h = m.h[:len(m.h)-1]
	return c
}

// top returns the cursor holding the smallest record, or nil at the end.
func (m *merger) top() *cursor {
	if len(m.h) == 0 {
		return nil
	}
	return m.h[0]
}

// advance moves past the smallest record.
func (m *merger) advance() error {
	c := m.h[0]
	ok, err := c.next()
	if err != nil {
		return err
	}
	if ok {
		heap.Fix(m, 0)
	} else {
		heap.Pop(m)
	}
	return nil
}

func (m *merger) close() error {
	var err error
	for _, c := range m.all {
		if cerr := c.close(); err == nil {
			err = cerr
		}
	}
	return err
}
