package parquetsource

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
)

// This file writes Parquet files with page checksums for the tests, in
// this package (checksum_internal_test.go) and outside it
// (checksum_test.go).

// CRCPage is where ChecksumFile put one data page.
type CRCPage struct {
	RowGroup int
	Column   string
	Body     int // offset of the page body in the file
}

// ChecksumFile writes a Parquet file as parquet-java and pyarrow do with
// page checksums on (arrow-go cannot write them): required int64 columns a
// and b, rgs row groups of n rows each, each column chunk in pages PLAIN
// uncompressed data pages whose headers hold the CRC-32 of their bodies.
// Row r of row group g has a = 10*g + r and b = 1000 + 10*g + r.
func ChecksumFile(t testing.TB, rgs, n, pages int) ([]byte, []CRCPage) {
	t.Helper()
	ctx := context.Background()
	out := []byte("PAR1")
	var where []CRCPage
	type chunk struct{ start, size int64 }
	chunks := make([][]chunk, rgs)
	cols := []string{"a", "b"}
	for g := range rgs {
		for c, col := range cols {
			start := int64(len(out))
			for k := range pages { // rows [lo, hi) in page k
				lo, hi := k*n/pages, (k+1)*n/pages
				body := make([]byte, 8*(hi-lo))
				for r := lo; r < hi; r++ {
					binary.LittleEndian.PutUint64(body[8*(r-lo):], uint64(1000*c+10*g+r))
				}
				hdr := encodeThrift(t, func(p *thrift.TCompactProtocol) {
					i32(p, 1, 0) // type: DATA_PAGE
					i32(p, 2, int32(len(body)))
					i32(p, 3, int32(len(body)))
					i32(p, 4, int32(crc32.ChecksumIEEE(body)))
					structField(p, 5, func() { // data_page_header
						i32(p, 1, int32(hi-lo)) // num_values
						i32(p, 2, 0)            // encoding: PLAIN
						i32(p, 3, 3)            // definition_level_encoding: RLE
						i32(p, 4, 3)            // repetition_level_encoding: RLE
					})
				})
				where = append(where, CRCPage{RowGroup: g, Column: col, Body: len(out) + len(hdr)})
				out = append(append(out, hdr...), body...)
			}
			chunks[g] = append(chunks[g], chunk{start, int64(len(out)) - start})
		}
	}
	footer := encodeThrift(t, func(p *thrift.TCompactProtocol) {
		i32(p, 1, 1)                                              // version
		listField(p, 2, thrift.STRUCT, 1+len(cols), func(i int) { // schema
			if i == 0 {
				str(p, 4, "schema")
				i32(p, 5, int32(len(cols)))
				return
			}
			i32(p, 1, 2) // type: INT64
			i32(p, 3, 0) // repetition_type: REQUIRED
			str(p, 4, cols[i-1])
		})
		i64(p, 3, int64(rgs*n))
		listField(p, 4, thrift.STRUCT, rgs, func(g int) { // row_groups
			listField(p, 1, thrift.STRUCT, len(cols), func(c int) { // columns
				ch := chunks[g][c]
				i64(p, 2, ch.start)        // file_offset
				structField(p, 3, func() { // meta_data
					i32(p, 1, 2) // type: INT64
					p.WriteFieldBegin(ctx, "", thrift.LIST, 2)
					p.WriteListBegin(ctx, thrift.I32, 1)
					p.WriteI32(ctx, 0) // encodings: PLAIN
					p.WriteListEnd(ctx)
					p.WriteFieldEnd(ctx)
					p.WriteFieldBegin(ctx, "", thrift.LIST, 3)
					p.WriteListBegin(ctx, thrift.STRING, 1)
					p.WriteString(ctx, cols[c]) // path_in_schema
					p.WriteListEnd(ctx)
					p.WriteFieldEnd(ctx)
					i32(p, 4, 0) // codec: UNCOMPRESSED
					i64(p, 5, int64(n))
					i64(p, 6, ch.size)
					i64(p, 7, ch.size)
					i64(p, 9, ch.start) // data_page_offset
				})
			})
			i64(p, 2, chunks[g][0].size+chunks[g][1].size)
			i64(p, 3, int64(n))
		})
		str(p, 6, "parquet-mr version 1.13.1 (build test)")
	})
	out = append(out, footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, "PAR1"...), where
}

// encodeThrift returns the Thrift compact encoding of the struct whose
// fields fields writes.
func encodeThrift(t testing.TB, fields func(p *thrift.TCompactProtocol)) []byte {
	t.Helper()
	buf := thrift.NewTMemoryBuffer()
	p := thrift.NewTCompactProtocolConf(buf, &thrift.TConfiguration{})
	ctx := context.Background()
	p.WriteStructBegin(ctx, "")
	fields(p)
	p.WriteFieldStop(ctx)
	p.WriteStructEnd(ctx)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func i32(p *thrift.TCompactProtocol, id int16, v int32) {
	ctx := context.Background()
	p.WriteFieldBegin(ctx, "", thrift.I32, id)
	p.WriteI32(ctx, v)
	p.WriteFieldEnd(ctx)
}

func i64(p *thrift.TCompactProtocol, id int16, v int64) {
	ctx := context.Background()
	p.WriteFieldBegin(ctx, "", thrift.I64, id)
	p.WriteI64(ctx, v)
	p.WriteFieldEnd(ctx)
}

func str(p *thrift.TCompactProtocol, id int16, v string) {
	ctx := context.Background()
	p.WriteFieldBegin(ctx, "", thrift.STRING, id)
	p.WriteString(ctx, v)
	p.WriteFieldEnd(ctx)
}

func structField(p *thrift.TCompactProtocol, id int16, fields func()) {
	ctx := context.Background()
	p.WriteFieldBegin(ctx, "", thrift.STRUCT, id)
	p.WriteStructBegin(ctx, "")
	fields()
	p.WriteFieldStop(ctx)
	p.WriteStructEnd(ctx)
	p.WriteFieldEnd(ctx)
}

func listField(p *thrift.TCompactProtocol, id int16, typ thrift.TType, n int, elem func(i int)) {
	ctx := context.Background()
	p.WriteFieldBegin(ctx, "", thrift.LIST, id)
	p.WriteListBegin(ctx, typ, n)
	for i := range n {
		p.WriteStructBegin(ctx, "")
		elem(i)
		p.WriteFieldStop(ctx)
		p.WriteStructEnd(ctx)
	}
	p.WriteListEnd(ctx)
	p.WriteFieldEnd(ctx)
}
