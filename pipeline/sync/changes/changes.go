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
	"sync"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/scratch"
)

// Op is what a run does with a key compared with the last manifest.
type Op int

// The ops reported by Diff and passed to Outcome.
const (
	OpNew       Op = iota + 1 // the key is not in the manifest: insert
	OpChanged                 // the row's hash differs, or the entry is unsynced: update
	OpUnchanged               // same hash as last loaded: nothing to send
	OpMissing                 // in the manifest but not in the run: delete (mirror mode)
)

var opNames = [...]string{OpNew: "new", OpChanged: "changed", OpUnchanged: "unchanged", OpMissing: "missing"}

// String returns "new", "changed", "unchanged" or "missing".
func (o Op) String() string {
	if o >= OpNew && o <= OpMissing {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Counts are the counts of one diff: keys of the run by op, keys of the old
// manifest missing from the run, and the old manifest's size. Duplicate keys
// after the first are not counted.
type Counts struct {
	New, Changed, Unchanged, Missing int64
	// Manifest is the number of entries in the old manifest.
	Manifest int64
}

// Options configure a Differ. The zero value is ready to use.
type Options struct {
	// Dir is the directory for spill files; "" means os.TempDir(). The
	// Differ creates its own subdirectory there and Close removes it.
	Dir string
	// MemLimit is the number of bytes of records buffered in memory before a
	// sorted chunk is spilled to disk, separately for the run and for the
	// outcomes; 0 means DefaultMemLimit. The run's buffer is two halves: one fills
	// while the other is sorted and written by a goroutine of its own. Read buffers during merges share a quarter
	// of it (16 to 256 KiB per chunk file, at most 256 files at once).
	MemLimit int
	// Canon, when set, maps a row to the values its hash is computed from
	// (e.g. normalised to the text the destination stores, pipeline/sync/
	// remote); the row itself is spooled and handed back unchanged. It is
	// called from Add's goroutine and its result is not kept.
	Canon func(pipeline.Row) pipeline.Row
	// LazyUnchanged makes Diff pass OpUnchanged keys to fn with a nil row
	// and a zero origin instead of decoding their spooled rows: most keys
	// of a sync are unchanged, and decoding every row was the largest part
	// of a diff. fn can still decode the key's row with Differ.Row. The
	// key and oldID strings of such a call are valid only until fn
	// returns (they share Diff's buffers; strings.Clone keeps one), so
	// that Diff allocates nothing per unchanged key.
	LazyUnchanged bool
}

// DefaultMemLimit is the MemLimit used when Options.MemLimit is 0.
//
// It is 16 MiB, not 32, so that a sync run's live heap stays well under
// the 64 MiB past which bulkflow lifts its small-heap memory limit
// (cmd/bulkflow/gc.go): with 32 MiB the spool's two halves put bench
// sync-diff's live heap at 50-60 MiB, runs that crossed 64 MiB then grew
// the heap by GOGC=200's headroom, and peak RSS was bimodal (137 or
// 193-235 MiB at 1M rows). The spool's chunks are half as big, so twice
// as many: freeze merges only as many of them as needed to bring the
// count down to the fan-in (10M rows spill about 320).
const DefaultMemLimit = 16 << 20

// Differ compares one run with the manifest of the last one and writes the
// next manifest. Add is called from one goroutine, then Diff (once or more),
// then Commit; Outcome may be called from any goroutine, concurrently with
// Diff. Close removes the spill files.
type Differ struct {
	schema  *pipeline.Schema
	keyIdx  int
	keyName string
	dir     string
	scratch *scratch.Dir // dir, removed by Close (scratch.RemoveStale, if the process is killed)
	canonFn func(pipeline.Row) pipeline.Row
	lazy    bool
	// keysOnly makes decode return no row: a NewKeys pass needs the keys.
	keysOnly bool

	run     spool
	keyBuf  []byte
	canon   []byte
	text    []byte
	payload []byte
	digest  xxhash.Digest

	diffed   bool
	diffedOf manifestID
	cur      *cursor // the record Diff is passing to fn (Row), else nil
	// pending is the file of the keys a complete Diff found new, changed
	// or missing, for Commit (see pendingKeys), pendingOf the manifest it
	// merged; "" = none.
	pending   string
	pendingOf manifestID
	pendBuf   []byte
	objs      objectTable // origin objects of the spooled rows
	dec       rowDecoder  // Diff's and Row's

	// The diff done as rows are added (online.go): expected is the
	// manifest given to Expect, on the walk while it lasts, walked the
	// walk that lasted to the end, and omitted is set while diffWalked
	// passes unchanged keys (Row returns nil).
	expected  *manifestID
	on        *online
	walked    *walk
	omitted   bool
	unordered string // where the keys stopped coming in order (Unordered)

	mu       sync.Mutex // guards outcomes and closed
	outcomes spool
	outBuf   []byte
	closed   bool
}

// manifestID identifies the manifest a Diff ran against, so that Commit can
// refuse a different one.
type manifestID struct {
	loc string
	n   int64
	crc uint32
}

func idOf(m *Manifest) manifestID {
	if m == nil {
		return manifestID{}
	}
	return manifestID{loc: m.loc.String(), n: m.n, crc: m.crc}
}

// NewDiffer returns a Differ for rows of schema keyed by the field named
// key, which must exist. It creates a temporary directory under o.Dir.
func NewDiffer(schema *pipeline.Schema, key string, o Options) (*Differ, error) {
	if schema == nil {
		return nil, errors.New("changes: nil schema")
	}
	idx := schema.Index(key)
	if idx < 0 {
		return nil, fmt.Errorf("changes: key field %q is not in the schema (%s)", key, schema)
	}
	if o.MemLimit < 0 {
		return nil, fmt.Errorf("changes: negative MemLimit %d", o.MemLimit)
	}
	if o.MemLimit == 0 {
		o.MemLimit = DefaultMemLimit
	}
	sd, err := scratch.New(o.Dir, "bulkflow-changes-")
	if err != nil {
		return nil, fmt.Errorf("changes: create spill directory: %w", err)
	}
	dir := sd.Path
	d := &Differ{
		schema:   schema,
		keyIdx:   idx,
		keyName:  key,
		dir:      dir,
		scratch:  sd,
		canonFn:  o.Canon,
		lazy:     o.LazyUnchanged,
		run:      spool{name: "run", dir: dir, limit: o.MemLimit, async: true},
		outcomes: spool{name: "outcomes", dir: dir, limit: o.MemLimit},
	}
	d.dec.objs = &d.objs
	return d, nil
}

// Add spools one row of the run. The key is the text of the key field
// (pipeline.AppendText); a null or empty key returns a *pipeline.RowError
// with Code "missing_key", and a key over 1 MiB one with Code
// "key_too_long": the row is not spooled and the caller dead-letters it.
//
// The row's hash is xxhash64 over the canonical text of every field, in
// schema order: per field a null marker or a length-prefixed
// pipeline.AppendText, so ("a","bc") differs from ("ab","c") and null from
// "". With Options.Canon the hash is of Canon(row) instead. Values keep
// their Go type exactly when Diff hands them back.
//
// Add must be called from one goroutine, and not after Diff or Commit.
func (d *Differ) Add(row pipeline.Row, origin pipeline.Origin) error {
	if d.run.frozen {
		return errors.New("changes: Add after Diff or Commit")
	}
	if len(row) != d.schema.Len() {
		return fmt.Errorf("changes: row has %d values, schema has %d fields", len(row), d.schema.Len())
	}
	kv := row[d.keyIdx]
	d.keyBuf = pipeline.AppendText(d.keyBuf[:0], kv)
	if kv == nil || len(d.keyBuf) == 0 {
		e := pipeline.NewRowError("missing_key", d.keyName, "the sync key %s is empty", d.keyName)
		e.Origin = origin
		return e
	}
	if len(d.keyBuf) > maxKeyLen {
		e := pipeline.NewRowError("key_too_long", d.keyName, "the sync key %s is %d bytes long (at most %d)", d.keyName, len(d.keyBuf), maxKeyLen)
		e.Origin = origin
		return e
	}
	var h uint64
	var err error
	if d.canonFn == nil {
		// The hash comes from the encoding itself (appendRowHash).
		d.payload, h, d.text, err = appendRowHash(d.payload[:0], row, origin, &d.objs, &d.digest, d.text)
	} else {
		d.canon, d.text = appendCanonical(d.canon[:0], d.canonFn(row), d.text)
		h = rowHash(d.canon)
		d.payload, err = appendRow(d.payload[:0], row, origin, &d.objs)
	}
	if err != nil {
		e := &pipeline.RowError{Origin: origin, Code: "unsupported_value", Err: fmt.Errorf("changes: %w", err)}
		return e
	}
	if d.on != nil {
		if took, err := d.addOnline(h, d.payload); took || err != nil {
			return err
		}
	}
	return d.run.add(d.keyBuf, h, d.payload)
}

// Diff merges the spooled run (in key order) with the old manifest (nil:
// the first run, every key is new) and calls fn for every key in key byte
// order: OpNew, OpChanged or OpUnchanged with the key's row and origin (and,
// for changed and unchanged keys, the manifest entry's id as oldID), and
// OpMissing with a nil row and the manifest entry's id. Under
// Options.LazyUnchanged an OpUnchanged key comes with a nil row and a zero
// origin, which fn can decode with Row, and with key and oldID strings
// that are valid only during the call.
//
// When a key was added more than once, the first row in input order is the
// key's row; each later one is passed to dup, right after the first, so the
// caller can dead-letter it with code "duplicate_key". dup must not be nil
// when fn is not. When fn is nil Diff only counts, and calls neither (so a
// counting pass followed by an emitting pass reports each duplicate once).
//
// When Add diffed the rows as they came (Expect) and their keys were in
// increasing order to the end, Diff passes the new, changed and missing
// keys in key order as above, then every unchanged key, as OpUnchanged
// with a nil row, an empty key and an empty oldID; it reads neither the
// spool nor the manifest.
//
// Diff may be called more than once, and passes the same keys in the same
// order each time; each call reads the spill files and the manifest again.
// An error from fn or dup stops the diff and is returned wrapped. Diff
// must not be called concurrently with Add, Diff or Commit.
func (d *Differ) Diff(ctx context.Context, old *Manifest, fn func(op Op, key string, row pipeline.Row, origin pipeline.Origin, oldID string) error, dup func(key string, row pipeline.Row, origin pipeline.Origin) error) (Counts, error) {
	c := Counts{Manifest: old.Len()}
	if fn != nil && dup == nil {
		return c, errors.New("changes: Diff: dup is nil; duplicate keys must be reported to the caller")
	}
	if err := d.openCheck(); err != nil {
		return c, err
	}
	if err := d.checkExpected("Diff", old); err != nil {
		return c, err
	}
	if d.on != nil {
		if _, err := d.finishOnline(ctx, old); err != nil {
			return c, err
		}
	}
	if d.walked != nil {
		c, err := d.diffWalked(ctx, fn, c)
		if err == nil {
			d.diffed, d.diffedOf = true, idOf(old)
		}
		return c, err
	}
	if err := d.run.freeze(); err != nil {
		return c, err
	}
	run, err := d.run.open()
	if err != nil {
		return c, err
	}
	defer run.close()
	man, err := openOld(ctx, old)
	if err != nil {
		return c, err
	}
	defer man.close()
	var pw *chunkWriter // the merged keys for Commit, written by the first complete Diff
	if d.pending == "" {
		if pw, err = d.run.newChunkNamed("pending"); err != nil {
			return c, err
		}
		defer func() {
			if pw != nil {
				pw.abort()
			}
		}()
	}

	decode := d.decode
	defer func() { d.cur = nil }()
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return c, fmt.Errorf("changes: diff: %w", err)
			}
		}
		top := run.top()
		order := position(top, man)
		if order == 2 {
			break
		}
		if order > 0 { // a manifest key the run does not have
			c.Missing++
			if pw != nil {
				d.pendBuf = binary.LittleEndian.AppendUint64(d.pendBuf[:0], man.hash)
				pw.write(man.key, pendingInMan, 0, append(d.pendBuf, man.id...))
			}
			if fn != nil {
				key := string(man.key)
				if err := fn(OpMissing, key, nil, pipeline.Origin{}, string(man.id)); err != nil {
					return c, fmt.Errorf("changes: diff: key %q: %w", key, err)
				}
			}
			if _, err := man.next(); err != nil {
				return c, err
			}
			continue
		}
		op, oldID := OpNew, ""
		if order == 0 {
			op = OpChanged
			if man.hash == top.aux {
				op = OpUnchanged
			}
		}
		// transient: the key and oldID strings fn gets share d.keyBuf and
		// man.id (see Options.LazyUnchanged) instead of being copied.
		transient := op == OpUnchanged && d.lazy
		if fn != nil && order == 0 {
			if transient {
				oldID = unsafe.String(unsafe.SliceData(man.id), len(man.id))
			} else {
				oldID = string(man.id)
			}
		}
		switch op {
		case OpNew:
			c.New++
		case OpChanged:
			c.Changed++
		default:
			c.Unchanged++
		}
		switch {
		case pw == nil || op == OpUnchanged: // Commit copies the manifest's entry
		case order == 0:
			d.pendBuf = binary.LittleEndian.AppendUint64(d.pendBuf[:0], man.hash)
			pw.write(top.key, pendingInRun|pendingInMan, top.aux, append(d.pendBuf, man.id...))
		default:
			pw.write(top.key, pendingInRun, top.aux, nil)
		}
		d.keyBuf = append(d.keyBuf[:0], top.key...)
		var key string
		if fn != nil {
			if transient {
				key = unsafe.String(unsafe.SliceData(d.keyBuf), len(d.keyBuf))
			} else {
				key = string(d.keyBuf)
			}
			var row pipeline.Row
			var o pipeline.Origin
			if op != OpUnchanged || !d.lazy {
				if row, o, err = decode(top); err != nil {
					return c, err
				}
			}
			d.cur = top
			err := fn(op, key, row, o, oldID)
			d.cur = nil
			if err != nil {
				return c, fmt.Errorf("changes: diff: key %q: %w", key, err)
			}
		}
		if err := run.advance(); err != nil {
			return c, err
		}
		for t := run.top(); t != nil && bytes.Equal(t.key, d.keyBuf); t = run.top() {
			if fn != nil {
				if transient { // dup gets a key it may keep: the rare case
					key, transient = string(d.keyBuf), false
				}
				row, o, err := decode(t)
				if err != nil {
					return c, err
				}
				if err := dup(key, row, o); err != nil {
					return c, fmt.Errorf("changes: diff: duplicate key %q: %w", key, err)
				}
			}
			if err := run.advance(); err != nil {
				return c, err
			}
		}
		if order == 0 {
			if _, err := man.next(); err != nil {
				return c, err
			}
		}
	}
	if pw != nil {
		err := pw.finish()
		path := pw.path
		pw = nil
		if err != nil {
			return c, err
		}
		d.pending, d.pendingOf = path, idOf(old)
	}
	d.diffed, d.diffedOf = true, idOf(old)
	return c, nil
}

