package parquetsink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/thrift/lib/go/thrift"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/parquetsink"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// pageInfo is a page as found by walking a column chunk from the footer's
// offsets.
type pageInfo struct {
	off        int64
	typ        int32
	compressed int32
	crc        *int32
}

// readPageHeader decodes the fields of a Parquet PageHeader the test needs
// (type, compressed_page_size, crc) and returns the header's length.
func readPageHeader(b []byte) (pageInfo, int, error) {
	ctx := context.Background()
	mb := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(b)}
	p := thrift.NewTCompactProtocolConf(mb, &thrift.TConfiguration{})
	var pi pageInfo
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return pi, 0, err
	}
	for {
		_, typ, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return pi, 0, err
		}
		if typ == thrift.STOP {
			break
		}
		switch id {
		case 1:
			pi.typ, err = p.ReadI32(ctx)
		case 3:
			pi.compressed, err = p.ReadI32(ctx)
		case 4:
			var v int32
			v, err = p.ReadI32(ctx)
			pi.crc = &v
		default:
			err = thrift.SkipDefaultDepth(ctx, p, typ)
		}
		if err != nil {
			return pi, 0, err
		}
	}
	return pi, len(b) - mb.Len(), nil
}

// walkPages returns every page of every column chunk of a Parquet file,
// found from the footer's chunk offsets and sizes: the pages must tile each
// chunk exactly.
func walkPages(t *testing.T, path string) (pages []pageInfo, data []byte, rowGroups []int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	md := f.MetaData()
	for i := range md.NumRowGroups() {
		rg := md.RowGroup(i)
		rowGroups = append(rowGroups, rg.NumRows())
		for j := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(j)
			if err != nil {
				t.Fatal(err)
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
				start = cc.DictionaryPageOffset()
			}
			end := start + cc.TotalCompressedSize()
			if cc.FileOffset() != start {
				t.Errorf("row group %d column %d: file_offset %d, chunk starts at %d", i, j, cc.FileOffset(), start)
			}
			for off := start; off < end; {
				pi, n, err := readPageHeader(data[off:end])
				if err != nil {
					t.Fatalf("row group %d column %d: page header at %d: %v", i, j, off, err)
				}
				pi.off = off
				pages = append(pages, pi)
				off += int64(n) + int64(pi.compressed)
				if off > end {
					t.Fatalf("row group %d column %d: page at %d runs past the chunk's end %d", i, j, pi.off, end)
				}
			}
		}
	}
	return pages, data, rowGroups
}

// stringRows returns n rows of all with random text (poorly compressible)
// in name.
func stringRows(n int, seed uint64) []pipeline.Row {
	r := rand.New(rand.NewPCG(seed, 7))
	rows := make([]pipeline.Row, n)
	for i := range rows {
		rows[i] = randomRow(r, int64(i))
		b := make([]byte, 80)
		for k := range b {
			b[k] = byte('a' + r.IntN(26))
		}
		rows[i][1] = string(b)
	}
	return rows
}

