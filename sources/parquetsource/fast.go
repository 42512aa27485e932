package parquetsource

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/bulkflow/bulkflow/pipeline"
)

// The fast path: flat columns of common types are decoded straight from
// their pages (file.PageReader) into boxed values, instead of through
// pqarrow's Arrow arrays and then convert. It makes the same values as
// convert does from the arrays pqarrow would build, with one copy of the
// bytes instead of three, and a dictionary-encoded chunk's values are
// converted and boxed once per row group: a row then costs an index lookup.
//
// Why by hand: arrow-go's typed column readers (file.*ColumnChunkReader
// ReadBatch) decode values but never expose dictionary indices, so every
// value would still be copied and boxed once per row; pqarrow adds two more
// copies through Arrow builders. Measured on the bench file (1M rows, 14
// columns): 1.31–1.51 s through pqarrow, 0.53–0.63 s here. Page headers,
// decompression and the dictionary page framing still come from arrow-go
// (file.PageReader); only PLAIN, dictionary indices and the RLE/bit-packed
// hybrid are decoded here, and fast_test.go holds every value to pqarrow's.
//
// A row group is read this way only when every column of the plan is a
// top-level, non-repeated leaf of a kind below, with the Arrow type pqarrow
// gives exactly matching the Parquet type, and every column chunk uses only
// PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY and RLE encodings, unencrypted.
// Anything else goes through pqarrow as before.

// fastKind is how a fast column's values are decoded and converted.
type fastKind uint8

const (
	fkInt32     fastKind = iota + 1 // INT32 → int (int64)
	fkInt64                         // INT64 → int
	fkFloat32                       // FLOAT → float
	fkFloat64                       // DOUBLE → float
	fkBool                          // BOOLEAN → bool
	fkString                        // BYTE_ARRAY (string or binary) → string
	fkDate32                        // INT32 date → time.Time
	fkTimestamp                     // INT64 timestamp → time.Time
	fkDecimal                       // FIXED_LEN_BYTE_ARRAY decimal(≤38) → text
)

// fastSpec is how one plan column is read on the fast path.
type fastSpec struct {
	kind   fastKind
	leaf   int   // Parquet leaf column index
	maxDef int16 // 0 or 1
	size   int   // FIXED_LEN_BYTE_ARRAY width
	scale  int32
	unit   arrow.TimeUnit
	loc    *time.Location
}

// disableFast turns the fast path off (tests compare both paths).
var disableFast = false

// fastSpecs returns the fast-path specs of a plan's columns, or nil when
// some column does not qualify.
func fastSpecs(fr *pqarrow.FileReader, sch *schema.Schema, cols []column) []fastSpec {
	if disableFast {
		return nil
	}
	specs := make([]fastSpec, len(cols))
	for j, c := range cols {
		if len(c.path) > 0 || c.top >= len(fr.Manifest.Fields) {
			return nil
		}
		f := &fr.Manifest.Fields[c.top]
		if !f.IsLeaf() || f.ColIndex < 0 || f.ColIndex >= sch.NumColumns() {
			return nil
		}
		col := sch.Column(f.ColIndex)
		if col.MaxRepetitionLevel() != 0 || col.MaxDefinitionLevel() > 1 {
			return nil
		}
		sp, ok := fastSpecOf(f.Field.Type, col)
		if !ok {
			return nil
		}
		sp.leaf, sp.maxDef = f.ColIndex, col.MaxDefinitionLevel()
		specs[j] = sp
	}
	return specs
}

