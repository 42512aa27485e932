package pipetest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/pipetest"

	_ "github.com/bulkflow/bulkflow/sinks/all"
	_ "github.com/bulkflow/bulkflow/sources/all"
	_ "github.com/bulkflow/bulkflow/transforms/all"
)

func TestShipped(t *testing.T) {
	t.Chdir("../..")
	files, err := pipetest.Find("pipelines")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rs, err := pipetest.RunFile(context.Background(), f, pipetest.Options{})
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, r := range rs {
			if !r.Passed {
				t.Errorf("%s: %s: %v", f, r.Name, r.Diffs)
			}
		}
	}
}

// TestInlineTests: a pipeline file's own tests: list runs like a test
// file; a failing case names the row and field; a misspelled key in a
// test is a bad file naming the keys test files know.
func TestInlineTests(t *testing.T) {
	t.Chdir("../..")
	dir := t.TempDir()
	pipe := `name: inline
stages:
  - name: read
    source: {type: csv, url: pipelines/data/accounts.csv, columns: {annual_revenue: float}}
  - name: map
    inputs: [read]
    map:
      Name: trim(company)
      Big: annual_revenue > 1000000
  - name: write
    inputs: [map]
    sink: {type: csv, url: out/inline.csv}
tests:
  - name: passes
    input:
      rows:
        - {company: " Acme ", annual_revenue: "2000000"}
        - {company: Small, annual_revenue: "10"}
    expect:
      rows:
        - {Name: Acme, Big: true}
        - {Name: Small, Big: false}
  - name: fails
    input:
      rows: [{company: Acme, annual_revenue: "5"}]
    expect:
      rows: [{Name: ACME, Big: false}]
`
	path := filepath.Join(dir, "inline.yaml")
	os.WriteFile(path, []byte(pipe), 0o644)
	files, err := pipetest.Find(dir)
	if err != nil || len(files) != 1 || files[0] != path {
		t.Fatalf("Find = %v, %v", files, err)
	}
	rs, err := pipetest.RunFile(context.Background(), path, pipetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || !rs[0].Passed || rs[1].Passed || len(rs[1].Diffs) != 1 ||
		rs[1].Diffs[0] != `row 1 field Name: want "ACME", got "Acme" (from input row 1)` {
		t.Errorf("results = %+v", rs)
	}
	bad := strings.Replace(pipe, "    expect:\n      rows: [{Name: ACME", "    expcet:\n      rows: [{Name: ACME", 1)
	os.WriteFile(path, []byte(bad), 0o644)
	_, err = pipetest.RunFile(context.Background(), path, pipetest.Options{})
	var bf *pipetest.BadFileError
	if !errors.As(err, &bf) || !strings.Contains(err.Error(), `unknown key "expcet"`) {
		t.Errorf("error = %v, want a BadFileError naming expcet", err)
	}
}
