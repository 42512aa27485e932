package changes

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// encodeManifest writes entries with the real writer (keys must ascend).
func encodeManifest(t testing.TB, es ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	mw := newManifestWriter(&buf)
	for _, e := range es {
		if err := mw.add([]byte(e.Key), e.Hash, []byte(e.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.finish(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawManifest encodes records as given, in any order, with a correct
// footer.
func rawManifest(version byte, es ...entry) []byte {
	b := append([]byte(magic), version)
	var recs []byte
	for _, e := range es {
		recs = appendManifestRecord(recs, []byte(e.Key), e.Hash, []byte(e.ID))
	}
	b = append(b, recs...)
	b = append(b, tagFooter)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(es)))
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(recs))
}

var sample = []entry{{"a", 1, "id-a"}, {"b\x00", 0, ""}, {"b\xff", 99, "001xx000003DGb2AAG"}, {strings.Repeat("k", 300), 7, "long"}}

func TestManifestRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fileLoc, err := blobio.Parse("", filepath.Join(dir, "state", "manifest.bfm"))
	if err != nil {
		t.Fatal(err)
	}
	for name, loc := range map[string]blobio.Location{"mem": memLoc(t), "file": fileLoc} {
		t.Run(name, func(t *testing.T) {
			if m, err := OpenManifest(ctx, loc); m != nil || err != nil {
				t.Fatalf("OpenManifest(missing) = %v, %v; want nil, nil", m, err)
			}
			data := encodeManifest(t, sample...)
			if !bytes.Equal(data, rawManifest(1, sample...)) {
				t.Fatal("writer and test encoder disagree")
			}
			if err := blobio.WriteAll(ctx, loc, data); err != nil {
				t.Fatal(err)
			}
			m, err := OpenManifest(ctx, loc)
			if err != nil {
				t.Fatal(err)
			}
			if m.Len() != int64(len(sample)) {
				t.Errorf("Len = %d, want %d", m.Len(), len(sample))
			}
			got := entries(t, m)
			if len(got) != len(sample) {
				t.Fatalf("entries = %+v", got)
			}
			for i := range got {
				if got[i] != sample[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], sample[i])
				}
			}
		})
	}
	// An empty manifest is valid.
	loc := memLoc(t)
	blobio.WriteAll(ctx, loc, encodeManifest(t))
	if m, err := OpenManifest(ctx, loc); err != nil || m.Len() != 0 {
		t.Errorf("empty manifest: %v, %v", m, err)
	}
	var nilM *Manifest
	if nilM.Len() != 0 {
		t.Error("nil Manifest Len != 0")
	}
}

func TestManifestCorrupt(t *testing.T) {
	ctx := context.Background()
	good := encodeManifest(t, sample...)
	type tc struct {
		name string
		data []byte
		want error
		msg  string
	}
	tests := []tc{
		{"empty object", nil, ErrCorrupt, "truncated"},
		{"bad magic", append([]byte("BFMANIX"), good[7:]...), ErrCorrupt, "bad magic"},
		{"newer version", append(append([]byte(magic), 2), good[8:]...), ErrNewerVersion, "upgrade bulkflow"},
		{"version 0", append(append([]byte(magic), 0), good[8:]...), ErrCorrupt, "version 0"},
		{"wrong order", rawManifest(1, entry{"b", 1, ""}, entry{"a", 1, ""}), ErrCorrupt, "out of order"},
		{"duplicate key", rawManifest(1, entry{"a", 1, ""}, entry{"a", 2, ""}), ErrCorrupt, "out of order"},
		{"empty key", rawManifest(1, entry{"", 1, ""}), ErrCorrupt, "key length 0"},
		{"data after footer", append(bytes.Clone(good), 0), ErrCorrupt, "after the footer"},
		{"no footer", good[:len(good)-13], ErrCorrupt, "truncated"},
		{"wrong count", func() []byte {
			b := bytes.Clone(good)
			b[len(b)-12]++
			return b
		}(), ErrCorrupt, "footer says 5 records, found 4"},
	}
	// Every truncation and every single-bit flip is detected.
	for n := range len(good) {
		tests = append(tests, tc{"truncated to " + strconv.Itoa(n), good[:n], ErrCorrupt, "truncated"})
	}
	for i := range len(good) {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= bit
			want := error(ErrCorrupt)
			if i == len(magic) && b[i] > formatVersion {
				want = ErrNewerVersion
			}
			tests = append(tests, tc{"flip byte " + strconv.Itoa(i) + " bit " + strconv.Itoa(int(bit)), b, want, ""})
		}
	}
	for _, tt := range tests {
		loc := memLoc(t)
		if err := blobio.WriteAll(ctx, loc, tt.data); err != nil {
			t.Fatal(err)
		}
		m, err := OpenManifest(ctx, loc)
		if !errors.Is(err, tt.want) || m != nil {
			t.Errorf("%s: OpenManifest = %v, %v; want %v", tt.name, m, err, tt.want)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, loc.String()) || !strings.Contains(msg, tt.msg) || !strings.Contains(msg, "delete") {
			t.Errorf("%s: error %q should name %s, say %q and what to do", tt.name, msg, loc, tt.msg)
		}
	}
}