// fastSpecOf matches an Arrow type with the Parquet column it is read from.
func fastSpecOf(dt arrow.DataType, col *schema.Column) (fastSpec, bool) {
	lt := col.LogicalType()
	pt := col.PhysicalType()
	noLogical := lt == nil || lt.Equals(schema.NoLogicalType{})
	switch dt.ID() {
	case arrow.INT32:
		if it, ok := lt.(schema.IntLogicalType); pt == parquet.Types.Int32 && (noLogical || ok && it.BitWidth() == 32 && it.IsSigned()) {
			return fastSpec{kind: fkInt32}, true
		}
	case arrow.INT64:
		if it, ok := lt.(schema.IntLogicalType); pt == parquet.Types.Int64 && (noLogical || ok && it.BitWidth() == 64 && it.IsSigned()) {
			return fastSpec{kind: fkInt64}, true
		}
	case arrow.FLOAT32:
		if pt == parquet.Types.Float && noLogical {
			return fastSpec{kind: fkFloat32}, true
		}
	case arrow.FLOAT64:
		if pt == parquet.Types.Double && noLogical {
			return fastSpec{kind: fkFloat64}, true
		}
	case arrow.BOOL:
		if pt == parquet.Types.Boolean && noLogical {
			return fastSpec{kind: fkBool}, true
		}
	case arrow.STRING, arrow.BINARY:
		if pt == parquet.Types.ByteArray {
			switch lt.(type) {
			case nil, schema.NoLogicalType, schema.StringLogicalType:
				return fastSpec{kind: fkString}, true
			}
		}
	case arrow.DATE32:
		if _, ok := lt.(schema.DateLogicalType); ok && pt == parquet.Types.Int32 {
			return fastSpec{kind: fkDate32}, true
		}
	case arrow.TIMESTAMP:
		tl, ok := lt.(schema.TimestampLogicalType)
		tt := dt.(*arrow.TimestampType)
		if !ok || pt != parquet.Types.Int64 {
			break
		}
		var unit arrow.TimeUnit
		switch tl.TimeUnit() {
		case schema.TimeUnitMillis:
			unit = arrow.Millisecond
		case schema.TimeUnitMicros:
			unit = arrow.Microsecond
		case schema.TimeUnitNanos:
			unit = arrow.Nanosecond
		default:
			return fastSpec{}, false
		}
		if unit != tt.Unit {
			break // pqarrow converts the unit: leave it to pqarrow
		}
		loc, err := tt.GetZone()
		if err != nil {
			loc = time.UTC // as the getter does
		}
		return fastSpec{kind: fkTimestamp, unit: unit, loc: loc}, true
	case arrow.DECIMAL128:
		dl, ok := lt.(schema.DecimalLogicalType)
		dt := dt.(*arrow.Decimal128Type)
		if ok && pt == parquet.Types.FixedLenByteArray && col.TypeLength() >= 1 && col.TypeLength() <= 16 &&
			dl.Scale() == dt.Scale && dl.Precision() == dt.Precision {
			return fastSpec{kind: fkDecimal, size: col.TypeLength(), scale: dt.Scale}, true
		}
	}
	return fastSpec{}, false
}

// fastChunkOK reports whether a column chunk's encodings are all ones the
// fast path decodes.
func fastChunkOK(cc *metadata.ColumnChunkMetaData) bool {
	if cc.CryptoMetadata() != nil {
		return false
	}
	for _, e := range cc.Encodings() {
		switch e {
		case parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict, parquet.Encodings.RLE:
		default:
			return false
		}
	}
	return true
}

// fastGroup reads one row group on the fast path.
type fastGroup struct {
	cols []*fastCol
	left int64 // rows not read yet
}

// fastReader reads an object's row groups on the fast path. Its column
// readers (page reader, read buffer, decode buffers) are reused from one
// row group to the next, so a row group costs no new buffers.
type fastReader struct {
	pf    *file.Reader
	src   io.ReaderAt
	props *parquet.ReaderProperties
	specs []fastSpec
	cols  []*fastCol // by plan column; nil until first used
	old   bool       // written before PARQUET-816 was fixed: never reuse

	// dictPR reads the dictionary pages of every column (see reset), through
	// dictStream; nil until first used.
	dictPR     file.PageReader
	dictStream parquet.BufferedReader
}

