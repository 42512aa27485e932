package synclog

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkWrite measures Write throughput, including the row-group flushes
// and the final Close, to an in-memory bucket and a local directory.
func BenchmarkWrite(b *testing.B) {
	recs := make([]Record, 4096)
	for i := range recs {
		recs[i] = rec(i)
	}
	for _, target := range []string{"mem", "dir"} {
		b.Run(target, func(b *testing.B) {
			prefix := "mem://synclog-bench/"
			if target == "dir" {
				prefix = b.TempDir()
			}
			b.ReportAllocs()
			w, err := Create(context.Background(), "", prefix, "bench", fmt.Sprintf("run-%d", b.N), started)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := w.Write(recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil { // the last row group and footer count too
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
