// Package csvsource is the "csv" source: it reads rows from CSV objects —
// local files or any blob URL blobio understands (file://, mem://, s3://,
// ...), one object or a glob of several read in key order. Objects whose key
// ends in ".gz" are gunzipped as they stream. A UTF-8 byte order mark is
// skipped. Field contents are passed on byte-exact: "\r\n" inside a quoted
// field stays "\r\n".
//
// Import the package for its side effect of registering "csv" with
// pipeline.DefaultRegistry, or call Open directly.
//
// # Options
//
// In a pipeline file (see Options for the Go fields):
//
//	url: data/accounts-*.csv.gz   # required; local path or blob URL; globs allowed
//	delimiter: ","                # one ASCII character; "\t" or tab for a tab
//	quote: '"'                    # one ASCII character
//	header: true                  # false: columns names every column in order
//	columns:                      # declared types; other columns are strings
//	  Amount: decimal             # int, float, bool, date, timestamp, decimal, string
//	on_error: dead_letter         # or fail
//	batch_size: 1024              # rows per batch
//	null_values: []               # cell texts read as null (default none)
//
// Typed columns parse int (int64), float (float64), bool (true/false, 1/0,
// yes/no, any case), date (2006-01-02, as midnight UTC), timestamp (RFC 3339,
// or "2006-01-02 15:04:05" as UTC) and decimal (the validated text, kept as a
// string). An empty cell of a typed column is null; of a string column it is
// the empty string unless listed in null_values.
//
// With several objects every object must have the same header as the first.
// Schema reads the header of every object the URL matches (one small range
// read each, see package objsource), so a differing header is refused by
// validate and run before any row moves.
// Records end with "\n" or "\r\n"; blank lines between records are skipped
// (as encoding/csv does) but counted for line numbers. An object whose first
// line end outside quotes is a bare "\r", with no "\n" outside quotes in its
// first 64 KiB (classic Mac OS, Excel's "CSV (Macintosh)"), has its records
// end with "\r" instead (logged at Info); field bytes stay exact either way.
// A header that still holds a "\r" (bare-CR line ends after a header
// longer than 64 KiB) is refused, never read as one header and no rows.
//
// # Sharding
//
// When the engine sets pipeline.Env.Shard (bulkflow run --shard i/n), the
// source reads only the objects the shard keeps: the object at index k of
// the sorted listing belongs to shard k mod n. The schema still comes from
// the first object of the whole listing, so every shard has the same
// columns; a shard that keeps no object reads no rows. The number of
// objects the shard reads is logged at Info.
//
// The source cannot skip data by an incremental cursor (it does not
// implement pipeline.CursorPusher): every row is read and the engine
// filters.
//
// # Projection
//
// Source.Project narrows the columns returned to those the pipeline uses
// (the engine calls it; users do not). Every record is still split and
// checked whole — field count, quotes and UTF-8 of every field, header
// checks of later objects — but only the projected columns are made into
// values, so a typed column that is not projected is never parsed.
//
// # Errors
//
// Problems with the objects themselves fail Schema or Read with an error
// naming the object (and the line, where there is one): no object matches the
// URL, an empty object (no header), a duplicate or empty column name, a
// column declared in columns but missing from the header, a header that
// differs from the first object's, an I/O or gzip error.
//
// A bad record never stops the read by default: it becomes a pipeline.Drop of
// the batch with the raw record text and a *pipeline.RowError whose Origin
// names object, line (the physical line the record starts on; the header is
// line 1) and record number, and whose Code is one of
//
//	field_count   the record has more or fewer fields than the header
//	bad_quote     a bare quote in an unquoted field, text after a closing
//	              quote, or a quoted field left open to the end of the object
//	invalid_utf8  a field is not valid UTF-8 (Field names it)
//	bad_value     a typed column's text does not parse (Field names it)
//
// The Drop's Row holds the fields as strings when their number matched the
// header, and is nil otherwise. Reading resumes on the line after the bad
// record; a quoted field left open swallows the rest of the object into one
// bad record, since no later line can be trusted to start a record. With on_error: fail, Read instead returns that *pipeline.RowError.
package csvsource
