package changes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"gocloud.dev/gcerrors"

	"github.com/bulkflow/bulkflow/pipeline/blobio"

	"github.com/bulkflow/bulkflow/pipeline/readbuf"
)

const (
	magic         = "BFMANIF"
	formatVersion = 1
	tagRecord     = 0x01
	tagFooter     = 0xFF
	// unsynced is the hash of a manifest entry whose key must be sent again.
	unsynced = 0
)

// ErrNewerVersion is wrapped by OpenManifest's error when the manifest was
// written by a newer bulkflow whose format this build cannot read.
var ErrNewerVersion = errors.New("manifest format is newer than this build supports")

// ErrCorrupt is wrapped by the errors of OpenManifest, Diff and Commit when
// a manifest is damaged: a wrong magic, an unreadable or truncated record,
// keys out of order, or a footer whose record count or checksum does not
// match.
var ErrCorrupt = errors.New("manifest is corrupt")

// Manifest is a sorted manifest file opened for streaming reads: it names
// the object and remembers what OpenManifest verified. Diff and Commit read
// the object again, from the start, each time they are called. A Manifest is
// safe for concurrent use.
type Manifest struct {
	loc blobio.Location
	n   int64
	crc uint32
}

// OpenManifest opens the manifest at loc and verifies it in one streaming
// pass: header, every record, strict key order, and the footer's record
// count and CRC-32. If the object does not exist it returns (nil, nil): the
// first run, when every row is new. It fails with an error wrapping
// ErrNewerVersion when the file's format version is newer than this build
// supports, and ErrCorrupt when the file is damaged.
func OpenManifest(ctx context.Context, loc blobio.Location) (*Manifest, error) {
	r, err := openManifestReader(ctx, loc)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, nil
		}
		return nil, err
	}
	defer r.close()
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("changes: verify manifest %s: %w", loc, err)
			}
		}
		ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
	}
	return &Manifest{loc: loc, n: r.n, crc: r.crc.sum()}, nil
}

// Len returns the number of entries in the manifest; 0 for a nil Manifest.
func (m *Manifest) Len() int64 {
	if m == nil {
		return 0
	}
	return m.n
}

// open re-opens the manifest for one merge.
func (m *Manifest) open(ctx context.Context) (*manifestReader, error) {
	r, err := openManifestReader(ctx, m.loc)
	if err != nil {
		return nil, err
	}
	r.want = m
	return r, nil
}

// corrupt returns an error wrapping ErrCorrupt that names the manifest and
// says how to recover.
func corrupt(loc blobio.Location, format string, args ...any) error {
	return fmt.Errorf("changes: manifest %s: %s: %w (delete it to force a full resend: the next run sends every row again, and in mirror mode cannot delete records whose keys left the source before it)",
		loc, fmt.Sprintf(format, args...), ErrCorrupt)
}

// manifestReader streams and verifies the records of a manifest. key, id
// and raw are valid until the next call of next; prev (the key before key)
// too, once next has returned a record.
//
// It reads the file into a buffer of its own and parses well-formed
// records in place (nextFast): key, id and raw point into the buffer, and
// the checksum is updated over spans of many records when the buffer is
// refilled. bufio.Reader's Peek and Discard cost a copy of each key, id
// and record, and a checksum call per record; a sync reads its manifest
// three times (verify, Diff, Commit), and the last two in its serial tail
// (issue 23). Anything else (the footer, a damaged or truncated record)
// goes to the field-by-field path (next, through br), which reports what
// is wrong, for the rest of the file.
type manifestReader struct {
	loc  blobio.Location
	rc   io.ReadCloser
	want *Manifest // when set, the footer must match it (re-reads)

	in     *readbuf.Buffer // the fast path's input: in.Buf[hashed:in.Pos] read but not yet in crc
	hashed int
	br     *bufio.Reader // the field-by-field path, once taken: in's unread bytes, then rc

	n       int64    // records read
	crc     crcBlock // CRC-32 of the record bytes read
	key     []byte
	prev    []byte
	hash    uint64
	id      []byte
	eof     bool
	scratch []byte
	keySave []byte // key's copy, while buf is refilled under it
	raw     []byte // the record's bytes as read (Commit's copy; see copyUnchanged)
}

