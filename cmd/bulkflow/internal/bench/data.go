// Package bench holds the parts of `bulkflow bench` that do not run
// pipelines: the deterministic warehouse-like data generator (CSV and
// Parquet, 14 columns, written as real exports write them: MM/DD/YYYY
// dates, Y/N flags, decimal text, about 4.5 % malformed emails that
// Salesforce rejects), the encoding/csv baseline copy, the order-independent
// row-set fingerprint that checks every scenario produced the same rows,
// and process measurements (peak RSS, CPU time, profiles). The command in
// cmd/bulkflow runs the scenarios in child processes and prints the report.
package bench

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Bench data layout and generation parameters. Bump dataVersion when
// the generator changes, so that a kept --data folder is regenerated.
const (
	dataVersion    = 3
	seed1          = 20260101
	seed2          = 42
	rowGroupRows   = 128 * 1024
	CSVFile        = "accounts.csv"
	ParquetFile    = "accounts.parquet"
	ChangedCSVFile = "accounts-changed.csv"
	MetaFile       = "bench-data.json"
	IOBuffer       = 1 << 20
)

// ChangedEvery says which rows ChangedCSVFile changes: every
// ChangedEvery'th row (1 %) has another city, so its mapped row (City)
// differs; every other row is the same as in CSVFile.
const ChangedEvery = 100

// ChangedRows returns how many of rows rows ChangedCSVFile changes.
func ChangedRows(rows int) int { return rows / ChangedEvery }

// meta describes the data in a bench folder.
type meta struct {
	Version int `json:"version"`
	Rows    int `json:"rows"`
}

