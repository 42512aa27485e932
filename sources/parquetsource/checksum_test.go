package parquetsource_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// TestPageChecksums: page CRCs are checked on both read paths. An intact
// file reads every value; a flipped byte in a data page fails the object
// with an error naming it, the column and the row group, and no row of
// that row group (nor any wrong value) is ever returned.
func TestPageChecksums(t *testing.T) {
	ctx := context.Background()
	const rgs, n = 3, 50
	good, pages := parquetsource.ChecksumFile(t, rgs, n, 1)
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
					data[pages[tc.flip].Body+8*7+2] ^= 0x40 // row 7's value, a different valid int64
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
				if bad := pages[tc.flip].RowGroup; len(rows) > bad*n {
					t.Errorf("read %d rows, want at most the %d rows of the row groups before the corrupt one", len(rows), bad*n)
				}
			})
		}
	}
}
