package objsource

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// Object is one open object of a source.
type Object interface {
	comparable
	// Close releases the object.
	Close() error
}

// Format is what a source gives its Core: how to open and check objects of
// its format and how to load its schema.
type Format[O Object] struct {
	// Kind names the source in errors and logs ("csv", "parquet").
	Kind string
	// Closed is the error Schema, Read and Project return after Close.
	Closed error
	// Load is called once, by the first Schema (or Read), after the
	// objects are listed: it opens the first object when the schema comes
	// from it (Core.OpenFirst) and makes the schema.
	Load func(ctx context.Context) error
	// Check, when set, checks one object other than the first against the
	// first without reading its rows (the CSV header, the Parquet footer),
	// through ra. It is called after Load, for every object the URL
	// matches, from several goroutines at once (see CheckAll).
	Check func(ctx context.Context, obj blobio.Object, ra *blobio.ReaderAt) error
	// Open opens obj, the object at index idx of the listing, for reading
	// (checking it against the first object when idx > 0).
	Open func(ctx context.Context, obj blobio.Object, idx int) (O, error)
}

// Core is the lifecycle a multi-object source shares (see the package
// doc). Its methods must not be called concurrently.
type Core[O Object] struct {
	f      Format[O]
	loc    blobio.Location
	ioCtx  context.Context // bounds every object read; cancelled by Close
	cancel context.CancelFunc
	shard  pipeline.Shard
	log    *slog.Logger

	objects []blobio.Object // every object the URL names, sorted by key
	next    int             // index in objects of the next object to open
	cur     O               // the object being read, zero between objects
	curIdx  int             // its index in objects
	loaded  bool            // Load succeeded
	started bool            // Read has been called
	err     error           // sticky error returned by every later call
	eof     bool
	closed  bool
	size    sizes // for InputSize
}

// New returns the core of a source reading the objects url names, resolved
// against env.BaseDir (env may be nil), of env.Shard's part of them. It does
// no I/O. ctx's values (not its cancellation) are kept for object reads.
func New[O Object](ctx context.Context, env *pipeline.Env, url string, f Format[O]) (*Core[O], error) {
	var base string
	var shard pipeline.Shard
	log := slog.New(slog.DiscardHandler)
	if env != nil {
		base, shard = env.BaseDir, env.Shard
		if env.Logger != nil {
			log = env.Logger
		}
	}
	if shard.Count > 1 && (shard.Index < 0 || shard.Index >= shard.Count) {
		return nil, fmt.Errorf("%s: shard %d/%d: the index must be from 0 to %d", f.Kind, shard.Index, shard.Count, shard.Count-1)
	}
	loc, err := blobio.Parse(base, url)
	if err != nil {
		return nil, fmt.Errorf("%s: url: %w", f.Kind, err)
	}
	ioCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Core[O]{f: f, loc: loc, ioCtx: ioCtx, cancel: cancel, shard: shard, log: log}, nil
}

// Loc returns the location the URL names.
func (c *Core[O]) Loc() blobio.Location { return c.loc }

// Log returns the source's logger.
func (c *Core[O]) Log() *slog.Logger { return c.log }

// IOContext returns the context that bounds object reads.
func (c *Core[O]) IOContext() context.Context { return c.ioCtx }

// Objects returns every object the URL names, sorted by key (nil before
// the first Load).
func (c *Core[O]) Objects() []blobio.Object { return c.objects }

// Cur returns the object being read; ok is false between objects.
func (c *Core[O]) Cur() (cur O, ok bool) {
	var zero O
	return c.cur, c.cur != zero
}

// Sharded reports whether the source reads only a shard's part of the
// objects.
func (c *Core[O]) Sharded() bool { return c.shard.Count > 1 }

// Closed reports whether Close was called.
func (c *Core[O]) Closed() bool { return c.closed }

// CanProject returns the error Project must return now, or nil: the
// source's ErrClosed after Close, an error after the first Read.
func (c *Core[O]) CanProject() error {
	switch {
	case c.closed:
		return c.f.Closed
	case c.started:
		return fmt.Errorf("%s: Project called after Read; project columns before reading", c.f.Kind)
	}
	return nil
}