func openManifestReader(ctx context.Context, loc blobio.Location) (*manifestReader, error) {
	rc, err := blobio.NewReader(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("changes: open manifest: %w", err)
	}
	r := newManifestReader(loc, rc)
	const hdrLen = len(magic) + 1
	n, err := io.ReadAtLeast(rc, r.in.Buf, hdrLen)
	if err != nil {
		rc.Close()
		return nil, r.readErr("header", err)
	}
	r.in.Pos, r.in.End, r.hashed = hdrLen, n, hdrLen
	hdr := r.in.Buf[:hdrLen]
	if string(hdr[:len(magic)]) != magic {
		rc.Close()
		return nil, corrupt(loc, "not a manifest (bad magic %q)", hdr[:len(magic)])
	}
	switch v := hdr[len(magic)]; {
	case v > formatVersion:
		rc.Close()
		return nil, fmt.Errorf("changes: manifest %s has format version %d, this build reads version %d: %w (upgrade bulkflow, or delete the manifest to force a full resend)",
			loc, v, formatVersion, ErrNewerVersion)
	case v < formatVersion:
		rc.Close()
		return nil, corrupt(loc, "bad format version %d", v)
	}
	return r, nil
}

// newManifestReader returns a reader of the records read from rc (which
// starts after the header).
func newManifestReader(loc blobio.Location, rc io.ReadCloser) *manifestReader {
	return &manifestReader{loc: loc, rc: rc, in: readbuf.New(rc, ioBuf)}
}

// readErr classifies a read error: an early end of file is corruption
// (truncation), anything else an I/O failure.
func (r *manifestReader) readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt(r.loc, "truncated in %s after %d records", what, r.n)
	}
	return fmt.Errorf("changes: read manifest %s: %w", r.loc, err)
}

// next reads the next record, verifying its order; at the footer it checks
// the count and checksum and returns false.
func (r *manifestReader) next() (bool, error) {
	if r.eof {
		return false, nil
	}
	if r.br == nil {
		if ok, err := r.nextFast(); ok || err != nil {
			return ok, err
		}
		r.fieldByField()
	}
	tag, err := r.br.ReadByte()
	if err != nil {
		return false, r.readErr("record tag", err)
	}
	switch tag {
	case tagFooter:
		return false, r.footer()
	case tagRecord:
	default:
		return false, corrupt(r.loc, "record %d: bad tag byte 0x%02x", r.n+1, tag)
	}
	r.prev = append(r.prev[:0], r.key...)
	kl, err := binary.ReadUvarint(r.br)
	if err != nil {
		return false, r.readErr("key length", err)
	}
	if kl == 0 || kl > maxKeyLen {
		return false, corrupt(r.loc, "record %d: bad key length %d", r.n+1, kl)
	}
	r.key = grow(r.key, int(kl))
	if _, err := io.ReadFull(r.br, r.key); err != nil {
		return false, r.readErr("key", err)
	}
	var h [8]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return false, r.readErr("hash", err)
	}
	r.hash = binary.LittleEndian.Uint64(h[:])
	il, err := binary.ReadUvarint(r.br)
	if err != nil {
		return false, r.readErr("id length", err)
	}
	if il > maxKeyLen {
		return false, corrupt(r.loc, "record %d: bad id length %d", r.n+1, il)
	}
	r.id = grow(r.id, int(il))
	if _, err := io.ReadFull(r.br, r.id); err != nil {
		return false, r.readErr("id", err)
	}
	if r.n > 0 && bytes.Compare(r.prev, r.key) >= 0 {
		return false, corrupt(r.loc, "record %d: keys out of order (%q after %q)", r.n+1, r.key, r.prev)
	}
	// The checksum covers the record bytes as written; re-encoding them is
	// cheaper than hashing byte by byte, and a non-canonical varint (which
	// the writer never produces) shows up as a checksum mismatch.
	r.scratch = appendManifestRecord(r.scratch[:0], r.key, r.hash, r.id)
	r.crc.write(r.scratch)
	r.raw = r.scratch
	r.n++
	return true, nil
}

