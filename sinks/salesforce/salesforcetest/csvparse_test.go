package salesforcetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// checkParseUpload compares parseUpload with parseCSV (encoding/csv) on data.
func checkParseUpload(t *testing.T, data []byte, delim rune) {
	t.Helper()
	wh, wr, werr := parseCSV(data, delim)
	gh, gt, gerr := parseUpload(data, delim)
	gr := gt.rows(0)
	if !reflect.DeepEqual(gh, wh) || !reflect.DeepEqual(gr, wr) || (gerr == nil) != (werr == nil) ||
		gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("parseUpload(%q, %q)\n got %q %q %v\nwant %q %q %v", data, delim, gh, gr, gerr, wh, wr, werr)
	}
	// validateUpload skips its line-ending scan for lfOnly text.
	if gt.lfOnly && bytes.ContainsAny(data, "\r\"") {
		t.Fatalf("parseUpload(%q, %q): lfOnly, but data holds a quote or carriage return", data, delim)
	}
	// Plain rows are split again on every read: each way must find the
	// values rows found.
	for r, row := range gr {
		if gt.width(r) != len(row) || rowSize(gt, r) != resultSize(row) {
			t.Fatalf("parseUpload(%q, %q) row %d: width %d, size %d; want %d, %d",
				data, delim, r, gt.width(r), rowSize(gt, r), len(row), resultSize(row))
		}
		for c, v := range row {
			if got := gt.value(r, c); got != v {
				t.Fatalf("parseUpload(%q, %q) row %d value %d: %q, want %q", data, delim, r, c, got, v)
			}
		}
		rw := &resultWriter{delim: byte(delim), eol: "\n"}
		rw.tableRow("id", "s", gt, r)
		want := &resultWriter{delim: byte(delim), eol: "\n"}
		want.row(append([]string{"id", "s"}, row...))
		if string(rw.buf) != string(want.buf) {
			t.Fatalf("parseUpload(%q, %q) row %d result %q, want %q", data, delim, r, rw.buf, want.buf)
		}
	}
}

func TestParseUploadMatchesEncodingCSV(t *testing.T) {
	for _, s := range []string{
		"a,b\n1,2\n", "a,b\n1,2", "a,b\r\n1,2\r\n", "a,b\n1,2,\n", "a,b\n,\n", "a\n\"\"\n", "a\n\n1\n",
		"a,b\n\"x,\"\"y\"\"\nz\",2\n", "a,b\n\"x\"y,2\n", "a,b\nx\"y,2\n", "a,b\n\"open,2\n", "a,b\n1,2\r",
		"a,b\n1\r2,3\n", "a,b\n\"1\r\n2\",3\n", "\ufeffa\n1\n", "\n", "a", "a\n", "a,b\n1,2\n\n", "a,b\n1\n1,2,3\n",
		"a;b\n1;\"2;3\"\n",
	} {
		checkParseUpload(t, []byte(s), ',')
		checkParseUpload(t, []byte(s), ';')
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab,;\"\r\n ")
	for n := 0; n < 200000; n++ {
		b := make([]byte, rng.IntN(16)+1)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		checkParseUpload(t, b, ',')
	}
}

func FuzzParseUpload(f *testing.F) {
	f.Add([]byte("a,b\n\"x,\"\"y\"\"\nz\",2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParseUpload(t, data, ',')
	})
}

// TestIsPlainDateMatchesTimeParse checks the date fast path against
// time.Parse for every day of a few years and some malformed inputs.
func TestIsPlainDateMatchesTimeParse(t *testing.T) {
	var cases []string
	for _, y := range []string{"0000", "1900", "2000", "2023", "2024", "9999"} {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				cases = append(cases, fmt.Sprintf("%s-%02d-%02d", y, m, d))
			}
		}
	}
	cases = append(cases, "2024-1-01", "2024/01/01", "+202-01-01", "-202-01-01", "2024-01-0a", "", "2024-01-011")
	for _, v := range cases {
		if isPlainDate(v) && !parsesAsDate(v) {
			t.Errorf("isPlainDate(%q) = true, time.Parse rejects it", v)
		}
		if len(v) == 10 && parsesAsDate(v) && !isPlainDate(v) && v[0] >= '0' && v[0] <= '9' {
			t.Errorf("isPlainDate(%q) = false, time.Parse accepts it", v)
		}
	}
}

// BenchmarkParseUpload parses a 10,000-row, 8-column upload.
func BenchmarkParseUpload(b *testing.B) {
	buf := []byte("External_Id__c,Name,BillingCountry,SLAExpirationDate__c,Active__c,Rating,AccountNumber,NumberOfEmployees\n")
	for i := 0; i < 10000; i++ {
		buf = fmt.Appendf(buf, "ext-%d,First%d Last%d,US,2024-01-%02d,true,Hot,AN-%d,%d\n", i, i, i%977, i%28+1, i, i%5000)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := parseUpload(buf, ','); err != nil {
			b.Fatal(err)
		}
	}
}