// A manifest replaced after OpenManifest verified it must make Diff and
// Commit fail rather than trust unverified data.
func TestManifestChangedAfterOpen(t *testing.T) {
	ctx := context.Background()
	loc := memLoc(t)
	blobio.WriteAll(ctx, loc, encodeManifest(t, entry{"a", 1, ""}, entry{"b", 2, ""}))
	m, err := OpenManifest(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	d := newDiffer(t, 0)
	add(t, d, "a,A,1")

	// A valid but different manifest.
	blobio.WriteAll(ctx, loc, encodeManifest(t, entry{"a", 1, ""}, entry{"c", 2, ""}))
	if _, err := d.Diff(ctx, m, nil, nil); err == nil || !strings.Contains(err.Error(), "changed since it was opened") {
		t.Errorf("Diff = %v, want 'changed since it was opened'", err)
	}
	// A corrupt one: the checksum is only at the end, and still no commit.
	bad := encodeManifest(t, entry{"a", 1, ""}, entry{"b", 2, ""})
	bad[len(bad)-1] ^= 0xFF
	blobio.WriteAll(ctx, loc, bad)
	var out bytes.Buffer
	if _, err := d.Commit(ctx, m, &out, true); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Commit = %v, want ErrCorrupt", err)
	}
	// Deleted.
	b, closeB, _ := blobio.OpenBucket(ctx, loc)
	b.Delete(ctx, loc.Key)
	closeB()
	if _, err := d.Diff(ctx, m, nil, nil); err == nil {
		t.Error("Diff with a deleted manifest = nil error")
	}
}

// manyEntries returns n entries with ascending keys, ids of varying length
// (some empty) and records of 20-60 bytes.
func manyEntries(n int) []entry {
	es := make([]entry, n)
	for i := range es {
		id := ""
		if i%5 != 0 {
			id = "001xx" + strings.Repeat("0", i%13) + strconv.Itoa(i)
		}
		es[i] = entry{Key: "key-" + strconv.Itoa(1_000_000+i), Hash: uint64(i) * 0x9e3779b97f4a7c15, ID: id}
	}
	return es
}

