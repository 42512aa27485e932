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
		for _, o := range []string{"Account", "Contact"} {
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
	if all := strings.Join(fast, "\n"); !strings.Contains(all, `"true","Acme"`) || !strings.Contains(all, "DUPLICATE_VALUE") {
		t.Errorf("corpus lacks a loaded or a duplicate row:\n%s", all)
	}
}