// TestPageChecksums: every page of every column chunk (dictionary and data
// pages, several row groups, each codec) has a CRC equal to the CRC-32 of
// its body as stored, and the footer's offsets and sizes (moved for the
// CRCs) lead to every page.
func TestPageChecksums(t *testing.T) {
	for _, codec := range []string{"zstd", "snappy", "none"} {
		t.Run(codec, func(t *testing.T) {
			dir := t.TempDir()
			o := allOptions("out.parquet")
			o.Compression = codec
			o.RowGroupRows = 2000
			rows := stringRows(5000, 1)
			for i := range rows { // a low-cardinality column: dictionary pages
				rows[i][2] = float64(i % 3)
			}
			if err := writeRows(t, &pipeline.Env{BaseDir: dir}, o, all, rows); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "out.parquet")
			pages, data, rgs := walkPages(t, path)
			if fmt.Sprint(rgs) != "[2000 2000 1000]" {
				t.Errorf("row groups %v, want [2000 2000 1000]", rgs)
			}
			dict := 0
			for _, p := range pages {
				if p.typ == 2 {
					dict++
				}
				body := data[p.off:]
				_, n, _ := readPageHeader(body)
				body = body[n : n+int(p.compressed)]
				if p.crc == nil {
					t.Fatalf("page at %d (type %d) has no CRC", p.off, p.typ)
				}
				if got := int32(crc32.ChecksumIEEE(body)); got != *p.crc {
					t.Fatalf("page at %d: CRC %d in the header, %d of the body", p.off, *p.crc, got)
				}
			}
			if len(pages) < len(all.Fields())*3 || dict == 0 {
				t.Errorf("%d pages (%d dictionary pages): want every chunk's pages and some dictionaries", len(pages), dict)
			}
			_, got := readBack(t, path)
			if len(got) != len(rows) {
				t.Errorf("read back %d rows, want %d", len(got), len(rows))
			}
		})
	}
}

// TestCorruptPageIsRefused: a byte flipped in a page body no longer
// matches the page's CRC, and the parquet source refuses the file instead
// of returning other values.
func TestCorruptPageIsRefused(t *testing.T) {
	dir := t.TempDir()
	rows := stringRows(300, 2)
	if err := writeRows(t, &pipeline.Env{BaseDir: dir}, allOptions("out.parquet"), all, rows); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "out.parquet")
	pages, data, _ := walkPages(t, path)
	p := pages[len(pages)/2]
	_, n, _ := readPageHeader(data[p.off:])
	data[p.off+int64(n)+int64(p.compressed)/2] ^= 0x40
	bad := filepath.Join(dir, "bad.parquet")
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: bad})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := src.Read(ctx)
		if err == io.EOF {
			t.Fatal("the source read a file with a corrupt page to the end")
		}
		if err != nil {
			if !strings.Contains(strings.ToLower(err.Error()), "crc") && !strings.Contains(strings.ToLower(err.Error()), "checksum") {
				t.Errorf("read error %v does not name the checksum", err)
			}
			return
		}
	}
}

