package parquetsource_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// TestInputSize reads two Parquet files: InputSize gives their rows from
// the footers once the schema is loaded (nothing read yet), counts the
// rows read, and ends at the total.
func TestInputSize(t *testing.T) {
	dir := t.TempDir()
	writeBenchFileGroups(t, filepath.Join(dir, "part-0.parquet"), 3000, 1000)
	writeBenchFileGroups(t, filepath.Join(dir, "part-1.parquet"), 2000, 1000)
	ctx := context.Background()
	src, err := parquetsource.Open(ctx, &pipeline.Env{BaseDir: dir}, &parquetsource.Options{URL: "part-*.parquet"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	if got := src.InputSize(); got != (pipeline.InputSize{Done: 0, Total: 5000, Unit: "rows"}) {
		t.Fatalf("before reading: %+v, want 0 of 5000 rows", got)
	}
	var read int64
	for {
		b, err := src.Read(ctx)
		if b != nil {
			read += int64(b.Settled())
			if got := src.InputSize(); got.Done != read || got.Total != 5000 {
				t.Fatalf("after %d rows: %+v", read, got)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := src.InputSize(); got.Done != 5000 || got.Fraction() != 1 {
		t.Errorf("at the end: %+v, want 5000 of 5000", got)
	}
}
