// Package parquetsink holds the "parquet" sink: it writes rows as one
// Parquet file, typed from the stage schema, to a local path or any blob
// URL blobio accepts (file://, mem://, s3://, gs://, azblob://), through
// Apache Arrow's Parquet writer (github.com/apache/arrow-go/v18
// parquet/pqarrow). The parquet source (package parquetsource) reads its
// files back value for value.
//
// The object becomes visible only when Close succeeds, exactly as with the
// CSV sink (blobio.Writer: a temporary file renamed into place, or an
// upload completed at Close); a failed Write aborts it. Cancelling the run
// does not abort it: the engine closes sinks with a context that outlives
// cancellation so that rows counted as loaded are the rows in the file.
//
// # Options
//
//	url:             where to write (required), e.g. "out/accounts.parquet";
//	                 {run_id} and {date} as for the csv sink
//	                 (filesink.ExpandURL), e.g. "out/{date}/accounts-{run_id}.parquet"
//	compression:     zstd (default), snappy or none
//	row_group_rows:  the most rows per row group (default 1048576)
//	row_group_bytes: a row group is closed once its values take this many
//	                 bytes uncompressed (default 32 MiB)
//	decimals:        precision and scale of decimal columns, e.g.
//	                 {AnnualRevenue: "18,2"}; others are decimal(38,9)
//	timestamp_unit:  us (default) or ns
//
// Zstd is the default because on bulkflow's rows it makes files smaller than
// Snappy (see the README's numbers) and readers decode it about as fast;
// storage and transfer of exports cost more than the CPU. Snappy is there
// for readers without Zstd.
//
// # Types
//
// Every column is nullable (a nil value is a Parquet null):
//
//	int        int64
//	float      double (NaN, ±Inf and -0 kept)
//	bool       boolean
//	string     string (UTF-8; a value that is not UTF-8 is dead-lettered invalid_utf8)
//	date       date32: the value's calendar day
//	timestamp  timestamp(us or ns, isAdjustedToUTC=true, Arrow zone "UTC"): the
//	           instant; the original zone is not kept (as in the CSV sink)
//	decimal    decimal(P,S) from decimals, else (38,9): Arrow decimal128 for
//	           P up to 38, decimal256 for 39 to 76; stored as Parquet
//	           FIXED_LEN_BYTE_ARRAY DECIMAL. Read back, a value has exactly S
//	           decimal places ("12.5" at scale 2 reads "12.50")
//	any        string holding the value's text (pipeline.AppendText)
//
// Decimal(38,9) is BigQuery's NUMERIC and holds 29 digits before the point;
// declare the columns' own precision and scale where they are known
// (Salesforce currency fields are 18,2). Microsecond timestamps are the
// default because they hold every year from 1 to 9999 (nanoseconds stop at
// 1677 and 2262, and warehouses' 9999-12-31 "end of time" must fit) and
// are what Spark, BigQuery, Snowflake and Postgres keep.
//
// # Rows that do not fit
//
// Nothing is rounded or truncated. A row with a value its column cannot hold
// is not written and is returned in the Write's *pipeline.RowErrors, so the
// engine dead-letters it with the code and a reason naming the column:
//
//	out_of_range  a decimal with more significant digits than its precision
//	              or more (non-zero) decimal places than its scale; a
//	              timestamp with digits below the microsecond (us), or outside
//	              1677-09-21..2262-04-11 (ns)
//	bad_value     a decimal text that does not parse, or a value whose Go type
//	              is not its column's
//	invalid_utf8  a string that is not valid UTF-8
//
// Storage errors fail the whole batch and discard the object.
//
// # Row groups, memory and checksums
//
// Rows are converted into Arrow records of up to 4096 rows and appended to
// a buffered row group (pqarrow FileWriter.WriteBuffered), which is
// written out when it holds row_group_rows rows or its values take
// row_group_bytes uncompressed (their Arrow size: 8 bytes an int, float or
// timestamp, 16 or 32 a decimal, a string's bytes plus 4). The sink holds
// one row group, never the file: its live heap is about 2.5 times
// row_group_bytes (TestMemoryFlat: a 96 MB file written with 17 MB of heap
// at 4 MiB, 77 MB at the default 32 MiB, 137 MB at 64 MiB).

// Every page header carries the CRC-32 of its page as stored (Parquet's
// page checksum, PARQUET-1539), which arrow-go does not write: the sink
// adds it as the bytes stream to the object and corrects the footer's
// offsets for it (see checksum.go). Page indexes and bloom filters are not
// written. The file stores its Arrow schema (ARROW:schema), so Arrow-based
// readers get the same types back.
package parquetsink
