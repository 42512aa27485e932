package blobio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/csvsource"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// How the cloud tests find their servers. .ci/blobservers.sh start runs
// them on loopback and writes these (and the credentials) to an env file.
const (
	envS3    = "BULKFLOW_TEST_S3_ENDPOINT"  // e.g. http://127.0.0.1:7070 (versitygw)
	envGCS   = "BULKFLOW_TEST_GCS_HOST"     // e.g. 127.0.0.1:4443 (fake-gcs-server), no scheme
	envAzure = "BULKFLOW_TEST_AZURE_DOMAIN" // e.g. 127.0.0.1:10000 (Azurite)

	startHint = `start them with: .ci/blobservers.sh start && source "$(.ci/blobservers.sh env)"`
)

// cloudStore is one blob service under test.
type cloudStore struct {
	name   string
	env    string
	scheme string
	// setup sets credentials and returns the URL suffix ("?..." or "")
	// appended to every location in the bucket.
	setup func(t *testing.T, v string) string
	// create makes the bucket through the driver's As.
	create func(ctx context.Context, t *testing.T, b *blob.Bucket, name string)
}

// setDefault sets an environment variable for the test when it is unset.
func setDefault(t *testing.T, k, v string) {
	if os.Getenv(k) == "" {
		t.Setenv(k, v)
	}
}

var cloudStores = []cloudStore{
	{
		name: "S3", env: envS3, scheme: "s3",
		setup: func(t *testing.T, endpoint string) string {
			setDefault(t, "AWS_ACCESS_KEY_ID", "testkey")
			setDefault(t, "AWS_SECRET_ACCESS_KEY", "testsecret")
			setDefault(t, "AWS_EC2_METADATA_DISABLED", "true")
			return "?endpoint=" + url.QueryEscape(endpoint) + "&use_path_style=true&region=us-east-1"
		},
		create: func(ctx context.Context, t *testing.T, b *blob.Bucket, name string) {
			var c *s3.Client
			if !b.As(&c) {
				t.Fatalf("s3blob bucket does not expose *s3.Client")
			}
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
			var owned *s3types.BucketAlreadyOwnedByYou
			if err != nil && !errors.As(err, &owned) {
				t.Fatalf("create bucket %s: %v", name, err)
			}
		},
	},
	{
		name: "GCS", env: envGCS, scheme: "gs",
		setup: func(t *testing.T, host string) string {
			t.Setenv("STORAGE_EMULATOR_HOST", host) // host:port; gocloud adds http://
			return ""
		},
		create: func(ctx context.Context, t *testing.T, b *blob.Bucket, name string) {
			var c *storage.Client
			if !b.As(&c) {
				t.Fatalf("gcsblob bucket does not expose *storage.Client")
			}
			if err := c.Bucket(name).Create(ctx, "test-project", nil); err != nil && !strings.Contains(err.Error(), "409") {
				t.Fatalf("create bucket %s: %v", name, err)
			}
		},
	},
	{
		name: "Azure", env: envAzure, scheme: "azblob",
		setup: func(t *testing.T, domain string) string {
			// Azurite's well-known development account (public, documented).
			setDefault(t, "AZURE_STORAGE_ACCOUNT", "devstoreaccount1")
			setDefault(t, "AZURE_STORAGE_KEY", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
			return "?protocol=http&domain=" + url.QueryEscape(domain)
		},
		create: func(ctx context.Context, t *testing.T, b *blob.Bucket, name string) {
			var c *container.Client
			if !b.As(&c) {
				t.Fatalf("azureblob bucket does not expose *container.Client")
			}
			if _, err := c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
				t.Fatalf("create container %s: %v", name, err)
			}
		},
	},
}

// TestCloudStores runs blobio and the file sources against real S3, GCS and
// Azure blob servers on loopback. Without the servers' env vars it skips,
// except under CI=true, where it fails: CI must never skip silently.
func TestCloudStores(t *testing.T) {
	for _, cs := range cloudStores {
		t.Run(cs.name, func(t *testing.T) {
			v := os.Getenv(cs.env)
			if v == "" {
				if os.Getenv("CI") == "true" {
					t.Fatalf("%s is not set and CI=true: the %s server must run in CI; %s", cs.env, cs.name, startHint)
				}
				t.Skipf("%s is not set; %s", cs.env, startHint)
			}
			testCloudStore(t, cs, v)
		})
	}
}

func testCloudStore(t *testing.T, cs cloudStore, v string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	query := cs.setup(t, v)
	bucket := fmt.Sprintf("bulkflow-test-%d", time.Now().UnixNano())
	root := cs.scheme + "://" + bucket + "/"
	loc := func(key string) blobio.Location {
		t.Helper()
		l, err := blobio.Parse("", root+key+query)
		if err != nil {
			t.Fatalf("Parse(%s): %v", key, err)
		}
		return l
	}

	// Create the bucket through the driver.
	b, closeB, err := blobio.OpenBucket(ctx, loc(""))
	if err != nil {
		t.Fatalf("OpenBucket: %v", err)
	}
	cs.create(ctx, t, b, bucket)
	closeB()

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