// TestRowGroupBytes: with row_group_bytes set, row groups close once their
// values' uncompressed size reaches it.
func TestRowGroupBytes(t *testing.T) {
	dir := t.TempDir()
	o := allOptions("out.parquet")
	o.RowGroupBytes = 256 << 10
	rows := stringRows(40000, 3)
	if err := writeRows(t, &pipeline.Env{BaseDir: dir}, o, all, rows); err != nil {
		t.Fatal(err)
	}
	f, err := file.OpenParquetFile(filepath.Join(dir, "out.parquet"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md := f.MetaData()
	if md.NumRowGroups() < 4 {
		t.Fatalf("%d row groups (the first %d bytes) with row_group_bytes %d", md.NumRowGroups(), md.RowGroup(0).TotalByteSize(), o.RowGroupBytes)
	}
	var total int64
	for i := range md.NumRowGroups() {
		rg := md.RowGroup(i)
		total += rg.NumRows()
		// Values are ~200 bytes a row (80-byte names and eight other
		// columns, decimals 16 and 32 bytes): a group holds about 1300
		// rows; compressed, it is well under the bound.
		if i < md.NumRowGroups()-1 && (rg.NumRows() < 500 || rg.NumRows() > 2000) {
			t.Errorf("row group %d: %d rows for row_group_bytes %d", i, rg.NumRows(), o.RowGroupBytes)
		}
		if rg.TotalCompressedSize() > o.RowGroupBytes {
			t.Errorf("row group %d: %d bytes compressed, more than row_group_bytes %d uncompressed", i, rg.TotalCompressedSize(), o.RowGroupBytes)
		}
	}
	if total != int64(len(rows)) {
		t.Errorf("%d rows in the row groups, want %d", total, len(rows))
	}
}

// TestPlaceholders: {run_id} and {date} name the object as for the csv
// sink (filesink.ExpandURL); an unknown placeholder is refused.
func TestPlaceholders(t *testing.T) {
	const runID = "20261205T081221Z-dd4ad0e4"
	dir := t.TempDir()
	if err := writeRows(t, &pipeline.Env{BaseDir: dir, RunID: runID}, &parquetsink.Options{URL: "out/{date}/a-{run_id}.parquet"}, all, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/2026-12-05/a-"+runID+".parquet")); err != nil {
		t.Error(err)
	}
	o := &parquetsink.Options{URL: "out/{runid}.parquet"}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "unknown placeholder {runid}") {
		t.Errorf("Validate = %v", err)
	}
}

// TestValidate: option errors name the option and the fix.
func TestValidate(t *testing.T) {
	tests := []struct {
		o    parquetsink.Options
		want string
	}{
		{parquetsink.Options{URL: "a.parquet"}, ""},
		{parquetsink.Options{URL: "a.parquet", Compression: "SNAPPY", TimestampUnit: "ns", Decimals: map[string]string{"x": " 76 , 0 "}}, ""},
		{parquetsink.Options{}, "url is required"},
		{parquetsink.Options{URL: "a.parquet", Compression: "gzip"}, `compression "gzip" must be zstd, snappy or none`},
		{parquetsink.Options{URL: "a.parquet", RowGroupRows: -1}, "row_group_rows -1 must be positive"},
		{parquetsink.Options{URL: "a.parquet", RowGroupBytes: -1}, "row_group_bytes -1 must be positive"},
		{parquetsink.Options{URL: "a.parquet", TimestampUnit: "ms"}, `timestamp_unit "ms" must be us or ns`},
		{parquetsink.Options{URL: "a.parquet", Decimals: map[string]string{"x": "18"}}, `decimals: x: "18" must be "precision,scale"`},
		{parquetsink.Options{URL: "a.parquet", Decimals: map[string]string{"x": "77,2"}}, "precision must be 1 to 76"},
		{parquetsink.Options{URL: "a.parquet", Decimals: map[string]string{"x": "4,5"}}, "scale 0 to the precision"},
	}
	for _, tc := range tests {
		err := tc.o.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}

// TestOpenRefuses: decimals naming a column the input lacks, or a column
// that is not decimal, are refused when the sink opens, before any row.
func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		decimals map[string]string
		want     string
	}{
		{map[string]string{"Amount": "18,2"}, `decimals: "Amount" is not a column of the sink's input`},
		{map[string]string{"name": "18,2"}, "decimals: name is a string column, not decimal"},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		_, err := pipeline.DefaultRegistry().OpenSink(context.Background(), &pipeline.Env{BaseDir: dir}, "parquet", &parquetsink.Options{URL: "a.parquet", Decimals: tc.decimals}, all)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenSink(decimals %v) = %v, want %q", tc.decimals, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "a.parquet")); err == nil {
			t.Errorf("a refused sink left a.parquet")
		}
	}
}

