package salesforcesink

import (
	"context"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

// BenchmarkPlanWrite encodes 10,000-row batches of Account rows (strings,
// floats, ints, dates, timestamps, booleans, nulls, quoted cells) into job
// files with a PlanSink.
//
//	go test -run '^$' -bench PlanWrite -benchmem ./sinks/salesforcesink/
func BenchmarkPlanWrite(b *testing.B) {
	const n = 10000
	rows := genAccounts(n, 0, "P")
	batch := pipeline.NewBatch(accountSchema, n)
	for _, r := range rows {
		batch.Append(r, pipeline.Origin{})
	}
	opts := NewOptions()
	opts.Object = "Account"
	opts.InstanceURL = EmulatorURL
	ctx := context.Background()
	p, err := OpenPlan(ctx, nil, opts, accountSchema, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
