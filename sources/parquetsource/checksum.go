package parquetsource

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// Page checksums. A Parquet page header may carry a CRC-32 of the page's
// bytes as stored (after compression); Spark, parquet-java (by default
// since 1.12) and pyarrow (write_page_checksum) write it. arrow-go (v18.8
// and v18.9) neither writes nor checks it, so the source checks it on the
// bytes arrow-go's page readers fetch, on both read paths (pqarrow and the
// fast path): every object is read through a checkedReaderAt, which follows
// each column chunk read from its start, parses its page headers and
// hashes its page bodies as they stream by. The read that completes a page
// whose CRC differs fails, so the page is never decoded: the object fails
// with an error naming the column, the row group and the page's offset.
// Pages without a CRC are read as before; the cost there is parsing page
// headers.
//
// A chunk read out of sequence (not from its start or where the last read
// ended) is not checked from there on; arrow-go and the fast path read each
// chunk from its start to its end.

// checkChecksums turns page checksum checks on (tests turn them off to
// measure their cost).
var checkChecksums = true

// maxPageHeader bounds the bytes collected for one page header; a header
// still incomplete then is left to arrow-go to report.
const maxPageHeader = 16 << 20

// checkedReaderAt reads an object through ra, checking the CRC of every
// page of the column chunks read (see above). It is safe for concurrent
// use.
type checkedReaderAt struct {
	ra   io.ReaderAt
	size int64

	mu     sync.Mutex
	md     *metadata.FileMetaData // nil: nothing is checked
	starts []int64                // byte offset of each row group's first chunk, ascending
	rg     int                    // row group of chunks, -1: none
	chunks []*chunkCheck          // the column chunks of row group rg, by start
}

// chunkCheck follows the reading of one column chunk.
type chunkCheck struct {
	col        string // column path, for errors
	rg         int
	start, end int64 // the chunk's bytes: [start, end)
	next       int64 // where the next read must start to be followed
	lost       bool  // a read out of sequence: not checked until read from start

	hdr     []byte // a page header's bytes read so far
	page    int64  // offset of the page being read
	body    int64  // bytes of its body still to come; 0: reading a header
	crc     uint32 // CRC-32 of its body so far
	want    uint32 // the CRC its header holds
	checked bool   // the header holds a CRC
}

// Size returns the object's size.
func (c *checkedReaderAt) Size() int64 { return c.size }

// watch starts checking the page checksums of the column chunks md
// describes. Files written before PARQUET-816 was fixed, whose chunk sizes
// can leave out a dictionary page header, and files whose row groups are
// not stored in order, are not checked.
func (c *checkedReaderAt) watch(md *metadata.FileMetaData) {
	if !checkChecksums || md.WriterVersion().LessThan(metadata.Parquet816FixedVersion) {
		return
	}
	starts := make([]int64, md.NumRowGroups())
	for i := range starts {
		rgm := md.RowGroup(i)
		if rgm.NumColumns() == 0 {
			return
		}
		cc, err := rgm.ColumnChunk(0)
		if err != nil {
			return
		}
		starts[i], _ = chunkRange(cc)
		if i > 0 && starts[i] < starts[i-1] {
			return
		}
	}
	c.mu.Lock()
	c.md, c.starts, c.rg = md, starts, -1
	c.mu.Unlock()
}

// chunkRange returns where a column chunk's pages start and their length,
// as arrow-go's row group reader computes them.
func chunkRange(cc *metadata.ColumnChunkMetaData) (start, size int64) {
	start = cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && start > cc.DictionaryPageOffset() {
		start = cc.DictionaryPageOffset()
	}
	return start, cc.TotalCompressedSize()
}