// open returns a fast reader of row group rg, or nil (and no error) when
// the row group does not qualify.
func (r *fastReader) open(rg int) (*fastGroup, error) {
	if r == nil || r.specs == nil {
		return nil, nil
	}
	rgm := r.pf.MetaData().RowGroup(rg)
	ccs := make([]*metadata.ColumnChunkMetaData, len(r.specs))
	for j, sp := range r.specs {
		cc, err := rgm.ColumnChunk(sp.leaf)
		if err != nil || !fastChunkOK(cc) {
			return nil, nil
		}
		ccs[j] = cc
	}
	if r.cols == nil {
		r.cols = make([]*fastCol, len(r.specs))
	}
	var rgr *file.RowGroupReader
	for j, sp := range r.specs {
		c := r.cols[j]
		if r.old {
			// GetColumnPageReader pads the chunk for the writer's bug.
			if rgr == nil {
				rgr = r.pf.RowGroup(rg)
			}
			pr, err := rgr.GetColumnPageReader(sp.leaf)
			if err != nil {
				return nil, err
			}
			if c != nil {
				c.pr.Close()
			}
			c = &fastCol{fastSpec: sp, pr: pr}
			r.cols[j] = c
			c.hasDict, c.dictBad, c.left = false, nil, 0
			continue
		}
		if c == nil {
			c = &fastCol{fastSpec: sp}
			r.cols[j] = c
		}
		c.hasDict, c.dictBad, c.left = false, nil, 0
		if err := c.reset(r, ccs[j]); err != nil {
			return nil, err
		}
	}
	return &fastGroup{cols: r.cols, left: rgm.NumRows()}, nil
}

// reset points c's page reader at column chunk cc, reusing its buffers.
//
// A dictionary page that precedes the data pages (as every current writer
// puts it) is read here, through a page reader that all the columns share
// (r.dictPR): arrow-go's page reader keeps a buffer per page kind at its
// largest size, so a dictionary read through c.pr would keep up to two
// dictionary-sized buffers (compressed and not) per column for the whole
// read, though readDict has copied what it needs. On the bench file
// (1 MiB dictionaries on 5 of 12 columns) that was 8 MiB of live heap; the
// shared reader keeps one pair.
func (c *fastCol) reset(r *fastReader, cc *metadata.ColumnChunkMetaData) error {
	start := cc.DataPageOffset()
	dict := cc.DictionaryPageOffset()
	if cc.HasDictionaryPage() && dict > 0 && start > dict {
		start = dict
	}
	size := cc.TotalCompressedSize()
	if start < 0 || size < 0 {
		return fmt.Errorf("invalid column chunk metadata, offset (%d) and length (%d) should both be positive", start, size)
	}
	if start == dict && cc.DataPageOffset() < start+size {
		if err := c.readDictPage(r, cc, dict, cc.DataPageOffset()-dict); err != nil {
			return err
		}
		start, size = cc.DataPageOffset(), size-(cc.DataPageOffset()-dict)
	}
	return r.pages(&c.pr, &c.stream, cc, start, size)
}

// pages points *pr and its stream *st at the size bytes at off of column
// chunk cc, creating them on first use and growing the stream's buffer
// when needed (no bigger than the chunk, as GetColumnPageReader sizes it):
// the one setup of the data pages' and the dictionary pages' readers.
func (r *fastReader) pages(pr *file.PageReader, st *parquet.BufferedReader, cc *metadata.ColumnChunkMetaData, off, size int64) error {
	if want := min(r.props.BufferSize, size); *st == nil || (*st).BufferSize() < int(want) {
		s, err := r.props.GetStream(r.src, off, want)
		if err != nil {
			return err
		}
		*st = s
	}
	(*st).Reset(io.NewSectionReader(r.src, off, size))
	if *pr == nil {
		// NewPageReader is deprecated in arrow-go v18 (pinned in go.mod) with
		// no public replacement that reads a chunk's pages from a stream of
		// ours; TestReadLiveHeap and the fast-vs-pqarrow tests cover it, and
		// an upgrade that removes it fails to build, not silently.
		//lint:ignore SA1019 no public replacement in arrow-go v18 (see above)
		p, err := file.NewPageReader(*st, cc.NumValues(), cc.Compression(), r.props.Allocator(), nil)
		if err != nil {
			return err
		}
		*pr = p
		return nil
	}
	(*pr).Reset(*st, cc.NumValues(), cc.Compression(), nil)
	return (*pr).Err()
}

