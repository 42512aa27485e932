package parquetsink

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/thrift/lib/go/thrift"
)

// Page checksums. arrow-go (v18.8, v18.9) writes no CRC in Parquet page
// headers, so crcWriter sits between pqarrow's FileWriter and the object
// and adds one to every page as it streams by: it parses each page header
// (Thrift compact protocol), holds the page's body (at most one page: about
// data_page_size, 1 MiB), writes the header again with field 4 (crc, the
// CRC-32 (IEEE) of the body as stored, after compression: what parquet-java,
// Arrow C++ and the parquet source check) and then the body. A header grows
// by up to 6 bytes, so every offset after it moves: crcWriter records where
// the pages the footer points at (each chunk's first page and first data
// page) moved to, and at the end rewrites the footer (FileMetaData) with
// the moved offsets and the grown chunk and row group sizes.
//
// To tell pages from the footer, crcWriter must know what comes: the sink
// announces each row group flush (beginFlush with the group's row count)
// before calling into pqarrow. A flushed row group is, per column in
// order, a dictionary page (optional) and data pages whose value counts add
// up to the row count (every column is flat). After the last row group
// comes the footer. Page indexes and bloom filters are off (they would come
// between the two). arrow-go's buffered page writer also serialises each
// column chunk's metadata after its pages, through a bufio.Writer it never
// flushes: nothing reaches the stream unless that metadata exceeds the
// 4 KiB buffer, which the sink prevents by bounding statistics
// (maxStatsSize) and column names (maxNameBytes). Anything unexpected in
// the stream is an error, never a file with wrong checksums.

// crcWriter adds page checksums to the Parquet stream written through it.
// It is not safe for concurrent use (the sink serialises).
type crcWriter struct {
	out     io.Writer
	ncols   int
	in      int64 // bytes received: the offsets arrow-go computes
	outPos  int64 // bytes written to out
	pending []byte
	pendAt  int64 // offset (in) of pending[0]

	state    crcState
	rows     int64           // rows of the row group being flushed
	col      int             // its column being read
	values   int64           // data values seen in that column
	closing  bool            // the footer follows the flush
	colPages int             // pages seen in that column
	colData  bool            // a data page among them
	moved    map[int64]int64 // where chunks' first pages and first data pages moved to
	nPages   int
	tmp      *thrift.TMemoryBuffer // withCRC's output
}

type crcState int

const (
	crcMagic  crcState = iota // expecting "PAR1"
	crcIdle                   // nothing may come
	crcPages                  // a row group flush
	crcFooter                 // the footer: held until finish
)

func newCRCWriter(out io.Writer, ncols int) *crcWriter {
	return &crcWriter{out: out, ncols: ncols, moved: map[int64]int64{}, tmp: thrift.NewTMemoryBufferLen(256)}
}

// beginFlush announces that the next bytes are a row group of rows rows
// (rows > 0); with closing, the footer follows it.
func (c *crcWriter) beginFlush(rows int64, closing bool) {
	c.state, c.rows, c.col, c.values, c.closing = crcPages, rows, 0, 0, closing
	c.colPages, c.colData = 0, false
}

// beginFooter announces that the next bytes are the footer.
func (c *crcWriter) beginFooter() { c.state = crcFooter }

// Write takes bytes from arrow-go. It always takes all of p unless out
// fails; malformed input (a bug here or in arrow-go) is an error.
func (c *crcWriter) Write(p []byte) (int, error) {
	c.pending = append(c.pending, p...)
	c.in += int64(len(p))
	if err := c.process(); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *crcWriter) emit(b []byte) error {
	n, err := c.out.Write(b)
	c.outPos += int64(n)
	return err
}

// consume drops n bytes from the front of pending.
func (c *crcWriter) consume(n int) {
	c.pending = c.pending[n:]
	c.pendAt += int64(n)
	if len(c.pending) == 0 {
		c.pending = c.pending[:0:cap(c.pending)]
		if cap(c.pending) > 4<<20 { // one large page: do not keep its buffer
			c.pending = nil
		}
	}
}

func (c *crcWriter) process() error {
	for len(c.pending) > 0 {
		switch c.state {
		case crcMagic:
			if len(c.pending) < 4 {
				return nil
			}
			if string(c.pending[:4]) != "PAR1" {
				return fmt.Errorf("parquet checksums: the file does not start with PAR1")
			}
			if err := c.emit(c.pending[:4]); err != nil {
				return err
			}
			c.consume(4)
			c.state = crcIdle
		case crcIdle:
			return fmt.Errorf("parquet checksums: %d unexpected bytes at offset %d outside a row group", len(c.pending), c.pendAt)
		case crcFooter:
			return nil // held until finish
		case crcPages:
			done, err := c.next()
			if err != nil || !done {
				return err
			}
		}
	}
	return nil
}

