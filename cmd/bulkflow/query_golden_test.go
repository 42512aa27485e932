package main

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestQueryGolden pins down `bulkflow query`'s output byte for byte, in
// pages of 2: what a Bulk API 2.0 query job returns for the same SOQL
// (the raw pages, each later one without its repeated header) and the
// golden file, which shows the contract's shape: a quoted header in SOQL
// order with relationship fields as written (Account.Name), every value
// quoted with inner quotes doubled, null and empty alike as "" (a null
// parent's fields too), LF line endings, a CRLF or LF inside a value kept
// as is, dates as YYYY-MM-DD, datetimes as ...T...000Z, UTF-8 unchanged.
//
//	go test ./cmd/bulkflow -run TestQueryGolden -update
func TestQueryGolden(t *testing.T) {
	clock := time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC)
	srv := salesforcetest.NewServer(&salesforcetest.Options{Clock: func() time.Time { return clock }})
	defer srv.Close()
	add := func(object string, rec map[string]string) string {
		t.Helper()
		id, err := srv.AddRecord(object, rec)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	acme := add("Account", map[string]string{"Name": "Acme, Inc.", "AnnualRevenue": "1250000.50"})
	globex := add("Account", map[string]string{"Name": `Globex "Global"`})
	add("Contact", map[string]string{"LastName": "Lovelace", "FirstName": "Ada", "Title": `Countess "Ada"`,
		"Birthdate": "1815-12-10", "AccountId": acme, "MailingStreet": "12 St James's Square\nLondon"})
	add("Contact", map[string]string{"LastName": "Turing", "FirstName": "Alan", "AccountId": globex})
	add("Contact", map[string]string{"LastName": "Hopper", "Title": "Rear Admiral, USN", "MailingStreet": "line 1\r\nline 2"})
	add("Contact", map[string]string{"LastName": "Müller", "FirstName": "Zoë", "Title": "Ingénieure ✓", "AccountId": acme})
	add("Contact", map[string]string{"LastName": "Zed", "Birthdate": "2000-02-29", "AccountId": globex})

	soql := "SELECT Id, LastName, FirstName, Title, Birthdate, Account.Name, Account.AnnualRevenue, MailingStreet, SystemModstamp FROM Contact"
	var raw bytes.Buffer
	pages := rawQueryPages(t, srv, "query", soql, 2)
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3 (5 records, 2 a page)", len(pages))
	}
	for i, p := range pages {
		if i > 0 {
			p = p[bytes.IndexByte(p, '\n')+1:]
		}
		raw.Write(p)
	}
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"query", soql, "--max-records", "2", "--instance-url", srv.URL, "--token", srv.AccessToken()}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), raw.Bytes()) {
		t.Errorf("bulkflow query differs from the job's pages:\n%q\nwant\n%q", stdout.String(), raw.String())
	}
	golden(t, filepath.Join("testdata", "query", "contacts.csv"), stdout.Bytes())
}
