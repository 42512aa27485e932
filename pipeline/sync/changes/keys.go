package changes

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// A mirror (a sync that deletes the keys its source no longer has) must
// know every key whose record may be in the destination. A run that is
// stopped before it commits leaves out of the manifest the new keys it
// may have loaded; the syncer writes them down first, as a manifest of
// keys alone (KeysWriter), and the next run diffs against the manifest
// with those keys added as unsynced entries without an id (MergeUnsynced):
// a key still in the source is sent again, a key gone is deleted.

// KeysWriter writes a manifest of keys alone: every entry unsynced (the
// next run sends the key again whatever its data) and without a record id.
type KeysWriter struct {
	mw  *manifestWriter
	buf []byte
}

// NewKeysWriter starts a manifest of keys on w.
func NewKeysWriter(w io.Writer) *KeysWriter {
	return &KeysWriter{mw: newManifestWriter(w)}
}

// Add writes key; keys must come in strictly ascending byte order.
func (k *KeysWriter) Add(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("changes: key %q: empty or longer than %d bytes", key[:min(len(key), 64)], maxKeyLen)
	}
	k.buf = append(k.buf[:0], key...)
	return k.mw.add(k.buf, unsynced, nil)
}

// Len returns the number of keys written.
func (k *KeysWriter) Len() int64 { return k.mw.n }

// Close writes the footer and flushes; it does not close w.
func (k *KeysWriter) Close() error { return k.mw.finish() }

// Location returns where m was read from.
func (m *Manifest) Location() blobio.Location { return m.loc }

// MergeUnsynced writes to w the entries of base (nil: none) and, for each
// key of the extra manifests that base does not hold, an unsynced entry
// without an id. It returns the number of entries written. Each input is
// read once, streaming; a key in several extras is written once.
func MergeUnsynced(ctx context.Context, w io.Writer, base *Manifest, extra ...*Manifest) (int64, error) {
	var rs []*manifestReader // rs[0] is base's when base is not nil
	defer func() {
		for _, r := range rs {
			r.close()
		}
	}()
	for _, m := range append([]*Manifest{base}, extra...) {
		if m == nil {
			continue
		}
		r, err := openOld(ctx, m)
		if err != nil {
			return 0, err
		}
		rs = append(rs, r)
	}
	mw := newManifestWriter(w)
	var key []byte
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("changes: merge manifests: %w", err)
			}
		}
		// The smallest key of the inputs; base's entry wins a tie.
		var first *manifestReader
		for _, r := range rs {
			if !r.eof && (first == nil || bytes.Compare(r.key, first.key) < 0) {
				first = r
			}
		}
		if first == nil {
			break
		}
		key = append(key[:0], first.key...)
		if base != nil && first == rs[0] {
			if err := mw.add(key, first.hash, first.id); err != nil {
				return 0, err
			}
		} else if err := mw.add(key, unsynced, nil); err != nil {
			return 0, err
		}
		for _, r := range rs {
			if !r.eof && bytes.Equal(r.key, key) {
				if _, err := r.next(); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := mw.finish(); err != nil {
		return 0, err
	}
	return mw.n, nil
}