// nextFast reads the next record in place in buf, refilling it as needed,
// when the record is well-formed; otherwise (the footer, a bad record, the
// end of the file) it reads nothing and returns false, and next reads
// field by field and reports what is wrong. The checksum covers the
// record's bytes as read, which for a well-formed record are the bytes
// appendManifestRecord writes.
func (r *manifestReader) nextFast() (bool, error) {
	for {
		b := r.in.Buf[r.in.Pos:r.in.End]
		if len(b) > 0 && b[0] != tagRecord {
			return false, nil
		}
		if len(b) >= 2 {
			kl, n := binary.Uvarint(b[1:])
			if n < 0 || n > 0 && (kl == 0 || kl > maxKeyLen) {
				return false, nil
			}
			if n > 0 && uint64(len(b)) > uint64(1+n)+kl+8 {
				k0 := 1 + n
				k1 := k0 + int(kl)
				il, m := binary.Uvarint(b[k1+8:])
				if m < 0 || m > 0 && il > maxKeyLen {
					return false, nil
				}
				if m > 0 && uint64(len(b)) >= uint64(k1+8+m)+il {
					i0 := k1 + 8 + m
					end := i0 + int(il)
					key := b[k0:k1:k1]
					if r.n > 0 && bytes.Compare(r.key, key) >= 0 {
						return false, corrupt(r.loc, "record %d: keys out of order (%q after %q)", r.n+1, key, r.key)
					}
					r.prev, r.key = r.key, key
					r.hash = binary.LittleEndian.Uint64(b[k1:])
					r.id = b[i0:end:end]
					r.raw = b[:end:end]
					r.in.Pos += end
					r.n++
					return true, nil
				}
			}
		}
		if !r.fill() {
			return false, nil
		}
	}
}

// fill adds the read bytes to the checksum and saves key (which may point
// into them) before in.Fill moves the unread ones to the front of the
// buffer and reads more. It returns false when rc has nothing more.
func (r *manifestReader) fill() bool {
	if r.in.Err != nil {
		return false
	}
	r.crc.span(r.in.Buf[r.hashed:r.in.Pos])
	r.keySave = append(r.keySave[:0], r.key...)
	r.key = r.keySave
	r.hashed = 0
	return r.in.Fill()
}

// fieldByField switches to reading through br, for the rest of the file:
// the unread bytes of the buffer, then what rc has left. key and prev
// become copies (the field-by-field path appends to them), and the
// checksum takes in the bytes read so far.
func (r *manifestReader) fieldByField() {
	r.crc.span(r.in.Buf[r.hashed:r.in.Pos])
	r.hashed = r.in.Pos
	r.key = bytes.Clone(r.key)
	r.prev, r.id, r.raw = nil, nil, nil
	r.br = bufio.NewReader(r.in.Rest())
}

func (r *manifestReader) footer() error {
	var f [12]byte
	if _, err := io.ReadFull(r.br, f[:]); err != nil {
		return r.readErr("footer", err)
	}
	count, sum := binary.LittleEndian.Uint64(f[:8]), binary.LittleEndian.Uint32(f[8:])
	if count != uint64(r.n) {
		return corrupt(r.loc, "footer says %d records, found %d", count, r.n)
	}
	crc := r.crc.sum()
	if sum != crc {
		return corrupt(r.loc, "checksum mismatch (footer %08x, records %08x)", sum, crc)
	}
	if _, err := r.br.ReadByte(); err != io.EOF {
		if err != nil {
			return fmt.Errorf("changes: read manifest %s: %w", r.loc, err)
		}
		return corrupt(r.loc, "data after the footer")
	}
	if r.want != nil && (r.want.n != r.n || r.want.crc != crc) {
		return fmt.Errorf("changes: manifest %s changed since it was opened (%d records, checksum %08x; now %d, %08x): open it again",
			r.loc, r.want.n, r.want.crc, r.n, crc)
	}
	r.eof = true
	return nil
}

func (r *manifestReader) close() error {
	if r == nil || r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}

// appendManifestRecord appends one encoded record.
func appendManifestRecord(dst, key []byte, hash uint64, id []byte) []byte {
	dst = append(dst, tagRecord)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint64(dst, hash)
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	return append(dst, id...)
}

// crcBlock is the CRC-32 (IEEE) of the bytes written to it. It hashes them
// a few KiB at a time: a manifest record is 20-40 bytes, and crc32.Update
// uses the CPU's carry-less multiply only from 64 bytes on (below that it
// goes byte by byte or by the 8-byte table), so hashing record by record
// cost sync-diff 3-4 % of its CPU (issue 23). CRC-32 over the same bytes
// in any chunking is the same value, so the file format is unchanged.
type crcBlock struct {
	crc uint32
	buf []byte
}

