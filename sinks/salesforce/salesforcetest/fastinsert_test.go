package salesforcetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// TestFastInsertMatchesGeneralPath runs insert jobs through two servers,
// one that may take the fast insert path and one whose rows all take
// applyRowLocked, and requires the same job counters, result files and
// stored records: the fast path must change nothing but speed. The jobs
// mix rows it takes with every kind of row it must leave to the general
// path, and run one after the other into the same store (duplicates
// against earlier jobs included).
func TestFastInsertMatchesGeneralPath(t *testing.T) {
	type job struct {
		object, delim, lineEnding, csv string
	}
	jobs := []job{
		{"Account", "", "", "Name,External_Id__c,AccountNumber,Active__c,SLAExpirationDate__c,NumberOfEmployees,Rating,Industry\n" +
			"Acme,E-1,AN-1,true,2024-02-29,12,Hot,Banking\n" +
			"Beta,e-2,AN-2,false,2024-01-31,0,Warm,\n" +
			",E-3,AN-3,true,2024-01-01,1,Cold,Banking\n" + // required Name missing
			"Gamma,E-1,AN-4,true,2024-01-01,2,Hot,Banking\n" + // duplicate key in the job
			"Delta,E-5,AN-5,TRUE,2024-01-01,3,Hot,Banking\n" + // boolean stored reformatted
			"Eps,E-6,AN-6,true,2024-13-01,4,Hot,Banking\n" + // bad date
			"Zeta,E-7,AN-7,true,2024-01-01,007,Hot,Banking\n" + // int stored reformatted
			"Eta,E-8,AN-8,true,2024-01-01,-0,Hot,Banking\n" +
			"Theta,E-9,AN-9,true,2024-01-01,99999999999,Hot,Banking\n" + // out of range
			"Iota,E-10,#N/A,true,2024-01-01,5,Hot,Banking\n" + // null
			"Kappa,E-11,AN-11,true,2024-01-01,6,Hot,Nope\n" + // restricted picklist
			"\"Lambda, Inc.\",E-12,\"AN \"\"12\"\"\",true,2024-01-01,7,Hot,Banking\n" + // quoted values
			"Mu,E-13," + strings.Repeat("x", 41) + ",true,2024-01-01,8,Hot,Banking\n" + // too long
			"Nu,E-14,AN-14,true,2024-01-01,9,Hot,Banking\n" +
			"Xi,,AN-15,,,,,\n"},
		{"Account", "PIPE", "CRLF", "Name|External_Id__c|Active__c\r\nOmicron|E-20|true\r\nPi|E-1|false\r\nRho|E-2|true\r\nSigma|E-21|false\r\n"},
		{"Account", "", "", "Id,Name,External_Id__c\n,Tau,E-30\n001Hs000000000AAAA,Upsilon,E-31\n"},
		{"Account", "", "", "Name,Description,External_Id__c\nPhi,\"two\nlines\",E-40\nChi,plain,E-41\nPsi,,E-40\n"},
		{"Contact", "", "", "LastName,FirstName,Email,Birthdate,Legacy_Id__c\nLovelace,Ada,ada@example.com,1815-12-10,C-1\n" +
			"Turing,Alan,not-an-email,1912-06-23,C-2\nHopper,Grace,grace@example.com,,C-1\nKnuth,Don,don@example.com,1938-01-10,c-3\n"},
		{"Lead", "", "", "LastName,Company,Email,Status,AnnualRevenue,External_Id__c\n" +
			"Ritchie,Acme,a@example.com,Open - Not Contacted,7985.34,L-1\n" +
			"B,Co,b@example.com,Working - Contacted,79405.70,L-2\n" + // currency stored reformatted
			"C,Co,no-at.example.com,Open - Not Contacted,1,L-3\n" + // INVALID_EMAIL_ADDRESS
			"D,Co,d@example.com,Bogus,2,L-4\n" + // restricted picklist
			"E,Co,e@example.com,Open - Not Contacted,-0,L-5\n" +
			"F,Co,f@example.com,Open - Not Contacted,0.5,L-6\n" +
			"G,Co,g@example.com,Open - Not Contacted,.5,L-7\n" +
			"H,Co,h@example.com,Open - Not Contacted,1e3,L-8\n" +
			"I,Co,i@example.com,Open - Not Contacted,1234567890123456,L-9\n" +
			"J,Co,j @example.com,Open - Not Contacted,3,L-10\n" +
			"K,Co,k@example.com,Closed - Converted,-12.5,L-11\n" +
			"L,Co,l@example.com,Open - Not Contacted,+3,L-12\n" +
			"M,Co,m@example.com,Open - Not Contacted,0,L-13\n" +
			"N,Co," + strings.Repeat("n", 70) + "@example.com,Open - Not Contacted,4,L-14\n" + // too long
			"O,Co,o@example,Open - Not Contacted,abc,L-15\n" +
			"P,Co,p@example.com,open - not contacted,0.000001,L-16\n"},
		{"Account", "", "", "Name,Last_Sync__c,External_Id__c\n" +
			"D1,2024-02-29T23:59:59.999Z,D-1\n" +
			"D2,2023-02-29T00:00:00.000Z,D-2\n" + // no such day
			"D3,2024-01-01T24:00:00.000Z,D-3\n" +
			"D4,2024-01-01T10:00:00Z,D-4\n" + // stored reformatted
			"D5,2024-01-01T10:00:00.000+01:00,D-5\n" +
			"D6,0000-01-01T00:00:00.000Z,D-6\n" +
			"D7,2024-01-01T10:60:00.000Z,D-7\n" +
			"D8,2024-01-01T10:00:60.000Z,D-8\n" +
			"D9,2024-01-01t10:00:00.000Z,D-9\n" +
			"D10,2024-12-31T00:00:00.000Z,D-10\n"},
	}
	run := func(generalOnly bool) []string {
		s, err := NewHandler(nil)
		if err != nil {
			t.Fatal(err)
		}
		s.generalOnly = generalOnly
		hs := httptest.NewServer(s)
		defer hs.Close()
		defer s.Close()
		do := func(method, path string, body []byte, ctype string) []byte {
			t.Helper()
			req, _ := http.NewRequest(method, hs.URL+"/services/data/v62.0"+path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.AccessToken())
			req.Header.Set("Content-Type", ctype)
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 300 {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
			}
			return b
		}
		var out []string
		for _, j := range jobs {
			create := map[string]string{"object": j.object, "operation": "insert"}
			if j.delim != "" {
				create["columnDelimiter"] = j.delim
			}
			if j.lineEnding != "" {
				create["lineEnding"] = j.lineEnding
			}
			body, _ := json.Marshal(create)
			var info struct{ ID string }
			if err := json.Unmarshal(do("POST", "/jobs/ingest", body, "application/json"), &info); err != nil {
				t.Fatal(err)
			}
			do("PUT", "/jobs/ingest/"+info.ID+"/batches", []byte(j.csv), "text/csv")
			do("PATCH", "/jobs/ingest/"+info.ID, []byte(`{"state":"UploadComplete"}`), "application/json")
			if err := s.AwaitJobState(t.Context(), info.ID, StateJobComplete); err != nil {
				t.Fatal(err)
			}
			ji, _ := s.Job(info.ID)
			out = append(out, fmt.Sprintf("%s processed %d failed %d", ji.State, ji.NumberRecordsProcessed, ji.NumberRecordsFailed))
			for _, kind := range []string{"successfulResults", "failedResults", "unprocessedrecords"} {
				out = append(out, kind+":\n"+string(do("GET", "/jobs/ingest/"+info.ID+"/"+kind, nil, "")))
			}
		}
		for _, o := range []string{"Account", "Contact", "Lead"} {
			out = append(out, fmt.Sprint(s.Records(o)))
		}
		return out
	}
	fast, general := run(false), run(true)
	if !reflect.DeepEqual(fast, general) {
		for i := range fast {
			if fast[i] != general[i] {
				t.Errorf("fast path:\n%s\ngeneral path:\n%s", fast[i], general[i])
			}
		}
	}
	// The corpus must exercise both outcomes, or the comparison proves
	// little.
	if all := strings.Join(fast, "\n"); !strings.Contains(all, `"true","Acme"`) || !strings.Contains(all, "DUPLICATE_VALUE") ||
		!strings.Contains(all, "INVALID_EMAIL_ADDRESS") || !strings.Contains(all, "2024-02-29T23:59:59.999Z") {
		t.Errorf("corpus lacks a loaded or a duplicate row:\n%s", all)
	}
}

