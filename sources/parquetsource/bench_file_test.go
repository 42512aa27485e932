package parquetsource_test

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// BenchmarkReadFile reads the Parquet file named by $PARQUETSOURCE_BENCH_FILE
// (e.g. the accounts.parquet that `bulkflow bench --data dir` generates) end
// to end through the source, with the default batch size. It is skipped when
// the variable is not set.
//
//	PARQUETSOURCE_BENCH_FILE=/tmp/bdata1m/accounts.parquet go test -run '^$' -bench BenchmarkReadFile ./sources/parquetsource/
func BenchmarkReadFile(b *testing.B) {
	path := os.Getenv("PARQUETSOURCE_BENCH_FILE")
	if path == "" {
		b.Skip("PARQUETSOURCE_BENCH_FILE is not set")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	ctx := context.Background()
	var rows int
	for b.Loop() {
		src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: path})
		if err != nil {
			b.Fatal(err)
		}
		rows = 0
		for {
			batch, err := src.Read(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows += batch.Len()
		}
		src.Close()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
