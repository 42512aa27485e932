package blobio_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// TestCopy: a copy keeps the bytes it was made with when its source is
// rewritten, and a second copy replaces the first; local files (which are
// hard-linked) and mem:// (which the bucket copies). testCloudStore runs
// the same check on S3, GCS and Azure.
func TestCopy(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, where string }{{"file", dir + "/state/"}, {"mem", "mem://copy-test/state/"}} {
		t.Run(tc.name, func(t *testing.T) {
			prefix, err := blobio.Parse("", tc.where)
			if err != nil {
				t.Fatal(err)
			}
			loc := func(key string) blobio.Location { return blobio.Join(prefix, key) }
			ctx := context.Background()
			checkCopy(t, ctx, loc)
			if tc.name != "file" {
				return
			}
			// A local copy is a hard link: no bytes copied.
			if err := blobio.Copy(ctx, loc("sync/load.manifest"), loc("sync/load.manifest.before")); err != nil {
				t.Fatal(err)
			}
			a, errA := os.Stat(filepath.Join(dir, "state", "sync", "load.manifest"))
			b, errB := os.Stat(filepath.Join(dir, "state", "sync", "load.manifest.before"))
			if errA != nil || errB != nil || !os.SameFile(a, b) {
				t.Errorf("the local copy is not a hard link of its source (%v, %v)", errA, errB)
			}
		})
	}
}

// checkCopy runs Copy's checks on the objects loc names.
func checkCopy(t *testing.T, ctx context.Context, loc func(key string) blobio.Location) {
	t.Helper()
	src, dst := loc("sync/load.manifest"), loc("sync/load.manifest.before")
	read := func(l blobio.Location) string {
		t.Helper()
		r, err := blobio.NewReader(ctx, l)
		if err != nil {
			t.Fatalf("read %s: %v", l, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s: %v", l, err)
		}
		return string(b)
	}
	if err := blobio.Copy(ctx, src, dst); err == nil {
		t.Fatal("Copy of a missing object: no error")
	}
	for i, v := range []string{"version 1", "version 2, longer"} {
		if err := blobio.WriteAll(ctx, src, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if err := blobio.Copy(ctx, src, dst); err != nil {
			t.Fatalf("copy %d: %v", i+1, err)
		}
		if err := blobio.WriteAll(ctx, src, []byte("rewritten")); err != nil {
			t.Fatal(err)
		}
		if got := read(dst); got != v {
			t.Errorf("copy %d holds %q after its source was rewritten, want %q", i+1, got, v)
		}
		if got := read(src); got != "rewritten" {
			t.Errorf("source holds %q, want %q", got, "rewritten")
		}
		if st, err := blobio.Stamp(ctx, dst); err != nil || st == "" {
			t.Errorf("Stamp of the copy: %q, %v", st, err)
		}
	}
	other, err := blobio.Parse("", "mem://copy-test-other/x")
	if err != nil {
		t.Fatal(err)
	}
	// To another bucket the bytes go through this process.
	if err := blobio.Copy(ctx, src, other); err != nil {
		t.Fatalf("copy to another bucket: %v", err)
	}
	if got := read(other); got != "rewritten" {
		t.Errorf("the copy in another bucket holds %q, want %q", got, "rewritten")
	}
}

// TestCopyBetweenBuckets: a local file copied to mem:// (and back) keeps
// its bytes, and a missing source is an error.
func TestCopyBetweenBuckets(t *testing.T) {
	ctx := context.Background()
	file, err := blobio.Parse("", filepath.Join(t.TempDir(), "tmp", "merged.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := blobio.Parse("", "mem://copy-between/state/sync/load.manifest.before")
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]blobio.Location{{file, mem}, {mem, file}} {
		src, dst := pair[0], pair[1]
		want := "from " + src.Scheme
		if err := blobio.WriteAll(ctx, src, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if err := blobio.Copy(ctx, src, dst); err != nil {
			t.Fatalf("copy %s to %s: %v", src, dst, err)
		}
		r, err := blobio.NewReader(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || string(got) != want {
			t.Errorf("%s holds %q (%v), want %q", dst, got, err, want)
		}
	}
	missing := blobio.Join(mem, "../missing")
	if err := blobio.Copy(ctx, missing, file); err == nil {
		t.Error("copy of a missing object to another bucket: no error")
	}
}
