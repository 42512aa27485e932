package csvsource_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// preparePipeline prepares a pipeline reading url (relative to dir) with
// the csv source into a collecting sink, and runs it when Prepare succeeds.
// It returns the rows the sink received and Prepare's or Run's error.
func preparePipeline(t *testing.T, dir, url string) (int, error) {
	t.Helper()
	var reg pipeline.Registry
	out := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, out)
	reg.RegisterSource("csv", csvsource.Spec, func(ctx context.Context, env *pipeline.Env, opts any) (pipeline.Source, error) {
		return csvsource.Open(ctx, env, opts.(*csvsource.Options))
	})
	g, err := config.Load("glob.yaml", fmt.Appendf(nil, `
name: glob
dead_letter: mem://csvsource-glob-dl/
stages:
  - {name: read, source: {type: csv, url: %q}}
  - {name: write, inputs: [read], sink: {type: collect}}
`, url), &reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plan, err := pipeline.Prepare(ctx, &reg, g, &pipeline.Env{RunID: "glob", BaseDir: dir})
	if err == nil {
		_, err = plan.Run(ctx, &pipeline.RunOptions{DeadLetters: out.DeadLetterOpener()})
	}
	return len(out.Rows["out"]), err
}

// TestGlobHeadersCheckedFirst: every object a glob matches has its header
// checked when the pipeline is prepared (validate and run both prepare), so
// an object whose header differs is refused before any row moves, with an
// error naming both objects and the first differing column.
func TestGlobHeadersCheckedFirst(t *testing.T) {
	long := strings.Repeat("x", 150<<10) // a header line over two range reads
	rows := strings.Repeat("1,2\n", 1000)
	tests := []struct {
		name    string
		files   map[string]string
		wantErr []string // substrings of the error; none: the run loads every row
		want    int      // rows loaded
	}{
		{name: "same headers", files: map[string]string{"a.csv": "id,n\n" + rows, "b.csv": "id,n\n" + rows, "c.csv": "\uFEFFid,n\r\n" + rows}, want: 3000},
		{name: "third differs", files: map[string]string{"a.csv": "id,n\n" + rows, "b.csv": "id,n\n" + rows, "c.csv": "id,name\n" + rows},
			wantErr: []string{"c.csv:1: header differs from the first object", "a.csv", `column 2 is "name", want "n"`, "narrow the URL"}},
		{name: "third has fewer columns", files: map[string]string{"a.csv": "id,n\n" + rows, "b.csv": "id,n\n" + rows, "c.csv": "id\n1\n"},
			wantErr: []string{"c.csv:1: header differs", "1 columns, want 2"}},
		{name: "third gzipped differs", files: map[string]string{"a.csv": "id,n\n" + rows, "b.csv": "id,n\n" + rows, "c.csv.gz": gz(t, "id,m\n"+rows)},
			wantErr: []string{"c.csv.gz:1: header differs", `column 2 is "m"`}},
		{name: "third gzipped same", files: map[string]string{"a.csv": "id,n\n" + rows, "b.csv": "id,n\n" + rows, "c.csv.gz": gz(t, "id,n\n"+rows)}, want: 3000},
		{name: "third empty", files: map[string]string{"a.csv": "id,n\n" + rows, "b.csv": "id,n\n" + rows, "c.csv": ""},
			wantErr: []string{"c.csv: empty object"}},
		{name: "long header differs at the end", files: map[string]string{"a.csv": "id," + long + "\n" + rows, "b.csv": "id," + long + "\n" + rows, "c.csv": "id," + long + "y\n" + rows},
			wantErr: []string{"c.csv:1: header differs", "column 2"}},
		{name: "long header same", files: map[string]string{"a.csv": "id," + long + "\n" + rows, "b.csv": "id," + long + "\n" + rows, "c.csv": "id," + long + "\n" + rows}, want: 3000},
		{name: "quoted header over lines", files: map[string]string{"a.csv": "id,\"n\nm\"\n" + rows, "b.csv": "id,\"n\nm\"\n" + rows, "c.csv": "id,\"n\nx\"\n" + rows},
			wantErr: []string{"c.csv:1: header differs", `column 2 is "n\nx"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			loaded, err := preparePipeline(t, dir, "*.csv*")
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			}
			if loaded != tc.want {
				t.Errorf("sink received %d rows, want %d", loaded, tc.want)
			}
		})
	}
}

// BenchmarkCheckHeaders measures Schema on a glob of 10,000 small local
// CSV objects: one header check per object (see package objsource). The
// "no header" case lists the same objects and checks nothing: the
// difference is the check's cost.
func BenchmarkCheckHeaders(b *testing.B) {
	dir := b.TempDir()
	for i := range 10000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%05d.csv", i)), []byte("id,name,amount\n1,a,2.5\n2,b,3.5\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	no := false
	for _, bc := range []struct {
		name string
		opts csvsource.Options
	}{
		{"header", csvsource.Options{URL: "part-*.csv"}},
		{"no header", csvsource.Options{URL: "part-*.csv", Header: &no, Columns: csvsource.Columns{{"id", ""}, {"name", ""}, {"amount", ""}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				src, err := csvsource.Open(ctx, &pipeline.Env{BaseDir: dir}, &bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := src.Schema(ctx); err != nil {
					b.Fatal(err)
				}
				src.Close()
			}
		})
	}
}
