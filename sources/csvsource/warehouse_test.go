package csvsource

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// warehouseData returns a CSV of n rows shaped like `bulkflow bench`'s
// data (a warehouse export): 14 columns of mostly short unquoted text
// (ids, names, emails, phones, MM/DD/YYYY dates, Y/N flags, decimal
// text), about 5 % of records quoted ("a, b" notes) and 1 % with quotes
// and an embedded newline.
func warehouseData(n int) []byte {
	rnd := rand.New(rand.NewPCG(7, 11))
	first := []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Dennis", "Margaret"}
	last := []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Ritchie"}
	cities := []string{"Springfield", "Berlin", "London", "Paris", "Tokyo", "Malmö"}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"id", "first_name", "last_name", "email", "phone", "company", "street", "city",
		"country", "revenue", "signup_date", "updated_at", "active", "notes"})
	for i := range n {
		fn, ln := first[rnd.IntN(len(first))], last[rnd.IntN(len(last))]
		notes := ""
		switch x := rnd.IntN(100); {
		case x == 0:
			notes = "called 3 times, said \"call back later\"\nthen emailed"
		case x < 5:
			notes = "renewal due, call in Q3"
		case x < 25:
			notes = "prefers email"
		}
		w.Write([]string{strconv.Itoa(1_000_000 + i), fn, ln,
			fmt.Sprintf("%s.%s%d@example.com", fn, ln, i), fmt.Sprintf("+1-%03d-555-%04d", 200+rnd.IntN(800), rnd.IntN(10000)),
			ln + " GmbH", fmt.Sprintf("%d Main St", 1+rnd.IntN(9999)), cities[rnd.IntN(len(cities))], "de",
			fmt.Sprintf("%d.%02d", rnd.IntN(10_000_000), rnd.IntN(100)),
			fmt.Sprintf("%02d/%02d/20%02d", 1+rnd.IntN(12), 1+rnd.IntN(28), 10+rnd.IntN(15)),
			fmt.Sprintf("%02d/%02d/20%02d %02d:%02d:%02d", 1+rnd.IntN(12), 1+rnd.IntN(28), 10+rnd.IntN(15), rnd.IntN(24), rnd.IntN(60), rnd.IntN(60)),
			[]string{"Y", "N"}[rnd.IntN(2)], notes})
	}
	w.Flush()
	return buf.Bytes()
}

// warehouseRows is the size of BenchmarkWarehouse's data: enough for
// several batches and buffer refills, small enough to generate quickly.
const warehouseRows = 200_000

var (
	warehouseOnce  sync.Once
	warehouseBytes []byte
)

// warehouseProject is what the bench's Lead mapping reads: 12 of the 14
// columns (not street, not notes).
var warehouseProject = []string{"id", "first_name", "last_name", "email", "phone", "company",
	"city", "country", "revenue", "signup_date", "updated_at", "active"}

// BenchmarkWarehouse reads warehouseData through the whole source (file
// object, default options, every column or the bench mapping's
// projection) and reports per row: wall and CPU nanoseconds (the process's
// CPU, the collector's included), bytes and allocations.
func BenchmarkWarehouse(b *testing.B) {
	warehouseOnce.Do(func() { warehouseBytes = warehouseData(warehouseRows) })
	data := warehouseBytes
	ctx := context.Background()
	loc, err := blobio.Parse("", "file://"+b.TempDir()+"/data.csv")
	if err != nil {
		b.Fatal(err)
	}
	if err := blobio.WriteAll(ctx, loc, data); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		project []string
	}{{"all", nil}, {"projected", warehouseProject}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu0, cpuOK := processCPU()
			for b.Loop() {
				src, err := Open(ctx, nil, &Options{URL: loc.String()})
				if err != nil {
					b.Fatal(err)
				}
				if bc.project != nil {
					if err := src.Project(bc.project); err != nil {
						b.Fatal(err)
					}
				}
				n := 0
				for {
					batch, err := src.Read(ctx)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if len(batch.Drops()) > 0 {
						b.Fatalf("drop: %v", batch.Drops()[0].Err)
					}
					n += batch.Len()
				}
				src.Close()
				if n != warehouseRows {
					b.Fatalf("read %d rows, want %d", n, warehouseRows)
				}
			}
			cpu1, _ := processCPU()
			runtime.ReadMemStats(&ms1)
			rows := float64(b.N) * warehouseRows
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
			if cpuOK {
				// CPU (the collector's included) is steadier than wall
				// time on a shared machine.
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/rows, "cpu-ns/row")
			}
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/rows, "B/row")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/rows, "allocs/row")
		})
	}
}

// TestStringCellsMatchCells reads warehouseData (quoted, multi-line and
// non-ASCII fields) through stringCells (every column a string, no null
// values) and through cells (forced by a null value that never occurs),
// with projections of adjacent and separate columns, and checks the rows
// and origins are the same.
func TestStringCellsMatchCells(t *testing.T) {
	data := warehouseData(3000)
	ctx := context.Background()
	loc, err := blobio.Parse("", "file://"+t.TempDir()+"/data.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := blobio.WriteAll(ctx, loc, data); err != nil {
		t.Fatal(err)
	}
	read := func(project []string, nulls []string, batch int) (rows []string, fast bool) {
		src, err := Open(ctx, nil, &Options{URL: loc.String(), NullValues: nulls, BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if project != nil {
			if err := src.Project(project); err != nil {
				t.Fatal(err)
			}
		}
		sch, err := src.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := src.Read(ctx)
			if err == io.EOF {
				return rows, src.runs != nil
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Drops()) > 0 {
				t.Fatalf("drop: %v", b.Drops()[0].Err)
			}
			for i := range b.Len() {
				rows = append(rows, b.Origin(i).String()+rowText(sch, b.Row(i)))
			}
		}
	}
	for _, project := range [][]string{nil, warehouseProject, {"notes"}, {"id", "notes"}, {"street", "city", "notes"}} {
		for _, batch := range []int{1, 100, 1024} {
			t.Run(fmt.Sprint(project, batch), func(t *testing.T) {
				got, fast := read(project, nil, batch)
				want, slow := read(project, []string{"\x00never"}, batch)
				if !fast || slow {
					t.Fatalf("stringCells used: %v without null values, %v with", fast, slow)
				}
				if len(got) != 3000 {
					t.Fatalf("%d rows, want 3000", len(got))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("row %d = %q, want %q", i, got[i], want[i])
					}
				}
			})
		}
	}
}