// next handles the next page or column metadata block of a flush if
// pending holds all of it; done is false when more bytes are needed.
func (c *crcWriter) next() (done bool, err error) {
	h, ok := parsePageHeader(c.pending)
	if !ok {
		return false, nil
	}
	if h.compressed < 0 || len(c.pending) < h.len+int(h.compressed) {
		return false, nil
	}
	body := c.pending[h.len : h.len+int(h.compressed)]
	hdr, err := c.withCRC(c.pending[:h.len], crc32.ChecksumIEEE(body))
	if err != nil {
		return false, fmt.Errorf("parquet checksums: page at offset %d: %w", c.pendAt, err)
	}
	// The footer names a chunk's first page and its first data page.
	if c.colPages == 0 || h.data && !c.colData {
		c.moved[c.pendAt] = c.outPos
	}
	c.colPages++
	c.colData = c.colData || h.data
	if err := c.emit(hdr); err != nil {
		return false, err
	}
	if err := c.emit(body); err != nil {
		return false, err
	}
	c.consume(h.len + int(h.compressed))
	c.values += int64(h.values)
	c.nPages++
	if c.values > c.rows {
		return false, fmt.Errorf("parquet checksums: column %d has %d values in a row group of %d rows", c.col, c.values, c.rows)
	}
	if c.values == c.rows {
		c.col++
		c.values, c.colPages, c.colData = 0, 0, false
		if c.col == c.ncols {
			c.state = crcIdle
			if c.closing {
				c.state = crcFooter
				c.moved[c.pendAt] = c.outPos // the end of the last chunk
			}
		}
	}
	return true, nil
}

// finish rewrites the held footer with the moved offsets and writes it.
func (c *crcWriter) finish() error {
	if c.state != crcFooter {
		return fmt.Errorf("parquet checksums: %d bytes at offset %d, in column %d of a row group of %d rows (%d values read), are not a page (they start % x); the object is not written: report this as a bug", len(c.pending), c.pendAt, c.col+1, c.rows, c.values, c.pending[:min(16, len(c.pending))])
	}
	f := c.pending
	if len(f) < 8 || string(f[len(f)-4:]) != "PAR1" {
		return errors.New("parquet checksums: the footer does not end with PAR1")
	}
	mlen := int(binary.LittleEndian.Uint32(f[len(f)-8:]))
	if mlen != len(f)-8 {
		return fmt.Errorf("parquet checksums: %d bytes between the last row group and the footer's %d bytes of metadata (page indexes or bloom filters are not supported)", len(f)-8-mlen, mlen)
	}
	md, err := metadata.NewFileMetaData(f[:mlen], nil)
	if err != nil {
		return fmt.Errorf("parquet checksums: read footer: %w", err)
	}
	if err := c.moveOffsets(md); err != nil {
		return fmt.Errorf("parquet checksums: %w", err)
	}
	var buf bytes.Buffer
	if _, err := md.WriteTo(&buf, nil); err != nil {
		return fmt.Errorf("parquet checksums: write footer: %w", err)
	}
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(buf.Len())))
	buf.WriteString("PAR1")
	c.consume(len(f))
	return c.emit(buf.Bytes())
}

// moveOffsets rewrites the footer's offsets and sizes for the grown page
// headers.
func (c *crcWriter) moveOffsets(md *metadata.FileMetaData) error {
	move := func(what string, off int64) (int64, error) {
		n, ok := c.moved[off]
		if !ok {
			return 0, fmt.Errorf("%s at offset %d is not where a page or chunk starts", what, off)
		}
		return n, nil
	}
	for i, rg := range md.RowGroups {
		var grown int64
		for j, cc := range rg.Columns {
			m := cc.MetaData
			if m == nil || cc.OffsetIndexOffset != nil || cc.ColumnIndexOffset != nil || m.BloomFilterOffset != nil {
				return fmt.Errorf("row group %d column %d: metadata other than pages (page index, bloom filter) is not supported", i, j)
			}
			start := m.DataPageOffset
			if d := m.DictionaryPageOffset; d != nil && *d > 0 && *d < start {
				start = *d
			}
			ns, err := move("column chunk", start)
			if err != nil {
				return err
			}
			ne, err := move("column chunk end", start+m.TotalCompressedSize)
			if err != nil {
				return err
			}
			delta := (ne - ns) - m.TotalCompressedSize
			grown += delta
			m.TotalCompressedSize += delta
			m.TotalUncompressedSize += delta
			if m.DataPageOffset, err = move("data page", m.DataPageOffset); err != nil {
				return err
			}
			if d := m.DictionaryPageOffset; d != nil && *d > 0 {
				if *d, err = move("dictionary page", *d); err != nil {
					return err
				}
			}
			if cc.FileOffset, err = move("column chunk", cc.FileOffset); err != nil {
				return err
			}
		}
		if rg.FileOffset != nil {
			var err error
			if *rg.FileOffset, err = move("row group", *rg.FileOffset); err != nil {
				return err
			}
		}
		if rg.TotalCompressedSize != nil {
			*rg.TotalCompressedSize += grown
		}
		rg.TotalByteSize += grown
	}
	return nil
}

