package parquetsource_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// crcPage is where checksumFile put one data page.
type crcPage struct {
	rg   int
	col  string
	body int // offset of the page body in the file
}

// checksumFile writes a Parquet file as parquet-java and pyarrow do with
// page checksums on (arrow-go cannot write them): required int64 columns a
// and b, rows row groups of n rows each, one PLAIN uncompressed data page
// per column chunk whose header holds the CRC-32 of its body. Row r of row
// group g has a = 10*g + r and b = 1000 + 10*g + r.
func checksumFile(t *testing.T, rgs, n int) ([]byte, []crcPage) {
	t.Helper()
	ctx := context.Background()
	out := []byte("PAR1")
	var pages []crcPage
	type chunk struct{ start, size int64 }
	chunks := make([][]chunk, rgs)
	cols := []string{"a", "b"}
	for g := range rgs {
		for c, col := range cols {
			body := make([]byte, 8*n)
			for r := range n {
				binary.LittleEndian.PutUint64(body[8*r:], uint64(1000*c+10*g+r))
			}
			hdr := encodeThrift(t, func(p *thrift.TCompactProtocol) {
				i32(p, 1, 0) // type: DATA_PAGE
				i32(p, 2, int32(len(body)))
				i32(p, 3, int32(len(body)))
				i32(p, 4, int32(crc32.ChecksumIEEE(body)))
				structField(p, 5, func() { // data_page_header
					i32(p, 1, int32(n)) // num_values
					i32(p, 2, 0)        // encoding: PLAIN
					i32(p, 3, 3)        // definition_level_encoding: RLE
					i32(p, 4, 3)        // repetition_level_encoding: RLE
				})
			})
			start := int64(len(out))
			out = append(append(out, hdr...), body...)
			pages = append(pages, crcPage{rg: g, col: col, body: int(start) + len(hdr)})
			chunks[g] = append(chunks[g], chunk{start, int64(len(hdr) + len(body))})
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
	return append(out, "PAR1"...), pages
}

// encodeThrift returns the Thrift compact encoding of the struct whose
// fields fields writes.
func encodeThrift(t *testing.T, fields func(p *thrift.TCompactProtocol)) []byte {
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

// TestPageChecksums: page CRCs are checked on both read paths. An intact
// file reads every value; a flipped byte in a data page fails the object
// with an error naming it, the column and the row group, and no row of
// that row group (nor any wrong value) is ever returned.
func TestPageChecksums(t *testing.T) {
	ctx := context.Background()
	const rgs, n = 3, 50
	good, pages := checksumFile(t, rgs, n)
	tests := []struct {
		name    string
		flip    int // index in pages of the page to corrupt; -1: none
		wantErr []string
	}{
		{name: "intact", flip: -1},
		{name: "first page", flip: 0, wantErr: []string{`column "a", row group 0`, "fails its checksum", "copy or export it again"}},
		{name: "b in row group 1", flip: 3, wantErr: []string{`column "b", row group 1`, "fails its checksum"}},
		{name: "last page", flip: len(pages) - 1, wantErr: []string{`column "b", row group 2`, "fails its checksum"}},
	}
	for _, fast := range []bool{true, false} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				defer parquetsource.SetFastPath(parquetsource.SetFastPath(fast))
				data := append([]byte(nil), good...)
				if tc.flip >= 0 {
					data[pages[tc.flip].body+8*7+2] ^= 0x40 // row 7's value, a different valid int64
				}
				url := fmt.Sprintf("mem://parquet-crc-%d/x.parquet", memBuckets.Add(1))
				write(ctx, t, url, data)
				src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: url, BatchSize: 20})
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				var rows []pipeline.Row
				var rerr error
				for {
					b, err := src.Read(ctx)
					if err == io.EOF {
						break
					}
					if err != nil {
						rerr = err
						break
					}
					for i := range b.Len() {
						rows = append(rows, b.Row(i))
					}
				}
				for i, row := range rows {
					g, r := int64(i/n), int64(i%n)
					if row[0] != 10*g+r || row[1] != 1000+10*g+r {
						t.Fatalf("row %d = %v, want [%d %d]", i, row, 10*g+r, 1000+10*g+r)
					}
				}
				if fast && parquetsource.FastRowGroups(src) == 0 {
					t.Error("the fast path read no row group")
				}
				if len(tc.wantErr) == 0 {
					if rerr != nil || len(rows) != rgs*n {
						t.Fatalf("read %d rows, err %v; want %d rows", len(rows), rerr, rgs*n)
					}
					return
				}
				if rerr == nil {
					t.Fatalf("read %d rows and no error, want the corrupt page refused", len(rows))
				}
				t.Logf("error: %v", rerr)
				for _, w := range append(tc.wantErr, url) {
					if !strings.Contains(rerr.Error(), w) {
						t.Errorf("error %q does not contain %q", rerr, w)
					}
				}
				if bad := pages[tc.flip].rg; len(rows) > bad*n {
					t.Errorf("read %d rows, want at most the %d rows of the row groups before the corrupt one", len(rows), bad*n)
				}
			})
		}
	}
}