// ReadAt reads from the object and feeds what it read to the check of the
// column chunk it falls in. It fails, returning no bytes, when they
// complete a page whose CRC differs from its header's.
func (c *checkedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.ra.ReadAt(p, off)
	if n == 0 {
		return n, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.chunkAt(off); ch != nil {
		if cerr := ch.feed(p[:n], off); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

// chunkAt returns the check of the column chunk holding off, or nil.
func (c *checkedReaderAt) chunkAt(off int64) *chunkCheck {
	if c.md == nil {
		return nil
	}
	rg, found := slices.BinarySearch(c.starts, off)
	if !found {
		rg-- // the last row group starting before off
	}
	if rg < 0 {
		return nil
	}
	if rg != c.rg {
		c.rg, c.chunks = rg, c.chunks[:0]
		rgm := c.md.RowGroup(rg)
		for i := range rgm.NumColumns() {
			cc, err := rgm.ColumnChunk(i)
			if err != nil || cc.CryptoMetadata() != nil {
				continue // encrypted pages are arrow-go's to check
			}
			start, size := chunkRange(cc)
			c.chunks = append(c.chunks, &chunkCheck{col: cc.PathInSchema().String(), rg: rg, start: start, end: start + size, next: -1})
		}
		slices.SortFunc(c.chunks, func(a, b *chunkCheck) int { return cmp.Compare(a.start, b.start) })
	}
	i, found := slices.BinarySearchFunc(c.chunks, off, func(ch *chunkCheck, off int64) int { return cmp.Compare(ch.start, off) })
	if !found {
		i--
	}
	if i < 0 || off >= c.chunks[i].end {
		return nil
	}
	return c.chunks[i]
}

// feed follows the bytes b read at off, which lies in the chunk.
func (ch *chunkCheck) feed(b []byte, off int64) error {
	switch {
	case off == ch.start: // a new pass over the chunk
		*ch = chunkCheck{col: ch.col, rg: ch.rg, start: ch.start, end: ch.end, hdr: ch.hdr[:0]}
	case off != ch.next:
		ch.lost = true
	}
	if ch.lost {
		return nil
	}
	b = b[:min(int64(len(b)), ch.end-off)]
	ch.next = off + int64(len(b))
	pos := off // offset of b[0] in the object
	for len(b) > 0 {
		if ch.body > 0 {
			k := min(ch.body, int64(len(b)))
			ch.crc = crc32.Update(ch.crc, crc32.IEEETable, b[:k])
			ch.body -= k
			b, pos = b[k:], pos+k
			if ch.body == 0 {
				if err := ch.pageDone(); err != nil {
					return err
				}
			}
			continue
		}
		page, buf := pos-int64(len(ch.hdr)), b
		if len(ch.hdr) > 0 {
			buf = append(ch.hdr, b...)
		}
		n, size, crc, hasCRC, ok, more := parsePageHeader(buf)
		if !ok {
			if !more || len(buf) > maxPageHeader {
				ch.lost = true // not a page header we can read: arrow-go reports it
				return nil
			}
			ch.hdr = append(ch.hdr[:0], buf...)
			return nil
		}
		ch.hdr = nil
		ch.page, ch.body, ch.crc, ch.want, ch.checked = page, int64(size), 0, uint32(crc), hasCRC
		b, pos = buf[n:], page+int64(n)
		if size <= 0 {
			ch.body = 0
			if err := ch.pageDone(); err != nil {
				return err
			}
		}
	}
	return nil
}

// pageDone checks the page just read.
func (ch *chunkCheck) pageDone() error {
	if ch.checked && ch.crc != ch.want {
		return fmt.Errorf("column %q, row group %d: the page at byte %d fails its checksum (CRC-32 %08x, its header says %08x): the object is corrupt; copy or export it again",
			ch.col, ch.rg, ch.page, ch.crc, ch.want)
	}
	return nil
}

// parsePageHeader reads the Thrift (compact protocol) PageHeader at the
// start of b: its length in bytes, compressed_page_size (field 3) and crc
// (field 4, when set). ok is false when b holds no complete header; more
// then tells whether more bytes could complete it (b ran out), rather than
// b not starting with a header.
func parsePageHeader(b []byte) (n int, size, crc int32, hasCRC, ok, more bool) {
	buf := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(b)}
	p := thrift.NewTCompactProtocolConf(buf, &thrift.TConfiguration{})
	ctx := context.Background()
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return 0, 0, 0, false, false, buf.Len() == 0
	}
	for {
		_, typ, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return 0, 0, 0, false, false, buf.Len() == 0
		}
		if typ == thrift.STOP {
			break
		}
		switch {
		case id == 3 && typ == thrift.I32:
			size, err = p.ReadI32(ctx)
		case id == 4 && typ == thrift.I32:
			crc, err = p.ReadI32(ctx)
			hasCRC = true
		default:
			err = p.Skip(ctx, typ)
		}
		if err != nil {
			return 0, 0, 0, false, false, buf.Len() == 0
		}
	}
	return len(b) - buf.Len(), size, crc, hasCRC, true, false
}
