package salesforcetest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// ExampleNewServer runs one Bulk API 2.0 insert job against the emulator
// over real HTTP and inspects the stored records.
func ExampleNewServer() {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()

	call := func(method, path, ctype, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+"/services/data/v62.0"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.AccessToken())
		req.Header.Set("Content-Type", ctype)
		res, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	_, created := call("POST", "/jobs/ingest", "application/json", `{"object":"Account","operation":"insert"}`)
	jobID := created[len(`{"id":"`) : len(`{"id":"`)+18]
	status, _ := call("PUT", "/jobs/ingest/"+jobID+"/batches", "text/csv", "Name,Industry\nAcme,Banking\nGlobex,Mining\n")
	fmt.Println("upload:", status)
	status, _ = call("PATCH", "/jobs/ingest/"+jobID, "application/json", `{"state":"UploadComplete"}`)
	fmt.Println("close:", status)

	if err := srv.AwaitJobState(context.Background(), jobID, salesforcetest.StateJobComplete); err != nil {
		panic(err)
	}
	_, failed := call("GET", "/jobs/ingest/"+jobID+"/failedResults", "", "")
	fmt.Println(failed)
	for _, rec := range srv.Records("Account") {
		fmt.Println(rec["Name"], rec["Industry"])
	}
	// Output:
	// upload: 201
	// close: 200
	// "sf__Id","sf__Error",Name,Industry
	// "","INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Mining:Industry --","Globex","Mining"
	// Acme Banking
}