// NewKeys is a Diff that counts and passes fn every key it finds new (in
// the run, not in old), in key order, without decoding any row: a
// mirror's syncer writes them down before they are sent (KeysWriter).
// Duplicate keys are neither passed nor reported, as in a counting Diff.
func (d *Differ) NewKeys(ctx context.Context, old *Manifest, fn func(key string) error) (Counts, error) {
	d.keysOnly = true
	defer func() { d.keysOnly = false }()
	return d.Diff(ctx, old, func(op Op, key string, _ pipeline.Row, _ pipeline.Origin, _ string) error {
		if op == OpNew {
			return fn(key)
		}
		return nil
	}, func(string, pipeline.Row, pipeline.Origin) error { return nil })
}

// decode decodes the row of the record cur is at: nil for a row the walk
// did not keep (an unchanged one, spooled as its key and hash; online.go).
func (d *Differ) decode(cur *cursor) (pipeline.Row, pipeline.Origin, error) {
	if d.keysOnly {
		return nil, pipeline.Origin{}, nil
	}
	p, err := cur.payload()
	if err != nil || len(p) == 0 { // an encoded row is never empty
		return nil, pipeline.Origin{}, err
	}
	row, o, err := d.dec.decode(p)
	if err != nil {
		return nil, o, fmt.Errorf("changes: decode spilled row of key %q: %w", cur.key, err)
	}
	return row, o, nil
}