// readDictPage reads the dictionary page of column chunk cc, the size bytes
// at off, through r.dictPR.
func (c *fastCol) readDictPage(r *fastReader, cc *metadata.ColumnChunkMetaData, off, size int64) error {
	if err := r.pages(&r.dictPR, &r.dictStream, cc, off, size); err != nil {
		return err
	}
	pr := r.dictPR
	if err := pr.Err(); err != nil {
		return err
	}
	if !pr.Next() {
		if err := pr.Err(); err != nil {
			return err
		}
		return errors.New("parquet: the column chunk's dictionary page is missing")
	}
	p, ok := pr.Page().(*file.DictionaryPage)
	if !ok {
		return errors.New("parquet: the column chunk's dictionary page offset is not a dictionary page")
	}
	return c.dictPage(p)
}

// dictPage reads a dictionary page.
func (c *fastCol) dictPage(p *file.DictionaryPage) error {
	if c.hasDict {
		return errors.New("parquet: column chunk cannot have more than one dictionary")
	}
	if e := parquet.Encoding(p.Encoding()); e != parquet.Encodings.Plain && e != parquet.Encodings.PlainDict {
		return errors.New("parquet: dictionary index must be plain encoding")
	}
	if err := c.readDict(p.Data(), int(p.NumValues())); err != nil {
		return err
	}
	c.hasDict = true
	return nil
}

// close releases the page readers.
func (r *fastReader) close() {
	if r == nil {
		return
	}
	for _, c := range r.cols {
		if c != nil && c.pr != nil { // nil: reset failed before making it
			c.pr.Close()
		}
	}
	if r.dictPR != nil {
		r.dictPR.Close()
		r.dictPR = nil
	}
	r.cols = nil
}

// read decodes the next n rows into slab (len(g.cols) values per row),
// calling bad for values that cannot be represented.
func (g *fastGroup) read(slab []any, n int, bad func(i, j int, verr *valueErr)) (err error) {
	defer func() {
		if r := recover(); r != nil { // corrupt data the checks missed
			err = fmt.Errorf("parquet: corrupt page data: %v", r)
		}
	}()
	for j, c := range g.cols {
		if err := c.read(slab, len(g.cols), j, n, func(i int, verr *valueErr) { bad(i, j, verr) }); err != nil {
			return err
		}
	}
	g.left -= int64(n)
	return nil
}

var errCorrupt = errors.New("parquet: corrupt page data")

// fastCol decodes one column chunk.
type fastCol struct {
	fastSpec
	pr     file.PageReader
	stream parquet.BufferedReader // the read buffer pr reads through after a reset; nil before

	hasDict bool
	dictN   int    // entries in the dictionary
	boxed   bool   // small dictionary: its values are in dict
	dict    []any  // the dictionary's values, boxed
	dictRaw []byte // a large dictionary's page: fixed-size values, or strings with their lengths, PLAIN
	dictStr []span // a large string dictionary's values in dictRaw
	dictBad []bool // dictionary values that are not valid UTF-8
	gather  []byte // PLAIN values gathered from dictRaw for a batch
	spans   []span // a batch's PLAIN string values in data
	posBuf  []int  // slab indices of a run's non-null values

	// the current data page
	left    int // values (nulls included) not read yet
	defs    rle // definition levels; unused when maxDef is 0
	isDict  bool
	idx     rle    // dictionary indices
	data    []byte // PLAIN values not read yet
	boolRLE bool
	bools   rle
	bitPos  int // PLAIN booleans: next bit in data

	defBuf []uint32
	idxBuf []uint32
	boxBuf []any // PLAIN fixed-size values, boxed, before they go to the slab
}

// nextPage moves to the next data page, reading a dictionary page first if
// there is one.
func (c *fastCol) nextPage() error {
	for {
		if !c.pr.Next() {
			if err := c.pr.Err(); err != nil {
				return err
			}
			return errors.New("parquet: column chunk has fewer values than the row group")
		}
		switch p := c.pr.Page().(type) {
		case *file.DictionaryPage:
			if err := c.dictPage(p); err != nil {
				return err
			}
		case *file.DataPageV1:
			data := p.Data()
			if c.maxDef > 0 {
				if p.DefinitionLevelEncoding() != parquet.Encodings.RLE || len(data) < 4 {
					return fmt.Errorf("parquet: unsupported definition level encoding %s", p.DefinitionLevelEncoding())
				}
				n := int(binary.LittleEndian.Uint32(data))
				if n < 0 || n > len(data)-4 {
					return errCorrupt
				}
				c.defs = rle{data: data[4 : 4+n], bw: 1}
				data = data[4+n:]
			}
			return c.startValues(parquet.Encoding(p.Encoding()), data, int(p.NumValues()))
		case *file.DataPageV2:
			data := p.Data()
			rl, dl := int(p.RepetitionLevelByteLen()), int(p.DefinitionLevelByteLen())
			if rl != 0 || dl < 0 || dl > len(data) {
				return errCorrupt
			}
			if c.maxDef > 0 {
				c.defs = rle{data: data[:dl], bw: 1}
			}
			return c.startValues(parquet.Encoding(p.Encoding()), data[dl:], int(p.NumValues()))
		}
	}
}

