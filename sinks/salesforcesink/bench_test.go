package salesforcesink

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sinks/filesink"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// BenchmarkEndToEnd measures rows/s through the engine for the same rows
// written (a) to Salesforce (the in-process emulator, insert, 10,000-row
// jobs, 4 in flight) and (b) to a CSV file by sinks/filesink.
//
//	go test -run '^$' -bench EndToEnd -benchtime 3x ./sinks/salesforcesink/
func BenchmarkEndToEnd(b *testing.B) {
	const n = 100000
	rows := genAccounts(n, 0, "B")
	b.Run("salesforce", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			srv := salesforcetest.NewServer(nil)
			start := time.Now()
			r := runPipeline(b, context.Background(), accountSchema, rows, "object: Account\n"+emulatorYAML(srv))
			total += time.Since(start)
			if r.err != nil || r.rep.Counts.Loaded != n {
				b.Fatalf("%v %+v", r.err, r.rep.Counts)
			}
			srv.Close()
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "rows/s")
	})
	b.Run("csv_file", func(b *testing.B) {
		dir := b.TempDir()
		var total time.Duration
		for i := 0; i < b.N; i++ {
			var reg pipeline.Registry
			c := pipelinetest.NewCollector()
			reg.RegisterSource("gen", pipeline.Spec{Summary: "gen"}, func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) {
				return &sliceSource{schema: accountSchema, rows: rows, batch: 1000}, nil
			})
			reg.RegisterSink("csv", pipeline.Spec{Summary: "csv"}, func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
				loc, err := blobio.Parse("", filepath.Join(dir, "out.csv"))
				if err != nil {
					return nil, err
				}
				return filesink.OpenCSV(ctx, loc, in, nil)
			})
			g, err := config.Load("b.yaml", []byte("name: b\nstages:\n  - {name: read, source: {type: gen}}\n  - {name: write, inputs: [read], sink: {type: csv}}\n"),
				&reg, func(string) (string, bool) { return "", false })
			if err != nil {
				b.Fatal(err)
			}
			plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{RunID: "b"})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener()})
			total += time.Since(start)
			if err != nil || rep.Counts.Loaded != n {
				b.Fatalf("%v %+v", err, rep.Counts)
			}
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "rows/s")
	})
}
