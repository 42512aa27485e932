package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
)

func storeNamed(name string) blobtest.Store {
	for _, s := range blobtest.Stores {
		if s.Name == name {
			return s
		}
	}
	panic("no store " + name)
}

// accountsParquet writes n accounts as Parquet; every 10th has is_active
// "maybe", which sfBool rejects.
func accountsParquet(t *testing.T, n int) []byte {
	t.Helper()
	ids, active := array.NewStringBuilder(memory.DefaultAllocator), array.NewStringBuilder(memory.DefaultAllocator)
	for i := range n {
		ids.Append(fmt.Sprintf("A-%04d", i))
		if i%10 == 9 {
			active.Append("maybe")
		} else {
			active.Append([]string{"yes", "no"}[i%2])
		}
	}
	cols := []arrow.Array{ids.NewArray(), active.NewArray()}
	schema := arrow.NewSchema([]arrow.Field{{Name: "account_id", Type: arrow.BinaryTypes.String}, {Name: "is_active", Type: arrow.BinaryTypes.String}}, nil)
	rec := array.NewRecordBatch(schema, cols, int64(n))
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(16)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeBlob(t *testing.T, url string, data []byte) {
	t.Helper()
	loc, err := blobio.Parse("", url)
	if err != nil {
		t.Fatal(err)
	}
	if err := blobio.WriteAll(context.Background(), loc, data); err != nil {
		t.Fatal(err)
	}
}

func readBlob(t *testing.T, url string) string {
	t.Helper()
	loc, err := blobio.Parse("", url)
	if err != nil {
		t.Fatal(err)
	}
	r, err := blobio.NewReader(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// TestCloudPipeline reads Parquet from S3, maps it, writes the output to
// Azure and its dead letters to GCS, through the CLI, against the real
// test servers on loopback.
func TestCloudPipeline(t *testing.T) {
	s3, gcs, az := storeNamed("S3").NewBucket(t), storeNamed("GCS").NewBucket(t), storeNamed("Azure").NewBucket(t)
	for i := range 3 {
		writeBlob(t, s3.URL(fmt.Sprintf("exports/2026-11-0%d/part-0.parquet", i+1)), accountsParquet(t, 40))
	}
	dir := t.TempDir()
	t.Chdir(dir)
	y := fmt.Sprintf(`
name: cloud
dead_letter: "%s"
stages:
  - name: read
    source: {type: parquet, url: "%s", batch_size: 7}
  - name: map
    inputs: [read]
    map:
      External_Id__c: account_id
      Active__c: sfBool(is_active)
  - name: write
    inputs: [map]
    sink: {type: csv, url: "%s"}
`, gcs.URL("dl/"), s3.URL("exports/2026-11-*/part-*.parquet"), az.URL("out/accounts.csv"))
	os.WriteFile("cloud.yaml", []byte(y), 0o644)
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"run", "cloud.yaml", "--progress", "none", "--report", "report.json"}, &stdout, &stderr); code != exitPartial {
		t.Fatalf("exit %d, want %d:\n%s", code, exitPartial, stderr.String())
	}
	if !strings.Contains(stderr.String(), "read 120, loaded 108, filtered 0, dead-lettered 12") {
		t.Errorf("summary:\n%s", stderr.String())
	}
	out := readBlob(t, az.URL("out/accounts.csv"))
	if n := strings.Count(out, "\n"); n != 109 || !strings.HasPrefix(out, "External_Id__c,Active__c\nA-0000,true\n") {
		t.Errorf("output has %d lines:\n%.200s", n, out)
	}
	rep, _ := os.ReadFile("report.json")
	var dl string
	for _, l := range strings.Split(string(rep), "\n") {
		if strings.Contains(l, "map.csv") && strings.Contains(l, "gs://") {
			dl = strings.Trim(strings.TrimSpace(l), `",`)
		}
	}
	if dl == "" {
		t.Fatalf("report lists no gs:// dead letter:\n%s", rep)
	}
	got := readBlob(t, dl+gcs.Query)
	if strings.Count(got, "\n") != 13 || !strings.Contains(got, s3.Shown("exports/2026-11-01/part-0.parquet")+"#row=10") {
		t.Errorf("dead letters on GCS:\n%s", got)
	}
}

// TestCloudAccessDenied: a wrong S3 secret is refused before any work,
// with an error naming the location.
func TestCloudAccessDenied(t *testing.T) {
	s3 := storeNamed("S3").NewBucket(t)
	writeBlob(t, s3.URL("x.csv"), []byte("a,b\n1,2\n"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("p.yaml", []byte(fmt.Sprintf("name: denied\nstages:\n  - {name: r, source: {type: csv, url: \"%s\"}}\n  - {name: w, inputs: [r], sink: {type: csv, url: out.csv}}\n", s3.URL("x.csv"))), 0o644)
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"validate", "p.yaml"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), s3.Shown("x.csv")) || strings.Contains(stderr.String(), "wrong-secret") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