// startValues sets up decoding of a data page's values.
func (c *fastCol) startValues(enc parquet.Encoding, data []byte, n int) error {
	c.left = n
	c.isDict, c.boolRLE = false, false
	switch {
	case enc == parquet.Encodings.RLEDict || enc == parquet.Encodings.PlainDict:
		if !c.hasDict {
			return errors.New("parquet: dictionary-encoded page without a dictionary")
		}
		if len(data) < 1 || data[0] > 32 {
			return errCorrupt
		}
		c.isDict = true
		c.idx = rle{data: data[1:], bw: int(data[0])}
	case enc == parquet.Encodings.RLE && c.kind == fkBool:
		if len(data) < 4 {
			return errCorrupt
		}
		n := int(binary.LittleEndian.Uint32(data))
		if n < 0 || n > len(data)-4 {
			return errCorrupt
		}
		c.boolRLE = true
		c.bools = rle{data: data[4 : 4+n], bw: 1}
	case enc == parquet.Encodings.Plain:
		c.data, c.bitPos = data, 0
	default:
		return fmt.Errorf("parquet: unsupported encoding %s", enc)
	}
	return nil
}

// smallDict is the most entries of a dictionary whose values are converted
// and boxed once for the row group. Values of larger dictionaries (often
// one per row) are converted per batch, like PLAIN values, so that rows do
// not keep whole dictionaries alive.
const smallDict = 4096

// readDict decodes the n values of a PLAIN dictionary page: boxed in
// c.dict for a small dictionary, else kept as raw bytes (c.dictRaw, with
// c.dictStr locating strings in it). Rows never point into c.dictRaw (a
// large dictionary's values are copied per batch), so it is reused from
// one row group to the next.
func (c *fastCol) readDict(data []byte, n int) error {
	if n < 0 || n > len(data)*8+8 {
		return errCorrupt
	}
	c.dict = c.dict[:cap(c.dict)]
	clear(c.dict) // rows hold copies of these interface values: reusable
	c.boxed = n <= smallDict || c.kind == fkBool
	if c.boxed {
		if cap(c.dict) < n {
			c.dict = make([]any, n)
		}
		c.dict = c.dict[:n]
	}
	c.dictStr, c.dictN = c.dictStr[:0], n
	switch c.kind {
	case fkString:
		if !c.boxed {
			return c.readLargeDict(data, n)
		}
		text := string(data)
		vals := make([]string, n)
		off := 0
		for k := range n {
			if off+4 > len(text) {
				return errCorrupt
			}
			l := int(binary.LittleEndian.Uint32(data[off:]))
			off += 4
			if l < 0 || l > len(text)-off {
				return errCorrupt
			}
			vals[k] = text[off : off+l]
			off += l
			if !utf8.ValidString(vals[k]) {
				if c.dictBad == nil {
					c.dictBad = make([]bool, n)
				}
				c.dictBad[k] = true
				continue
			}
			c.dict[k] = pipeline.BoxString(&vals[k])
		}
		return nil
	case fkBool:
		if (n+7)/8 > len(data) {
			return errCorrupt
		}
		for k := range n {
			c.dict[k] = data[k>>3]>>(k&7)&1 == 1
		}
		return nil
	}
	w := c.width()
	if n*w > len(data) {
		return errCorrupt
	}
	if !c.boxed {
		c.dictRaw = append(c.dictRaw[:0], data[:n*w]...)
		return nil
	}
	c.boxFixed(c.dict, data, n)
	return nil
}