// Row returns the row and origin of the key Diff is passing to fn, decoded
// from the spool: for an OpUnchanged key under Options.LazyUnchanged, whose
// row fn got as nil. It may only be called from fn (not from dup), and
// fails otherwise. It returns a nil row for an unchanged row that Add
// diffed as it came and did not keep (see Expect).
func (d *Differ) Row() (pipeline.Row, pipeline.Origin, error) {
	if d.omitted {
		return nil, pipeline.Origin{}, nil
	}
	if d.cur == nil {
		return nil, pipeline.Origin{}, errors.New("changes: Row called outside Diff's callback")
	}
	return d.decode(d.cur)
}

// openOld opens the old manifest for a merge and reads its first record;
// nil stays nil.
func openOld(ctx context.Context, old *Manifest) (*manifestReader, error) {
	if old == nil {
		return nil, nil
	}
	r, err := old.open(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.next(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// position compares the run's next key with the manifest's: -1 when the
// run's comes first (or the manifest is done), 1 when the manifest's does
// (or the run is done), 0 when equal, and 2 when both are done.
func position(top *cursor, man *manifestReader) int {
	manDone := man == nil || man.eof
	switch {
	case top == nil && manDone:
		return 2
	case manDone:
		return -1
	case top == nil:
		return 1
	}
	return bytes.Compare(top.key, man.key)
}

// Outcome records what happened to a key the caller sent: for op OpNew or
// OpChanged, loaded reports whether the row was loaded and id is the
// destination's id for it (e.g. a Salesforce record id; "" keeps the old
// one); for op OpMissing, loaded reports whether the record was deleted.
// op must be the op Diff reported for the key, or Commit fails.
//
// A key may get several outcomes (retries): it counts as loaded if any of
// them says so, with the id of the last loaded outcome that has one.
// Outcome is safe for concurrent use, also with Diff; outcomes may arrive in
// any order and are spilled to disk beyond MemLimit. It fails after Commit
// or Close.
func (d *Differ) Outcome(key string, op Op, loaded bool, id string) error {
	if op != OpNew && op != OpChanged && op != OpMissing {
		return fmt.Errorf("changes: Outcome for key %q: op %v (want new, changed or missing)", key, op)
	}
	aux := uint64(op)
	if loaded {
		aux |= outLoaded
	}
	return d.outcome(key, aux, id)
}

// Bits of an outcome record's aux, above the op.
const (
	outLoaded = 1 << 8 // the row was loaded
	outMaybe  = 1 << 9 // the row's outcome is unknown: it may be stored
)

// OutcomeUnknown records that the row of key (new or changed) was sent and
// its outcome is not known: it may be in the destination. Commit keeps a
// new key with no loaded outcome as an unsynced entry without an id
// (instead of leaving it out), so that a mirror still knows the key: sent
// again if the source still has it, deleted if not.
func (d *Differ) OutcomeUnknown(key string, op Op) error {
	if op != OpNew && op != OpChanged {
		return fmt.Errorf("changes: OutcomeUnknown for key %q: op %v (want new or changed)", key, op)
	}
	return d.outcome(key, uint64(op)|outMaybe, "")
}

func (d *Differ) outcome(key string, aux uint64, id string) error {
	if key == "" {
		return errors.New("changes: Outcome: empty key")
	}
	if len(key) > maxKeyLen || len(id) > maxKeyLen {
		return fmt.Errorf("changes: Outcome for key %q: key or id longer than %d bytes", key[:min(len(key), 64)], maxKeyLen)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("changes: Outcome after Close")
	}
	if d.outcomes.frozen {
		return fmt.Errorf("changes: Outcome for key %q after Commit", key)
	}
	d.outBuf = append(d.outBuf[:0], key...)
	return d.outcomes.add(d.outBuf, aux, []byte(id))
}

// outcome is the reduced outcome of one key.
type outcome struct {
	present bool
	op      Op
	loaded  bool
	maybe   bool // an outcome was unknown (OutcomeUnknown)
	id      []byte
}

// Commit writes the next manifest to w by merging the old manifest, the run
// and the outcomes, key by key:
//
//   - unchanged: the old entry is kept;
//   - new or changed and loaded: the row's hash, with the outcome's id (the
//     old id when the outcome's is empty);
//   - changed and not loaded (or no outcome): the old entry, marked unsynced
//     so the next run sends the key again;
//   - new and not loaded (or no outcome): left out, so the next run sees the
//     key as new; but with an unknown outcome (OutcomeUnknown), unsynced
//     without an id, so that the key is known;
//   - missing and deleted: left out; missing otherwise: kept when
//     keepMissing (mirror mode retries the delete next run), left out
//     otherwise.
//
// old must be the manifest given to Diff. An outcome for a key whose op is
// not the one Diff reported (including unchanged keys and keys in neither
// the run nor the manifest) makes Commit fail. The caller passes an atomic
// writer (a blobio.Writer) and closes it only when Commit succeeds (Abort
// otherwise), so a failed Commit leaves the old manifest in place. Commit
// returns the number of entries written. Outcomes cannot be added after
// Commit.
func (d *Differ) Commit(ctx context.Context, old *Manifest, w io.Writer, keepMissing bool) (int64, error) {
	if err := d.openCheck(); err != nil {
		return 0, err
	}
	if d.diffed && d.diffedOf != idOf(old) {
		return 0, fmt.Errorf("changes: Commit: the old manifest (%s, %d entries) is not the one Diff used (%s, %d entries)",
			orNone(idOf(old).loc), old.Len(), orNone(d.diffedOf.loc), d.diffedOf.n)
	}
	if err := d.checkExpected("Commit", old); err != nil {
		return 0, err
	}
	if err := d.goOffline(); err != nil { // no Diff ran: Commit merges the whole spool
		return 0, err
	}
	if err := d.run.freeze(); err != nil {
		return 0, err
	}
	d.mu.Lock()
	err := d.outcomes.freeze()
	d.mu.Unlock()
	if err != nil {
		return 0, err
	}
	outs, err := d.outcomes.open()
	if err != nil {
		return 0, err
	}
	defer outs.close()
	if d.walked != nil && d.pendingOf == idOf(old) {
		return d.commitWalked(ctx, w, outs, keepMissing)
	}
	var keys keyStream
	if d.pending != "" && d.pendingOf == idOf(old) {
		pk, err := openPending(d.pending, d.run.limit)
		if err != nil {
			return 0, err
		}
		defer pk.c.close()
		man, err := openOld(ctx, old)
		if err != nil {
			return 0, err
		}
		defer man.close()
		keys = &manifestAndPending{man: man, pend: pk}
	} else {
		run, err := d.run.open()
		if err != nil {
			return 0, err
		}
		defer run.close()
		man, err := openOld(ctx, old)
		if err != nil {
			return 0, err
		}
		defer man.close()
		keys = &runAndManifest{run: run, man: man}
	}

	mw := newManifestWriter(w)
	// After a Diff, the unchanged records between pending keys are copied.
	copier, _ := keys.(*manifestAndPending)
	var (
		e   keyEntry
		out outcome
	)
	for i := 0; ; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("changes: commit: %w", err)
			}
		}
		if copier != nil {
			var bound []byte
			if t := outs.top(); t != nil {
				bound = t.key
			}
			if err := copier.copyUnchanged(ctx, mw, bound); err != nil {
				return 0, err
			}
		}
		ok, err := keys.next(&e)
		if err != nil {
			return 0, err
		}
		// An outcome before the next key (or after the last) is for a key
		// in neither the run nor the manifest.
		if t := outs.top(); t != nil && (!ok || bytes.Compare(t.key, e.key) < 0) {
			return 0, fmt.Errorf("changes: commit: outcome (%v) for key %q, which is neither in the run nor in the manifest", Op(t.aux&0xFF), t.key)
		}
		if !ok {
			break
		}
		if err := commitKey(mw, outs, &e, &out, keepMissing); err != nil {
			return 0, err
		}
	}
	if err := mw.finish(); err != nil {
		return 0, err
	}
	return mw.n, nil
}

