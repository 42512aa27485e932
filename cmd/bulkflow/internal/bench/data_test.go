package bench

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBenchGenerateDeterministic checks that the generator writes the
// same bytes twice and puts quotes, commas and newlines in some notes.
func TestBenchGenerateDeterministic(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	for _, d := range []string{d1, d2} {
		if err := Generate(d, 500); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{CSVFile, ParquetFile, ChangedCSVFile} {
		a, _ := os.ReadFile(filepath.Join(d1, f))
		b, _ := os.ReadFile(filepath.Join(d2, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two generations (%d, %d bytes)", f, len(a), len(b))
		}
	}
	csvData, _ := os.ReadFile(filepath.Join(d1, CSVFile))
	if !bytes.Contains(csvData, []byte(`""call back later""`)) {
		t.Errorf("no note with quotes, commas and a newline in 500 rows")
	}
	// Real exports' forms: MM/DD/YYYY dates, Y/N flags, a few malformed
	// emails for Salesforce to reject.
	lines := strings.Split(string(csvData), "\n")
	if !regexp.MustCompile(`,\d\d/\d\d/\d{4},\d\d/\d\d/\d{4} \d\d:\d\d:\d\d,[YN],`).MatchString(lines[1]) {
		t.Errorf("row 1 lacks MM/DD/YYYY dates and a Y/N flag: %s", lines[1])
	}
	if bad := strings.Count(string(csvData), " at example.com"); bad < 10 || bad > 45 {
		t.Errorf("%d malformed emails in 500 rows, want about %.1f %%", bad, BadEmailPercent)
	}
	// The changed copy differs in the city of every ChangedEvery'th row.
	changed := readCSV(t, filepath.Join(d1, ChangedCSVFile))
	orig := readCSV(t, filepath.Join(d1, CSVFile))
	if len(changed) != len(orig) {
		t.Fatalf("%s has %d records, %s %d", ChangedCSVFile, len(changed), CSVFile, len(orig))
	}
	diff := 0
	for i := 1; i < len(orig); i++ {
		for j := range orig[i] {
			if orig[i][j] == changed[i][j] {
				continue
			}
			diff++
			if j != 7 || i%ChangedEvery != 0 {
				t.Errorf("record %d column %s changed (%q -> %q); want only the city of every %dth", i, Header[j], orig[i][j], changed[i][j], ChangedEvery)
			}
		}
	}
	if diff != ChangedRows(500) {
		t.Errorf("%d rows changed, want %d", diff, ChangedRows(500))
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}
