// Package blobio opens objects named by location strings — local paths and
// gocloud.dev/blob URLs — for reading, range reading, listing with globs and
// atomic writing. Every source, sink, dead letter and report in bulkflow goes
// through it, so they all accept the same locations.
//
// # Locations
//
//   - a local path, absolute or relative to the base directory:
//     "pipelines/data/accounts.csv", "/data/in/*.csv"
//   - file:// URLs: "file:///abs/dir/x.csv"; "file://rel/dir/x.csv" (a host
//     part is taken as the first element of a path relative to the base
//     directory, so pipeline files stay portable)
//   - mem://NAME/key: an in-process bucket, shared by every open of the same
//     NAME in the process (tests and dry runs)
//   - any other scheme registered with gocloud.dev/blob's default URL mux,
//     with the drivers' own query parameters:
//     "s3://bucket/prefix/key?region=eu-west-1". This package registers no
//     cloud driver itself: s3://, gs:// and azblob:// open once the
//     application imports package clouddrivers (cmd/bulkflow does), so
//     plugins, tests and programs embedding the engine do not link the
//     cloud SDKs unless they choose to.
//
// The key part may hold glob patterns (path.Match syntax: * ? [...]) for
// List; listing returns matches sorted by key.
package blobio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// URLs
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/pipeline/internal/flock"
)

// Location is a parsed location: a bucket and a key (which may be a glob
// pattern or a prefix ending in "/").
type Location struct {
	// Scheme is the URL scheme ("file", "mem", "s3", ...).
	Scheme string
	// BucketURL is the URL gocloud opens the bucket with.
	BucketURL string
	// Key is the object key inside the bucket ("/"-separated, no leading /).
	Key string
	// display is the prefix used to show keys to users.
	display string
}

// String returns the location as users should see it.
func (l Location) String() string { return l.display + l.Key }

// URLOf returns how the object with the given key in this location's bucket
// is shown to users (in origins, reports and errors).
func (l Location) URLOf(key string) string { return l.display + key }

// WithKey returns the location of another key in the same bucket.
func (l Location) WithKey(key string) Location { l.Key = key; return l }

// Parse parses a location string; relative paths resolve against baseDir
// ("" means the current directory).
func Parse(baseDir, loc string) (Location, error) {
	if loc == "" {
		return Location{}, errors.New("empty location")
	}
	if isStdout(loc) {
		return stdoutLocation(loc), nil
	}
	if !strings.Contains(loc, "://") {
		return parseFile(baseDir, loc, loc, "")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return Location{}, fmt.Errorf("parse location %q: %w", loc, err)
	}
	switch u.Scheme {
	case "file":
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			p = u.Host + u.Path // file://rel/dir/x.csv
		}
		if p == "" {
			return Location{}, fmt.Errorf("location %q names no file", loc)
		}
		disp := p
		if filepath.IsAbs(p) {
			disp = "file://" + p
		}
		return parseFile(baseDir, p, disp, u.RawQuery)
	default:
		key := strings.TrimPrefix(u.Path, "/")
		bu := url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}
		return Location{
			Scheme:    u.Scheme,
			BucketURL: bu.String(),
			Key:       key,
			display:   u.Scheme + "://" + u.Host + "/",
		}, nil
	}
}

// parseFile splits a local path into the directory that holds it (the
// longest prefix with no glob character) and the rest as key.
func parseFile(baseDir, p, shown, rawQuery string) (Location, error) {
	abs := p
	if !filepath.IsAbs(abs) {
		if baseDir == "" {
			baseDir = "."
		}
		abs = filepath.Join(baseDir, p)
	}
	abs, err := filepath.Abs(abs)
	if err != nil {
		return Location{}, fmt.Errorf("resolve %q: %w", p, err)
	}
	if abs == "/dev/stdout" {
		return stdoutLocation(shown), nil
	}
	if strings.HasSuffix(p, "/") {
		abs += "/"
	}
	slash := filepath.ToSlash(abs)
	dir, key := splitAtGlob(slash)
	q := url.Values{}
	if rawQuery != "" {
		var err error
		if q, err = url.ParseQuery(rawQuery); err != nil {
			return Location{}, fmt.Errorf("parse query of %q: %w", shown, err)
		}
	}
	if q.Get("metadata") == "" {
		q.Set("metadata", "skip") // no .attrs sidecar files next to user data
	}
	if q.Get("no_tmp_dir") == "" {
		q.Set("no_tmp_dir", "true") // temp file beside the target: rename is atomic
	}
	q.Set("create_dir", "true")
	// What users see: the path as they wrote it, with the key swapped in.
	shownDir := strings.TrimSuffix(filepath.ToSlash(shown), key)
	return Location{
		Scheme:    "file",
		BucketURL: "file://" + dir + "?" + q.Encode(),
		Key:       key,
		display:   shownDir,
	}, nil
}

