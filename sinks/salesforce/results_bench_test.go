package salesforce_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// successfulResults returns a successfulResults CSV of n rows shaped like
// the emulator's (every value quoted, as Salesforce does).
func successfulResults(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`"sf__Id","sf__Created",External_Id__c,Name,BillingCountry,SLAExpirationDate__c,Active__c,Rating` + "\n")
	countries := []string{"SE", "DE", "US", "FR", "JP"}
	ratings := []string{"Hot", "Warm", "Cold"}
	for i := range n {
		fmt.Fprintf(&b, "\"001Hs%010dIAQ\",\"true\",\"%d\",\"Account %d, Ltd.\",\"%s\",\"2022-09-%02d\",\"%t\",\"%s\"\n",
			i, 1000000+i, i, countries[i%len(countries)], 1+i%28, i%2 == 0, ratings[i%len(ratings)])
	}
	return b.Bytes()
}

// BenchmarkResultReader reads a 100,000-row successfulResults file.
//
//	go test -run '^$' -bench ResultReader -count 5 ./sinks/salesforce/
func BenchmarkResultReader(b *testing.B) {
	const n = 100000
	data := successfulResults(n)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rr := salesforce.NewResultReader(bytes.NewReader(data), "")
		rows := 0
		for {
			row, err := rr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if len(row.ID) != 18 || !row.Created {
				b.Fatalf("row %+v", row)
			}
			rows++
		}
		if rows != n {
			b.Fatalf("%d rows", rows)
		}
	}
}
