package salesforcesink

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sinks/filesink"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
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

// BenchmarkMatcherLeadJob reads the results of one of `bulkflow bench`'s
// run-csv jobs (10,000 Lead rows of 15 fields, every 22nd rejected): the
// successful results, then the failed ones, both in upload order and
// quoted as the emulator writes them, through a fresh matcher, as collect
// does. ns/op is per job.
//
//	go test -run '^$' -bench MatcherLeadJob -benchmem ./sinks/salesforcesink/
func BenchmarkMatcherLeadJob(b *testing.B) {
	const n = 10000
	e := newEncoder(leadSchema, salesforce.DelimiterComma, salesforce.LineEndingLF)
	cells := make([][]string, n)
	for i, r := range leadRows(n) {
		c, err := e.cells(r, nil)
		if err != nil {
			b.Fatal(err)
		}
		cells[i] = c
	}
	var ok, bad []int
	for i := range n {
		if i%22 == 10 {
			bad = append(bad, i)
		} else {
			ok = append(ok, i)
		}
	}
	succeeded := echoResults(leadSchema.Names(), cells, ok, false)
	failed := echoResults(leadSchema.Names(), cells, bad, true)
	plain := make([]bool, n)
	for i := range cells {
		plain[i] = !bytes.Contains(e.record(nil, cells[i]), []byte{'"'})
	}
	// split: without the rows' plain flags every result is split into
	// fields and then compared (as before ReadEcho); echo: as Write
	// spools them, with the flags.
	for _, mode := range []string{"split", "echo"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(int64(len(succeeded) + len(failed)))
			b.ReportAllocs()
			for b.Loop() {
				s, st, c := newMatchState(cells, false)
				s.schema = leadSchema
				if mode == "echo" {
					st.plain = plain
				}
				m := newMatcher(s, st, c)
				matched := 0
				each := func(i int, r *salesforce.ResultRow) {
					if i >= 0 {
						matched++
					}
				}
				if err := m.read(bytes.NewReader(succeeded), each); err != nil {
					b.Fatal(err)
				}
				if err := m.read(bytes.NewReader(failed), each); err != nil {
					b.Fatal(err)
				}
				if matched != n || m.unmatched != 0 || mode == "echo" && m.echoed < n/2 {
					b.Fatalf("matched %d of %d, %d unmatched, %d by ReadEcho", matched, n, m.unmatched, m.echoed)
				}
			}
		})
	}
}

// echoResults returns a result CSV echoing the cells of the rows in order,
// every value quoted as the emulator and Salesforce write them: a
// successfulResults file, or a failedResults one when failed is set.
func echoResults(names []string, cells [][]string, order []int, failed bool) []byte {
	var buf bytes.Buffer
	if failed {
		buf.WriteString(`"sf__Id","sf__Error"`)
	} else {
		buf.WriteString(`"sf__Id","sf__Created"`)
	}
	for _, n := range names {
		buf.WriteString("," + n)
	}
	buf.WriteByte('\n')
	for _, i := range order {
		if failed {
			buf.WriteString(`"","INVALID_EMAIL_ADDRESS:Email: invalid email address: x:Email --"`)
		} else {
			fmt.Fprintf(&buf, `"00Q5f%010dAAA","true"`, i)
		}
		for _, v := range cells[i] {
			buf.WriteString(`,"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}