// span locates one string value in a buffer.
type span struct{ off, len uint32 }

// readLargeDict keeps a large string dictionary page: a copy of its bytes
// and where each value is in it.
func (c *fastCol) readLargeDict(data []byte, n int) error {
	if len(data) > math.MaxUint32 {
		return errCorrupt
	}
	c.dictRaw = append(c.dictRaw[:0], data...)
	data = c.dictRaw
	off := 0
	for k := range n {
		if off+4 > len(data) {
			return errCorrupt
		}
		l := int(binary.LittleEndian.Uint32(data[off:]))
		off += 4
		if l < 0 || l > len(data)-off {
			return errCorrupt
		}
		c.dictStr = append(c.dictStr, span{uint32(off), uint32(l)})
		if !utf8.Valid(data[off : off+l]) {
			if c.dictBad == nil {
				c.dictBad = make([]bool, n)
			}
			c.dictBad[k] = true
		}
		off += l
	}
	return nil
}

// boxSpans sets slab[pos[v]] to the string at spans[v] of buf, for the
// values that are valid UTF-8 (bad gets the others), copying them into one
// new string: the rows keep only their own bytes, never a whole page or
// dictionary. With checked, the values are known to be valid.
func boxSpans(slab []any, pos []int, ncols int, buf []byte, spans []span, checked bool, bad func(i int, verr *valueErr)) {
	total := 0
	for _, sp := range spans {
		total += int(sp.len)
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, sp := range spans {
		sb.Write(buf[sp.off : sp.off+sp.len])
	}
	all := sb.String()
	vals := make([]string, len(spans))
	off := 0
	for v, sp := range spans {
		vals[v] = all[off : off+int(sp.len)]
		off += int(sp.len)
		if !checked && !utf8.ValidString(vals[v]) {
			bad(pos[v]/ncols, invalidUTF8())
			continue
		}
		slab[pos[v]] = pipeline.BoxString(&vals[v])
	}
}

// width is the size of one PLAIN value of a fixed-size kind.
func (c *fastCol) width() int {
	switch c.kind {
	case fkInt32, fkFloat32, fkDate32:
		return 4
	case fkDecimal:
		return c.size
	}
	return 8
}

// boxFixed converts and boxes n PLAIN values of a fixed-size kind from data
// into out, in one typed slice.
func (c *fastCol) boxFixed(out []any, data []byte, n int) {
	switch c.kind {
	case fkInt32:
		vals := make([]int64, n)
		for k := range n {
			vals[k] = int64(int32(binary.LittleEndian.Uint32(data[4*k:])))
			out[k] = pipeline.BoxInt64(&vals[k])
		}
	case fkInt64:
		vals := make([]int64, n)
		for k := range n {
			vals[k] = int64(binary.LittleEndian.Uint64(data[8*k:]))
			out[k] = pipeline.BoxInt64(&vals[k])
		}
	case fkFloat32:
		vals := make([]float64, n)
		for k := range n {
			vals[k] = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*k:])))
			out[k] = pipeline.BoxFloat64(&vals[k])
		}
	case fkFloat64:
		vals := make([]float64, n)
		for k := range n {
			vals[k] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*k:]))
			out[k] = pipeline.BoxFloat64(&vals[k])
		}
	case fkDate32:
		vals := make([]time.Time, n)
		for k := range n {
			vals[k] = time.Unix(int64(int32(binary.LittleEndian.Uint32(data[4*k:])))*86400, 0).UTC()
			out[k] = pipeline.BoxTime(&vals[k])
		}
	case fkTimestamp:
		vals := make([]time.Time, n)
		for k := range n {
			vals[k] = arrow.Timestamp(binary.LittleEndian.Uint64(data[8*k:])).ToTime(c.unit).In(c.loc)
			out[k] = pipeline.BoxTime(&vals[k])
		}
	case fkDecimal:
		var buf []byte
		ends := make([]int, n)
		for k := range n {
			buf = appendDecimal128(buf, beDecimal128(data[k*c.size:(k+1)*c.size]), c.scale)
			ends[k] = len(buf)
		}
		all := string(buf)
		vals := make([]string, n)
		start := 0
		for k := range n {
			vals[k] = all[start:ends[k]]
			out[k] = pipeline.BoxString(&vals[k])
			start = ends[k]
		}
	}
}

