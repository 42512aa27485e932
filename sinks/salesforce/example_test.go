package salesforce_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// ExampleClient_CreateJob loads three Accounts through one ingest job
// against the emulator and reads back the row that failed.
func ExampleClient_CreateJob() {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()

	auth, err := salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{
		LoginURL:     srv.LoginURL(), // your My Domain URL in production
		ClientID:     srv.ClientID(),
		ClientSecret: srv.ClientSecret(),
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := salesforce.NewClient(ctx, auth, nil)
	if err != nil {
		log.Fatal(err)
	}

	job, err := c.CreateJob(ctx, salesforce.CreateJobRequest{
		Object:    "Account",
		Operation: salesforce.OpUpsert,
		// Upsert on an External ID field.
		ExternalIDFieldName: "External_Id__c",
		LineEnding:          salesforce.LineEndingLF,
	})
	if err != nil {
		log.Fatal(err)
	}
	csv := []byte("External_Id__c,Name\nA-1,Acme\nA-2,Globex\nA-3,\n")
	if err := c.UploadJobData(ctx, job.ID, salesforce.BytesBody(csv)); err != nil {
		log.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	info, err := c.WaitJob(ctx, job.ID, &salesforce.PollOptions{Initial: 10 * time.Millisecond, Timeout: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State, info.NumberRecordsProcessed, info.NumberRecordsFailed)

	rc, err := c.FailedResults(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	rr := salesforce.NewResultReader(rc, info.ColumnDelimiter)
	ext := rr.Index("External_Id__c")
	for {
		row, err := rr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		re := row.RowError()
		fmt.Println(row.Values[ext], re.Code, re.Fields)
	}
	// Output:
	// JobComplete 3 1
	// A-3 REQUIRED_FIELD_MISSING [Name]
}