// TestMemoryFlat writes ~100 MB of incompressible text in row groups of
// 4 MiB and samples the live heap every ten batches: the sink holds a row
// group, never the file, so the heap stays far below the data written.
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MB")
	}
	sch := pipeline.MustSchema(pipeline.Field{Name: "id", Type: pipeline.TypeInt}, pipeline.Field{Name: "text", Type: pipeline.TypeString})
	dir := t.TempDir()
	ctx := context.Background()
	s, err := pipeline.DefaultRegistry().OpenSink(ctx, &pipeline.Env{BaseDir: dir}, "parquet", &parquetsink.Options{URL: "big.parquet", Compression: "none", RowGroupBytes: 4 << 20}, sch)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	text := make([]byte, 1000)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, uint64(0)
	const batches, per = 100, 1000
	for i := range batches {
		b := pipeline.NewBatch(sch, per)
		for j := range per {
			for k := range text {
				text[k] = byte('a' + r.IntN(26))
			}
			b.Append(pipeline.Row{int64(i*per + j), string(text)}, pipeline.Origin{})
		}
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 { // the live heap: what the sink holds
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "big.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	grown := int64(peak) - int64(base)
	t.Logf("file %d MB, heap peak %d MB above the start", fi.Size()>>20, grown>>20)
	if fi.Size() < 90<<20 || grown > 32<<20 {
		t.Errorf("file %d bytes, heap grew %d bytes: want a ~100 MB file written with under 32 MiB of heap", fi.Size(), grown)
	}
}

// TestLongNamesAndAny: a 1024-byte column name and long values (whose
// statistics are left out) still stream through the checksum writer; an
// "any" column is written as its values' text; a longer name is refused.
func TestLongNamesAndAny(t *testing.T) {
	long := strings.Repeat("n", 1024)
	sch := pipeline.MustSchema(pipeline.Field{Name: long, Type: pipeline.TypeString}, pipeline.Field{Name: "v", Type: pipeline.TypeAny})
	rows := []pipeline.Row{
		{strings.Repeat("x", 5000), int64(7)},
		{strings.Repeat("y", 300), time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)},
		{"z", nil},
	}
	dir := t.TempDir()
	if err := writeRows(t, &pipeline.Env{BaseDir: dir}, &parquetsink.Options{URL: "long.parquet"}, sch, rows); err != nil {
		t.Fatal(err)
	}
	got, _ := readBackText(t, filepath.Join(dir, "long.parquet"))
	want := "[[" + strings.Repeat("x", 5000) + " 7] [" + strings.Repeat("y", 300) + " 2026-12-05] [z <nil>]]"
	if fmt.Sprint(got) != want {
		t.Errorf("read back %.200v, want %.200v", got, want)
	}
	tooLong := pipeline.MustSchema(pipeline.Field{Name: long + "n", Type: pipeline.TypeString})
	_, err := pipeline.DefaultRegistry().OpenSink(context.Background(), &pipeline.Env{BaseDir: dir}, "parquet", &parquetsink.Options{URL: "x.parquet"}, tooLong)
	if err == nil || !strings.Contains(err.Error(), "is 1025 bytes long; the sink writes names of up to 1024 bytes") {
		t.Errorf("OpenSink with a 1025-byte name = %v", err)
	}
}

// readBackText reads an object through the parquet source as rows of
// values' text (nil stays nil).
func readBackText(t *testing.T, path string) ([][]any, *pipeline.Schema) {
	t.Helper()
	sch, rows := readBack(t, path)
	out := make([][]any, len(rows))
	for i, r := range rows {
		for _, v := range r {
			if v == nil {
				out[i] = append(out[i], nil)
			} else {
				out[i] = append(out[i], pipeline.Text(v))
			}
		}
	}
	return out, sch
}

// TestCommitFailure: when the object cannot be committed (its path became
// a directory after the sink opened), Close fails naming the path, leaves
// nothing behind and does not claim partial output, so the engine
// dead-letters the rows as sink_failed, as for the CSV sink.
func TestCommitFailure(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	loc, _ := blobio.Parse(dir, "out.parquet")
	s, err := parquetsink.Open(ctx, loc, all, allOptions("out.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	b := pipeline.NewBatch(all, 10)
	for _, r := range stringRows(10, 4) {
		b.Append(r, pipeline.Origin{})
	}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "out.parquet"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = s.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "out.parquet") || errors.Is(err, pipeline.ErrPartialOutput) {
		t.Fatalf("Close = %v, want an error naming out.parquet, not partial output", err)
	}
	if _, ok := any(s).(pipeline.FinalWriter); ok {
		t.Error("the parquet sink commits at Close; it must not claim its writes are final")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !ents[0].IsDir() {
		t.Errorf("left behind: %v", ents)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close = %v, want nil (idempotent)", err)
	}
}