// beDecimal128 decodes a big-endian two's complement integer of 1 to 16
// bytes.
func beDecimal128(b []byte) decimal128.Num {
	if len(b) <= 8 {
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		sh := uint(64 - 8*len(b))
		return decimal128.FromI64(int64(v<<sh) >> sh)
	}
	var hi, lo uint64
	nhi := len(b) - 8
	for _, x := range b[:nhi] {
		hi = hi<<8 | uint64(x)
	}
	sh := uint(64 - 8*nhi)
	hi = uint64(int64(hi<<sh) >> sh)
	lo = binary.BigEndian.Uint64(b[nhi:])
	return decimal128.New(int64(hi), lo)
}

// read sets column j of n rows of slab.
func (c *fastCol) read(slab []any, ncols, j, n int, bad func(i int, verr *valueErr)) error {
	row := 0
	for row < n {
		if c.left == 0 {
			if err := c.nextPage(); err != nil {
				return err
			}
			continue
		}
		k := min(n-row, c.left)
		defs := c.defBuf[:0]
		nn := k
		if c.maxDef > 0 {
			if cap(c.defBuf) < k {
				c.defBuf = make([]uint32, k)
			}
			defs = c.defBuf[:k]
			if err := c.defs.read(defs); err != nil {
				return err
			}
			nn = 0
			for _, d := range defs {
				if d > 1 {
					return errCorrupt
				}
				nn += int(d)
			}
		}
		if err := c.values(slab, ncols, j, row, k, nn, defs, bad); err != nil {
			return err
		}
		c.left -= k
		row += k
	}
	return nil
}

// values sets column j of rows row to row+k-1, nn of them not null (defs
// says which; all when defs is empty).
func (c *fastCol) values(slab []any, ncols, j, row, k, nn int, defs []uint32, bad func(i int, verr *valueErr)) error {
	if nn == 0 {
		return nil
	}
	// pos[v] is the slab index of the v-th non-null value; its row is
	// pos[v]/ncols.
	if cap(c.posBuf) < nn {
		c.posBuf = make([]int, nn)
	}
	pos := c.posBuf[:nn]
	if len(defs) == 0 {
		for v := range pos {
			pos[v] = (row+v)*ncols + j
		}
	} else {
		v := 0
		for i, d := range defs {
			if d != 0 {
				pos[v] = (row+i)*ncols + j
				v++
			}
		}
	}
	switch {
	case c.isDict:
		if cap(c.idxBuf) < nn {
			c.idxBuf = make([]uint32, nn)
		}
		idx := c.idxBuf[:nn]
		if err := c.idx.read(idx); err != nil {
			return err
		}
		nd := uint32(c.dictN)
		for _, x := range idx {
			if x >= nd {
				return fmt.Errorf("parquet: dictionary index %d is out of range", x)
			}
		}
		switch {
		case c.boxed:
			dict := c.dict
			if c.dictBad == nil {
				for v, p := range pos {
					slab[p] = dict[idx[v]]
				}
				break
			}
			for v, p := range pos {
				if x := idx[v]; c.dictBad[x] {
					bad(p/ncols, invalidUTF8())
				} else {
					slab[p] = dict[x]
				}
			}
		case c.kind == fkString:
			spans, ok := c.spans[:0], pos[:0]
			for v, p := range pos {
				x := idx[v]
				if c.dictBad != nil && c.dictBad[x] {
					bad(p/ncols, invalidUTF8())
					continue
				}
				spans = append(spans, c.dictStr[x])
				ok = append(ok, p) // v' <= v: overwrites only pos entries already read
			}
			c.spans = spans
			boxSpans(slab, ok, ncols, c.dictRaw, spans, true, bad)
		default:
			w := c.width()
			if cap(c.gather) < nn*w {
				c.gather = make([]byte, nn*w)
			}
			g := c.gather[:nn*w]
			for v, x := range idx {
				copy(g[v*w:(v+1)*w], c.dictRaw[int(x)*w:])
			}
			if cap(c.boxBuf) < nn {
				c.boxBuf = make([]any, nn)
			}
			boxed := c.boxBuf[:nn]
			c.boxFixed(boxed, g, nn)
			for v, p := range pos {
				slab[p] = boxed[v]
			}
		}
	case c.kind == fkBool:
		if c.boolRLE {
			if cap(c.idxBuf) < nn {
				c.idxBuf = make([]uint32, nn)
			}
			vals := c.idxBuf[:nn]
			if err := c.bools.read(vals); err != nil {
				return err
			}
			for v, p := range pos {
				slab[p] = vals[v] != 0
			}
			return nil
		}
		if (c.bitPos+nn+7)/8 > len(c.data) {
			return errCorrupt
		}
		data, at := c.data, c.bitPos
		for v, p := range pos {
			b := at + v
			slab[p] = data[b>>3]>>(b&7)&1 == 1
		}
		c.bitPos += nn
	case c.kind == fkString:
		spans := c.spans[:0]
		data, off := c.data, 0
		for range nn {
			if off+4 > len(data) {
				return errCorrupt
			}
			l := int(binary.LittleEndian.Uint32(data[off:]))
			off += 4
			if l < 0 || l > len(data)-off {
				return errCorrupt
			}
			spans = append(spans, span{uint32(off), uint32(l)})
			off += l
		}
		c.spans = spans
		boxSpans(slab, pos, ncols, data, spans, false, bad)
		c.data = data[off:]
	default:
		w := c.width()
		if nn*w > len(c.data) {
			return errCorrupt
		}
		if cap(c.boxBuf) < nn {
			c.boxBuf = make([]any, nn)
		}
		boxed := c.boxBuf[:nn]
		c.boxFixed(boxed, c.data, nn)
		c.data = c.data[nn*w:]
		for v, p := range pos {
			slab[p] = boxed[v]
		}
	}
	return nil
}

