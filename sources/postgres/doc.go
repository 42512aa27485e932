// Package postgres holds the "postgres" source: it reads the rows of one SQL
// query (or one table's columns) from PostgreSQL, or from a server speaking
// its protocol (Redshift, Aurora, AlloyDB, Supabase, Neon, Timescale,
// CockroachDB), through github.com/jackc/pgx/v5.
//
// # Options
//
//	url: postgres://reader:${PGPASSWORD}@db.example.com:5432/warehouse
//	query: SELECT id, name, updated_at FROM accounts WHERE active
//	# or: table: public.accounts + columns: [id, name, updated_at]
//	key: id            # origins name the row's key value
//	shard_key: id      # bulkflow run --shard I/N splits on it, in SQL
//	batch_size: 5000
//
// The password never appears in errors or logs: put it in the URL through
// ${ENV} or ${file:...}. Without sslmode in the URL a host other than
// localhost / 127.0.0.1 / ::1 is reached with sslmode=verify-full (TLS with
// the certificate checked against the host name); loopback hosts use pgx's
// default (prefer).
//
// # Types
//
// Columns are typed from the result's field descriptions, which Schema reads
// with a describe (no row is read, so `bulkflow validate` costs one round
// trip):
//
//	PostgreSQL                          bulkflow   value
//	int2, int4, int8                    int        int64
//	numeric                             decimal    exact text at the value's scale ("1234.50");
//	                                               NaN / ±Infinity rows are dead-lettered (bad_value)
//	float4, float8                      float      float64 (NaN and ±Inf kept; the Salesforce sink refuses them)
//	text, varchar, char, name           string     as stored ('' and NULL stay apart)
//	bool                                bool
//	date                                date       midnight UTC; ±infinity rows are dead-lettered
//	timestamp                           timestamp  the wall clock, as UTC; ±infinity dead-lettered
//	timestamptz                         timestamp  the instant, in UTC; ±infinity dead-lettered
//	uuid                                string     canonical text
//	json, jsonb                         string     the server's text of the document
//	arrays of the types above           string     JSON text (nested for multi-dimensional arrays)
//	bytea, anything else                refused by validate, naming the column, its type and the cast to write
//
// # Reading
//
// The first Read opens one REPEATABLE READ, READ ONLY transaction, so the
// whole run sees one snapshot, and sends the query once with the binary
// protocol; pgx reads the result from the socket as Read asks for rows
// (TCP flow control holds the server back), so memory stays flat whatever
// the result size. This was measured faster than a server-side cursor
// (FETCH round trips) and than COPY ... TO STDOUT, whose text must be
// parsed again per field type (see the README, "PostgreSQL").
//
// Cancelling the context of a Read (or Close before the end) sends the
// server a cancel request, so the query stops on the server too.
//
// # Incremental reads and shards
//
// With `incremental: {cursor: C}` and a committed watermark the query is
// wrapped as SELECT ... FROM (<query>) q WHERE C > $1 OR C IS NULL ORDER BY C,
// so the database filters; text cursors compare with COLLATE "C", the byte
// order the engine uses. With `bulkflow run --shard I/N` the source needs
// shard_key and reads only the rows with mod(key, N) = I (integer keys) or
// mod(hashtext(key::text), N) = I (other types); NULL keys belong to shard 0.
// Each shard reads its own snapshot: a row whose key changes between two
// shards' reads may be read by both or by neither (run the shards of one
// sync at the same time, from a key that does not change).
//
// # Origins
//
// A row's origin is postgres:TABLE#row=N for table:, and
// postgres:query-HASH#row=N for query: (the first 12 hex digits of the
// query's SHA-256; the source logs the query beside its hash). With key:
// the key's value is added: postgres:accounts(id=42)#row=7.
package postgres
