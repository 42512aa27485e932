package bench

import (
	"bytes"
	"os"
	"path/filepath"
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
}
