package synclog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

var (
	started = time.Date(2024, 5, 1, 23, 30, 0, 0, time.FixedZone("EST", -5*3600)) // 2024-05-02 in UTC
	base    = time.Date(2024, 5, 2, 4, 30, 0, 123456789, time.UTC)
	zones   = []*time.Location{time.UTC, time.FixedZone("CEST", 2*3600), time.FixedZone("IST", 5*3600+1800)}
)

// testRecords are the records the tests write, made once: rec(i) is the
// i-th. They cover every outcome, empty and non-empty optional strings, a
// defaulted run ID, non-ASCII text, times in other zones, with
// sub-microsecond digits, and before 1970.
var testRecords = sync.OnceValue(func() []Record {
	ops := []string{"insert", "update", "upsert", "delete"}
	recs := make([]Record, 150_000)
	for i := range recs {
		n := strconv.Itoa(i)
		r := Record{
			Key:       "EXT-" + strings.Repeat("0", max(0, 7-len(n))) + n,
			Operation: ops[i%len(ops)],
			RunID:     "run-1",
			Time:      base.Add(time.Duration(i) * 1_234_567 * time.Nanosecond).In(zones[i%len(zones)]),
		}
		if i%5 == 0 {
			r.RunID = "" // defaults to the writer's run ID
		}
		if i%3 != 0 {
			r.SalesforceID = "001" + strings.Repeat("0", max(0, 15-len(n))) + n
		}
		switch i % 7 {
		case 0, 1, 2:
			r.Outcome = "loaded"
		case 3:
			r.Outcome = "failed"
			r.ErrorCode = "REQUIRED_FIELD_MISSING"
			r.Error = "Required fields are missing: [Name] (row " + n + ", naïve café ✓)"
		case 4:
			r.Outcome = "deleted"
		case 5:
			r.Outcome = "delete_failed"
			r.ErrorCode = "ENTITY_IS_DELETED"
			r.Error = "entity is deleted"
		case 6:
			r.Outcome = "skipped"
			r.Error = "unchanged since last run" // a message without a code
		}
		if i == 17 {
			r.Time = time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC) // floors to -1µs
			r.Key = "ключ-17"
		}
		recs[i] = r
	}
	return recs
})

var memBuckets atomic.Int64

// newMemBucket returns the URL of a mem:// bucket no other test (or run of
// the same test, under -count) uses; mem:// buckets live as long as the
// process.
func newMemBucket() string {
	return fmt.Sprintf("mem://synclog-test-%d", memBuckets.Add(1))
}

// rec returns the i-th test record.
func rec(i int) Record { return testRecords()[i] }

// want is what rec(i) should read back as.
func want(i int, runID string) Record {
	r := rec(i)
	if r.RunID == "" {
		r.RunID = runID
	}
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	return r
}

// readBack reads a sync log with pqarrow, checks its schema and calls visit
// with each record in file order (its strings are valid only during the
// call). It returns the number of records and the row-group sizes.
func readBack(t *testing.T, pf *file.Reader, visit func(Record)) (int, []int64) {
	t.Helper()
	defer pf.Close()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, mem)
	if err != nil {
		t.Fatalf("NewFileReader: %v", err)
	}
	sc, err := fr.Schema()
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	// The reader adds field-ID metadata; names, types and nullability must
	// match exactly.
	sameFields := sc.NumFields() == Schema().NumFields()
	for i := 0; sameFields && i < sc.NumFields(); i++ {
		f, w := sc.Field(i), Schema().Field(i)
		sameFields = f.Name == w.Name && arrow.TypeEqual(f.Type, w.Type) && f.Nullable == w.Nullable
	}
	if !sameFields {
		t.Fatalf("file schema:\n%s\nwant:\n%s", sc, Schema())
	}
	var groups []int64
	for i := range pf.NumRowGroups() {
		groups = append(groups, pf.MetaData().RowGroup(i).NumRows())
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatalf("GetRecordReader: %v", err)
	}
	defer rr.Release()
	n := 0
	for rr.Next() {
		b := rr.RecordBatch()
		var str [colTime]*array.String
		for i := range str {
			str[i] = b.Column(i).(*array.String)
		}
		ts := b.Column(colTime).(*array.Timestamp)
		opt := func(i, row int) string {
			if str[i].IsNull(row) {
				return ""
			}
			if str[i].Value(row) == "" {
				t.Fatalf("column %s record %d: empty string stored, want null", Schema().Field(i).Name, n)
			}
			return str[i].Value(row)
		}
		for _, c := range []int{colKey, colOperation, colOutcome, colRunID, colTime} {
			if nulls := b.Column(c).NullN(); nulls != 0 {
				t.Fatalf("column %s: %d nulls", Schema().Field(c).Name, nulls)
			}
		}
		for row := range int(b.NumRows()) {
			visit(Record{
				Key:          str[colKey].Value(row),
				Operation:    str[colOperation].Value(row),
				Outcome:      str[colOutcome].Value(row),
				SalesforceID: opt(colSalesforceID, row),
				ErrorCode:    opt(colErrorCode, row),
				Error:        opt(colError, row),
				RunID:        str[colRunID].Value(row),
				Time:         time.UnixMicro(int64(ts.Value(row))).UTC(),
			})
			n++
		}
	}
	if err := rr.Err(); err != nil && err != io.EOF {
		t.Fatalf("read records: %v", err)
	}
	return n, groups
}

