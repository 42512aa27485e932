package parquetsink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/filesink"
)

// Defaults of the options.
const (
	DefaultRowGroupRows  = 1 << 20  // rows per row group
	DefaultRowGroupBytes = 32 << 20 // uncompressed value bytes per row group
	DefaultPrecision     = 38       // of a decimal column not in Options.Decimals
	DefaultScale         = 9
)

// recordRows is the most rows converted into one Arrow record before it is
// handed to pqarrow: the granularity of the row group bounds.
const recordRows = 4096

// maxStatsSize bounds a column chunk's min/max statistics (larger ones are
// left out) and maxNameBytes a column name, so that the column chunk
// metadata arrow-go writes into an unflushed 4 KiB buffer stays in it (see
// checksum.go).
const (
	maxStatsSize = 256
	maxNameBytes = 1024
)

// Options configures a Parquet sink. See the package doc.
type Options struct {
	// URL is where to write: a local path or blob URL, with {run_id} and
	// {date} placeholders. Required.
	URL string `yaml:"url"`
	// Compression is "zstd" (default), "snappy" or "none".
	Compression string `yaml:"compression"`
	// RowGroupRows is the most rows per row group (default 1048576).
	RowGroupRows int `yaml:"row_group_rows"`
	// RowGroupBytes is the size of a row group's values, uncompressed, at
	// which it is closed (default 32 MiB): the bound on the data the sink
	// buffers (its heap is about 2.5 times this).
	RowGroupBytes int64 `yaml:"row_group_bytes"`
	// Decimals gives decimal columns their "precision,scale", e.g.
	// {Amount: "18,2"}; other decimal columns are decimal(38,9).
	Decimals map[string]string `yaml:"decimals"`
	// TimestampUnit is "us" (default) or "ns".
	TimestampUnit string `yaml:"timestamp_unit"`
}

var decimalSpec = regexp.MustCompile(`^\s*(\d+)\s*,\s*(\d+)\s*$`)

// parseDecimalSpec parses "precision,scale".
func parseDecimalSpec(col, spec string) (prec, scale int32, err error) {
	m := decimalSpec.FindStringSubmatch(spec)
	if m == nil {
		return 0, 0, fmt.Errorf("decimals: %s: %q must be \"precision,scale\", e.g. \"18,2\"", col, spec)
	}
	p, _ := strconv.Atoi(m[1])
	s, _ := strconv.Atoi(m[2])
	if p < 1 || p > maxDecimal256 || s > p {
		return 0, 0, fmt.Errorf("decimals: %s: %q: precision must be 1 to %d and scale 0 to the precision", col, spec, maxDecimal256)
	}
	return int32(p), int32(s), nil
}

