package changes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bulkflow/bulkflow/pipeline"
)

// This file is the diff done as rows are added (Differ.Expect). Warehouse
// exports usually come ordered by their key (ORDER BY id, or a table read in
// primary-key order), and the manifest is in key order too. While the run's
// keys arrive in strictly increasing byte order, Add walks the manifest
// beside them, a merge join, and knows each key's op at once:
//
//   - an unchanged row (most of a sync) is written as its key and hash
//     only, to a chunk file of its own (online-keys), already in key
//     order: its encoded row is never written, sorted or read back; its
//     manifest record, as read, goes to a draft of the next manifest
//     (online-draft);
//   - a new or changed row goes to another chunk (online-rows);
//   - the pending keys Commit needs (new, changed, missing) are written as
//     the complete Diff would write them, and where the draft stood at
//     each (online-index).
//
// Diff then only replays the pending keys and the rows beside them, and
// Commit copies the draft in blocks between the pending keys: no merge of
// the run's chunks, no second pass over the manifest, no record parsed
// twice. The first key that is not above the one before (input out of
// order, or a duplicate) ends the walk for good (goOffline): the keys and
// rows chunks join the spool's, the pending keys and the draft are
// discarded, and from then on Add spools whole rows and Diff and Commit
// merge as they always did. The spool is then
// complete (every key and hash; every row but the in-order unchanged ones,
// which Diff finds unchanged again against the same manifest), so the two
// paths report the same ops and write the same manifest
// (TestExpectMatchesDiff compares them).
//
// A duplicate key cannot lose its row: a key's later occurrences are never
// above the last key, so they end the walk first and are spooled whole; the
// omitted row is always a key's first, the one Diff keeps.

// online is the state of a diff done as rows are added.
type online struct {
	of   manifestID
	man  *manifestReader // the old manifest, at the first key not yet passed
	last []byte          // the last key added; started once one was
	keys *chunkWriter    // unchanged keys and hashes (no row), spool chunk format, in key order
	rows *chunkWriter    // new and changed rows, spool chunk format, in key order
	pend *chunkWriter    // the pending keys (see pendingKeys)
	// draft holds the unchanged keys' manifest records as read (the next
	// manifest but for the pending keys), index where the draft stood at
	// each pending key: Commit copies the draft in blocks (commitWalked).
	draft, index     *chunkWriter
	draftOff, draftN int64 // bytes and records in the draft
	ibuf             [16]byte
	buf              []byte
	c                Counts
	started          bool // a key was added: last is set
}

// Expect tells the Differ the manifest the run will be diffed against (the
// old argument of Diff and Commit), so that Add can diff rows as they come
// while their keys arrive in increasing order (see online.go). It must be
// called before the first Add; nil (a first run) does nothing. Diff and
// Commit then refuse any other manifest.
//
// A row Add found unchanged this way is not kept: Row returns a nil row
// for it, and a later Diff passes it as OpUnchanged with a nil row, also
// without Options.LazyUnchanged. Any failure of the walk (reading the
// manifest, writing its files) only ends it: Diff then merges the spool and
// reports the error as it would have.
func (d *Differ) Expect(ctx context.Context, old *Manifest) error {
	if d.run.seq > 0 || d.run.frozen || d.on != nil || d.expected != nil {
		return errors.New("changes: Expect after Add, Diff or Expect")
	}
	if old == nil {
		return nil
	}
	id := idOf(old)
	d.expected = &id
	man, err := openOld(ctx, old)
	if err != nil {
		return nil // Diff opens it again and reports the error
	}
	on := &online{of: id, man: man}
	for _, f := range []struct {
		w    **chunkWriter
		name string
	}{{&on.keys, "online-keys"}, {&on.rows, "online-rows"}, {&on.pend, "online-pending"},
		{&on.draft, "online-draft"}, {&on.index, "online-index"}} {
		if *f.w, err = d.run.newChunkNamed(f.name); err != nil {
			on.close()
			return nil
		}
	}
	d.on = on
	return nil
}

// addOnline diffs one row as it is added: key is d.keyBuf, h its hash and
// payload its encoding. It reports whether it took the row (spooled or
// written); false means the walk has ended and the row is to be spooled
// whole. Its error is a failure to keep a row already taken.
func (d *Differ) addOnline(h uint64, payload []byte) (bool, error) {
	on, key := d.on, d.keyBuf
	if on.started {
		if c := bytes.Compare(key, on.last); c <= 0 {
			how := fmt.Sprintf("key %q after %q", clip(key), clip(on.last))
			if c == 0 {
				how = fmt.Sprintf("key %q twice in a row", clip(key))
			}
			d.unordered = fmt.Sprintf("row %d: %s", d.run.seq+1, how)
			return false, d.goOffline()
		}
	}
	man := on.man
	for !man.eof && bytes.Compare(man.key, key) < 0 { // a manifest key the run does not have (yet)
		on.missing()
		if _, err := man.next(); err != nil {
			return false, d.goOffline()
		}
	}
	on.last, on.started = append(on.last[:0], key...), true
	inMan := !man.eof && bytes.Equal(man.key, key)
	switch {
	case inMan && man.hash == h:
		on.c.Unchanged++
		on.keys.write(key, d.run.skip(), h, nil)
		on.draft.bw.Write(man.raw) // errors are sticky: finish reports them
		on.draftOff += int64(len(man.raw))
		on.draftN++
	case inMan:
		on.c.Changed++
		on.buf = binary.LittleEndian.AppendUint64(on.buf[:0], man.hash)
		on.pending(key, pendingInRun|pendingInMan, h, append(on.buf, man.id...))
		on.rows.write(key, d.run.skip(), h, payload)
	default:
		on.c.New++
		on.pending(key, pendingInRun, h, nil)
		on.rows.write(key, d.run.skip(), h, payload)
	}
	if inMan {
		if _, err := man.next(); err != nil {
			return true, d.goOffline()
		}
	}
	return true, nil
}

