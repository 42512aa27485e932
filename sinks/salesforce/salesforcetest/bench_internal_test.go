package salesforcetest

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// leadBenchObjects is the catalog of `bulkflow bench`: the built-in one
// with the bench mapping's custom Lead fields.
func leadBenchObjects() []ObjectDescribe {
	objs := DefaultObjects()
	field := func(name, typ string, length int) FieldDescribe {
		return FieldDescribe{Name: name, Label: name, Type: typ, Length: length, Nillable: true, Createable: true, Updateable: true}
	}
	for i := range objs {
		if objs[i].Name == "Lead" {
			objs[i].Fields = append(objs[i].Fields, field("City", "string", 40), field("Country", "string", 80),
				field("Full_Name__c", "string", 121), field("Signup_Date__c", "date", 0),
				field("Last_Activity__c", "datetime", 0), field("Active__c", "boolean", 0), field("Tier__c", "string", 20))
		}
	}
	return objs
}

// leadBenchCSV returns a job CSV like those `bulkflow bench` uploads: the
// bench mapping's 15 Lead columns (a datetime, a currency, an email, a
// date, a boolean, a restricted picklist and strings), rows
// [first, first+n), one in 22 with a malformed email (rejected) and one in
// 10 with a currency value spelled with a trailing zero (stored
// reformatted), as in the bench data.
func leadBenchCSV(first, n int) []byte {
	cities := []string{"Stockholm", "Tokyo", "Berlin", "Paris", "Austin"}
	buf := make([]byte, 0, 256*n)
	buf = append(buf, "External_Id__c,FirstName,LastName,Email,Phone,Company,City,AnnualRevenue,Full_Name__c,Country,Signup_Date__c,Last_Activity__c,Active__c,Tier__c,Status\n"...)
	for k := first; k < first+n; k++ {
		buf = strconv.AppendInt(buf, int64(1000000+k), 10)
		buf = fmt.Appendf(buf, ",First%d,Last%d,", k%911, k%977)
		if k%22 == 0 {
			buf = fmt.Appendf(buf, "first%d.example.com", k) // no "@": INVALID_EMAIL_ADDRESS
		} else {
			buf = fmt.Appendf(buf, "first%d.last%d@example.com", k%911, k)
		}
		buf = fmt.Appendf(buf, ",+1-%03d-555-%04d,Last%d GmbH,%s,%d.%d%d,First%d Last%d,SE,", k%1000, k%10000, k%977,
			cities[k%5], k*7919%10000000, k%7+1, k%10, k%911, k%977)
		buf = fmt.Appendf(buf, "20%02d-%02d-%02d,20%02d-%02d-%02dT%02d:%02d:%02d.000Z,", k%26, k%12+1, k%28+1,
			k%26, k%12+1, k%28+1, k%24, k%60, k*7%60)
		buf = strconv.AppendBool(buf, k%3 == 0)
		buf = append(buf, ",SMB,Open - Not Contacted\n"...)
	}
	return buf
}

// BenchmarkIngestLead mirrors `bulkflow bench` scenario (d) in process:
// each iteration loads leadBenchCSV's jobs (10 insert jobs of 10,000 rows)
// into a fresh server through its HTTP handler, without a network (the
// emulator's own CPU, none of a client's), and fetches every job's
// successfulResults and failedResults. It reports the CPU of the process
// per row, steadier than wall time on a shared machine.
func BenchmarkIngestLead(b *testing.B) {
	const jobs, rowsPerJob = 10, 10000
	csvs := make([][]byte, jobs)
	for k := range csvs {
		csvs[k] = leadBenchCSV(k*rowsPerJob, rowsPerJob)
	}
	objs := leadBenchObjects()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		cpu0 := ProcessCPU()
		s, err := NewHandler(&Options{Objects: objs})
		if err != nil {
			b.Fatal(err)
		}
		do := func(method, path, body, ctype string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, "/services/data/v62.0"+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+s.AccessToken())
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Accept-Encoding", "identity") // as bulkflow asks a loopback host
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code >= 300 {
				b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
			}
			return rec
		}
		for _, data := range csvs {
			rec := do("POST", "/jobs/ingest", `{"object":"Lead","operation":"insert"}`, "application/json")
			id := jsonField(rec.Body.String(), "id")
			do("PUT", "/jobs/ingest/"+id+"/batches", string(data), "text/csv")
			do("PATCH", "/jobs/ingest/"+id, `{"state":"UploadComplete"}`, "application/json")
			if err := s.AwaitJobState(b.Context(), id, StateJobComplete); err != nil {
				b.Fatal(err)
			}
			ji, _ := s.Job(id)
			if ji.NumberRecordsFailed == 0 || ji.NumberRecordsFailed > rowsPerJob/10 {
				b.Fatalf("job %s: %+v", id, ji)
			}
			do("GET", "/jobs/ingest/"+id+"/successfulResults", "", "")
			do("GET", "/jobs/ingest/"+id+"/failedResults", "", "")
		}
		s.Close()
		cpu += ProcessCPU() - cpu0
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(jobs*rowsPerJob*b.N), "cpu-ns/row")
}

// jsonField returns the string value of key in the flat JSON object body.
func jsonField(body, key string) string {
	_, rest, _ := strings.Cut(body, `"`+key+`":"`)
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
