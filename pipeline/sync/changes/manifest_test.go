package changes

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// encodeManifest writes entries with the real writer (keys must ascend).
func encodeManifest(t *testing.T, es ...entry) []byte {
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