// commitKey writes the next manifest's record for key e (see Commit's
// rules), after reducing the key's outcomes, the next ones of outs, into
// out (whose memory it reuses).
func commitKey(mw *manifestWriter, outs *merger, e *keyEntry, out *outcome, keepMissing bool) error {
	key, inRun, runHash, inMan, manHash, oldID := e.key, e.inRun, e.runHash, e.inMan, e.manHash, e.oldID
	// Reduce the key's outcomes.
	*out = outcome{id: out.id[:0]}
	for t := outs.top(); t != nil && bytes.Equal(t.key, key); t = outs.top() {
		op, loaded := Op(t.aux&0xFF), t.aux&outLoaded != 0
		if out.present && op != out.op {
			return fmt.Errorf("changes: commit: key %q has outcomes for ops %v and %v", key, out.op, op)
		}
		out.present, out.op = true, op
		out.maybe = out.maybe || t.aux&outMaybe != 0
		if loaded {
			out.loaded = true
			if p, err := t.payload(); err != nil {
				return err
			} else if len(p) > 0 {
				out.id = append(out.id[:0], p...)
			}
		}
		if err := outs.advance(); err != nil {
			return err
		}
	}

	var op Op
	switch {
	case inRun && !inMan:
		op = OpNew
	case inRun && manHash == runHash:
		op = OpUnchanged
	case inRun:
		op = OpChanged
	default:
		op = OpMissing
	}
	if out.present && out.op != op {
		return fmt.Errorf("changes: commit: outcome for key %q says %v, but the diff says %v", key, out.op, op)
	}
	loaded := out.present && out.loaded
	switch op {
	case OpUnchanged:
		return mw.add(key, manHash, oldID)
	case OpNew:
		if loaded {
			return mw.add(key, runHash, out.id)
		}
		if out.maybe {
			return mw.add(key, unsynced, nil)
		}
	case OpChanged:
		switch {
		case loaded && len(out.id) > 0:
			return mw.add(key, runHash, out.id)
		case loaded:
			return mw.add(key, runHash, oldID)
		default:
			return mw.add(key, unsynced, oldID)
		}
	case OpMissing:
		if !loaded && keepMissing {
			return mw.add(key, manHash, oldID)
		}
	}
	return nil
}