// pageHeader is what crcWriter needs of a page header.
type pageHeader struct {
	len        int   // header bytes
	compressed int32 // body bytes
	values     int32 // values of a data page (0 for other pages)
	data       bool  // a data page (v1 or v2)
}

const (
	fieldPageType     = 1
	fieldCompressed   = 3
	fieldCRC          = 4
	fieldDataPage     = 5
	fieldDataPageV2   = 8
	fieldNumValues    = 1 // of DataPageHeader and DataPageHeaderV2
	maxNestedDepth    = 32
	thriftStringLimit = 1 << 30
)

func compactReader(b []byte) (*thrift.TCompactProtocol, *thrift.TMemoryBuffer) {
	mb := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(b)}
	return thrift.NewTCompactProtocolConf(mb, &thrift.TConfiguration{MaxMessageSize: thriftStringLimit}), mb
}

// parsePageHeader parses the page header at the start of b; ok is false
// when b does not hold all of it.
func parsePageHeader(b []byte) (h pageHeader, ok bool) {
	ctx := context.Background()
	p, mb := compactReader(b)
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return h, false
	}
	for {
		_, typ, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return h, false
		}
		if typ == thrift.STOP {
			break
		}
		switch {
		case id == fieldCompressed && typ == thrift.I32:
			if h.compressed, err = p.ReadI32(ctx); err != nil {
				return h, false
			}
		case (id == fieldDataPage || id == fieldDataPageV2) && typ == thrift.STRUCT:
			if h.values, err = readNumValues(ctx, p); err != nil {
				return h, false
			}
			h.data = true
		default:
			if err := thrift.Skip(ctx, p, typ, maxNestedDepth); err != nil {
				return h, false
			}
		}
		if err := p.ReadFieldEnd(ctx); err != nil {
			return h, false
		}
	}
	if err := p.ReadStructEnd(ctx); err != nil {
		return h, false
	}
	h.len = len(b) - mb.Len()
	return h, true
}

// readNumValues reads a DataPageHeader(V2) struct, returning field 1.
func readNumValues(ctx context.Context, p *thrift.TCompactProtocol) (int32, error) {
	var n int32
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return 0, err
	}
	for {
		_, typ, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return 0, err
		}
		if typ == thrift.STOP {
			break
		}
		if id == fieldNumValues && typ == thrift.I32 {
			if n, err = p.ReadI32(ctx); err != nil {
				return 0, err
			}
		} else if err := thrift.Skip(ctx, p, typ, maxNestedDepth); err != nil {
			return 0, err
		}
		if err := p.ReadFieldEnd(ctx); err != nil {
			return 0, err
		}
	}
	return n, p.ReadStructEnd(ctx)
}