// crcChunk is how many bytes crcBlock gathers before hashing them.
const crcChunk = 4 << 10

func (c *crcBlock) write(p []byte) {
	if c.buf == nil {
		c.buf = make([]byte, 0, crcChunk+256)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= crcChunk {
		c.crc = crc32.Update(c.crc, crc32.IEEETable, c.buf)
		c.buf = c.buf[:0]
	}
}

// span adds p to the checksum without copying it: for spans of many
// records (manifestReader reads records in place).
func (c *crcBlock) span(p []byte) {
	if len(p) == 0 {
		return
	}
	if len(c.buf) > 0 {
		c.crc = crc32.Update(c.crc, crc32.IEEETable, c.buf)
		c.buf = c.buf[:0]
	}
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
}

// sum returns the CRC-32 of everything written so far.
func (c *crcBlock) sum() uint32 {
	if len(c.buf) > 0 {
		c.crc = crc32.Update(c.crc, crc32.IEEETable, c.buf)
		c.buf = c.buf[:0]
	}
	return c.crc
}

// manifestWriter writes a manifest.
type manifestWriter struct {
	bw      *bufio.Writer
	crc     crcBlock
	n       int64
	last    []byte
	scratch []byte
}

func newManifestWriter(w io.Writer) *manifestWriter {
	mw := &manifestWriter{bw: bufio.NewWriterSize(w, ioBuf)}
	mw.bw.WriteString(magic)
	mw.bw.WriteByte(formatVersion)
	return mw
}

// add writes one entry; keys must be added in strictly ascending order.
func (mw *manifestWriter) add(key []byte, hash uint64, id []byte) error {
	if mw.n > 0 && bytes.Compare(mw.last, key) >= 0 {
		return fmt.Errorf("changes: internal error: manifest keys out of order (%q after %q)", key, mw.last)
	}
	mw.last = append(mw.last[:0], key...)
	mw.scratch = appendManifestRecord(mw.scratch[:0], key, hash, id)
	mw.crc.write(mw.scratch)
	mw.n++
	if _, err := mw.bw.Write(mw.scratch); err != nil {
		return fmt.Errorf("changes: write manifest: %w", err)
	}
	return nil
}

// addRaw writes rec, a record read from another manifest whose key is
// after every key added so far and before the next one added: Commit's
// copy of the old manifest's unchanged keys (see
// manifestAndPending.copyUnchanged), which checks that order itself.
// last is the key of the last of a series of addRaw calls: set it
// (setLast) before the next add, which checks its order against it.
func (mw *manifestWriter) addRaw(rec []byte) error {
	mw.crc.write(rec)
	mw.n++
	if _, err := mw.bw.Write(rec); err != nil {
		return fmt.Errorf("changes: write manifest: %w", err)
	}
	return nil
}

// copyRaw copies nbytes of records, nrecs of them, from r through buf:
// records another manifest had, as addRaw writes one, whose keys come after
// every key written so far and before the next one added (a walked
// Commit's draft, commitWalked, which checks that order itself).
func (mw *manifestWriter) copyRaw(r io.Reader, nbytes, nrecs int64, buf []byte) error {
	for nbytes > 0 {
		p := buf[:min(int64(len(buf)), nbytes)]
		if _, err := io.ReadFull(r, p); err != nil {
			return fmt.Errorf("changes: read the walk's draft: %w", err)
		}
		mw.crc.span(p)
		if _, err := mw.bw.Write(p); err != nil {
			return fmt.Errorf("changes: write manifest: %w", err)
		}
		nbytes -= int64(len(p))
	}
	mw.n += nrecs
	return nil
}

// setLast records key as the last key written (after addRaw).
func (mw *manifestWriter) setLast(key []byte) { mw.last = append(mw.last[:0], key...) }

// finish writes the footer and flushes.
func (mw *manifestWriter) finish() error {
	var f [13]byte
	f[0] = tagFooter
	binary.LittleEndian.PutUint64(f[1:], uint64(mw.n))
	binary.LittleEndian.PutUint32(f[9:], mw.crc.sum())
	mw.bw.Write(f[:])
	if err := mw.bw.Flush(); err != nil {
		return fmt.Errorf("changes: write manifest: %w", err)
	}
	return nil
}