// keyEntry is one key of the run or the old manifest, as Commit merges
// them: whether it is in each, its hash in each, and the manifest's id.
type keyEntry struct {
	key              []byte
	inRun, inMan     bool
	runHash, manHash uint64
	oldID            []byte
}

// keyStream yields the keys of the run and the old manifest in key order,
// each once; next returns false after the last.
type keyStream interface {
	next(e *keyEntry) (bool, error)
}

// runAndManifest merges the spooled run (its first row per key) with the
// old manifest: what Commit reads when no Diff wrote the pending keys.
type runAndManifest struct {
	run *merger
	man *manifestReader // nil: no old manifest
}

func (s *runAndManifest) next(e *keyEntry) (bool, error) {
	top := s.run.top()
	manOK := s.man != nil && !s.man.eof
	if top == nil && !manOK {
		return false, nil
	}
	*e = keyEntry{key: e.key[:0], oldID: e.oldID[:0]}
	if top != nil && (!manOK || bytes.Compare(top.key, s.man.key) <= 0) {
		e.key = append(e.key, top.key...)
	} else {
		e.key = append(e.key, s.man.key...)
	}
	if top != nil && bytes.Equal(top.key, e.key) {
		e.inRun, e.runHash = true, top.aux
		for t := s.run.top(); t != nil && bytes.Equal(t.key, e.key); t = s.run.top() {
			if err := s.run.advance(); err != nil {
				return false, err
			}
		}
	}
	if manOK && bytes.Equal(s.man.key, e.key) {
		e.inMan, e.manHash = true, s.man.hash
		e.oldID = append(e.oldID, s.man.id...)
		if _, err := s.man.next(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// Flags of a pending-keys record (in the chunk record's seq field).
const (
	pendingInRun = 1 << iota
	pendingInMan
)

// pendingKeys reads the keys a complete Diff found new, changed or
// missing while it merged the run with the manifest (a few per cent of the
// keys, in key order), one chunk-format record per key: flags in seq, the
// run's hash in aux, and as payload the manifest's hash (uint64, little
// endian) and id when the manifest has the key. Commit merges this small
// file with the manifest (every other manifest key is unchanged) instead
// of merging the run's chunks, rows included, with the manifest again.
type pendingKeys struct{ c *cursor }

func openPending(path string, limit int) (*pendingKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("changes: open pending keys: %w", err)
	}
	return &pendingKeys{c: &cursor{f: f, br: bufio.NewReaderSize(f, min(max(limit/4, minReadBuf), maxReadBuf)), path: path}}, nil
}

// manifestAndPending merges the old manifest with the pending keys: a key
// in both is changed (or missing), one only pending is new, and one only in
// the manifest is unchanged.
type manifestAndPending struct {
	man          *manifestReader // nil: no old manifest
	pend         *pendingKeys
	pe           keyEntry // the next pending key, when pok
	pok, started bool
}

func (s *manifestAndPending) next(e *keyEntry) (bool, error) {
	if !s.started {
		s.started = true
		if err := s.advance(); err != nil {
			return false, err
		}
	}
	manOK := s.man != nil && !s.man.eof
	if !s.pok && !manOK {
		return false, nil
	}
	if s.pok && (!manOK || bytes.Compare(s.pe.key, s.man.key) <= 0) {
		inMan := manOK && bytes.Equal(s.pe.key, s.man.key)
		if inMan != s.pe.inMan {
			return false, fmt.Errorf("changes: commit: internal error: the pending keys and the manifest disagree about key %q", s.pe.key)
		}
		*e = keyEntry{key: append(e.key[:0], s.pe.key...), oldID: append(e.oldID[:0], s.pe.oldID...),
			inRun: s.pe.inRun, inMan: s.pe.inMan, runHash: s.pe.runHash, manHash: s.pe.manHash}
		if inMan {
			if _, err := s.man.next(); err != nil {
				return false, err
			}
		}
		return true, s.advance()
	}
	*e = keyEntry{key: append(e.key[:0], s.man.key...), oldID: append(e.oldID[:0], s.man.id...),
		inRun: true, inMan: true, runHash: s.man.hash, manHash: s.man.hash}
	_, err := s.man.next()
	return err == nil, err
}

// copyUnchanged writes the old manifest's records that come before the
// next pending key and before bound (the next outcome's key, nil for none)
// to mw as they were read: each such key is unchanged (in the run, with the
// manifest's hash, since Diff wrote every other key to the pending keys),
// has no outcome, and Commit writes its record as it is. Copying the bytes
// skips next's copies of key and id, the outcome and op checks and add's
// re-encoding for the 99 % of keys a typical sync leaves unchanged (issue
// 23: the manifest's rewrite is part of a sync's serial tail). The keys it
// copies are in the reader's verified order, below both bounds, and after
// every key Commit wrote before; a key at a bound goes through next.
func (s *manifestAndPending) copyUnchanged(ctx context.Context, mw *manifestWriter, bound []byte) error {
	if !s.started || s.man == nil {
		return nil
	}
	man := s.man
	copied := 0
	for !man.eof && (!s.pok || bytes.Compare(man.key, s.pe.key) < 0) && (bound == nil || bytes.Compare(man.key, bound) < 0) {
		if copied%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("changes: commit: %w", err)
			}
		}
		if err := mw.addRaw(man.raw); err != nil {
			return err
		}
		copied++
		if _, err := man.next(); err != nil {
			return err
		}
	}
	if copied > 0 {
		// The last key copied: next moved it to prev when it read a
		// record, and left it in key when it read the footer.
		if man.eof {
			mw.setLast(man.key)
		} else {
			mw.setLast(man.prev)
		}
	}
	return nil
}

