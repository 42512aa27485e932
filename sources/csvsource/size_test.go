package csvsource_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// TestInputSize reads two CSV files: InputSize gives their bytes from the
// listing, grows as they are read (never back), and ends at the total.
func TestInputSize(t *testing.T) {
	dir := t.TempDir()
	var total int64
	for _, name := range []string{"a.csv", "b.csv"} {
		data := "id,name\n" + strings.Repeat("1,a row of some length to fill a few buffers\n", 20000)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(len(data))
	}
	ctx := context.Background()
	src, err := csvsource.Open(ctx, &pipeline.Env{BaseDir: dir}, &csvsource.Options{URL: "*.csv"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	// The schema's read fills the reader's buffer from the first file:
	// what was read from storage counts, not more.
	if got := src.InputSize(); got.Total != total || got.Unit != "bytes" || got.Done >= total {
		t.Fatalf("before reading: %+v, want part of %d bytes", got, total)
	}
	var last int64
	rising := 0
	for {
		_, err := src.Read(ctx)
		got := src.InputSize()
		if got.Done < last {
			t.Fatalf("done went back from %d to %d", last, got.Done)
		}
		if got.Done > last {
			rising++
		}
		last = got.Done
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if last != total || rising < 2 {
		t.Errorf("at the end %d of %d bytes, rose %d times; want all, in steps", last, total, rising)
	}
}
