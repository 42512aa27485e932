package parquetsource_test

import (
	"os"
	"testing"
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
	benchReadFile(b, path, -1)
}