// missing writes the manifest's current key as pending: the run does not
// have it.
func (on *online) missing() {
	on.c.Missing++
	on.buf = binary.LittleEndian.AppendUint64(on.buf[:0], on.man.hash)
	on.pending(on.man.key, pendingInMan, 0, append(on.buf, on.man.id...))
}

// pending writes a pending key and, to the index, where the draft stands
// before it.
func (on *online) pending(key []byte, flags, aux uint64, payload []byte) {
	on.pend.write(key, flags, aux, payload)
	binary.LittleEndian.PutUint64(on.ibuf[:8], uint64(on.draftOff))
	binary.LittleEndian.PutUint64(on.ibuf[8:], uint64(on.draftN))
	on.index.bw.Write(on.ibuf[:])
}

// goOffline ends the walk: the unchanged keys and the new and changed rows
// written so far join the spool's chunks (they are in key order, with
// their input sequence), and the pending keys are discarded. Its error is
// a failure to write those files.
func (d *Differ) goOffline() error {
	on := d.on
	if on == nil {
		return nil
	}
	d.on = nil
	on.man.close()
	on.pend.abort()
	on.draft.abort()
	on.index.abort()
	for _, w := range []*chunkWriter{on.keys, on.rows} {
		if err := w.finish(); err != nil {
			return err
		}
		d.run.chunks = append(d.run.chunks, w.path)
	}
	return nil
}

// close closes the walk's manifest and removes its files (Expect's
// failure, Close).
func (on *online) close() {
	on.man.close()
	for _, w := range []*chunkWriter{on.keys, on.rows, on.pend, on.draft, on.index} {
		if w != nil {
			w.abort()
		}
	}
}

// finishOnline completes a walk that lasted to the end of the run, for Diff
// against old: the manifest's keys after the last one added are missing,
// and the pending keys become Commit's. It reports false when the walk ended
// here instead (Diff then merges).
func (d *Differ) finishOnline(ctx context.Context, old *Manifest) (bool, error) {
	on := d.on
	if on.of != idOf(old) {
		return false, d.goOffline() // Diff refuses the manifest
	}
	man := on.man
	for i := 0; !man.eof; i++ {
		if i%4096 == 4095 && ctx.Err() != nil {
			return false, d.goOffline()
		}
		on.missing()
		if _, err := man.next(); err != nil {
			return false, d.goOffline()
		}
	}
	// finish removes a file it fails to write; goOffline's abort of it
	// then fails quietly.
	for _, w := range []*chunkWriter{on.pend, on.draft, on.index} {
		if err := w.finish(); err != nil {
			return false, d.goOffline()
		}
	}
	if err := on.rows.finish(); err != nil {
		// finish removed the rows file: its rows cannot be sent, and the
		// run fails (the engine counts them lost).
		on.close()
		d.on = nil
		return false, err
	}
	on.man.close()
	on.keys.abort() // only a walk that ends early needs them
	d.on = nil
	d.walked = &walk{rows: on.rows.path, draft: on.draft.path, index: on.index.path, draftN: on.draftN, c: on.c}
	d.pending, d.pendingOf = on.pend.path, on.of
	d.run.discard() // nothing was spooled: every row was walked
	return true, nil
}

// Walked reports whether the last Diff was the walk done as rows were
// added (Expect; the run's keys came in increasing order to the end)
// rather than a merge of the spool with the manifest.
func (d *Differ) Walked() bool { return d.walked != nil }

// Unordered says where the run's keys stopped coming in increasing order,
// which ended the walk (Expect): the row (counting the rows added, from 1)
// and the two keys; "" when they never did.
func (d *Differ) Unordered() string { return d.unordered }

// clip returns key as a string, cut to 64 bytes for messages.
func clip(key []byte) string {
	if len(key) > 64 {
		return string(key[:64]) + "…"
	}
	return string(key)
}

// walk is a diff completed while rows were added: its counts (without the
// manifest's size) and the file of its new and changed rows.
type walk struct {
	rows, draft, index string
	draftN             int64 // records in the draft
	c                  Counts
}

