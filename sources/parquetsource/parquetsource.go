package parquetsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/objsource"
)

func init() {
	pipeline.DefaultRegistry().RegisterSource("parquet", Spec, pipeline.TypedSource("parquet", Open))
}

// Spec describes the "parquet" source type to the registry.
var Spec = pipeline.Spec{
	Summary: "Read Parquet objects (local files or blob URLs, globs allowed) through range reads",
	Example: `url: s3://warehouse/exports/accounts/part-*.parquet?region=eu-west-1
batch_size: 1024
columns: [Id, Name, AnnualRevenue, CreatedDate]
flatten: false
`,
	NewOptions: newOptions,
}

// ErrClosed is returned by Schema, Read and Project after Close.
var ErrClosed = errors.New("parquet: source is closed")

// Column chunks are streamed through one buffer per column read rather than
// read whole, so memory stays bounded whatever the row-group size. Each
// buffer refill is one range read: large buffers mean fewer requests to a
// remote store. A buffer is maxReadBuffer, shrunk so that all of them
// together stay under readBufferBudget (but never below minReadBuffer).
//
// Local objects (file://, mem://) get localReadBuffer instead: a refill
// there costs a few system calls, not a request, and every buffer is live
// for the whole read (1 MiB × 12 columns was a third of the source's live
// heap on the bench file). A page larger than the buffer is read into the
// page directly, so a small buffer does not split pages into many reads.
const (
	maxReadBuffer    = 1 << 20
	minReadBuffer    = 64 << 10
	readBufferBudget = 64 << 20
	localReadBuffer  = 64 << 10
)

// readBufferSize returns the buffer size for reading leaves columns at
// once from a local object (local) or a remote one.
func readBufferSize(leaves int, local bool) int64 {
	if local {
		return localReadBuffer
	}
	return max(minReadBuffer, min(maxReadBuffer, readBufferBudget/int64(max(leaves, 1))))
}

// isLocal reports whether objects at l are read without network requests.
func isLocal(l blobio.Location) bool { return l.Scheme == "file" || l.Scheme == "mem" }

// Source reads rows from Parquet objects. It implements pipeline.Source. Its
// methods must not be called concurrently.
type Source struct {
	cfg   *config
	core  *objsource.Core[*object] // listing, shard, lifecycle
	alloc memory.Allocator
	log   *slog.Logger

	project []string         // names given to Project, nil when not called
	first   *arrow.Schema    // the first object's Arrow schema
	schema  *pipeline.Schema // the output schema

	cursor      *cursorPush // set by PushCursor
	skippedRGs  int64       // row groups skipped by the cursor, all objects
	skippedRows int64       // rows in them
	fastRGs     int64       // row groups read on the fast path (tests)
	rows        rowCount    // for InputSize
	// slabs recycles the memory of the rows (the []any of their values)
	// once the engine has released a batch (pipeline.SlabPool).
	slabs pipeline.SlabPool
}

// object is one open Parquet object.
type object struct {
	name   string // as users see it: loc.URLOf(key)
	local  bool   // a file:// or mem:// object (see readBufferSize)
	ra     *blobio.ReaderAt
	src    *checkedReaderAt // reads ra, checking page checksums
	pf     *file.Reader
	fr     *pqarrow.FileReader
	props  *parquet.ReaderProperties // read by pf when column chunks are opened
	plan   *plan
	rg     int // next row group to open
	rr     pqarrow.RecordReader
	fast   *fastReader // nil: the plan has no fast path
	fg     *fastGroup  // the row group being read on the fast path, else nil
	row    int64       // rows read or skipped so far
	schema *pipeline.Schema

	skip        *rowGroupFilter // row groups the cursor rules out; nil: none
	skippedRGs  int64
	skippedRows int64
}

// Close releases the object's readers.
func (o *object) Close() error {
	o.fg = nil
	o.fast.close()
	if o.rr != nil {
		o.rr.Release()
		o.rr = nil
	}
	return o.ra.Close()
}

// Open returns a source reading the objects opts.URL names, resolved against
// env.BaseDir (env may be nil). With env.Shard set, only the objects the
// shard keeps (by index in the sorted listing) are read; the schema still
// comes from the first object of the whole listing. It checks the options
// but does no I/O: a missing object or a bad file is reported by Schema or
// Read. The caller must Close the source. ctx's values (not its
// cancellation) are kept for the range reads.
func Open(ctx context.Context, env *pipeline.Env, opts *Options) (*Source, error) {
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, alloc: memory.DefaultAllocator}
	s.core, err = objsource.New(ctx, env, opts.URL, objsource.Format[*object]{
		Kind: "parquet", Closed: ErrClosed, Load: s.loadSchema, Check: s.checkFooter, Open: s.openNext})
	if err != nil {
		return nil, err
	}
	s.log = s.core.Log()
	return s, nil
}

