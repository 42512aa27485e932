package blobio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

func TestParse(t *testing.T) {
	base := t.TempDir()
	tests := []struct {
		loc       string
		scheme    string
		key       string
		shown     string
		bucketHas string
	}{
		{"data/a.csv", "file", "a.csv", "data/a.csv", base + "/data"},
		{"file://data/in/*.csv", "file", "*.csv", "data/in/*.csv", base + "/data/in"},
		{"file:///abs/x.csv", "file", "x.csv", "file:///abs/x.csv", "file:///abs?"},
		{"out/dl/", "file", "", "out/dl/", base + "/out/dl"},
		{"mem://bucket/p/k.csv", "mem", "p/k.csv", "mem://bucket/p/k.csv", "mem://bucket"},
		{"s3://bkt/exports/2026-*/part-*.parquet?region=eu-west-1", "s3", "exports/2026-*/part-*.parquet", "s3://bkt/exports/2026-*/part-*.parquet", "s3://bkt?region=eu-west-1"},
	}
	for _, tc := range tests {
		t.Run(tc.loc, func(t *testing.T) {
			l, err := blobio.Parse(base, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if l.Scheme != tc.scheme || l.Key != tc.key || l.String() != tc.shown || !strings.Contains(l.BucketURL, tc.bucketHas) {
				t.Errorf("Parse(%q) = scheme %q key %q shown %q bucket %q; want %q %q %q ~%q", tc.loc, l.Scheme, l.Key, l.String(), l.BucketURL, tc.scheme, tc.key, tc.shown, tc.bucketHas)
			}
		})
	}
	if _, err := blobio.Parse(base, ""); err == nil {
		t.Error("Parse(\"\") succeeded")
	}
}

func TestListReadWrite(t *testing.T) {
	ctx := context.Background()
	for _, prefix := range []string{t.TempDir() + "/", "mem://listtest/"} {
		t.Run(prefix[:4], func(t *testing.T) {
			for _, k := range []string{"x/2026-02/part-2.csv", "x/2026-01/part-1.csv", "x/2025-12/part-9.csv", "x/2026-01/other.txt"} {
				l, _ := blobio.Parse("", prefix+k)
				if err := blobio.WriteAll(ctx, l, []byte("k="+k)); err != nil {
					t.Fatal(err)
				}
			}
			l, _ := blobio.Parse("", prefix+"x/2026-*/part-*.csv")
			objs, err := blobio.List(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, o := range objs {
				keys = append(keys, o.Loc.Key)
			}
			if len(keys) != 2 || !strings.HasSuffix(keys[0], "2026-01/part-1.csv") || !strings.HasSuffix(keys[1], "2026-02/part-2.csv") || objs[0].String() != prefix+"x/2026-01/part-1.csv" {
				t.Errorf("List = %v", keys)
			}
			r, err := blobio.NewReader(ctx, objs[1].Loc)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != "k=x/2026-02/part-2.csv" {
				t.Errorf("read %q", b)
			}
			ra, err := blobio.NewReaderAt(ctx, objs[0].Loc)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			n, err := ra.ReadAt(buf, 2)
			if n != 4 || string(buf) != "x/20" || err != nil {
				t.Errorf("ReadAt = %d %q %v", n, buf, err)
			}
			ra.Close()
			none, _ := blobio.Parse("", prefix+"nothing/*.csv")
			if _, err := blobio.List(ctx, none); !errors.Is(err, blobio.ErrNoMatch) || !strings.Contains(err.Error(), "nothing/*.csv") {
				t.Errorf("List of no match: %v", err)
			}
		})
	}
}

// TestWriterAbort: an aborted write leaves no object behind.
func TestWriterAbort(t *testing.T) {
	dir := t.TempDir()
	l, _ := blobio.Parse(dir, "out/x.csv")
	w, err := blobio.NewWriter(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("partial"))
	w.Abort()
	w.Close()
	if _, err := os.Stat(filepath.Join(dir, "out/x.csv")); !os.IsNotExist(err) {
		t.Errorf("aborted object exists: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "out"))
	if len(ents) != 0 {
		t.Errorf("leftover files: %v", ents)
	}
}

// TestListWhileWriting: listing a local folder while objects are written
// into it (each a temporary file renamed into place) never fails: an
// entry that vanishes mid-listing is not an error (serve's state listing
// failed so, with lstat of a renamed .tmp).
func TestListWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir, err := blobio.Parse("", t.TempDir()+"/runs/")
	if err != nil {
		t.Fatal(err)
	}
	if err := blobio.WriteAll(ctx, blobio.Join(dir, "first.json"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := blobio.WriteAll(ctx, blobio.Join(dir, fmt.Sprintf("run-%d.json", i%50)), []byte("{}")); err != nil {
				done <- err
				return
			}
		}
	}()
	for range 300 {
		if _, err := blobio.List(ctx, dir); err != nil {
			t.Errorf("List while writing: %v", err)
			break
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