// The checksum is gathered in crcChunk blocks: over many chunks it must
// still be the CRC-32 of the record bytes (what rawManifest writes), the
// writer and the reader must agree, and a flipped bit in any chunk, read
// from the buffer or field by field, must be caught.
func TestManifestChecksumAcrossChunks(t *testing.T) {
	ctx := context.Background()
	es := manyEntries(3000) // about 100 KiB: ~25 chunks
	good := encodeManifest(t, es...)
	if raw := rawManifest(formatVersion, es...); !bytes.Equal(good, raw) {
		t.Fatalf("the writer's manifest (%d bytes) differs from the records with their CRC-32 (%d bytes)", len(good), len(raw))
	}
	loc := memLoc(t)
	if err := blobio.WriteAll(ctx, loc, good); err != nil {
		t.Fatal(err)
	}
	m, err := OpenManifest(ctx, loc)
	if err != nil || m.Len() != int64(len(es)) {
		t.Fatalf("OpenManifest = %v, %v; want %d entries", m, err, len(es))
	}
	// Flip the low bit of the hash of records spread over the file: the
	// record stays well-formed, so only the checksum can catch it.
	recs := good[len(magic)+1 : len(good)-13]
	for _, at := range []int{0, 137, 1500, 2999} {
		off := 0
		for i := range at {
			off += len(appendManifestRecord(nil, []byte(es[i].Key), es[i].Hash, []byte(es[i].ID)))
		}
		off += 1 + 1 + len(es[at].Key) // tag, key length, key: the hash's first byte
		b := bytes.Clone(good)
		b[len(magic)+1+off] ^= 1
		if bytes.Equal(b[len(magic)+1:len(b)-13], recs) {
			t.Fatal("the flip changed nothing")
		}
		loc := memLoc(t)
		if err := blobio.WriteAll(ctx, loc, b); err != nil {
			t.Fatal(err)
		}
		if m, err := OpenManifest(ctx, loc); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Errorf("record %d's hash flipped: OpenManifest = %v, %v; want a checksum mismatch", at, m, err)
		}
	}
}

// BenchmarkManifest writes and then reads back (verifying it) a manifest
// of 100,000 entries.
func BenchmarkManifest(b *testing.B) {
	es := manyEntries(100_000)
	keys := make([][]byte, len(es))
	for i, e := range es {
		keys[i] = []byte(e.Key)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		mw := newManifestWriter(&buf)
		for i, e := range es {
			if err := mw.add(keys[i], e.Hash, []byte(e.ID)); err != nil {
				b.Fatal(err)
			}
		}
		if err := mw.finish(); err != nil {
			b.Fatal(err)
		}
		r := newManifestReader(blobio.Location{}, io.NopCloser(bytes.NewReader(buf.Bytes()[len(magic)+1:])))
		for {
			ok, err := r.next()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
		}
		if r.n != int64(len(es)) {
			b.Fatalf("read %d entries, want %d", r.n, len(es))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(es)), "ns/entry")
}

// FuzzOpenManifest: a manifest is a file on the user's storage, so any
// bytes may be found there. OpenManifest must never panic and must either
// accept them or refuse them as ErrCorrupt or ErrNewerVersion, and what it
// accepts must be a well-formed manifest: re-encoding its entries with the
// writer gives back the same bytes.
func FuzzOpenManifest(f *testing.F) {
	f.Add(encodeManifest(f, sample...))
	f.Add(encodeManifest(f))
	f.Add(encodeManifest(f, manyEntries(300)...))
	f.Add(rawManifest(formatVersion, entry{"b", 1, ""}, entry{"a", 1, ""}))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		loc := memLoc(t)
		if err := blobio.WriteAll(ctx, loc, data); err != nil {
			t.Fatal(err)
		}
		m, err := OpenManifest(ctx, loc)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerVersion) {
				t.Fatalf("OpenManifest: %v; want ErrCorrupt or ErrNewerVersion", err)
			}
			return
		}
		r, err := m.open(ctx)
		if err != nil {
			t.Fatalf("re-open an accepted manifest: %v", err)
		}
		defer r.close()
		var buf bytes.Buffer
		mw := newManifestWriter(&buf)
		for {
			ok, err := r.next()
			if err != nil {
				t.Fatalf("re-read an accepted manifest: %v", err)
			}
			if !ok {
				break
			}
			if err := mw.add(r.key, r.hash, r.id); err != nil {
				t.Fatal(err)
			}
		}
		if err := mw.finish(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("accepted %d bytes that do not re-encode to themselves (%d bytes)", len(data), buf.Len())
		}
	})
}

