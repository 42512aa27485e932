package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/sinks/filesink"
)

var benchRows = flag.Int("bench.rows", 200_000, "rows in the generated benchmark CSV (the closing-note numbers use 1000000)")

var (
	benchOnce    sync.Once
	benchDir     string
	benchFile    string
	parquetOnce  sync.Once
	parquetFile  string
	parquetBytes []byte
)

// benchParquet converts the benchmark CSV to Parquet (string columns,
// 64Ki-row row groups) once per test binary run.
func benchParquet(b *testing.B) string {
	in := benchData(b)
	parquetOnce.Do(func() {
		f, err := os.Open(in)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
		header, err := r.Read()
		if err != nil {
			b.Fatal(err)
		}
		fields := make([]arrow.Field, len(header))
		for i, h := range header {
			fields[i] = arrow.Field{Name: h, Type: arrow.BinaryTypes.String}
		}
		schema := arrow.NewSchema(fields, nil)
		var buf bytes.Buffer
		w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.DefaultWriterProps())
		if err != nil {
			b.Fatal(err)
		}
		rb := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		flush := func() {
			rec := rb.NewRecordBatch()
			if err := w.Write(rec); err != nil {
				b.Fatal(err)
			}
			rec.Release()
		}
		n := 0
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			for i, v := range rec {
				rb.Field(i).(*array.StringBuilder).Append(v)
			}
			if n++; n%65536 == 0 {
				flush()
			}
		}
		flush()
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		parquetBytes = buf.Bytes()
		parquetFile = filepath.Join(benchDir, "accounts.parquet")
		if err := os.WriteFile(parquetFile, parquetBytes, 0o644); err != nil {
			b.Fatal(err)
		}
	})
	return parquetFile
}

// benchData writes a deterministic 14-column warehouse-like CSV once per
// test binary run.
func benchData(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bulkflow-bench")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
		benchFile = filepath.Join(dir, "accounts.csv")
		f, err := os.Create(benchFile)
		if err != nil {
			b.Fatal(err)
		}
		w := csv.NewWriter(bufio.NewWriterSize(f, 1<<20))
		r := rand.New(rand.NewPCG(1, 2))
		firsts := []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Dennis", "Margaret"}
		lasts := []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Ritchie", "Hamilton"}
		countries := []string{"us", "de", "gb", "fr", "jp", "se"}
		w.Write([]string{"id", "first_name", "last_name", "email", "phone", "company", "street", "city", "country", "revenue", "signup_date", "updated_at", "active", "notes"})
		for i := range *benchRows {
			fn, ln := firsts[r.IntN(len(firsts))], lasts[r.IntN(len(lasts))]
			notes := ""
			switch {
			case i%100 == 0:
				notes = "called twice,\nsaid \"call back\""
			case i%7 == 0:
				notes = "prefers email"
			}
			w.Write([]string{
				fmt.Sprint(100000 + i), fn, ln, fmt.Sprintf("%s.%s@example.com", fn, ln), fmt.Sprintf("+1-555-%04d", i%10000),
				fmt.Sprintf("%s %s Inc", ln, fn), fmt.Sprintf("%d Main St", i%999), "Springfield", countries[i%len(countries)],
				fmt.Sprintf("%d.%02d", r.IntN(1000000), r.IntN(100)), fmt.Sprintf("20%02d-%02d-%02d", 10+i%15, 1+i%12, 1+i%28),
				fmt.Sprintf("2026-%02d-%02dT10:%02d:00Z", 1+i%12, 1+i%28, i%60), []string{"true", "false"}[i%2], notes,
			})
		}
		w.Flush()
		f.Close()
	})
	return benchFile
}

// BenchmarkCopyEncodingCSV is the baseline: read the file with encoding/csv
// and write it back with encoding/csv.
func BenchmarkCopyEncodingCSV(b *testing.B) {
	in := benchData(b)
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		f, _ := os.Open(in)
		r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
		r.ReuseRecord = true
		out, _ := os.Create(filepath.Join(benchDir, "copy.csv"))
		bw := bufio.NewWriterSize(out, 1<<20)
		w := csv.NewWriter(bw)
		n := 0
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			w.Write(rec)
			n++
		}
		w.Flush()
		bw.Flush()
		out.Close()
		f.Close()
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVMapCSV runs the engine: CSV source → 6-field map → CSV sink.
func BenchmarkCSVMapCSV(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			benchMapped(b, "csv", benchData(b), workers)
		})
	}
}

// BenchmarkParquetMapCSV is BenchmarkCSVMapCSV reading the same rows from
// Parquet, from a local file and from a mem:// bucket (range reads).
func BenchmarkParquetMapCSV(b *testing.B) {
	b.Run("file", func(b *testing.B) { benchMapped(b, "parquet", benchParquet(b), 1) })
	b.Run("mem", func(b *testing.B) {
		benchParquet(b)
		loc, _ := blobio.Parse("", "mem://bench/accounts.parquet")
		if err := blobio.WriteAll(context.Background(), loc, parquetBytes); err != nil {
			b.Fatal(err)
		}
		benchMapped(b, "parquet", "mem://bench/accounts.parquet", 1)
	})
}

func benchMapped(b *testing.B, format, in string, workers int) {
	{
		{
			y := fmt.Sprintf(`
name: bench
dead_letter: %[1]s/dl/
stages:
  - {name: read, source: {type: %[4]s, url: "%[2]s"}}
  - name: map
    inputs: [read]
    workers: %[3]d
    map:
      External_Id__c: id
      Name: first_name + " " + last_name
      BillingCountry: upper(country)
      Customer_Since__c: sfDate(signup_date, "2006-01-02")
      Active__c: sfBool(active)
      Tier__c: 'len(notes) > 0 ? "noted" : "plain"'
  - {name: write, inputs: [map], sink: {type: csv, url: "%[1]s/mapped.csv"}}
`, benchDir, in, workers, format)
			reg := pipeline.DefaultRegistry()
			b.ReportAllocs()
			var loaded int64
			for b.Loop() {
				g, err := config.Load("bench.yaml", []byte(y), reg, nil)
				if err != nil {
					b.Fatal(err)
				}
				plan, err := pipeline.Prepare(context.Background(), reg, g, &pipeline.Env{})
				if err != nil {
					b.Fatal(err)
				}
				rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: func(ctx context.Context, loc blobio.Location, s *pipeline.Schema) (pipeline.Sink, error) {
					return filesink.OpenCSV(ctx, loc, s, nil)
				}})
				if err != nil || rep.Counts.Loaded != int64(*benchRows) {
					b.Fatalf("run: %v %+v", err, rep.Counts)
				}
				loaded += rep.Counts.Loaded
			}
			b.ReportMetric(float64(loaded)/b.Elapsed().Seconds(), "rows/s")
		}
	}
}
