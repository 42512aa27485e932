// Package parquetsource is the "parquet" source: it reads rows from Parquet
// objects — local files or any blob URL blobio understands (file://, mem://,
// s3://, gs://, azblob://), one object or a glob of several read in key
// order.
//
// Objects are read through range reads (blobio.NewReaderAt): the footer
// first, then only the column chunks of the selected columns, one row group
// at a time, streamed through buffers of up to 1 MiB per column (64 MiB in
// all for wide files) and decoded in batches of at most batch_size rows. An
// object is never downloaded or buffered whole: memory stays flat in the
// file size (about 55 MB of heap reading 1M or 3M 14-column rows).
//
// Decoding uses Apache Arrow's Parquet implementation
// (github.com/apache/arrow-go/v18/parquet/file and parquet/pqarrow). The
// older github.com/xitongsys/parquet-go was measured on bulkflow's
// benchmark file to be 3.1–3.4× slower and to use about 4× the memory, so it
// is not used.
//
// Row groups whose selected columns are all flat (top-level, not repeated)
// integers, floats, booleans, strings or binaries, dates, timestamps or
// FIXED_LEN_BYTE_ARRAY decimals, with PLAIN or dictionary encodings, are
// decoded straight from their pages (parquet/file page readers, reused
// from one row group to the next) into the rows, without Arrow arrays: a
// small dictionary's values are converted once per row group and a row
// then costs an index lookup. The values are exactly those of the general
// path (pqarrow), which reads every other row group; about 2× faster on
// the benchmark file.
//
// Import the package for its side effect of registering "parquet" with
// pipeline.DefaultRegistry, or call Open directly.
//
// # Options
//
// In a pipeline file (see Options for the Go fields):
//
//	url: s3://bucket/exports/part-*.parquet  # required; local path or blob URL; globs allowed
//	batch_size: 1024                         # rows per batch (at most 1048576)
//	columns: [Id, Name, address.city]        # optional projection, in this order; default all
//	flatten: false                           # true: structs → "parent.child", lists/maps → JSON
//
// With several objects, every object must yield the same columns (names and
// types, after columns and flatten) as the first.
//
// # Types
//
// Parquet columns (as Arrow types) map to pipeline types:
//
//	int8, int16, int32, int64, uint8, uint16, uint32  int (int64)
//	uint64                                            int; a value above 2^63-1 drops the row (out_of_range)
//	float16, float32, float64                         float (float64)
//	string, large_string, string_view                 string
//	binary, large_binary, binary_view                 string; non-UTF-8 drops the row (invalid_utf8)
//	bool                                              bool
//	date32, date64                                    date (time.Time at midnight UTC)
//	timestamp (s, ms, us, ns) with a time zone        timestamp: that instant, in that zone
//	                                                  (UTC if the zone is unknown here)
//	timestamp without a time zone                     timestamp: the wall-clock time as UTC
//	decimal32/64/128/256                              decimal: exact text at the column's scale, e.g. "1234.50"
//	null                                              string column whose values are all nil
//	dictionary                                        the type of its values
//	struct (flatten: true)                            one column per field, named "parent.child"
//	list, large_list, fixed_size_list, map            string holding JSON text (flatten: true);
//	                                                  a map becomes a JSON object
//
// A null value is nil in every column; a null struct makes all its
// flattened fields nil. Other types (time of day, interval, duration,
// fixed_size_binary, extension types) are rejected; leave them out with
// columns.
//
// # Projection
//
// Besides the columns option, the engine may call Source.Project before the
// first Read to narrow the read to the columns its expressions use.
//
// # Sharding
//
// When the engine sets pipeline.Env.Shard (bulkflow run --shard i/n), the
// source reads only the objects the shard keeps: the object at index k of
// the sorted listing belongs to shard k mod n. The schema still comes from
// the first object of the whole listing (its footer is read by every
// shard), so every shard has the same columns; a shard that keeps no object
// reads no rows. The number of objects the shard reads is logged at Info.
//
// # Incremental reads
//
// The source implements pipeline.CursorPusher. Given an incremental
// watermark, it skips every row group whose column chunk statistics for the
// cursor column have a min and max, no nulls, and a max at or below the
// watermark, without fetching or decoding it; rows after a skipped group
// keep their row numbers. The cursor must be a top-level int, float,
// string, date or timestamp column (INT96 timestamps and decimal cursors
// are never skipped; neither are row groups written without statistics).
// Each object's skips are logged at Info ("parquet: skipped N row groups (M
// rows) at or below the watermark") and Source.Skipped totals them. Files
// sorted (or partitioned) by the cursor gain the most: on a 1M-row file in
// 64Ki-row groups with the watermark at 99 %, an incremental read decodes
// 1.7 % of the rows and takes 1.5–4.5 % of a full read's time
// (BenchmarkParquetIncremental).
//
// # Errors
//
// Problems with the objects themselves fail Schema or Read with an error
// naming the object: no object matches the URL, an object that is not a
// readable Parquet file, a column listed in columns that the file lacks, a
// nested column without flatten (the message names the column and suggests
// flatten: true or leaving it out with columns), an unsupported type, an
// object whose columns differ from the first object's (both are named), an
// I/O error (with the row after which it happened). Schema reads the footer
// of every object the URL matches (see package objsource), so an object that
// is not Parquet or whose columns differ is refused by validate and run
// before any row moves. A data or dictionary page whose header holds a
// CRC-32 (Spark, parquet-java and pyarrow can write them; arrow-go cannot)
// is checked before it is decoded, on both read paths: a page whose bytes
// differ fails the object with an error naming the column, the row group
// and the page's offset, so no wrong value is ever returned (see
// checksum.go).
//
// A value that cannot be represented never stops the read: its row becomes
// a pipeline.Drop of the batch with the row's values (the bad one as nil), a
// "name=value, ..." rendering in Raw, and a *pipeline.RowError whose Origin
// names the object and the 1-based row number within it, whose Field names
// the column and whose Code is one of
//
//	out_of_range  a uint64 value above the int range
//	invalid_utf8  a string or binary value that is not valid UTF-8
//	bad_value     a flattened list or map value JSON cannot hold (NaN, ±Inf)
//
// Every row's Origin is {Object: the object's URL as users see it (e.g.
// s3://bucket/key), Row: its 1-based row number within that object}; Line is
// zero.
package parquetsource