// splitAtGlob returns the directory (no trailing slash) before the first path
// element holding a glob character, and the rest.
func splitAtGlob(p string) (dir, rest string) {
	i := strings.IndexAny(p, "*?[")
	if i < 0 {
		i = len(p)
	}
	j := strings.LastIndex(p[:i], "/")
	if j <= 0 {
		return "/", strings.TrimPrefix(p, "/")
	}
	return p[:j], p[j+1:]
}

var (
	memMu      sync.Mutex
	memBuckets = map[string]*blob.Bucket{}
)

// OpenBucket opens the location's bucket. The caller must call the returned
// close function when done (it does nothing for shared mem:// buckets).
func OpenBucket(ctx context.Context, l Location) (*blob.Bucket, func() error, error) {
	if l.Scheme == SchemeStdout {
		return nil, nil, fmt.Errorf("open %s: standard output can only be written, not read or listed; name a file or blob location", l)
	}
	if l.Scheme == "mem" {
		memMu.Lock()
		defer memMu.Unlock()
		b, ok := memBuckets[l.BucketURL]
		if !ok {
			b = memblob.OpenBucket(nil)
			memBuckets[l.BucketURL] = b
		}
		return b, func() error { return nil }, nil
	}
	if !blob.DefaultURLMux().ValidBucketScheme(l.Scheme) {
		return nil, nil, unknownScheme(l)
	}
	b, err := blob.OpenBucket(ctx, l.BucketURL)
	if err != nil {
		return nil, nil, fmt.Errorf("open bucket for %s: %w", l, err)
	}
	return b, b.Close, nil
}

// ErrUnknownScheme is returned (wrapped) when no driver is registered for a
// location's scheme.
var ErrUnknownScheme = errors.New("no blob driver registered for scheme")

// cloudSchemes are the schemes package clouddrivers registers.
var cloudSchemes = map[string]bool{"s3": true, "gs": true, "azblob": true}

// unknownScheme explains a location whose scheme has no driver: which
// schemes are registered and, for a cloud scheme, what the application must
// import.
func unknownScheme(l Location) error {
	schemes := append([]string{"mem"}, blob.DefaultURLMux().BucketSchemes()...)
	sort.Strings(schemes)
	hint := "check the location's scheme"
	if cloudSchemes[l.Scheme] {
		hint = `the application must import the cloud drivers: import _ "github.com/bulkflow/bulkflow/pipeline/blobio/clouddrivers"`
	}
	return fmt.Errorf("open %s: %w %q (registered: %s); %s",
		l, ErrUnknownScheme, l.Scheme, strings.Join(schemes, ", "), hint)
}

// HasGlob reports whether the key holds a glob pattern.
func HasGlob(key string) bool { return strings.ContainsAny(key, "*?[") }

// Object is one object found by List.
type Object struct {
	Loc  Location // Loc.Key is the object's key
	Size int64
}

// String returns the object's location as users see it.
func (o Object) String() string { return o.Loc.String() }

// ErrNoMatch is returned (wrapped) by List when nothing matches.
var ErrNoMatch = errors.New("no objects match")

