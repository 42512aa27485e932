package pipeline_test

import (
	"context"
	"fmt"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

// Example_pipeline loads a pipeline file, prepares it (opening sources and
// checking transforms) and runs it; every row read is loaded, filtered or
// dead-lettered.
func Example_pipeline() {
	var reg pipeline.Registry
	out := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, out)

	g, err := config.Load("example.yaml", []byte(`
name: example
dead_letter: mem://example-dl/
stages:
  - {name: read, source: {type: rows, rows: 100}}
  - {name: work, inputs: [read], transform: {type: copy, filter_every: 10, fail_every: 25}}
  - {name: write, inputs: [work], sink: {type: collect}}
`), &reg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	plan, err := pipeline.Prepare(ctx, &reg, g, &pipeline.Env{RunID: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := plan.Run(ctx, &pipeline.RunOptions{DeadLetters: out.DeadLetterOpener()})
	if err != nil {
		fmt.Println(err)
		return
	}
	c := rep.Counts
	fmt.Printf("%s: read %d, loaded %d, filtered %d, dead-lettered %d\n", rep.Status, c.Read, c.Loaded, c.Filtered, c.DeadLettered)
	// Output:
	// partial: read 100, loaded 88, filtered 8, dead-lettered 4
}
