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

// ExampleSlabPool builds a batch whose rows live in one slab from a pool,
// as a source that opts in to recycling does: the engine gives the slab
// back to the pool once the stage the batch went to (a RowReleaser) is
// done with its rows, and the next Get may return it, cleared.
func ExampleSlabPool() {
	var pool pipeline.SlabPool // one per source: Get and the engine's release may run concurrently
	schema := pipelinetest.Schema
	const rows = 3
	width := schema.Len()
	b := pipeline.NewBatch(schema, rows)
	slab := pool.Get(rows * width)
	b.Recycle(&pool, slab)
	for i := range rows {
		row := pipeline.Row(slab[i*width : (i+1)*width : (i+1)*width])
		row[0], row[1] = int64(i), fmt.Sprintf("name-%d", i)
		b.Append(row, pipeline.Origin{Object: "example", Row: int64(i + 1)})
	}
	for i := range b.Len() {
		fmt.Println(b.Row(i))
	}
	// Output:
	// [0 name-0]
	// [1 name-1]
	// [2 name-2]
}