// EnsureData makes dir hold the CSV and Parquet files of rows rows,
// reusing them when the folder's metadata says they already do.
func EnsureData(dir string, rows int, stderr io.Writer) error {
	metaPath := filepath.Join(dir, MetaFile)
	if data, err := os.ReadFile(metaPath); err == nil {
		var m meta
		if json.Unmarshal(data, &m) == nil && m == (meta{dataVersion, rows}) {
			_, err1 := os.Stat(filepath.Join(dir, CSVFile))
			_, err2 := os.Stat(filepath.Join(dir, ParquetFile))
			_, err3 := os.Stat(filepath.Join(dir, ChangedCSVFile))
			if err1 == nil && err2 == nil && err3 == nil {
				return nil
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Remove(metaPath) // stale until both files are written
	start := time.Now()
	if err := Generate(dir, rows); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: generated %d rows in %s in %.1fs\n", rows, dir, time.Since(start).Seconds())
	data, _ := json.Marshal(meta{dataVersion, rows})
	return os.WriteFile(metaPath, data, 0o644)
}

// Layouts of the generated CSV's dates, as a US warehouse export writes
// them (the bench mapping parses them with sfDate and sfDateTime).
const (
	DateLayout     = "01/02/2006"
	DateTimeLayout = "01/02/2006 15:04:05"
)

// BadEmailPercent is the percentage of rows (about) whose email is
// malformed ("name at example.com"): Salesforce, and the emulator,
// reject them with INVALID_EMAIL_ADDRESS.
const BadEmailPercent = 4.5

// row is one generated warehouse row.
type row struct {
	id                                 int64
	first, last, email, phone, company string
	street, city, country              string
	revenueCents                       int64 // < 0: empty
	signup                             time.Time
	updated                            time.Time
	active                             bool
	notes                              string
}

var (
	benchFirst     = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Dennis", "Margaret", "Linus", "Frances", "John", "Radia"}
	benchLast      = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Ritchie", "Hamilton", "Torvalds", "Allen", "McCarthy", "Perlman"}
	benchCities    = []string{"Springfield", "Berlin", "London", "Paris", "Tokyo", "Stockholm", "Austin", "Lyon", "Osaka", "Malmo"}
	benchCountries = []string{"us", "de", "gb", "fr", "jp", "se", "ca", "au"}
	benchSuffixes  = []string{"Inc", "GmbH", "Ltd", "SA", "KK", "AB"}
	benchStreets   = []string{"Main St", "High St", "Elm Ave", "Lindenstrasse", "Rue de la Paix", "Market Sq"}
	benchNotes     = []string{"prefers email", "renewal due, call in Q3", "VIP; key account", "asked for a discount"}
)

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// generator generates the deterministic rows.
type generator struct {
	r    *rand.Rand
	i    int64
	base time.Time
}

// newGenerator returns the generator at the start of the sequence.
func newGenerator() *generator {
	return &generator{r: rand.New(rand.NewPCG(seed1, seed2)), base: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// next returns the next row.
func (g *generator) next() row {
	r := g.r
	g.i++
	fn, ln := benchFirst[r.IntN(len(benchFirst))], benchLast[r.IntN(len(benchLast))]
	row := row{
		id: 1_000_000 + g.i, first: fn, last: ln,
		email:   strings.ToLower(fn+"."+ln) + strconv.FormatInt(g.i, 10) + "@example.com",
		company: ln + " " + benchSuffixes[r.IntN(len(benchSuffixes))],
		street:  strconv.Itoa(1+r.IntN(9999)) + " " + benchStreets[r.IntN(len(benchStreets))],
		city:    benchCities[r.IntN(len(benchCities))], country: benchCountries[r.IntN(len(benchCountries))],
		revenueCents: r.Int64N(pow10[6+r.IntN(5)]), // $10k to $100M: a fifth to two fifths above $1M
		signup:       g.base.AddDate(0, 0, r.IntN(5800)),
		updated:      g.base.Add(time.Duration(r.Int64N(16*365*24*3600)) * time.Second),
		active:       r.IntN(3) > 0,
	}
	if r.IntN(1000) < int(BadEmailPercent*10) {
		row.email = strings.Replace(row.email, "@", " at ", 1)
	}
	if r.IntN(20) > 0 { // 5% empty phones
		row.phone = fmt.Sprintf("+1-%03d-555-%04d", 200+r.IntN(800), r.IntN(10000))
	}
	// Revenue is never empty: a null decimal in the Parquet file maps to
	// "#N/A" (clear the field), an empty CSV cell to "" (leave it), and
	// the two inputs must give the same job rows.
	switch x := r.IntN(100); {
	case x == 0: // 1%: commas, quotes and an embedded newline
		row.notes = fmt.Sprintf("called %d times, said \"call back later\"\nthen emailed, \"urgent\"", 1+r.IntN(9))
	case x < 25:
		row.notes = benchNotes[r.IntN(len(benchNotes))]
	}
	return row
}

// Header is the header of the generated CSV (the Parquet column
// names too).
var Header = []string{"id", "first_name", "last_name", "email", "phone", "company", "street", "city",
	"country", "revenue", "signup_date", "updated_at", "active", "notes"}

// Generate writes rows rows to dir/accounts.csv and, with the same values
// and typed columns, to dir/accounts.parquet; dir/accounts-changed.csv is
// accounts.csv with every ChangedEvery'th row's city changed (the second
// run of the sync scenario).
func Generate(dir string, rows int) error {
	cw, err := createCSV(filepath.Join(dir, CSVFile))
	if err != nil {
		return err
	}
	defer cw.f.Close()
	changed, err := createCSV(filepath.Join(dir, ChangedCSVFile))
	if err != nil {
		return err
	}
	defer changed.f.Close()
	pq, err := newParquetWriter(filepath.Join(dir, ParquetFile))
	if err != nil {
		return err
	}
	defer pq.release()
	if err := errors.Join(cw.Write(Header), changed.Write(Header)); err != nil {
		return err
	}
	g := newGenerator()
	rec := make([]string, len(Header))
	for i := range rows {
		row := g.next()
		revenue := ""
		if row.revenueCents >= 0 {
			revenue = fmt.Sprintf("%d.%02d", row.revenueCents/100, row.revenueCents%100)
		}
		active := "N"
		if row.active {
			active = "Y"
		}
		rec = append(rec[:0], strconv.FormatInt(row.id, 10), row.first, row.last, row.email, row.phone,
			row.company, row.street, row.city, row.country, revenue, row.signup.Format(DateLayout),
			row.updated.Format(DateTimeLayout), active, row.notes)
		if err := cw.Write(rec); err != nil {
			return err
		}
		if (i+1)%ChangedEvery == 0 {
			rec[7] = row.city + " North" // the city column
		}
		if err := changed.Write(rec); err != nil {
			return err
		}
		if err := pq.add(row, (i+1)%rowGroupRows == 0); err != nil {
			return err
		}
	}
	if err := pq.close(); err != nil {
		return err
	}
	return errors.Join(cw.close(), changed.close())
}

// csvFile is a generated CSV file being written.
type csvFile struct {
	*csv.Writer
	f  *os.File
	bw *bufio.Writer
}

// createCSV creates the CSV file at path.
func createCSV(path string) (*csvFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, IOBuffer)
	return &csvFile{Writer: csv.NewWriter(bw), f: f, bw: bw}, nil
}

// close flushes and closes the file.
func (c *csvFile) close() error {
	c.Flush()
	if err := c.Error(); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.f.Close()
}

// parquetWriter writes generated rows as typed Parquet columns, a row group
// of rowGroupRows at a time.
type parquetWriter struct {
	f  *os.File
	pw *pqarrow.FileWriter
	rb *array.RecordBuilder
}

// newParquetWriter creates the Parquet file at path.
func newParquetWriter(path string) (*parquetWriter, error) {
	revType := &arrow.Decimal128Type{Precision: 12, Scale: 2}
	tsType := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	str := arrow.BinaryTypes.String
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "first_name", Type: str}, {Name: "last_name", Type: str}, {Name: "email", Type: str},
		{Name: "phone", Type: str}, {Name: "company", Type: str}, {Name: "street", Type: str},
		{Name: "city", Type: str}, {Name: "country", Type: str},
		{Name: "revenue", Type: revType, Nullable: true},
		{Name: "signup_date", Type: arrow.FixedWidthTypes.Date32},
		{Name: "updated_at", Type: tsType},
		{Name: "active", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "notes", Type: str},
	}, nil)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(rowGroupRows))
	pw, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		f.Close()
		return nil, err
	}
	return &parquetWriter{f: f, pw: pw, rb: array.NewRecordBuilder(memory.NewGoAllocator(), schema)}, nil
}