// List returns the objects matching a location: the object itself when the
// key has no glob and does not end in "/", every object under the prefix when
// it ends in "/", and every object whose key matches the pattern otherwise.
// Results are sorted by key. It fails with ErrNoMatch when nothing matches.
func List(ctx context.Context, l Location) ([]Object, error) {
	b, closeFn, err := OpenBucket(ctx, l)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	if !HasGlob(l.Key) && !strings.HasSuffix(l.Key, "/") && l.Key != "" {
		attrs, err := b.Attributes(ctx, l.Key)
		if err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				return nil, fmt.Errorf("open %s: %w (check the path and that the object exists)", l, ErrNoMatch)
			}
			return nil, fmt.Errorf("open %s: %w", l, err)
		}
		return []Object{{Loc: l, Size: attrs.Size}}, nil
	}
	prefix := l.Key
	if i := strings.IndexAny(prefix, "*?["); i >= 0 {
		prefix = prefix[:i]
	}
	var out []Object
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for vanished := 0; ; {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil && gcerrors.Code(err) == gcerrors.NotFound && vanished < 50 {
			// A local listing (gocloud's fileblob) reads a directory,
			// then each entry's attributes, and stops at an entry renamed
			// or removed in between (a writer's temporary file, renamed
			// into place): list again from the start. The window is a
			// few microseconds per entry; only a writer busy in the
			// folder makes a second one likely.
			vanished++
			out, it = out[:0], b.List(&blob.ListOptions{Prefix: prefix})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l, err)
		}
		if obj.IsDir || strings.HasSuffix(obj.Key, ".tmp") && l.Scheme == "file" {
			continue
		}
		if HasGlob(l.Key) {
			ok, err := path.Match(l.Key, obj.Key)
			if err != nil {
				return nil, fmt.Errorf("bad glob %q in %s: %w", l.Key, l, err)
			}
			if !ok {
				continue
			}
		}
		out = append(out, Object{Loc: l.WithKey(obj.Key), Size: obj.Size})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("open %s: %w", l, ErrNoMatch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Loc.Key < out[j].Loc.Key })
	return out, nil
}

// bucketReadCloser closes the bucket after the reader.
type bucketReadCloser struct {
	io.ReadCloser
	closeBucket func() error
}

func (r *bucketReadCloser) Close() error {
	err := r.ReadCloser.Close()
	if cerr := r.closeBucket(); err == nil {
		err = cerr
	}
	return err
}

// NewReader opens the object at l for reading from the start.
func NewReader(ctx context.Context, l Location) (io.ReadCloser, error) {
	b, closeFn, err := OpenBucket(ctx, l)
	if err != nil {
		return nil, err
	}
	r, err := b.NewReader(ctx, l.Key, nil)
	if err != nil {
		closeFn()
		return nil, fmt.Errorf("open %s: %w", l, err)
	}
	return &bucketReadCloser{ReadCloser: r, closeBucket: closeFn}, nil
}

// ReaderAt reads an object through range reads, never downloading it whole.
type ReaderAt struct {
	ctx    context.Context
	b      *blob.Bucket
	closeB func() error
	loc    Location
	size   int64
}

// NewReaderAt opens the object at l for random access.
func NewReaderAt(ctx context.Context, l Location) (*ReaderAt, error) {
	b, closeFn, err := OpenBucket(ctx, l)
	if err != nil {
		return nil, err
	}
	attrs, err := b.Attributes(ctx, l.Key)
	if err != nil {
		closeFn()
		return nil, fmt.Errorf("open %s: %w", l, err)
	}
	return &ReaderAt{ctx: ctx, b: b, closeB: closeFn, loc: l, size: attrs.Size}, nil
}

// ObjectReaderAt returns a ReaderAt of obj, an object List found in b
// (the bucket of obj.Loc, opened by the caller): it makes no request
// until read, since List gave the size, and its Close leaves b open.
func ObjectReaderAt(ctx context.Context, b *blob.Bucket, obj Object) *ReaderAt {
	return &ReaderAt{ctx: ctx, b: b, closeB: func() error { return nil }, loc: obj.Loc, size: obj.Size}
}

// Size returns the object's size in bytes.
func (r *ReaderAt) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt with one range read per call.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if off+n > r.size {
		n = r.size - off
	}
	rr, err := r.b.NewRangeReader(r.ctx, r.loc.Key, off, n, nil)
	if err != nil {
		return 0, fmt.Errorf("read %s at %d: %w", r.loc, off, err)
	}
	defer rr.Close()
	got, err := io.ReadFull(rr, p[:n])
	if err == nil && n < int64(len(p)) {
		err = io.EOF
	}
	return got, err
}

