package pipetest_test

import (
	"context"
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