// withCRC returns the page header hdr with field 4 (crc) set to crc,
// every other field copied unchanged.
func (c *crcWriter) withCRC(hdr []byte, crc uint32) ([]byte, error) {
	ctx := context.Background()
	in, _ := compactReader(hdr)
	c.tmp.Reset()
	out := thrift.NewTCompactProtocolConf(c.tmp, &thrift.TConfiguration{})
	writeCRC := func() error {
		if err := out.WriteFieldBegin(ctx, "crc", thrift.I32, fieldCRC); err != nil {
			return err
		}
		if err := out.WriteI32(ctx, int32(crc)); err != nil {
			return err
		}
		return out.WriteFieldEnd(ctx)
	}
	if _, err := in.ReadStructBegin(ctx); err != nil {
		return nil, err
	}
	if err := out.WriteStructBegin(ctx, "PageHeader"); err != nil {
		return nil, err
	}
	wrote := false
	for {
		_, typ, id, err := in.ReadFieldBegin(ctx)
		if err != nil {
			return nil, err
		}
		if typ == thrift.STOP {
			break
		}
		if !wrote && id > fieldCRC {
			if err := writeCRC(); err != nil {
				return nil, err
			}
			wrote = true
		}
		if id == fieldCRC { // already there: replaced
			if err := thrift.Skip(ctx, in, typ, maxNestedDepth); err != nil {
				return nil, err
			}
		} else {
			if err := out.WriteFieldBegin(ctx, "", typ, id); err != nil {
				return nil, err
			}
			if err := copyValue(ctx, in, out, typ, maxNestedDepth); err != nil {
				return nil, err
			}
			if err := out.WriteFieldEnd(ctx); err != nil {
				return nil, err
			}
		}
		if err := in.ReadFieldEnd(ctx); err != nil {
			return nil, err
		}
	}
	if !wrote {
		if err := writeCRC(); err != nil {
			return nil, err
		}
	}
	if err := out.WriteFieldStop(ctx); err != nil {
		return nil, err
	}
	if err := out.WriteStructEnd(ctx); err != nil {
		return nil, err
	}
	if err := out.Flush(ctx); err != nil {
		return nil, err
	}
	return c.tmp.Bytes(), nil
}

// copyValue copies one Thrift value of type typ from in to out.
func copyValue(ctx context.Context, in, out thrift.TProtocol, typ thrift.TType, depth int) error {
	if depth <= 0 {
		return errors.New("thrift value nested too deeply")
	}
	switch typ {
	case thrift.BOOL:
		v, err := in.ReadBool(ctx)
		if err != nil {
			return err
		}
		return out.WriteBool(ctx, v)
	case thrift.BYTE:
		v, err := in.ReadByte(ctx)
		if err != nil {
			return err
		}
		return out.WriteByte(ctx, v)
	case thrift.I16:
		v, err := in.ReadI16(ctx)
		if err != nil {
			return err
		}
		return out.WriteI16(ctx, v)
	case thrift.I32:
		v, err := in.ReadI32(ctx)
		if err != nil {
			return err
		}
		return out.WriteI32(ctx, v)
	case thrift.I64:
		v, err := in.ReadI64(ctx)
		if err != nil {
			return err
		}
		return out.WriteI64(ctx, v)
	case thrift.DOUBLE:
		v, err := in.ReadDouble(ctx)
		if err != nil {
			return err
		}
		return out.WriteDouble(ctx, v)
	case thrift.STRING:
		v, err := in.ReadBinary(ctx)
		if err != nil {
			return err
		}
		return out.WriteBinary(ctx, v)
	case thrift.STRUCT:
		if _, err := in.ReadStructBegin(ctx); err != nil {
			return err
		}
		if err := out.WriteStructBegin(ctx, ""); err != nil {
			return err
		}
		for {
			_, ft, id, err := in.ReadFieldBegin(ctx)
			if err != nil {
				return err
			}
			if ft == thrift.STOP {
				break
			}
			if err := out.WriteFieldBegin(ctx, "", ft, id); err != nil {
				return err
			}
			if err := copyValue(ctx, in, out, ft, depth-1); err != nil {
				return err
			}
			if err := out.WriteFieldEnd(ctx); err != nil {
				return err
			}
			if err := in.ReadFieldEnd(ctx); err != nil {
				return err
			}
		}
		if err := out.WriteFieldStop(ctx); err != nil {
			return err
		}
		if err := in.ReadStructEnd(ctx); err != nil {
			return err
		}
		return out.WriteStructEnd(ctx)
	case thrift.LIST, thrift.SET:
		et, n, err := in.ReadListBegin(ctx)
		if err != nil {
			return err
		}
		if err := out.WriteListBegin(ctx, et, n); err != nil {
			return err
		}
		for range n {
			if err := copyValue(ctx, in, out, et, depth-1); err != nil {
				return err
			}
		}
		if err := in.ReadListEnd(ctx); err != nil {
			return err
		}
		return out.WriteListEnd(ctx)
	case thrift.MAP:
		kt, vt, n, err := in.ReadMapBegin(ctx)
		if err != nil {
			return err
		}
		if err := out.WriteMapBegin(ctx, kt, vt, n); err != nil {
			return err
		}
		for range n {
			if err := copyValue(ctx, in, out, kt, depth-1); err != nil {
				return err
			}
			if err := copyValue(ctx, in, out, vt, depth-1); err != nil {
				return err
			}
		}
		if err := in.ReadMapEnd(ctx); err != nil {
			return err
		}
		return out.WriteMapEnd(ctx)
	}
	return fmt.Errorf("thrift type %d cannot be copied", typ)
}
