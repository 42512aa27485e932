package blobio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
	"github.com/bulkflow/bulkflow/sources/csvsource"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// TestCloudStores runs blobio and the file sources against real S3, GCS and
// Azure blob servers on loopback (see blobtest). Without the servers' env
// vars it skips, except under CI=true, where it fails.
func TestCloudStores(t *testing.T) {
	for _, st := range blobtest.Stores {
		if !st.Cloud {
			continue
		}
		t.Run(st.Name, func(t *testing.T) { testCloudStore(t, st) })
	}
}

func testCloudStore(t *testing.T, st blobtest.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bk := st.NewBucket(t)
	root, query := bk.Prefix, bk.Query
	loc := func(key string) blobio.Location {
		t.Helper()
		l, err := blobio.Parse("", bk.URL(key))
		if err != nil {
			t.Fatalf("Parse(%s): %v", key, err)
		}
		return l
	}

	// Objects: three match the glob, the others are near misses.
	csvHeader := "id,name\n"
	objects := map[string]string{
		"prefix/2026-01/part-000.csv":     csvHeader + "1,a\n2,b\n",
		"prefix/2026-01/part-001.csv":     csvHeader + "3,c\n",
		"prefix/2026-02/part-000.csv":     csvHeader + "4,\"multi\nline\"\n5,e\n",
		"prefix/2025-12/part-000.csv":     csvHeader + "x,old\n",
		"prefix/2026-01/other.csv":        csvHeader + "x,other\n",
		"prefix/2026-03/sub/part-000.csv": csvHeader + "x,deeper\n",
	}
	for k, data := range objects {
		if err := blobio.WriteAll(ctx, loc(k), []byte(data)); err != nil {
			t.Fatalf("WriteAll %s: %v", k, err)
		}
	}
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte(i*7 + i/256)
	}
	if err := blobio.WriteAll(ctx, loc("big/blob.bin"), big); err != nil {
		t.Fatalf("WriteAll big: %v", err)
	}

	t.Run("Copy", func(t *testing.T) { checkCopy(t, ctx, func(key string) blobio.Location { return loc("copy/" + key) }) })

	t.Run("CreateExclusive", func(t *testing.T) {
		// The lease's compare-and-swap: one of several concurrent creates
		// wins, on the server itself.
		l := loc("claims/00000000000000000001")
		var wg sync.WaitGroup
		var wins, lost atomic.Int32
		for i := range 6 {
			wg.Go(func() {
				err := blobio.CreateExclusive(ctx, l, []byte(fmt.Sprint("holder-", i)))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, blobio.ErrExists):
					lost.Add(1)
				default:
					t.Errorf("CreateExclusive: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || lost.Load() != 5 {
			t.Fatalf("%d creates won and %d lost; want 1 and 5", wins.Load(), lost.Load())
		}
		if err := blobio.CreateExclusive(ctx, l, []byte("late")); !errors.Is(err, blobio.ErrExists) {
			t.Fatalf("create over an existing object: %v, want ErrExists", err)
		}
	})

	t.Run("LargeWrite", func(t *testing.T) {
		// An object past S3's 16 MiB single-request threshold goes up in
		// parts (for S3, of s3PartSize: the ETag of a multipart object
		// ends in "-<parts>"), becomes visible only at Close, and an
		// aborted one leaves nothing.
		const size = 23 << 20
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*31 + i>>12)
		}
		write := func(key string, abort bool) {
			t.Helper()
			w, err := blobio.NewWriter(ctx, loc(key))
			if err != nil {
				t.Fatalf("NewWriter %s: %v", key, err)
			}
			for off := 0; off < size; off += 1 << 20 {
				if _, err := w.Write(data[off : off+1<<20]); err != nil {
					t.Fatalf("write %s at %d: %v", key, off, err)
				}
				if off == 20<<20 {
					if _, err := blobio.List(ctx, loc(key)); !errors.Is(err, blobio.ErrNoMatch) {
						t.Fatalf("%s is visible before Close: %v", key, err)
					}
					if abort {
						w.Abort()
						break
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close %s: %v", key, err)
			}
		}
		write("large/aborted.bin", true)
		if _, err := blobio.List(ctx, loc("large/aborted.bin")); !errors.Is(err, blobio.ErrNoMatch) {
			t.Fatalf("an aborted large write left an object: %v", err)
		}
		write("large/done.bin", false)
		r, err := blobio.NewReader(ctx, loc("large/done.bin"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("large/done.bin reads back %d bytes (err %v), want the %d written", len(got), err, len(data))
		}
		if st.Name == "S3" {
			b, closeB, err := blobio.OpenBucket(ctx, loc("large/done.bin"))
			if err != nil {
				t.Fatal(err)
			}
			defer closeB()
			attrs, err := b.Attributes(ctx, "large/done.bin")
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("-%d\"", (size+blobio.S3PartSize-1)/blobio.S3PartSize); !strings.HasSuffix(attrs.ETag, want) {
				t.Errorf("ETag %s: want a multipart upload's, ending in %s (parts of %d bytes)", attrs.ETag, want, blobio.S3PartSize)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		got, err := blobio.List(ctx, loc("prefix/2026-*/part-*.csv"))
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var keys []string
		for _, o := range got {
			keys = append(keys, o.Loc.Key)
			if o.Size != int64(len(objects[o.Loc.Key])) {
				t.Errorf("%s: size %d, want %d", o, o.Size, len(objects[o.Loc.Key]))
			}
		}
		want := []string{"prefix/2026-01/part-000.csv", "prefix/2026-01/part-001.csv", "prefix/2026-02/part-000.csv"}
		if !slices.Equal(keys, want) {
			t.Errorf("List keys = %q, want %q", keys, want)
		}
		if len(got) > 0 {
			if s, w := got[0].String(), root+want[0]; s != w {
				t.Errorf("object shown as %q, want %q", s, w)
			}
		}
		if _, err := blobio.List(ctx, loc("prefix/1999-*/part-*.csv")); !errors.Is(err, blobio.ErrNoMatch) {
			t.Errorf("List of nothing = %v, want ErrNoMatch", err)
		}
	})

	t.Run("NewReader", func(t *testing.T) {
		r, err := blobio.NewReader(ctx, loc("prefix/2026-02/part-000.csv"))
		if err != nil {
			t.Fatalf("NewReader: %v", err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil || string(got) != objects["prefix/2026-02/part-000.csv"] {
			t.Errorf("read %q, %v", got, err)
		}
	})

	t.Run("NewReaderAt", func(t *testing.T) {
		ra, err := blobio.NewReaderAt(ctx, loc("big/blob.bin"))
		if err != nil {
			t.Fatalf("NewReaderAt: %v", err)
		}
		defer ra.Close()
		if ra.Size() != int64(len(big)) {
			t.Fatalf("Size = %d, want %d", ra.Size(), len(big))
		}
		tests := []struct {
			name    string
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{"start", 0, 100, 100, false},
			{"middle", 123_457, 65_536, 65_536, false},
			{"exact tail", int64(len(big)) - 10, 10, 10, false},
			{"past the end", int64(len(big)) - 10, 50, 10, true},
			{"at the end", int64(len(big)), 5, 0, true},
		}
		for _, tc := range tests {
			p := make([]byte, tc.n)
			n, err := ra.ReadAt(p, tc.off)
			if n != tc.wantN || (err == io.EOF) != tc.wantEOF || (err != nil && err != io.EOF) {
				t.Errorf("%s: ReadAt(%d bytes at %d) = %d, %v; want %d, EOF=%v", tc.name, tc.n, tc.off, n, err, tc.wantN, tc.wantEOF)
				continue
			}
			if !bytes.Equal(p[:n], big[tc.off:tc.off+int64(n)]) {
				t.Errorf("%s: wrong bytes", tc.name)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		missing := loc("prefix/missing.csv")
		_, err := blobio.NewReader(ctx, missing)
		if err == nil || gcerrors.Code(err) != gcerrors.NotFound || !strings.Contains(err.Error(), root+"prefix/missing.csv") {
			t.Errorf("NewReader(missing) = %v (code %v), want NotFound naming %s", err, gcerrors.Code(err), missing)
		}
		_, err = blobio.List(ctx, missing)
		if !errors.Is(err, blobio.ErrNoMatch) || !strings.Contains(err.Error(), root+"prefix/missing.csv") {
			t.Errorf("List(missing) = %v, want ErrNoMatch naming the object", err)
		}
		if _, err := blobio.NewReaderAt(ctx, missing); gcerrors.Code(err) != gcerrors.NotFound {
			t.Errorf("NewReaderAt(missing) = %v, want NotFound", err)
		}
	})

	t.Run("CSVSource", func(t *testing.T) {
		src, err := csvsource.Open(ctx, nil, &csvsource.Options{URL: root + "prefix/2026-*/part-*.csv" + query})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer src.Close()
		type row struct {
			id, name string
			origin   pipeline.Origin
		}
		o := func(key string, line, n int64) pipeline.Origin {
			return pipeline.Origin{Object: root + key, Line: line, Row: n}
		}
		want := []row{
			{"1", "a", o("prefix/2026-01/part-000.csv", 2, 1)},
			{"2", "b", o("prefix/2026-01/part-000.csv", 3, 2)},
			{"3", "c", o("prefix/2026-01/part-001.csv", 2, 1)},
			{"4", "multi\nline", o("prefix/2026-02/part-000.csv", 2, 1)},
			{"5", "e", o("prefix/2026-02/part-000.csv", 4, 2)},
		}
		var got []row
		for _, b := range sourcetest.ReadAll(ctx, t, src) {
			for i := range b.Len() {
				r := b.Row(i)
				got = append(got, row{r[0].(string), r[1].(string), b.Origin(i)})
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("rows = %+v\nwant %+v", got, want)
		}
	})

	t.Run("ParquetSource", func(t *testing.T) {
		for i, key := range []string{"pq/part-0.parquet", "pq/part-1.parquet"} {
			if err := blobio.WriteAll(ctx, loc(key), parquetFile(t, i*10, 3)); err != nil {
				t.Fatalf("WriteAll %s: %v", key, err)
			}
		}
		src, err := pipeline.DefaultRegistry().OpenSource(ctx, nil, "parquet",
			&parquetsource.Options{URL: root + "pq/part-*.parquet" + query, BatchSize: 2})
		if err != nil {
			t.Fatalf("OpenSource: %v", err)
		}
		defer src.Close()
		sch, err := src.Schema(ctx)
		if err != nil {
			t.Fatalf("Schema: %v", err)
		}
		if want := "id:int, name:string"; sch.String() != want {
			t.Errorf("schema %s, want %s", sch, want)
		}
		var n int
		for _, b := range sourcetest.ReadAll(ctx, t, src) {
			for i := range b.Len() {
				obj, k := n/3, n%3
				wantRow := pipeline.Row{int64(obj*10 + k), fmt.Sprintf("name-%d", obj*10+k)}
				wantOrigin := pipeline.Origin{Object: fmt.Sprintf("%spq/part-%d.parquet", root, obj), Row: int64(k + 1)}
				if !slices.Equal(b.Row(i), wantRow) || b.Origin(i) != wantOrigin {
					t.Errorf("row %d = %v at %+v, want %v at %+v", n, b.Row(i), b.Origin(i), wantRow, wantOrigin)
				}
				n++
			}
		}
		if n != 6 {
			t.Errorf("read %d rows, want 6", n)
		}
	})
}

// parquetFile returns a Parquet file of n rows (id int64, name string)
// with ids from first.
func parquetFile(t *testing.T, first, n int) []byte {
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String}}, nil)
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	for i := first; i < first+n; i++ {
		ib.Append(int64(i))
		sb.Append(fmt.Sprintf("name-%d", i))
	}
	rec := array.NewRecordBatch(sc, []arrow.Array{ib.NewArray(), sb.NewArray()}, int64(n))
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
