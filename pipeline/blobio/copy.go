package blobio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Copy makes the object at dst a copy of the object at src, replacing
// what dst held. Within one bucket, the bucket copies it (gocloud's
// Bucket.Copy: a server-side copy on S3, GCS and Azure), except for local
// files, which are hard-linked; between buckets (a local file to a blob
// store) it is read and written through this process, replacing dst whole
// or not at all (Writer). A hard link: a sync manifest is tens of MiB per million keys, and a
// link costs nothing however large it is. The link is safe because local
// objects are never written in place: a Writer writes a temporary file
// and renames it over the object's name, so the copy keeps the bytes it
// was made with. Where the file system has no hard links, the bucket
// copies it.
func Copy(ctx context.Context, src, dst Location) error {
	if src.Scheme != dst.Scheme || src.BucketURL != dst.BucketURL {
		return streamCopy(ctx, src, dst)
	}
	if src.Scheme == "file" {
		if err := linkLocal(src, dst); err == nil {
			return nil
		}
	}
	b, closeFn, err := OpenBucket(ctx, src)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := b.Copy(ctx, dst.Key, src.Key, nil); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// linkLocal hard-links the local file of src to a temporary name beside
// dst's and renames it over dst, so that dst is replaced whole or not at
// all.
func linkLocal(src, dst Location) error {
	from, err := localPath(src)
	if err != nil {
		return err
	}
	to, err := localPath(dst)
	if err != nil {
		return err
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	tmp := filepath.Join(filepath.Dir(to), ".link-"+hex.EncodeToString(suffix[:]))
	if err := os.Link(from, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, to); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// streamCopy copies src to dst through this process.
func streamCopy(ctx context.Context, src, dst Location) error {
	r, err := NewReader(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	defer r.Close()
	w, err := NewWriter(ctx, dst)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		w.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}