// Close releases the bucket.
func (r *ReaderAt) Close() error { return r.closeB() }

// Writer writes one object. The object becomes visible only when Close
// succeeds; cancelling the context passed to NewWriter, or calling Abort,
// discards it. Standard output, character devices and FIFOs are written
// directly instead (see NewWriter): there Abort only stops writing.
type Writer struct {
	dst     io.Writer
	cancel  context.CancelFunc // cancels an atomic write's context; nil when direct
	commit  func() error       // commits (unless aborted) and releases
	release func() error       // releases without committing
	loc     Location
	aborted bool
	closed  bool
}

// ErrPartialOutput is wrapped by the errors of a direct Writer (standard
// output, a character device, a FIFO): what it wrote before failing is out
// and cannot be taken back. pipeline.ErrPartialOutput is the same value.
var ErrPartialOutput = errors.New("part of the output may already have been written")

// NewWriter starts writing the object at l (its Key must not be a glob).
//
// What is already at a local path is written through, never replaced: a
// symlink's target is written atomically in the target's directory, a
// character device or FIFO is written directly, and any other non-regular
// file is refused. A standard-output location ("-", "/dev/stdout") writes
// to standard output directly.
func NewWriter(ctx context.Context, l Location) (*Writer, error) {
	if l.Scheme == SchemeStdout {
		if l.Key != "" {
			return nil, fmt.Errorf("write %s: standard output holds one output, not objects under a prefix; name a file or blob location", l)
		}
		return directWriter(l, stdout, func() error { return nil }), nil
	}
	if HasGlob(l.Key) || l.Key == "" || strings.HasSuffix(l.Key, "/") {
		return nil, fmt.Errorf("write %s: the location must name one object, not a pattern or prefix", l)
	}
	target := l
	if l.Scheme == "file" {
		t, f, err := outputTarget(l)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return directWriter(l, f, f.Close), nil
		}
		target = t
	}
	b, closeFn, err := OpenBucket(ctx, target)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	opts := &blob.WriterOptions{ContentType: contentType(l.Key)}
	if l.Scheme == "s3" {
		opts.BufferSize, opts.MaxConcurrency = s3PartSize, s3Concurrency
	}
	if target.Scheme == "file" {
		// Locked while written: RemoveStaleTemps leaves it alone.
		opts.BeforeWrite = func(as func(any) bool) error {
			var f *os.File
			if as(&f) {
				flock.Hold(f)
			}
			return nil
		}
	}
	// The object is uploaded from a pipe through Bucket.Upload, not written
	// through Bucket.NewWriter: gocloud's azureblob writer (v0.47) races
	// with its own upload goroutine when a write is cancelled (it sets its
	// pipe reader to nil while Close is about to close it: a nil pointer
	// panic on Abort), and the Upload path has no pipe of the driver's.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { // owned by the Writer: Close and Abort end it and wait
		err := b.Upload(wctx, target.Key, pr, opts)
		pr.CloseWithError(err) // a Write after a failed upload fails
		done <- err
	}()
	return &Writer{
		dst:    pw,
		cancel: cancel,
		commit: func() error {
			pw.Close()
			err := <-done
			cancel()
			if cerr := closeFn(); err == nil {
				err = cerr
			}
			return err
		},
		release: func() error {
			// After cancel: the upload fails, which discards the object.
			pw.CloseWithError(errAborted)
			<-done
			return closeFn()
		},
		loc: l,
	}, nil
}

// errAborted is what an aborted Writer's upload reads.
var errAborted = errors.New("write aborted")

// The S3 uploader's part size and concurrency. gocloud's s3blob uploads
// through aws-sdk-go-v2's transfermanager, which reads the first 16 MiB of
// an object into memory (below that it sends one PutObject) and, for a
// larger object, allocates a pool of concurrency+1 part buffers: with its
// defaults (8 MiB parts, 5 at a time) an object over 16 MiB costs 16 +
// 6×8 = 64 MiB of buffers, which showed as peak RSS growing from a small
// export to a large one (issue 18). 5 MiB parts (S3's minimum) two at a
// time hold 16 + 3×5 = 31 MiB; the sinks produce data far slower than two
// concurrent part uploads take it.
const (
	s3PartSize    = 5 << 20
	s3Concurrency = 2
)

