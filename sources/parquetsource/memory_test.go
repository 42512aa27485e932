package parquetsource_test

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// TestReadLiveHeap: what the reader itself keeps alive while reading stays
// small: one copy of each large dictionary, the current page of each
// column, no per-page string copies and no dictionary-sized buffers left in
// arrow-go's page readers. The file has two 64Ki-row groups of the 14 bench
// columns, 7 of them unique per row (up to 1 MiB dictionaries, then PLAIN
// pages). The live heap is sampled after a collection every 8 batches,
// with no batch held.
func TestReadLiveHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads a 131,072-row file")
	}
	path := filepath.Join(t.TempDir(), "live.parquet")
	writeBenchFileGroups(t, path, 128<<10, 64<<10)
	ctx := context.Background()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var peak uint64
	rows := 0
	for n := 1; ; n++ {
		b, err := src.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows += b.Len()
		if n%8 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc-min(base, ms.HeapAlloc))
		}
	}
	if rows != 128<<10 {
		t.Fatalf("read %d rows, want %d", rows, 128<<10)
	}
	const limit = 14 << 20 // 20.0 MiB before rows stopped pinning pages and dictionaries, 9.7-11.4 after
	t.Logf("live heap while reading: at most %.1f MiB above the start", float64(peak)/(1<<20))
	if peak > limit {
		t.Errorf("live heap while reading reached %.1f MiB, want at most %.1f MiB", float64(peak)/(1<<20), float64(limit)/(1<<20))
	}
}
