package synclog_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/sync/synclog"
)

func Example() {
	ctx := context.Background()
	started := time.Date(2024, 5, 1, 2, 0, 0, 0, time.UTC)
	w, err := synclog.Create(ctx, "", "mem://example/synclog", "accounts", "20240501T020000Z", started)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Write is safe for concurrent use: every batch worker can log its rows.
	for _, r := range []synclog.Record{
		{Key: "A-1", Operation: "upsert", Outcome: "loaded", SalesforceID: "001000000000001AAA"},
		{Key: "A-2", Operation: "upsert", Outcome: "failed", ErrorCode: "REQUIRED_FIELD_MISSING", Error: "Required fields are missing: [Name]"},
	} {
		r.Time = started.Add(time.Second) // when Salesforce answered
		if err := w.Write(r); err != nil {
			w.Abort()
			fmt.Println(err)
			return
		}
	}
	if err := w.Close(); err != nil { // the file appears only now
		fmt.Println(err)
		return
	}
	fmt.Println(w.Location())

	l, _ := blobio.Parse("", w.Location())
	objs, _ := blobio.List(ctx, l)
	fmt.Println(len(objs), "object")
	// Output:
	// mem://example/synclog/accounts/date=2024-05-01/20240501T020000Z.parquet
	// 1 object
}