// Project narrows the columns the source reads to names, which must be
// columns of the schema the source would otherwise return (after
// Options.Columns and Options.Flatten). Only the column chunks of the
// projected columns are fetched. The engine calls it with the columns its
// compiled expressions use; it is an optimisation, not a filter users see.
//
// Project may be called before or after Schema but not after the first
// Read; Schema (and every batch) then has only the projected columns, in
// the source's column order. Calling it again replaces the projection. An
// unknown name is reported here when the schema is already loaded, else by
// Schema. Project must not be called concurrently with other methods.
func (s *Source) Project(names []string) error {
	if err := s.core.CanProject(); err != nil {
		return err
	}
	if err := pipeline.CheckProjection(names); err != nil {
		return fmt.Errorf("parquet: Project: %w", err)
	}
	prev := s.project
	s.project = slices.Clone(names)
	cur, ok := s.core.Cur()
	if !ok || s.first == nil {
		return nil // applied when the schema is loaded
	}
	p, err := s.makePlan(cur.fr, s.first, cur.name)
	if err != nil {
		s.project = prev
		return err
	}
	cur.plan = p
	cur.props.BufferSize = readBufferSize(len(p.leaves), cur.local)
	s.schema = p.schema
	cur.schema = p.schema
	return nil
}

// Schema returns the columns of the first object (after Options.Columns,
// Options.Flatten and Project), typed as described in the package doc. The
// first call lists the objects and reads the first object's footer.
func (s *Source) Schema(ctx context.Context) (*pipeline.Schema, error) {
	if err := s.core.Load(ctx); err != nil {
		return nil, err
	}
	return s.schema, nil
}

// loadSchema opens the first object, which gives the schema even when
// another shard reads it; it stays open until the first Read (Project needs
// it).
func (s *Source) loadSchema(ctx context.Context) error {
	first, err := s.core.OpenFirst()
	if err != nil {
		return err
	}
	s.schema = first.schema
	return nil
}

// readerAtSeeker adapts a checkedReaderAt to parquet.ReaderAtSeeker. The
// Parquet reader only seeks to learn the size; all data is fetched with
// ReadAt (one range read per call).
type readerAtSeeker struct {
	*checkedReaderAt
	off int64
}

func (r *readerAtSeeker) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.Size()
	default:
		return 0, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek: negative position %d", offset)
	}
	r.off = offset
	return offset, nil
}

// openNext opens obj, the object at index idx of the listing, reads its
// footer and checks its columns against the first object's.
func (s *Source) openNext(ctx context.Context, obj blobio.Object, idx int) (*object, error) {
	o, as, err := s.openObject(ctx, obj)
	if err != nil {
		return nil, err
	}
	if idx == 0 {
		s.first = as
	} else if err := s.sameColumns(o.name, s.schema, o.schema); err != nil {
		o.ra.Close()
		return nil, err
	}
	o.props.BufferSize = readBufferSize(len(o.plan.leaves), o.local)
	if s.cursor != nil {
		o.skip = s.cursor.filter(o.pf, o.fr, as, s.cfg.flatten)
	}
	return o, nil
}

// openObject opens obj, reads its footer and makes its read plan.
func (s *Source) openObject(ctx context.Context, obj blobio.Object) (*object, *arrow.Schema, error) {
	ra, err := blobio.NewReaderAt(ctx, obj.Loc)
	if err != nil {
		return nil, nil, fmt.Errorf("parquet: %w", err)
	}
	o, as, err := s.readFooter(obj, ra)
	if err != nil {
		ra.Close()
		return nil, nil, err
	}
	return o, as, nil
}

// readFooter reads the footer of obj through ra and makes its read plan.
// It changes nothing in s but the row count (safe for concurrent use), so
// checkFooter calls it from several goroutines at once.
func (s *Source) readFooter(obj blobio.Object, ra *blobio.ReaderAt) (*object, *arrow.Schema, error) {
	name := obj.Loc.String()
	props := parquet.NewReaderProperties(s.alloc)
	props.BufferedStreamEnabled = true
	props.BufferSize = maxReadBuffer // narrowed once the columns are known
	src := &checkedReaderAt{ra: ra, size: ra.Size()}
	pf, err := file.NewParquetReader(&readerAtSeeker{checkedReaderAt: src}, file.WithReadProps(props))
	if err != nil {
		return nil, nil, fmt.Errorf("parquet %s: not a readable Parquet file: %w", name, err)
	}
	src.watch(pf.MetaData())
	s.rows.footer(obj.Loc.Key, pf.NumRows())
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(s.cfg.batchSize)}, s.alloc)
	if err != nil {
		return nil, nil, fmt.Errorf("parquet %s: %w", name, err)
	}
	as, err := fr.Schema()
	if err != nil {
		return nil, nil, fmt.Errorf("parquet %s: read schema: %w", name, err)
	}
	p, err := s.makePlan(fr, as, name)
	if err != nil {
		return nil, nil, err
	}
	return &object{name: name, local: isLocal(obj.Loc), ra: ra, src: src, pf: pf, fr: fr, props: props, plan: p, schema: p.schema}, as, nil
}

// sameColumns checks the columns got of object name against want, the
// first object's.
func (s *Source) sameColumns(name string, want, got *pipeline.Schema) error {
	if got.Equal(want) {
		return nil
	}
	return fmt.Errorf("parquet %s: columns differ from the first object %s: %s; every object the URL matches must have the first object's columns: rewrite the object or narrow the URL so it no longer matches",
		name, s.core.Objects()[0].Loc, schemaDiff(want, got))
}

