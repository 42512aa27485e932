package bench

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// RowSet is an order-independent fingerprint of a multiset of CSV records:
// the count and the sum (mod 2^64) of each record's xxhash64. Two outputs
// that hold the same records in any order and split into any number of
// job files have equal rowSets; a lost, duplicated or changed record
// changes it (up to 64-bit collisions).
type RowSet struct {
	Rows   int64  `json:"rows"`
	Sum    uint64 `json:"sum"`
	Header string `json:"header"`
}

// String renders the fingerprint for error messages.
func (s RowSet) String() string {
	return fmt.Sprintf("%d rows, sum %016x, header %q", s.Rows, s.Sum, s.Header)
}

// Add folds the records of one job CSV (header first) into s. Every file
// must have the same header.
func (s *RowSet) Add(name string, r io.Reader) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	var d xxhash.Digest
	var lenBuf [4]byte
	for line := 0; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if line == 0 {
			h := fmt.Sprint(rec)
			if s.Header == "" {
				s.Header = h
			} else if s.Header != h {
				return fmt.Errorf("%s: header %s differs from %s", name, h, s.Header)
			}
			continue
		}
		d.Reset()
		for _, f := range rec {
			// Length-prefix each field so that ("a,b","c") and ("a","b,c") differ.
			n := len(f)
			lenBuf = [4]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
			d.Write(lenBuf[:])
			d.WriteString(f)
		}
		s.Rows++
		s.Sum += d.Sum64()
	}
}

// PlanRowSet fingerprints the job CSVs `bulkflow plan` wrote for the
// bench's sink stage under out.
func PlanRowSet(out string) (RowSet, error) {
	files, err := filepath.Glob(filepath.Join(out, "plan", "load", "job-*.csv"))
	if err != nil {
		return RowSet{}, err
	}
	if len(files) == 0 {
		return RowSet{}, fmt.Errorf("no job CSVs under %s", filepath.Join(out, "plan", "load"))
	}
	slices.Sort(files)
	var s RowSet
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return RowSet{}, err
		}
		if err := s.Add(f, bytes.NewReader(data)); err != nil {
			return RowSet{}, err
		}
	}
	return s, nil
}

// UploadedRowSet fingerprints the CSVs the emulator received, one per
// ingest job, as returned by uploaded for each job id.
func UploadedRowSet(ids []string, uploaded func(id string) []byte) (RowSet, error) {
	if len(ids) == 0 {
		return RowSet{}, errors.New("the emulator received no jobs")
	}
	var s RowSet
	for _, id := range ids {
		if err := s.Add("job "+id, bytes.NewReader(uploaded(id))); err != nil {
			return RowSet{}, err
		}
	}
	return s, nil
}
