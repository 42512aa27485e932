package changes_test

import (
	"context"
	"fmt"
	"log"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/sync/changes"
)

// syncRun is one scheduled run: diff the rows against the manifest at loc,
// "send" what changed (rows named "fail" are rejected), and commit.
func syncRun(ctx context.Context, loc blobio.Location, schema *pipeline.Schema, rows []pipeline.Row) {
	old, err := changes.OpenManifest(ctx, loc) // nil on the first run
	if err != nil {
		log.Fatal(err)
	}
	d, err := changes.NewDiffer(schema, "External_Id__c", changes.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	// Rows in key order are diffed as they are added (one pass, only new
	// and changed rows kept); others are spooled and merged in Diff.
	if err := d.Expect(ctx, old); err != nil {
		log.Fatal(err)
	}
	for i, row := range rows {
		if err := d.Add(row, pipeline.Origin{Object: "accounts.csv", Line: int64(i + 2)}); err != nil {
			fmt.Println("dead letter:", err) // a *pipeline.RowError, e.g. missing_key
		}
	}
	counts, err := d.Diff(ctx, old,
		func(op changes.Op, key string, row pipeline.Row, origin pipeline.Origin, oldID string) error {
			if op == changes.OpUnchanged {
				return nil
			}
			fmt.Printf("  %-7v %s\n", op, key)
			ok := row == nil || row[1] != "fail"
			return d.Outcome(key, op, ok, "sf-"+key) // normally reported by the sink
		},
		func(key string, row pipeline.Row, origin pipeline.Origin) error {
			fmt.Printf("  duplicate_key %s at %v\n", key, origin)
			return nil
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("  %+v\n", counts)
	w, err := blobio.NewWriter(ctx, loc)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.Commit(ctx, old, w, true); err != nil {
		w.Abort()
		w.Close()
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // the new manifest appears only now
		log.Fatal(err)
	}
}

func ExampleDiffer() {
	ctx := context.Background()
	loc, _ := blobio.Parse("", "mem://example/accounts/manifest.bfm")
	schema := pipeline.MustSchema(
		pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString},
		pipeline.Field{Name: "Name", Type: pipeline.TypeString},
	)
	fmt.Println("run 1:")
	syncRun(ctx, loc, schema, []pipeline.Row{{"A-1", "Acme"}, {"A-2", "Globex"}, {"A-3", "Initech"}})
	fmt.Println("run 2:")
	syncRun(ctx, loc, schema, []pipeline.Row{{"A-1", "Acme"}, {"A-2", "fail"}, {"A-4", "Umbrella"}, {"A-4", "Umbrella 2"}, {nil, "no key"}})
	fmt.Println("run 3:")
	syncRun(ctx, loc, schema, []pipeline.Row{{"A-1", "Acme"}, {"A-2", "Globex Corp"}, {"A-4", "Umbrella"}})
	// Output:
	// run 1:
	//   new     A-1
	//   new     A-2
	//   new     A-3
	//   {New:3 Changed:0 Unchanged:0 Missing:0 Manifest:0}
	// run 2:
	// dead letter: accounts.csv:6: field External_Id__c: the sync key External_Id__c is empty
	//   changed A-2
	//   missing A-3
	//   new     A-4
	//   duplicate_key A-4 at accounts.csv:5
	//   {New:1 Changed:1 Unchanged:1 Missing:1 Manifest:3}
	// run 3:
	//   changed A-2
	//   {New:0 Changed:1 Unchanged:2 Missing:0 Manifest:3}
}

// A run whose keys come in order (an export sorted by its key) is diffed
// as it is added once Expect knows the manifest: only its new and changed
// rows are kept, and Diff passes its unchanged keys last, without rows.
func ExampleDiffer_Expect() {
	ctx := context.Background()
	loc, _ := blobio.Parse("", "mem://example/expect/manifest.bfm")
	schema := pipeline.MustSchema(
		pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString},
		pipeline.Field{Name: "Name", Type: pipeline.TypeString},
	)
	syncRun(ctx, loc, schema, []pipeline.Row{{"A-1", "Acme"}, {"A-2", "Globex"}, {"A-3", "Initech"}})

	old, err := changes.OpenManifest(ctx, loc)
	if err != nil {
		log.Fatal(err)
	}
	d, err := changes.NewDiffer(schema, "External_Id__c", changes.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if err := d.Expect(ctx, old); err != nil {
		log.Fatal(err)
	}
	for i, row := range []pipeline.Row{{"A-1", "Acme"}, {"A-2", "Globex Corp"}, {"A-4", "Umbrella"}} {
		if err := d.Add(row, pipeline.Origin{Object: "accounts.csv", Line: int64(i + 2)}); err != nil {
			log.Fatal(err)
		}
	}
	_, err = d.Diff(ctx, old, func(op changes.Op, key string, row pipeline.Row, _ pipeline.Origin, oldID string) error {
		fmt.Printf("%-9v %q %v %q\n", op, key, row, oldID)
		return nil
	}, func(string, pipeline.Row, pipeline.Origin) error { return nil })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("walked:", d.Walked())
	// Output:
	//   new     A-1
	//   new     A-2
	//   new     A-3
	//   {New:3 Changed:0 Unchanged:0 Missing:0 Manifest:0}
	// changed   "A-2" [A-2 Globex Corp] "sf-A-2"
	// missing   "A-3" [] "sf-A-3"
	// new       "A-4" [A-4 Umbrella] ""
	// unchanged "" [] ""
	// walked: true
}
