package parquetsource

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestCheckedReaderAt: page checksums are checked however the reads of a
// chunk are cut (page headers and bodies split across reads), the read
// that completes a corrupt page fails, a chunk read out of sequence is no
// longer checked until it is read again from its start, and bytes that are
// not a page header make the check give up quietly (arrow-go reports them).
func TestCheckedReaderAt(t *testing.T) {
	good, pages := ChecksumFile(t, 2, 300, 3)
	pf, err := file.NewParquetReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	md := pf.MetaData()
	cc, err := md.RowGroup(1).ColumnChunk(1) // column b of row group 1
	if err != nil {
		t.Fatal(err)
	}
	start, size := chunkRange(cc)
	corrupt := bytes.Clone(good)
	bad := pages[len(pages)-2] // the second of b's three pages in row group 1
	corrupt[bad.Body+5] ^= 1
	garbled := bytes.Clone(good)
	copy(garbled[start:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})

	tests := []struct {
		name    string
		data    []byte
		piece   int64 // bytes per read
		skip    int64 // bytes not read after the first read (out of sequence); 0: none
		wantErr int64 // offset of the read that must fail; -1: none
	}{
		{name: "intact whole", data: good, piece: size, wantErr: -1},
		{name: "intact byte by byte", data: good, piece: 1, wantErr: -1},
		{name: "intact in 7s", data: good, piece: 7, wantErr: -1},
		{name: "corrupt whole", data: corrupt, piece: size, wantErr: start},
		{name: "corrupt byte by byte", data: corrupt, piece: 1, wantErr: int64(bad.Body) + 800 - 1},
		{name: "corrupt in 64s", data: corrupt, piece: 64, wantErr: start + (int64(bad.Body)+800-1-start)/64*64},
		{name: "corrupt out of sequence", data: corrupt, piece: 16, skip: 16, wantErr: -1},
		{name: "garbled header", data: garbled, piece: 5, wantErr: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &checkedReaderAt{ra: bytes.NewReader(tc.data), size: int64(len(tc.data))}
			c.watch(md)
			failed := int64(-1)
			for off := start; off < start+size; off += tc.piece {
				if tc.skip > 0 && off == start+tc.piece {
					off += tc.skip
				}
				p := make([]byte, min(tc.piece, start+size-off))
				n, err := c.ReadAt(p, off)
				if err != nil {
					if failed < 0 {
						failed = off
					}
					if n != 0 || !strings.Contains(err.Error(), `column "b", row group 1`) || !strings.Contains(err.Error(), "fails its checksum") {
						t.Errorf("ReadAt(%d) = %d, %v", off, n, err)
					}
					break
				}
			}
			if failed != tc.wantErr {
				t.Errorf("the read at %d failed, want %d", failed, tc.wantErr)
			}
			if tc.skip > 0 { // read again from the start: checked again
				if _, err := c.ReadAt(make([]byte, size), start); err == nil {
					t.Error("a read of the whole chunk from its start passed")
				}
			}
		})
	}
}