// add appends row; with flush it writes the rows added so far as a row group.
func (w *parquetWriter) add(row row, flush bool) error {
	rb := w.rb
	rb.Field(0).(*array.Int64Builder).Append(row.id)
	for j, s := range []string{row.first, row.last, row.email, row.phone, row.company, row.street, row.city, row.country} {
		rb.Field(1 + j).(*array.StringBuilder).Append(s)
	}
	if row.revenueCents >= 0 {
		rb.Field(9).(*array.Decimal128Builder).Append(decimal128.FromI64(row.revenueCents))
	} else {
		rb.Field(9).AppendNull()
	}
	rb.Field(10).(*array.Date32Builder).Append(arrow.Date32FromTime(row.signup))
	rb.Field(11).(*array.TimestampBuilder).Append(arrow.Timestamp(row.updated.UnixMicro()))
	rb.Field(12).(*array.BooleanBuilder).Append(row.active)
	rb.Field(13).(*array.StringBuilder).Append(row.notes)
	if flush {
		return w.flush()
	}
	return nil
}

// flush writes the rows added since the last flush, if any.
func (w *parquetWriter) flush() error {
	rec := w.rb.NewRecordBatch()
	defer rec.Release()
	if rec.NumRows() == 0 {
		return nil
	}
	return w.pw.Write(rec)
}

// close writes the last rows and the footer, and closes the file.
func (w *parquetWriter) close() error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.pw.Close(); err != nil { // closes the file too
		return err
	}
	if err := w.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// release frees the record builder and closes the file if close was not
// reached.
func (w *parquetWriter) release() {
	w.rb.Release()
	w.f.Close()
}