// Validate checks the options without I/O.
func (o *Options) Validate() error {
	var errs []string
	if o.URL == "" {
		errs = append(errs, "url is required: where to write, e.g. url: out/accounts.parquet")
	} else if _, err := filesink.ExpandURL(o.URL, nil); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := o.codec(); err != nil {
		errs = append(errs, err.Error())
	}
	if o.RowGroupRows < 0 {
		errs = append(errs, fmt.Sprintf("row_group_rows %d must be positive (default %d)", o.RowGroupRows, DefaultRowGroupRows))
	}
	if o.RowGroupBytes < 0 {
		errs = append(errs, fmt.Sprintf("row_group_bytes %d must be positive (default %d)", o.RowGroupBytes, DefaultRowGroupBytes))
	}
	switch o.TimestampUnit {
	case "", "us", "ns":
	default:
		errs = append(errs, fmt.Sprintf("timestamp_unit %q must be us or ns", o.TimestampUnit))
	}
	cols := make([]string, 0, len(o.Decimals))
	for c := range o.Decimals {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		if _, _, err := parseDecimalSpec(c, o.Decimals[c]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New("parquet sink: " + strings.Join(errs, "; "))
	}
	return nil
}

func (o *Options) codec() (compress.Compression, error) {
	switch strings.ToLower(o.Compression) {
	case "", "zstd":
		return compress.Codecs.Zstd, nil
	case "snappy":
		return compress.Codecs.Snappy, nil
	case "none":
		return compress.Codecs.Uncompressed, nil
	}
	return 0, fmt.Errorf("compression %q must be zstd, snappy or none", o.Compression)
}

func init() {
	pipeline.DefaultRegistry().RegisterSink("parquet", pipeline.Spec{
		Summary:    "Write rows as one Parquet file to a local path or blob URL",
		Example:    "url: out/accounts-{run_id}.parquet\ncompression: zstd\nrow_group_rows: 1048576\nrow_group_bytes: 33554432\ndecimals: {AnnualRevenue: \"18,2\"}\ntimestamp_unit: us\n",
		NewOptions: func() any { return &Options{} },
	}, pipeline.TypedSink("parquet sink", func(ctx context.Context, env *pipeline.Env, o *Options, in *pipeline.Schema) (*Sink, error) {
		if err := o.Validate(); err != nil {
			return nil, err
		}
		u, err := filesink.ExpandURL(o.URL, env)
		if err != nil {
			return nil, err
		}
		loc, err := blobio.Parse(env.BaseDir, u)
		if err != nil {
			return nil, err
		}
		blobio.CleanStaleTemps(env.Logger, "parquet sink", loc)
		return Open(ctx, loc, in, o)
	}))
}

// Sink writes rows to one Parquet object. Write and Close may be called
// from several goroutines; writes are serialised.
type Sink struct {
	mu      sync.Mutex
	w       *blobio.Writer
	buf     *bufio.Writer
	crc     *crcWriter
	fw      *pqarrow.FileWriter
	schema  *arrow.Schema
	cols    []column
	rb      *array.RecordBuilder
	cells   []cell
	maxRows int64
	maxByte int64
	rgRows  int64 // rows in the open row group
	rgBytes int64 // their values' size (see cell.size), in records handed to pqarrow
	recByte int64 // the size of the record being built
	rows    int64 // rows written
	failed  error
	closed  bool
}

// Open opens a Parquet sink writing rows of schema to loc (which must name
// one object; placeholders are the caller's). A nil o means defaults.
func Open(ctx context.Context, loc blobio.Location, schema *pipeline.Schema, o *Options) (*Sink, error) {
	if o == nil {
		o = &Options{URL: loc.String()}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	codec, _ := o.codec()
	s := &Sink{maxRows: int64(o.RowGroupRows), maxByte: o.RowGroupBytes}
	if s.maxRows == 0 {
		s.maxRows = DefaultRowGroupRows
	}
	if s.maxByte == 0 {
		s.maxByte = DefaultRowGroupBytes
	}
	fields := make([]arrow.Field, schema.Len())
	for i, f := range schema.Fields() {
		if len(f.Name) > maxNameBytes {
			return nil, fmt.Errorf("parquet sink %s: column name %.40q... is %d bytes long; the sink writes names of up to %d bytes: rename it in a map", loc, f.Name, len(f.Name), maxNameBytes)
		}
		c := column{name: f.Name, typ: f.Type, prec: DefaultPrecision, scale: DefaultScale, nanos: o.TimestampUnit == "ns"}
		if spec, ok := o.Decimals[f.Name]; ok {
			if f.Type != pipeline.TypeDecimal {
				return nil, fmt.Errorf("parquet sink %s: decimals: %s is a %s column, not decimal; remove it from decimals or make the column decimal", loc, f.Name, f.Type)
			}
			c.prec, c.scale, _ = parseDecimalSpec(f.Name, spec)
		}
		c.dt = c.arrowType()
		s.cols = append(s.cols, c)
		fields[i] = arrow.Field{Name: f.Name, Type: c.dt, Nullable: true}
	}
	for name := range o.Decimals {
		if schema.Index(name) < 0 {
			return nil, fmt.Errorf("parquet sink %s: decimals: %q is not a column of the sink's input (it has %s)", loc, name, strings.Join(schema.Names(), ", "))
		}
	}
	s.schema = arrow.NewSchema(fields, nil)
	s.cells = make([]cell, len(s.cols))

	// The writer outlives cancellation of ctx: the engine decides when to
	// commit (Close) or discard (a failed Write), as for the CSV sink.
	w, err := blobio.NewWriter(context.WithoutCancel(ctx), loc)
	if err != nil {
		return nil, err
	}
	s.w = w
	s.buf = bufio.NewWriterSize(w, 1<<20)
	s.crc = newCRCWriter(s.buf, len(s.cols))
	props := parquet.NewWriterProperties(
		parquet.WithCompression(codec),
		parquet.WithStats(true),
		parquet.WithMaxStatsSize(maxStatsSize),
		parquet.WithPageIndexEnabled(false),   // crcWriter moves pages; see checksum.go
		parquet.WithBloomFilterEnabled(false), // likewise
		parquet.WithMaxRowGroupLength(1<<62),  // the sink closes row groups itself
		parquet.WithDataPageVersion(parquet.DataPageV1),
		// created_by stays arrow-go's own ("parquet-go version 18...."):
		// readers decide from it whether to trust statistics (parquet-mr
		// ignores binary statistics of a created_by it cannot parse).
	)
	fw, err := pqarrow.NewFileWriter(s.schema, s.crc, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		w.Abort()
		w.Close()
		return nil, fmt.Errorf("parquet sink %s: %w", loc, err)
	}
	s.fw = fw
	s.rb = array.NewRecordBuilder(memory.DefaultAllocator, s.schema)
	return s, nil
}

// BatchPolicy asks for batches of up to recordRows rows: one Arrow record
// per Write.
func (s *Sink) BatchPolicy() pipeline.BatchPolicy {
	return pipeline.BatchPolicy{MaxRows: recordRows}
}

// Write appends the batch's rows. Rows with a value the file cannot hold
// are returned in a *pipeline.RowErrors (and not written); storage errors
// fail the whole batch and the object is discarded.
func (s *Sink) Write(ctx context.Context, b *pipeline.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return errors.New("write after close")
	}
	if err := ctx.Err(); err != nil {
		return err // nothing of this batch is written
	}
	var rowErrs *pipeline.RowErrors
	n := 0
	for i := range b.Len() {
		row := b.Row(i)
		var bad *pipeline.RowError
		for j, v := range row {
			if bad = s.cols[j].convert(v, &s.cells[j]); bad != nil {
				break
			}
		}
		if bad != nil {
			if rowErrs == nil {
				rowErrs = &pipeline.RowErrors{}
			}
			rowErrs.Add(i, bad)
			continue
		}
		for j := range s.cols {
			s.cols[j].appendTo(s.rb.Field(j), &s.cells[j])
			s.recByte += s.cols[j].size(&s.cells[j])
		}
		n++
		if n == recordRows || s.rgBytes+s.recByte >= s.maxByte {
			if err := s.flushRecord(); err != nil {
				return err
			}
			n = 0
		}
	}
	if n > 0 {
		if err := s.flushRecord(); err != nil {
			return err
		}
	}
	if rowErrs != nil {
		return rowErrs
	}
	return nil
}

// flushRecord hands the built rows to pqarrow, first closing the open row
// group when it is full.
func (s *Sink) flushRecord() error {
	rec := s.rb.NewRecordBatch()
	defer rec.Release()
	recBytes := s.recByte
	s.recByte = 0
	if s.rgRows > 0 && (s.rgRows >= s.maxRows || s.rgBytes >= s.maxByte) {
		if err := s.newRowGroup(); err != nil {
			return err
		}
	}
	for off := int64(0); off < rec.NumRows(); {
		n := min(rec.NumRows()-off, s.maxRows-s.rgRows)
		if n == 0 {
			if err := s.newRowGroup(); err != nil {
				return err
			}
			continue
		}
		part := rec.NewSlice(off, off+n)
		err := s.fw.WriteBuffered(part)
		part.Release()
		if err != nil {
			return s.fail(err)
		}
		s.rgRows += n
		s.rgBytes += recBytes * n / rec.NumRows()
		s.rows += n
		off += n
	}
	return nil
}

// newRowGroup closes the open row group (writing it out) and opens one.
func (s *Sink) newRowGroup() error {
	s.crc.beginFlush(s.rgRows, false)
	if err := s.fw.NewBufferedRowGroupChecked(); err != nil {
		return s.fail(err)
	}
	s.rgRows, s.rgBytes = 0, 0
	return nil
}

// fail records a storage error: the object is discarded.
func (s *Sink) fail(err error) error {
	s.failed = fmt.Errorf("write %s: %w", s.w.Location(), err)
	s.w.Abort()
	return s.failed
}

// Close writes the last row group and the footer and commits the object,
// unless a Write failed, in which case the object is discarded. It is
// idempotent.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.rb.Release()
	if s.failed != nil {
		s.fw.Close()
		s.w.Close()
		return s.partial(s.failed)
	}
	if s.rgRows > 0 {
		s.crc.beginFlush(s.rgRows, true)
	} else {
		s.crc.beginFooter()
	}
	err := s.fw.Close()
	if err == nil {
		err = s.crc.finish()
	}
	if err == nil {
		err = s.buf.Flush()
	}
	if err != nil {
		s.w.Abort()
		s.w.Close()
		return s.partial(fmt.Errorf("write %s: %w", s.w.Location(), err))
	}
	return s.partial(s.w.Close())
}

// partial marks err as pipeline.ErrPartialOutput when the sink writes
// directly (standard output, a FIFO): what was written is out already.
func (s *Sink) partial(err error) error {
	if err != nil && s.w.Direct() {
		return fmt.Errorf("%w (%w)", err, pipeline.ErrPartialOutput)
	}
	return err
}

// Location returns where the sink writes.
func (s *Sink) Location() blobio.Location { return s.w.Location() }

// Rows returns the number of rows written so far.
func (s *Sink) Rows() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows
}

// Interface guards.
var (
	_ pipeline.Sink      = (*Sink)(nil)
	_ pipeline.Batcher   = (*Sink)(nil)
	_ pipeline.Validator = (*Options)(nil)
)