// directWriter writes to dst as it comes (standard output, a device, a
// FIFO); closeFn releases it.
func directWriter(l Location, dst io.Writer, closeFn func() error) *Writer {
	return &Writer{dst: dst, commit: closeFn, release: closeFn, loc: l}
}

func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(key, ".csv"):
		return "text/csv; charset=utf-8"
	case strings.HasSuffix(key, ".json"):
		return "application/json"
	case strings.HasSuffix(key, ".jsonl"):
		return "application/x-ndjson"
	}
	return "application/octet-stream"
}

// Write writes to the object.
func (w *Writer) Write(p []byte) (int, error) { return w.dst.Write(p) }

// Abort discards the object. Close after Abort only releases resources.
func (w *Writer) Abort() {
	w.aborted = true
	if w.cancel != nil {
		w.cancel()
	}
}

// Close commits the object (unless aborted) and releases resources. It is
// idempotent. A direct writer's error wraps ErrPartialOutput.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.aborted {
		w.release()
		return nil
	}
	if err := w.commit(); err != nil {
		return w.wrap(err)
	}
	return nil
}

// Fail discards the object (Abort, then Close) because writing it failed
// with err, and returns err naming the location; for a direct writer it
// also wraps ErrPartialOutput. A sink whose own buffering or encoding
// failed calls it instead of Abort and Close.
func (w *Writer) Fail(err error) error {
	w.Abort()
	w.Close()
	return w.wrap(err)
}

func (w *Writer) wrap(err error) error {
	if w.Direct() {
		return fmt.Errorf("write %s: %w (%w)", w.loc, err, ErrPartialOutput)
	}
	return fmt.Errorf("write %s: %w", w.loc, err)
}

// Direct reports whether the writer writes as it goes (standard output, a
// character device, a FIFO) rather than committing the object atomically at
// Close: after a failure, part of the output may be visible.
func (w *Writer) Direct() bool { return w.cancel == nil }

// Location returns where the writer writes.
func (w *Writer) Location() Location { return w.loc }

// WriteAll writes data as the object at l, atomically.
func WriteAll(ctx context.Context, l Location, data []byte) error {
	w, err := NewWriter(ctx, l)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		w.Close()
		return fmt.Errorf("write %s: %w", l, err)
	}
	return w.Close()
}

// Fingerprint returns the text that tells one version of an object from
// another: its size, and when attrs are known its modification time and
// etag ("size=N mtime=T etag=E"). A rewritten object has another.
func Fingerprint(size int64, attrs *blob.Attributes) string {
	fp := fmt.Sprintf("size=%d", size)
	if attrs != nil {
		fp += " mtime=" + attrs.ModTime.UTC().Format(time.RFC3339Nano)
		if attrs.ETag != "" {
			fp += " etag=" + attrs.ETag
		}
	}
	return fp
}

// Stamp returns the Fingerprint of the object at l, "" when there is none.
func Stamp(ctx context.Context, l Location) (string, error) {
	b, closeFn, err := OpenBucket(ctx, l)
	if err != nil {
		return "", err
	}
	defer closeFn()
	a, err := b.Attributes(ctx, l.Key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", l, err)
	}
	return Fingerprint(a.Size, a), nil
}

// ReadJSON decodes the JSON object at l into v; found is false (and v left
// alone) when there is no such object.
func ReadJSON(ctx context.Context, l Location, v any) (found bool, err error) {
	r, err := NewReader(ctx, l)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return false, nil
		}
		return false, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", l, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", l, err)
	}
	return true, nil
}

// Join returns the location of name under a prefix location (whose key is
// a directory-like prefix, with or without a trailing "/").
func Join(prefix Location, name ...string) Location {
	k := strings.TrimSuffix(prefix.Key, "/")
	parts := append([]string{}, name...)
	if k != "" {
		parts = append([]string{k}, parts...)
	}
	return prefix.WithKey(path.Join(parts...))
}