// TestFastCheckersAgreeWithReference requires of the value checks that
// skip parsing (isCanonicalDateTime, isCanonicalDecimal; checkValueLocked
// and the fast insert path both use them) that every value they accept is
// one the parsing reference (dateTimeValue, decimalValue) stores as it is
// (else they would store what the reference rejects or reformats), over
// values that vary every position, and that they accept the canonical
// values a client sends, which is what makes them worth having. Email
// values are checked the same way against checkValueLocked.
func TestFastCheckersAgreeWithReference(t *testing.T) {
	type checker struct {
		name string
		fast func(string) bool
		ref  func(string) (string, bool)
	}
	dt := checker{"datetime", isCanonicalDateTime, dateTimeValue}
	dec := checker{"decimal", isCanonicalDecimal, decimalValue}
	accepted := 0
	check := func(c checker, v string, wantFast bool) {
		t.Helper()
		nv, ok := c.ref(v)
		if c.fast(v) {
			accepted++
			if nv != v || !ok {
				t.Errorf("%s %q: fast check accepts it, the reference gives %q, %v", c.name, v, nv, ok)
			}
		} else if wantFast {
			t.Errorf("%s %q: fast check rejects a canonical value", c.name, v)
		}
	}
	// Datetimes: every field boundary, and one character changed at each
	// position of a canonical value.
	base := "2024-02-29T23:59:59.999Z"
	for _, v := range []string{base, "0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "2000-02-29T12:30:45.001Z"} {
		check(dt, v, true)
	}
	for i := range base {
		for _, c := range "0123456789-:.TZtz +" {
			check(dt, base[:i]+string(c)+base[i+1:], false)
		}
	}
	for _, v := range []string{"2023-02-29T00:00:00.000Z", "2024-04-31T00:00:00.000Z", "1900-02-29T00:00:00.000Z",
		"2024-01-01T24:00:00.000Z", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00.0000Z", "2024-01-01T10:00:00.000+00:00"} {
		check(dt, v, false)
	}
	for y := 0; y < 10000; y += 97 {
		for m := 1; m <= 12; m++ {
			for d := 1; d <= 31; d++ {
				v := fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (y+d)%25, (m*d)%61, (y+m)%61, d*37%1000)
				check(dt, v, false)
			}
		}
	}
	// Decimals: canonical ones up to 15 digits, and their neighbours.
	for _, v := range []string{"0", "7985.34", "-12.5", "0.5", "0.05", "100", "123456789012345", "99999999999999.9",
		"0.00000000000001", "-0.1", "5"} {
		check(dec, v, true)
	}
	for _, v := range []string{"", "-", "-0", "-0.0", "00", "01", "0.50", "5.", ".5", "+5", "1e3", "1E3", "1,5", "1.2.3", "--1",
		"1234567890123456", "0.000000000000001", "9007199254740993", "0.1000000000000001", "1 ", " 1", "NaN", "Inf"} {
		check(dec, v, false)
	}
	for i := 0; i < 200000; i++ {
		n := uint64(i) * 2654435761 % 1000000000000000
		v := fmt.Sprint(n)
		if p := i % 17; p > 0 && p < len(v) {
			v = v[:len(v)-p] + "." + v[len(v)-p:]
		}
		if i%3 == 0 {
			v = "-" + v
		}
		check(dec, v, false)
	}
	if accepted < 100000 {
		t.Errorf("the fast checks accepted only %d values: the corpus proves little", accepted)
	}
	// Emails: validEmail is checkValueLocked's own check; the length is
	// the fast path's.
	s, err := NewHandler(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	em := &FieldDescribe{Name: "E", Label: "E", Type: "email", Length: 30}
	for _, v := range []string{"a@b.c", "a@b", "@b.c", "a@", "a b@c.d", "a,b@c.d", "a;b@c.d", "a@@b.c", strings.Repeat("a", 31) + "@b.c"} {
		s.mu.Lock()
		_, e := s.checkValueLocked(em, v, 1)
		s.mu.Unlock()
		if fast := len(v) <= em.Length && validEmail(v); fast != (e == "") {
			t.Errorf("email %q: fast check says %v, checkValueLocked gives %q", v, fast, e)
		}
	}
}
