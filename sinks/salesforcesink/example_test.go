package salesforcesink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

// ExampleOpenPlan writes the job CSVs an Account insert would upload,
// without calling Salesforce: quoted where the contract requires it, a
// null as #N/A. The plan keeps its cut across Writes: five rows handed
// over as batches of 2 and 3 make the jobs of max_job_rows (3) rows the
// real sink would send.
func ExampleOpenPlan() {
	dir, err := os.MkdirTemp("", "plan-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	schema := pipeline.MustSchema(
		pipeline.Field{Name: "Name", Type: pipeline.TypeString},
		pipeline.Field{Name: "NumberOfEmployees", Type: pipeline.TypeInt},
	)
	opts := salesforcesink.NewOptions()
	opts.Object, opts.API, opts.MaxJobRows = "Account", salesforcesink.APIBulk, 3
	opts.InstanceURL = "emulator:" // a plan never connects
	plan, err := salesforcesink.OpenPlan(ctx, nil, opts, schema, dir)
	if err != nil {
		panic(err)
	}
	rows := []pipeline.Row{{"Acme", int64(12)}, {"Globex, Inc", int64(300)}, {"Initech", nil}, {"Umbrella", int64(5)}, {`Say "hi"`, int64(1)}}
	for _, batch := range [][]pipeline.Row{rows[:2], rows[2:]} {
		b := pipeline.NewBatch(schema, len(batch))
		for _, r := range batch {
			b.Append(r, pipeline.Origin{})
		}
		if err := plan.Write(ctx, b); err != nil {
			panic(err)
		}
	}
	if err := plan.Close(ctx); err != nil {
		panic(err)
	}
	for _, j := range plan.Jobs() {
		data, _ := os.ReadFile(j.File)
		fmt.Printf("%s: %d rows, %d bytes\n%s", filepath.Base(j.File), j.Rows, j.Bytes, data)
	}
	// Output:
	// job-0001.csv: 3 rows, 62 bytes
	// Name,NumberOfEmployees
	// Acme,12
	// "Globex, Inc",300
	// Initech,#N/A
	// job-0002.csv: 2 rows, 49 bytes
	// Name,NumberOfEmployees
	// Umbrella,5
	// "Say ""hi""",1
}