// readAllRecords reads the records after the header of a manifest with
// newManifestReader over rc, checking prev after every record, and returns
// the entries and the reader's error.
func readAllRecords(t *testing.T, rc io.Reader) ([]entry, error) {
	t.Helper()
	r := newManifestReader(blobio.Location{}, io.NopCloser(rc))
	var got []entry
	for {
		ok, err := r.next()
		if err != nil || !ok {
			return got, err
		}
		if n := len(got); n > 0 && string(r.prev) != got[n-1].Key {
			t.Fatalf("record %d: prev %.20q, want the key before, %.20q", n+1, r.prev, got[n-1].Key)
		}
		if want := appendManifestRecord(nil, r.key, r.hash, r.id); !bytes.Equal(r.raw, want) {
			t.Fatalf("record %d: raw %.40q, want %.40q", len(got)+1, r.raw, want)
		}
		got = append(got, entry{Key: string(r.key), Hash: r.hash, ID: string(r.id)})
	}
}

// TestManifestReaderInPlace: the reader parses records in place in its
// buffer and refills it under them: over a manifest of several buffers,
// read in whole buffers, one byte at a time and a few bytes at a time,
// with records larger than the buffer, every entry, prev and raw come out
// as written and the checksum matches; a bad record after many good ones
// is reported as the field-by-field path reports it.
func TestManifestReaderInPlace(t *testing.T) {
	es := manyEntries(150_000) // about 4.5 MB: several refills of the 1 MiB buffer
	big := []entry{
		{"a-big", 1, strings.Repeat("i", maxKeyLen)},                                // a record of 1 MiB and more
		{strings.Repeat("b", maxKeyLen), 2, "id"},                                   // a key of maxKeyLen
		{"c" + strings.Repeat("k", maxKeyLen-1), 3, strings.Repeat("j", maxKeyLen)}, // 2 MiB
		{"d", 4, ""},
	}
	for _, tc := range []struct {
		name string
		es   []entry
		rd   func(io.Reader) io.Reader
	}{
		{"whole reads", es, func(r io.Reader) io.Reader { return r }},
		{"one byte reads", es[:40_000], iotest.OneByteReader},
		{"half reads", es, iotest.HalfReader},
		{"data with EOF", es, iotest.DataErrReader},
		{"records over the buffer", big, iotest.HalfReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := encodeManifest(t, tc.es...)
			got, err := readAllRecords(t, tc.rd(bytes.NewReader(data[len(magic)+1:])))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.es) {
				t.Fatalf("read %d entries, want %d", len(got), len(tc.es))
			}
			for i := range got {
				if got[i] != tc.es[i] {
					t.Fatalf("entry %d = {%.40q %d %.40q}, want {%.40q %d %.40q}", i,
						got[i].Key, got[i].Hash, got[i].ID, tc.es[i].Key, tc.es[i].Hash, tc.es[i].ID)
				}
			}
		})
	}

	// Damage after many good records (well past the first refill): each
	// is reported with its record number, as the field-by-field path does.
	data := encodeManifest(t, es...)
	recs := data[len(magic)+1 : len(data)-13]
	at := 100_000
	off := 0
	for i := range at {
		off += len(appendManifestRecord(nil, []byte(es[i].Key), es[i].Hash, []byte(es[i].ID)))
	}
	for _, tc := range []struct {
		name, want string
		damage     func(b []byte) []byte
	}{
		{"bad tag", "record 100001: bad tag byte 0x07", func(b []byte) []byte { b[off] = 7; return b }},
		{"bad key length", "record 100001: bad key length 0", func(b []byte) []byte { b[off+1] = 0; return b }},
		{"out of order", "record 100001: keys out of order", func(b []byte) []byte { b[off+2] = 'a'; return b }},
		{"truncated", "truncated in key after 100000 records", func(b []byte) []byte { return b[:off+3] }},
		{"checksum", "checksum mismatch", func(b []byte) []byte { b[off+2+len(es[at].Key)] ^= 1; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.damage(append(bytes.Clone(recs), data[len(data)-13:]...))
			_, err := readAllRecords(t, iotest.HalfReader(bytes.NewReader(b)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCorrupt with %q", err, tc.want)
			}
		})
	}
}