// diffWalked is Diff after a complete walk: the new, changed and missing
// keys from the pending keys, in key order, each new or changed one with
// its row from the walk's rows; then every unchanged key, as OpUnchanged
// with a nil row, an empty key and an empty oldID (the walk kept neither).
func (d *Differ) diffWalked(ctx context.Context, fn func(op Op, key string, row pipeline.Row, origin pipeline.Origin, oldID string) error, c Counts) (Counts, error) {
	w := d.walked
	c.New, c.Changed, c.Unchanged, c.Missing = w.c.New, w.c.Changed, w.c.Unchanged, w.c.Missing
	if fn == nil {
		return c, nil
	}
	pk, err := openPending(d.pending, d.run.limit)
	if err != nil {
		return c, err
	}
	defer pk.c.close()
	rows, err := d.run.openFiles([]string{w.rows})
	if err != nil {
		return c, err
	}
	rc := rows[0]
	defer rc.close()
	var e keyEntry
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return c, fmt.Errorf("changes: diff: %w", err)
			}
		}
		ok, err := pk.next(&e)
		if err != nil {
			return c, err
		}
		if !ok {
			break
		}
		key := string(e.key)
		if !e.inRun {
			if err := fn(OpMissing, key, nil, pipeline.Origin{}, string(e.oldID)); err != nil {
				return c, fmt.Errorf("changes: diff: key %q: %w", key, err)
			}
			continue
		}
		if ok, err := rc.next(); err != nil {
			return c, err
		} else if !ok || !bytes.Equal(rc.key, e.key) {
			return c, fmt.Errorf("changes: diff: internal error: the walk's rows and pending keys disagree at key %q", key)
		}
		row, o, err := d.decode(rc)
		if err != nil {
			return c, err
		}
		op, oldID := OpNew, ""
		if e.inMan {
			op, oldID = OpChanged, string(e.oldID)
		}
		if err := fn(op, key, row, o, oldID); err != nil {
			return c, fmt.Errorf("changes: diff: key %q: %w", key, err)
		}
	}
	d.omitted = true
	defer func() { d.omitted = false }()
	for i := int64(0); i < w.c.Unchanged; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return c, fmt.Errorf("changes: diff: %w", err)
			}
		}
		if err := fn(OpUnchanged, "", nil, pipeline.Origin{}, ""); err != nil {
			return c, fmt.Errorf("changes: diff: an unchanged key: %w", err)
		}
	}
	return c, nil
}

// commitWalked is Commit after a complete walk: the draft (the unchanged
// keys' records as the old manifest had them, in key order) is copied in
// blocks up to each pending key, which gets its record by Commit's rules
// (commitKey). Nothing is parsed or compared per unchanged key: for the 99 %
// of keys a typical sync leaves unchanged, Commit is a copy with a
// checksum. An outcome for a key that is not pending fails, as in Commit.
func (d *Differ) commitWalked(ctx context.Context, w io.Writer, outs *merger, keepMissing bool) (int64, error) {
	wk := d.walked
	pk, err := openPending(d.pending, d.run.limit)
	if err != nil {
		return 0, err
	}
	defer pk.c.close()
	idx, err := os.Open(wk.index)
	if err != nil {
		return 0, fmt.Errorf("changes: open the walk's index: %w", err)
	}
	defer idx.Close()
	draft, err := os.Open(wk.draft)
	if err != nil {
		return 0, fmt.Errorf("changes: open the walk's draft: %w", err)
	}
	defer draft.Close()
	fi, err := draft.Stat()
	if err != nil {
		return 0, fmt.Errorf("changes: open the walk's draft: %w", err)
	}
	ir := bufio.NewReaderSize(idx, minReadBuf)
	buf := make([]byte, ioBuf)
	mw := newManifestWriter(w)
	var (
		e       keyEntry
		out     outcome
		at, atN int64 // the draft's bytes and records copied so far
		ib      [16]byte
	)
	copyTo := func(off, n int64) error {
		if off < at || n < atN || off > fi.Size() || n > wk.draftN {
			return fmt.Errorf("changes: commit: internal error: the walk's index goes from %d bytes, %d records to %d, %d (draft: %d, %d)",
				at, atN, off, n, fi.Size(), wk.draftN)
		}
		if err := mw.copyRaw(draft, off-at, n-atN, buf); err != nil {
			return err
		}
		at, atN = off, n
		return nil
	}
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("changes: commit: %w", err)
			}
		}
		ok, err := pk.next(&e)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		if _, err := io.ReadFull(ir, ib[:]); err != nil {
			return 0, fmt.Errorf("changes: read the walk's index: %w", err)
		}
		if err := copyTo(int64(binary.LittleEndian.Uint64(ib[:8])), int64(binary.LittleEndian.Uint64(ib[8:]))); err != nil {
			return 0, err
		}
		if err := commitKey(mw, outs, &e, &out, keepMissing); err != nil {
			return 0, err
		}
	}
	if err := copyTo(fi.Size(), wk.draftN); err != nil {
		return 0, err
	}
	// commitKey takes only a pending key's outcomes: any other stays first
	// from then on.
	if t := outs.top(); t != nil {
		return 0, fmt.Errorf("changes: commit: outcome (%v) for key %q, which the diff did not report as new, changed or missing", Op(t.aux&0xFF), t.key)
	}
	if err := mw.finish(); err != nil {
		return 0, err
	}
	return mw.n, nil
}