// rle decodes the RLE / bit-packed hybrid encoding of values of bw bits.
type rle struct {
	data []byte
	bw   int
	rep  int    // values left in the current RLE run
	val  uint32 // its value
	lit  int    // values left in the current bit-packed run
	bits []byte // the run's packed bits
	bit  int    // next bit in bits
}

// read fills dst or fails.
func (d *rle) read(dst []uint32) error {
	mask := uint64(1)<<uint(d.bw) - 1
	for len(dst) > 0 {
		switch {
		case d.rep > 0:
			m := min(d.rep, len(dst))
			v := d.val
			for i := range m {
				dst[i] = v
			}
			dst = dst[m:]
			d.rep -= m
		case d.lit > 0:
			m := min(d.lit, len(dst))
			bw := d.bw
			bitsb, bit := d.bits, d.bit
			for i := range m {
				by := bit >> 3
				var w uint64
				if by+8 <= len(bitsb) {
					w = binary.LittleEndian.Uint64(bitsb[by:])
				} else {
					for s := 0; by+s < len(bitsb); s++ {
						w |= uint64(bitsb[by+s]) << (8 * s)
					}
				}
				dst[i] = uint32(w >> uint(bit&7) & mask)
				bit += bw
			}
			d.bit = bit
			dst = dst[m:]
			d.lit -= m
		default:
			h, n := binary.Uvarint(d.data)
			if n <= 0 || h > math.MaxInt32 {
				return errCorrupt
			}
			d.data = d.data[n:]
			if h&1 == 0 {
				nb := (d.bw + 7) / 8
				if nb > len(d.data) {
					return errCorrupt
				}
				var v uint32
				for i := range nb {
					v |= uint32(d.data[i]) << (8 * i)
				}
				d.data = d.data[nb:]
				d.rep, d.val = int(h>>1), v&uint32(mask)
				continue
			}
			groups := int(h >> 1)
			nb := groups * d.bw
			if nb > len(d.data) {
				nb = len(d.data) // a short last run: as many values as there are bits
			}
			d.bits, d.bit = d.data[:nb], 0
			d.data = d.data[nb:]
			d.lit = groups * 8
			if d.bw > 0 {
				d.lit = min(d.lit, nb*8/d.bw)
			}
			if d.lit == 0 {
				return errCorrupt
			}
		}
	}
	return nil
}