// Load lists the objects and calls Format.Load then Format.Check on every
// object but the first, once: later calls return nil, or the sticky error.
// It returns ctx.Err() promptly when ctx is cancelled.
func (c *Core[O]) Load(ctx context.Context) error {
	switch {
	case c.closed:
		return c.f.Closed
	case c.loaded:
		return nil
	case c.err != nil:
		return c.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	err := c.load()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		c.err = err
		return err
	}
	c.loaded = true
	return nil
}

func (c *Core[O]) load() error {
	objs, err := blobio.List(c.ioCtx, c.loc)
	if err != nil {
		return fmt.Errorf("%s: %w", c.f.Kind, err)
	}
	c.objects = objs
	c.setTotal()
	if c.shard.Count > 1 {
		c.log.Info(c.f.Kind+": this shard reads its part of the objects", "url", c.loc.String(), "shard", c.shard.String(), "objects", c.shard.Kept(len(objs)), "of", len(objs))
	}
	if err := c.f.Load(c.ioCtx); err != nil {
		return err
	}
	if c.f.Check == nil {
		return nil
	}
	// Every other object is checked now, before any row moves.
	return CheckAll(c.ioCtx, c.loc, c.objects[1:], c.f.Check)
}

// OpenFirst opens the first object of the listing (whichever shard reads
// it: it gives the schema). Format.Load calls it.
func (c *Core[O]) OpenFirst() (O, error) {
	o, err := c.f.Open(c.ioCtx, c.objects[0], 0)
	if err != nil {
		return o, err
	}
	c.cur, c.curIdx, c.next = o, 0, 1
	return o, nil
}

// Next returns the object to read rows from: the current one, or the next
// object the shard keeps, opened with Format.Open. ok is false after the
// last object. A first object opened for the schema only (another shard's)
// is closed here.
func (c *Core[O]) Next() (cur O, ok bool, err error) {
	var zero O
	if c.cur != zero && !c.shard.Keep(c.curIdx) {
		if err := c.Finish(); err != nil {
			return zero, false, err
		}
	}
	if c.cur == zero {
		for c.next < len(c.objects) && !c.shard.Keep(c.next) {
			c.next++ // another shard's object
		}
		if c.next >= len(c.objects) {
			return zero, false, nil
		}
		idx := c.next
		c.next++
		o, err := c.f.Open(c.ioCtx, c.objects[idx], idx)
		if err != nil {
			return zero, false, err
		}
		c.cur, c.curIdx = o, idx
	}
	return c.cur, true, nil
}

// Finish closes the current object: its rows have all been read.
func (c *Core[O]) Finish() error {
	var zero O
	cur, idx := c.cur, c.curIdx
	c.cur = zero
	if cur == zero {
		return nil
	}
	c.finished(idx)
	if err := cur.Close(); err != nil {
		return fmt.Errorf("%s %s: close: %w", c.f.Kind, c.objects[idx].Loc, err)
	}
	return nil
}

// Read returns fill's next batch, loading the schema first if needed. It
// returns the source's ErrClosed after Close, the sticky error after an
// error, io.EOF once fill has returned it (and on every later call), and
// ctx.Err() promptly when ctx is cancelled (object reads are cancelled
// with it: the source is then unusable). fill returns io.EOF after the
// last batch; a batch it returns with an error other than io.EOF is
// returned alone when it has rows, so they are not lost, and the error
// comes back from the next Read.
func (c *Core[O]) Read(ctx context.Context, fill func(ctx context.Context) (*pipeline.Batch, error)) (*pipeline.Batch, error) {
	switch {
	case c.closed:
		return nil, c.f.Closed
	case c.err != nil:
		return nil, c.err
	case c.eof:
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.Load(ctx); err != nil {
		return nil, err
	}
	c.started = true
	stop := context.AfterFunc(ctx, c.cancel)
	defer func() {
		if !stop() && c.err == nil {
			c.err = ctx.Err() // object reads were cancelled: no way back
		}
	}()
	b, err := fill(ctx)
	switch {
	case err == nil:
		return b, nil
	case ctx.Err() != nil:
		c.err = ctx.Err()
		return nil, c.err
	case err == io.EOF:
		c.eof = true
		return nil, io.EOF
	}
	c.err = err
	if b != nil && b.Settled() > 0 {
		return b, nil
	}
	return nil, err
}

// Close closes the object being read and cancels object reads. It is
// idempotent and safe after an error; Load and Read return the source's
// ErrClosed afterwards.
func (c *Core[O]) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.cancel()
	return c.Finish()
}