// advance reads the next pending key.
func (s *manifestAndPending) advance() error {
	ok, err := s.pend.next(&s.pe)
	s.pok = ok
	return err
}

func (p *pendingKeys) next(e *keyEntry) (bool, error) {
	ok, err := p.c.next()
	if err != nil || !ok {
		return false, err
	}
	pay, err := p.c.payload()
	if err != nil {
		return false, err
	}
	flags := p.c.seq
	*e = keyEntry{key: append(e.key[:0], p.c.key...), oldID: e.oldID[:0],
		inRun: flags&pendingInRun != 0, inMan: flags&pendingInMan != 0, runHash: p.c.aux}
	if e.inMan {
		if len(pay) < 8 {
			return false, p.c.fail(fmt.Errorf("pending key %q: %d bytes of manifest entry", e.key, len(pay)))
		}
		e.manHash = binary.LittleEndian.Uint64(pay)
		e.oldID = append(e.oldID, pay[8:]...)
	}
	return true, nil
}

// checkExpected refuses a manifest other than the one given to Expect: the
// rows Add did not keep were unchanged against that one only.
func (d *Differ) checkExpected(what string, old *Manifest) error {
	if d.expected != nil && *d.expected != idOf(old) {
		return fmt.Errorf("changes: %s: the old manifest (%s, %d entries) is not the one given to Expect (%s, %d entries)",
			what, orNone(idOf(old).loc), old.Len(), orNone(d.expected.loc), d.expected.n)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (d *Differ) openCheck() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("changes: Differ used after Close")
	}
	return nil
}

// Close removes the spill files and the Differ's directory. The Differ
// cannot be used afterwards; Close may be called more than once.
func (d *Differ) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.on != nil {
		d.on.close()
		d.on = nil
	}
	d.run.wait() // a background spill's error no longer matters
	if err := d.scratch.Remove(); err != nil {
		return fmt.Errorf("changes: remove spill directory: %w", err)
	}
	return nil
}
