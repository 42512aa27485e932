package parquetsink_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/filesink"
)

// BenchmarkSinks writes the same 20,000 rows of every type (random values
// with edge values and nulls, as the property test) through the CSV sink
// and the Parquet sink with each codec, to a local file; it reports rows/s
// and the file's bytes. Run: go test -run '^$' -bench Sinks -benchtime 10x
// ./sinks/parquetsink/
func BenchmarkSinks(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	rows := make([]pipeline.Row, 20000)
	for i := range rows {
		rows[i] = randomRow(r, int64(i))
	}
	batches := make([]*pipeline.Batch, 0, len(rows)/1000)
	for i := 0; i < len(rows); i += 1000 {
		bt := pipeline.NewBatch(all, 1000)
		for j, row := range rows[i : i+1000] {
			bt.Append(row, pipeline.Origin{Object: "bench", Row: int64(i + j + 1)})
		}
		batches = append(batches, bt)
	}
	cases := []struct{ name, sink, compression string }{
		{"csv", "csv", ""},
		{"parquet-zstd", "parquet", "zstd"},
		{"parquet-snappy", "parquet", "snappy"},
		{"parquet-none", "parquet", "none"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			env := &pipeline.Env{BaseDir: dir}
			ctx := context.Background()
			var size int64
			for b.Loop() {
				var opts any = &filesink.Options{URL: "out.csv"}
				if c.sink == "parquet" {
					o := allOptions("out.parquet")
					o.Compression = c.compression
					opts = o
				}
				s, err := pipeline.DefaultRegistry().OpenSink(ctx, env, c.sink, opts, all)
				if err != nil {
					b.Fatal(err)
				}
				for _, bt := range batches {
					if err := s.Write(ctx, bt); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Close(ctx); err != nil {
					b.Fatal(err)
				}
				fi, err := os.Stat(filepath.Join(dir, "out."+c.sink))
				if err != nil {
					b.Fatal(err)
				}
				size = fi.Size()
			}
			b.ReportMetric(float64(len(rows))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size), "file-bytes")
		})
	}
}