func readBlob(t *testing.T, l blobio.Location) *file.Reader {
	t.Helper()
	r, err := blobio.NewReader(context.Background(), l)
	if err != nil {
		t.Fatalf("open %s: %v", l, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", l, err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse %s: %v", l, err)
	}
	return pf
}

func sameRecord(got, want Record) bool {
	t1, t2 := got.Time, want.Time
	got.Time, want.Time = time.Time{}, time.Time{}
	return got == want && t1.Equal(t2) && t1.Location() == time.UTC
}

func TestWriteReadBack(t *testing.T) {
	t.Parallel()
	const n = 150_000
	dir := t.TempDir()
	memBucket := newMemBucket()
	for _, tc := range []struct {
		name, baseDir, prefix string
		wantURL               string
		open                  func(t *testing.T, w *Writer) *file.Reader
	}{
		{
			name: "dir", baseDir: dir, prefix: "logs/synclog",
			wantURL: "file://" + filepath.ToSlash(dir) + "/logs/synclog/accounts/date=2024-05-02/run-1.parquet",
			open: func(t *testing.T, w *Writer) *file.Reader {
				p := filepath.Join(dir, "logs", "synclog", "accounts", "date=2024-05-02", "run-1.parquet")
				pf, err := file.OpenParquetFile(p, false)
				if err != nil {
					t.Fatalf("OpenParquetFile: %v", err)
				}
				return pf
			},
		},
		{
			name: "mem", prefix: memBucket + "/logs/",
			wantURL: memBucket + "/logs/accounts/date=2024-05-02/run-1.parquet",
			open: func(t *testing.T, w *Writer) *file.Reader {
				l, err := blobio.Parse("", w.Location())
				if err != nil {
					t.Fatal(err)
				}
				return readBlob(t, l)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			w, err := create(context.Background(), tc.baseDir, tc.prefix, "accounts", "run-1", started, createOpts{mem: mem})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if w.Location() != tc.wantURL {
				t.Errorf("Location() = %q, want %q", w.Location(), tc.wantURL)
			}
			for i := range n {
				if err := w.Write(rec(i)); err != nil {
					t.Fatalf("Write %d: %v", i, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			mem.AssertSize(t, 0)
			if err := w.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := w.Write(rec(0)); !errors.Is(err, ErrClosed) {
				t.Errorf("Write after Close: %v, want ErrClosed", err)
			}
			w.Abort() // no effect after Close

			i, bad := 0, 0
			got, groups := readBack(t, tc.open(t, w), func(r Record) {
				if w := want(i, "run-1"); !sameRecord(r, w) {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, r, w)
					if bad++; bad > 5 {
						t.FailNow()
					}
				}
				if i == 17 && r.Time.UnixMicro() != -1 {
					t.Errorf("pre-1970 time stored as %dµs, want -1", r.Time.UnixMicro())
				}
				i++
			})
			if fmt.Sprint(groups) != "[65536 65536 18928]" {
				t.Errorf("row groups %v, want [65536 65536 18928]", groups)
			}
			if got != n {
				t.Fatalf("read %d records, want %d", got, n)
			}
		})
	}
}

func TestFileSettings(t *testing.T) {
	t.Parallel()
	w, err := Create(context.Background(), "", newMemBucket(), "p", "r", started)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := w.Write(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, _ := blobio.Parse("", w.Location())
	pf := readBlob(t, l)
	defer pf.Close()
	rg := pf.MetaData().RowGroup(0)
	for i := range rg.NumColumns() {
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		name := Schema().Field(i).Name
		if cc.Compression().String() != "ZSTD" {
			t.Errorf("column %s compressed with %s, want ZSTD", name, cc.Compression())
		}
		dict := cc.HasDictionaryPage()
		wantDict := name != "key" && name != "salesforce_id" && name != "time"
		if dict != wantDict {
			t.Errorf("column %s dictionary page %v, want %v", name, dict, wantDict)
		}
		if ok, _ := cc.StatsSet(); !ok {
			t.Errorf("column %s has no statistics", name)
		}
	}
	ts := pf.MetaData().Schema.Column(colTime).LogicalType().String()
	if !strings.Contains(ts, "isAdjustedToUTC=true") || !strings.Contains(ts, "microseconds") {
		t.Errorf("time column logical type %s, want UTC-adjusted microseconds", ts)
	}
	for _, c := range []int{colKey, colOperation, colOutcome, colRunID, colTime} {
		if rep := pf.MetaData().Schema.Column(c).SchemaNode().RepetitionType(); rep != parquet.Repetitions.Required {
			t.Errorf("column %s is %s, want required", Schema().Field(c).Name, rep)
		}
	}
}

// exists reports whether the object is visible (listing ignores the temp
// files of unfinished writes, as every reader in bulkflow does).
func exists(t *testing.T, url string) bool {
	t.Helper()
	l, err := blobio.Parse("", url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = blobio.List(context.Background(), l)
	if errors.Is(err, blobio.ErrNoMatch) {
		return false
	}
	if err != nil {
		t.Fatalf("list %s: %v", url, err)
	}
	return true
}

// files returns the regular files under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVisibility(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, prefix string }{
		{"dir", ""}, // filled with a temp dir
		{"mem", newMemBucket() + "/logs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			prefix := tc.prefix
			if prefix == "" {
				prefix = dir
			}
			t.Run("close", func(t *testing.T) {
				w, err := Create(context.Background(), "", prefix, "p", "close", started)
				if err != nil {
					t.Fatal(err)
				}
				w.RowGroupRows = 100
				for i := range 150 { // one row group written out
					if err := w.Write(rec(i)); err != nil {
						t.Fatal(err)
					}
				}
				if exists(t, w.Location()) {
					t.Fatalf("%s visible before Close", w.Location())
				}
				if tc.name == "dir" {
					final := filepath.Join(dir, "p", "date=2024-05-02", "close.parquet")
					if _, err := os.Stat(final); !os.IsNotExist(err) {
						t.Fatalf("stat %s before Close: %v, want not exist", final, err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if !exists(t, w.Location()) {
					t.Fatalf("%s not visible after Close", w.Location())
				}
				if tc.name == "dir" {
					if f := files(t, dir); len(f) != 1 || filepath.Base(f[0]) != "close.parquet" {
						t.Errorf("files after Close: %v, want only close.parquet", f)
					}
				}
			})
			for _, empty := range []bool{false, true} {
				t.Run(fmt.Sprintf("abort/empty=%v", empty), func(t *testing.T) {
					mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
					runID := fmt.Sprintf("abort-%v", empty)
					w, err := create(context.Background(), "", prefix, "p", runID, started, createOpts{mem: mem})
					if err != nil {
						t.Fatal(err)
					}
					w.RowGroupRows = 100
					if !empty {
						for i := range 150 { // one row group written out
							if err := w.Write(rec(i)); err != nil {
								t.Fatal(err)
							}
						}
					}
					w.Abort()
					mem.AssertSize(t, 0)
					if exists(t, w.Location()) {
						t.Fatalf("%s visible after Abort", w.Location())
					}
					if err := w.Close(); err != nil {
						t.Errorf("Close after Abort: %v, want nil", err)
					}
					w.Abort()
					if exists(t, w.Location()) {
						t.Fatalf("%s visible after Abort and Close", w.Location())
					}
					if err := w.Write(rec(0)); !errors.Is(err, ErrClosed) {
						t.Errorf("Write after Abort: %v, want ErrClosed", err)
					}
					if tc.name == "dir" {
						for _, f := range files(t, dir) {
							if strings.Contains(f, runID) || !strings.HasSuffix(f, "close.parquet") {
								t.Errorf("left behind after Abort: %s", f)
							}
						}
					}
				})
			}
			t.Run("cancel", func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				w, err := Create(ctx, "", prefix, "p", "cancel", started)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 100 {
					if err := w.Write(rec(i)); err != nil {
						t.Fatal(err)
					}
				}
				cancel()
				if err := w.Close(); err == nil {
					t.Fatal("Close after the context was cancelled succeeded")
				} else if !strings.Contains(err.Error(), w.Location()) {
					t.Errorf("error %q does not name the location %s", err, w.Location())
				}
				if exists(t, w.Location()) {
					t.Fatalf("%s visible after a cancelled write", w.Location())
				}
			})
		})
	}
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	w, err := Create(context.Background(), "", newMemBucket(), "p", "r", started)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, _ := blobio.Parse("", w.Location())
	got, groups := readBack(t, readBlob(t, l), func(r Record) {})
	if got != 0 || len(groups) != 0 {
		t.Errorf("empty log read back %d records in %v row groups", got, groups)
	}
}

// keyIndex returns i for the key of rec(i).
func keyIndex(t *testing.T, key string) int {
	if key == "ключ-17" {
		return 17
	}
	i, err := strconv.Atoi(strings.TrimPrefix(key, "EXT-"))
	if err != nil || !strings.HasPrefix(key, "EXT-") {
		t.Fatalf("bad key %q", key)
	}
	return i
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	const writers, each, rowGroup = 8, 1500, 4000
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	w, err := create(context.Background(), "", newMemBucket(), "p", "run-1", started, createOpts{mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	w.RowGroupRows = rowGroup // several flushes while others write
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := g * each; i < (g+1)*each; i++ {
				if err := w.Write(rec(i)); err != nil {
					t.Errorf("Write %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	l, _ := blobio.Parse("", w.Location())
	seen := make([]bool, writers*each)
	last := make([]int, writers) // per goroutine, the last index read
	for g := range last {
		last[g] = -1
	}
	got, groups := readBack(t, readBlob(t, l), func(r Record) {
		i := keyIndex(t, r.Key)
		if i >= len(seen) || seen[i] {
			t.Fatalf("record %d unexpected or written twice", i)
		}
		seen[i] = true
		if w := want(i, "run-1"); !sameRecord(r, w) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, r, w)
		}
		// One goroutine's records are in the order it wrote them.
		if g := i / each; i < last[g] {
			t.Fatalf("record %d after %d, written before it by the same goroutine", i, last[g])
		} else {
			last[g] = i
		}
	})
	if got != writers*each {
		t.Fatalf("read %d records, want %d", got, writers*each)
	}
	if len(groups) != writers*each/rowGroup {
		t.Errorf("%d row groups, want %d", len(groups), writers*each/rowGroup)
	}
}

// TestCloseWhileWriting closes (or aborts) the writer under running writers:
// on Close every record whose Write returned nil is in the file; on Abort
// there is no file; either way every later Write fails with ErrClosed.
func TestCloseWhileWriting(t *testing.T) {
	t.Parallel()
	for _, abort := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort=%v", abort), func(t *testing.T) {
			const writers, each = 4, 3000
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			w, err := create(context.Background(), "", newMemBucket(), "p", fmt.Sprintf("abort-%v", abort), started, createOpts{mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			w.RowGroupRows = 500
			var (
				wg      sync.WaitGroup
				written atomic.Int64
				ok      = make([][]int, writers)
			)
			for g := range writers {
				wg.Go(func() {
					for i := g * each; i < (g+1)*each; i++ {
						err := w.Write(rec(i))
						if errors.Is(err, ErrClosed) {
							if err := w.Write(rec(i)); !errors.Is(err, ErrClosed) {
								t.Errorf("Write after ErrClosed: %v", err)
							}
							return
						}
						if err != nil {
							t.Errorf("Write %d: %v", i, err)
							return
						}
						ok[g] = append(ok[g], i)
						written.Add(1)
					}
				})
			}
			for written.Load() < 1200 {
				runtime.Gosched()
			}
			if abort {
				w.Abort()
			} else if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if abort {
				// An aborted row group may have failed half-way inside
				// pqarrow, which then does not free its encoders (see
				// TestWriteFails), so no allocator check here.
				if exists(t, w.Location()) {
					t.Fatalf("%s visible after Abort", w.Location())
				}
				return
			}
			mem.AssertSize(t, 0)
			want := map[int]bool{}
			for _, idx := range ok {
				for _, i := range idx {
					want[i] = true
				}
			}
			if len(want) == writers*each {
				t.Log("every Write finished before Close; nothing was cut off")
			}
			l, _ := blobio.Parse("", w.Location())
			got, _ := readBack(t, readBlob(t, l), func(r Record) {
				i := keyIndex(t, r.Key)
				if !want[i] {
					t.Fatalf("record %d in the file, but its Write did not succeed (or it is there twice)", i)
				}
				delete(want, i)
			})
			if len(want) != 0 {
				t.Fatalf("%d records written successfully but missing from the file (read %d)", len(want), got)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name, prefix, pipeline, runID string
		started                       time.Time
		want                          string
	}{
		{"empty pipeline", "mem://x/", "", "r", started, "pipeline name is empty"},
		{"slash in pipeline", "mem://x/", "a/b", "r", started, "pipeline name"},
		{"dotdot run", "mem://x/", "p", "..", started, "run ID"},
		{"glob run", "mem://x/", "p", "r*", started, "run ID"},
		{"backslash run", "mem://x/", "p", `a\b`, started, "run ID"},
		{"control run", "mem://x/", "p", "a\nb", started, "control character"},
		{"zero start", "mem://x/", "p", "r", time.Time{}, "start time"},
		{"no prefix", "", "p", "r", started, "prefix"},
		{"glob prefix", "mem://x/logs/*", "p", "r", started, "glob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Create(ctx, "", tc.prefix, tc.pipeline, tc.runID, tc.started)
			if err == nil {
				w.Abort()
				t.Fatalf("Create succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLocationURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ baseDir, prefix, want string }{
		{dir, "logs", "file://" + filepath.ToSlash(dir) + "/logs/p/date=2024-05-02/r.parquet"},
		{"", dir + "/", "file://" + filepath.ToSlash(dir) + "/p/date=2024-05-02/r.parquet"},
		{dir, "file://rel/logs", "file://" + filepath.ToSlash(dir) + "/rel/logs/p/date=2024-05-02/r.parquet"},
		{dir, "a dir", "file://" + filepath.ToSlash(dir) + "/a%20dir/p/date=2024-05-02/r.parquet"},
		{"", "mem://b", "mem://b/p/date=2024-05-02/r.parquet"},
		{"", "s3://bucket/sync/log/?region=eu-west-1", "s3://bucket/sync/log/p/date=2024-05-02/r.parquet?region=eu-west-1"},
	} {
		pl, err := blobio.Parse(tc.baseDir, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		l := blobio.Join(pl, "p", "date=2024-05-02", "r.parquet")
		got := locationURL(l)
		if got != tc.want {
			t.Errorf("locationURL(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		// The URL names the same object from anywhere.
		back, err := blobio.Parse("/elsewhere", got)
		if err != nil {
			t.Fatalf("Parse(%q): %v", got, err)
		}
		if again := locationURL(back); again != got || back.Scheme != l.Scheme {
			t.Errorf("%q parses to %+v, shown as %q", got, back, again)
		}
	}
}

// failAfter fails every write once n bytes have been written.
type failAfter struct {
	w io.Writer
	n int
}

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errDiskFull
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestWriteFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		bufSize int // 0: the default, so the failure only shows at Close
		records int
	}{
		{"in Write", 16, 150},
		{"in Close", 0, 150},
		{"in Close, nothing written", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			w, err := create(context.Background(), "", dir, "p", "r", started, createOpts{
				mem:      mem,
				bufSize:  tc.bufSize,
				wrapSink: func(w io.Writer) io.Writer { return &failAfter{w: w, n: 100} },
			})
			if err != nil {
				t.Fatal(err)
			}
			w.RowGroupRows = 100
			var werr error
			for i := range tc.records {
				if werr = w.Write(rec(i)); werr != nil {
					if i != 99 {
						t.Fatalf("Write %d failed (%v), want the row group flush at 99 to fail", i, werr)
					}
					break
				}
			}
			if tc.bufSize != 0 {
				if !errors.Is(werr, errDiskFull) || !strings.Contains(werr.Error(), w.Location()) {
					t.Fatalf("Write error %v, want disk full naming %s", werr, w.Location())
				}
				if err := w.Write(rec(0)); err == nil || err.Error() != werr.Error() {
					t.Errorf("Write after a failure: %v, want %v", err, werr)
				}
			} else if werr != nil {
				t.Fatalf("Write failed (%v), want the failure at Close", werr)
			}
			cerr := w.Close()
			if !errors.Is(cerr, errDiskFull) || !strings.Contains(cerr.Error(), w.Location()) {
				t.Fatalf("Close error %v, want disk full naming %s", cerr, w.Location())
			}
			if err := w.Close(); err != cerr {
				t.Errorf("second Close: %v, want %v", err, cerr)
			}
			if tc.bufSize == 0 {
				// When a row group fails half-way, pqarrow's FileWriter.Close
				// returns early without freeing its column encoders (the Go
				// allocator's GC reclaims them), so only check this here.
				mem.AssertSize(t, 0)
			}
			if exists(t, w.Location()) {
				t.Fatalf("%s visible after a failed write", w.Location())
			}
			if f := files(t, dir); len(f) != 0 {
				t.Errorf("left behind: %v", f)
			}
		})
	}
}
