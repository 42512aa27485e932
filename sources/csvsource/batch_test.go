package csvsource_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// TestBatchValues reads random records of every column type (quoted
// fields, nulls, empty cells, bad values in any column) with several batch
// sizes and checks every value and drop against a straightforward reading
// with encoding/csv: the per-batch text and value slabs must give each row
// its own values, whatever the batch boundaries and bad records.
func TestBatchValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	header := []string{"s1", "i", "s2", "f", "d", "ts", "dec", "b", "s3"}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(header)
	words := []string{"", "a", "hello world", "NULL", "x,y", `say "hi"`, "multi\nline", "ünïcode", "1", "2024-02-29"}
	pick := func(good, bad string) string {
		switch r.IntN(40) {
		case 0:
			return bad
		case 1:
			return ""
		case 2:
			return "NULL"
		}
		return good
	}
	const n = 700
	for i := range n {
		w.Write([]string{
			words[r.IntN(len(words))],
			pick(strconv.Itoa(r.IntN(1e9)-5e8), "12x"),
			words[r.IntN(len(words))],
			pick(strconv.FormatFloat(r.Float64()*1e6, 'f', -1, 64), "1.2.3"),
			pick(time.Date(2000+r.IntN(30), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly), "2023-02-30"),
			pick(time.Unix(r.Int64N(2e9), 0).UTC().Format(time.RFC3339), "yesterday"),
			pick(fmt.Sprintf("%d.%02d", r.IntN(1e6), r.IntN(100)), "1e5"),
			pick([]string{"true", "no", "1"}[r.IntN(3)], "maybe"),
			words[r.IntN(len(words))] + strconv.Itoa(i),
		})
	}
	w.Flush()
	data := buf.Bytes()
	cols := csvsource.Columns{{Name: "i", Type: "int"}, {Name: "f", Type: "float"}, {Name: "d", Type: "date"},
		{Name: "ts", Type: "timestamp"}, {Name: "dec", Type: "decimal"}, {Name: "b", Type: "bool"}}

	// The expected rows, read with encoding/csv.
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var want []pipeline.Row
	var wantBad []int64
	for k, rec := range recs[1:] {
		row := make(pipeline.Row, len(rec))
		ok := true
		for j, f := range rec {
			var v any
			var err error
			switch {
			case f == "NULL":
			case j == 0 || j == 2 || j == 8:
				v = f
			case f == "":
			case j == 1:
				v, err = strconv.ParseInt(f, 10, 64)
			case j == 3:
				v, err = strconv.ParseFloat(f, 64)
			case j == 4:
				v, err = time.Parse(time.DateOnly, f)
			case j == 5:
				v, err = time.Parse(time.RFC3339, f)
			case j == 6:
				v = f
				if f == "1e5" {
					err = fmt.Errorf("bad")
				}
			case j == 7:
				v = map[string]bool{"true": true, "1": true, "no": false}[f]
				if f == "maybe" {
					err = fmt.Errorf("bad")
				}
			}
			if err != nil {
				ok = false
				break
			}
			row[j] = v
		}
		if ok {
			want = append(want, row)
		} else {
			wantBad = append(wantBad, int64(k+1))
		}
	}
	if len(wantBad) == 0 || len(want) < n/2 {
		t.Fatalf("test data: %d good, %d bad rows", len(want), len(wantBad))
	}

	for _, size := range []int{1, 3, 64, 1024} {
		dir := writeFiles(t, map[string]string{"a.csv": string(data)})
		_, rows, _, drops, err := readAll(t, dir, &csvsource.Options{URL: "a.csv", Columns: cols, NullValues: []string{"NULL"}, BatchSize: size})
		if err != nil {
			t.Fatalf("batch %d: %v", size, err)
		}
		if len(rows) != len(want) {
			t.Fatalf("batch %d: %d rows, want %d", size, len(rows), len(want))
		}
		for i := range rows {
			if !reflect.DeepEqual(rows[i], want[i]) {
				t.Fatalf("batch %d: row %d:\n got %#v\nwant %#v", size, i, rows[i], want[i])
			}
		}
		var bad []int64
		for _, d := range drops {
			bad = append(bad, d.Origin.Row)
			if len(d.Row) != len(header) || d.Raw == "" {
				t.Errorf("batch %d: drop %+v: want the record's fields and raw text", size, d)
			}
		}
		if !reflect.DeepEqual(bad, wantBad) {
			t.Errorf("batch %d: dropped rows %v, want %v", size, bad, wantBad)
		}
	}
}
