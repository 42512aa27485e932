package bench

import (
	"bytes"
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
	for _, f := range []string{CSVFile, ParquetFile} {
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
}