// checkFooter reads the footer of obj through ra (a few range reads at the
// end of the object) and checks its columns against the first object's,
// without reading any row.
func (s *Source) checkFooter(ctx context.Context, obj blobio.Object, ra *blobio.ReaderAt) error {
	o, _, err := s.readFooter(obj, ra)
	if err != nil {
		return err
	}
	return s.sameColumns(o.name, s.schema, o.schema)
}

// schemaDiff describes the first difference between two schemas.
func schemaDiff(want, got *pipeline.Schema) string {
	for i := range min(want.Len(), got.Len()) {
		if w, g := want.Field(i), got.Field(i); w != g {
			return fmt.Sprintf("column %d is %s %s, want %s %s", i+1, g.Name, g.Type, w.Name, w.Type)
		}
	}
	return fmt.Sprintf("%d columns (%s), want %d (%s)", got.Len(), got, want.Len(), want)
}

// Read returns the next batch of up to Options.BatchSize rows from one row
// group; rows holding a value that cannot be represented (an unsigned
// integer above the int range, binary that is not UTF-8) are included as
// Drops. It returns io.EOF after the last batch and on every later call, and
// ctx.Err() promptly when ctx is cancelled. Read must not be called
// concurrently.
func (s *Source) Read(ctx context.Context) (*pipeline.Batch, error) {
	b, err := s.core.Read(ctx, s.next1)
	if b != nil {
		s.rows.done.Add(int64(b.Settled()))
	}
	return b, err
}

// next1 returns the next non-empty batch, moving through row groups and
// objects.
func (s *Source) next1(ctx context.Context) (*pipeline.Batch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cur, ok, err := s.core.Next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, io.EOF
		}
		if cur.fg != nil {
			if cur.fg.left <= 0 {
				cur.fg = nil
				continue
			}
			return s.readFast(cur)
		}
		if cur.rr == nil {
			if cur.rg >= cur.pf.NumRowGroups() {
				s.logSkipped(cur)
				if err := s.core.Finish(); err != nil {
					return nil, err
				}
				continue
			}
			rg := cur.rg
			cur.rg++
			rgm := cur.pf.MetaData().RowGroup(rg)
			n := rgm.NumRows()
			if n == 0 {
				continue
			}
			if cur.skip.skips(rgm) {
				cur.row += n // keep the row numbers of later rows right
				cur.skippedRGs++
				cur.skippedRows += n
				s.skippedRGs++
				s.skippedRows += n
				s.rows.done.Add(n)
				continue
			}
			if cur.fast == nil && cur.plan.fast != nil {
				cur.fast = &fastReader{pf: cur.pf, src: cur.src, props: cur.props, specs: cur.plan.fast,
					old: cur.pf.MetaData().WriterVersion().LessThan(metadata.Parquet816FixedVersion)}
			}
			fg, err := cur.fast.open(rg)
			if err != nil {
				return nil, fmt.Errorf("parquet %s: row group %d: %w", cur.name, rg, err)
			}
			if fg != nil {
				s.fastRGs++
				cur.fg = fg
				continue
			}
			rr, err := cur.fr.GetRecordReader(s.core.IOContext(), cur.plan.leaves, []int{rg})
			if err != nil {
				return nil, fmt.Errorf("parquet %s: row group %d: %w", cur.name, rg, err)
			}
			cur.rr = rr
		}
		rec, err := cur.rr.Read()
		if err == io.EOF || (err == nil && rec == nil) {
			cur.rr.Release()
			cur.rr = nil
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parquet %s: after row %d: %w", cur.name, cur.row, err)
		}
		if rec.NumRows() == 0 {
			continue
		}
		return s.convert(cur, rec)
	}
}

// readFast returns the next batch of the row group cur.fg reads.
func (s *Source) readFast(cur *object) (*pipeline.Batch, error) {
	p := cur.plan
	n := int(min(int64(s.cfg.batchSize), cur.fg.left))
	ncols := len(p.cols)
	slab := s.slabs.Get(n * ncols)
	var bad map[int]*pipeline.RowError
	err := cur.fg.read(slab, n, func(i, j int, verr *valueErr) {
		if bad == nil {
			bad = make(map[int]*pipeline.RowError)
		}
		if bad[i] == nil {
			origin := pipeline.Origin{Object: cur.name, Row: cur.row + int64(i) + 1}
			bad[i] = &pipeline.RowError{Origin: origin, Code: verr.code, Field: p.cols[j].name, Err: fmt.Errorf("%s", verr.msg)}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("parquet %s: after row %d: %w", cur.name, cur.row, err)
	}
	return s.assemble(cur, slab, n, bad), nil
}

// Close releases resources. It is idempotent and safe after an error; Read,
// Schema and Project return ErrClosed afterwards.
func (s *Source) Close() error { return s.core.Close() }

// The Parquet reader satisfies pipeline.Source.
var _ pipeline.Source = (*Source)(nil)

// quoteNames formats names for error messages.
func quoteNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
