package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/redact"
)

func init() {
	pipeline.DefaultRegistry().RegisterSource("postgres", Spec, pipeline.TypedSource("postgres", Open))
}

// Spec describes the "postgres" source type to the registry.
var Spec = pipeline.Spec{
	Summary: "Read one SQL query (or a table's columns) from PostgreSQL or a server speaking its protocol, in one snapshot",
	Example: `url: postgres://reader:${PGPASSWORD}@db.example.com:5432/warehouse
query: SELECT id, name, country, updated_at FROM accounts WHERE active
key: id
shard_key: id
batch_size: 2048
`,
	NewOptions: newOptions,
}

// ErrClosed is returned by Schema, Read and Project after Close.
var ErrClosed = errors.New("postgres: source is closed")

// cancelGrace is how long after a cancel request the connection's socket
// is given before its deadline cuts it.
const cancelGrace = 2 * time.Second

// Source reads the rows of one query. It implements pipeline.Source,
// pipeline.Projector and pipeline.CursorPusher. Its methods must not be
// called concurrently.
type Source struct {
	cfg      *config
	shard    pipeline.Shard
	log      *slog.Logger
	ioCtx    context.Context // bounds the connection and the query; cancelled by Close
	ioCancel context.CancelFunc

	conn    *pgx.Conn
	all     []column // every column of the base query
	project []string // names given to Project, nil when not called
	cols    []column // the columns read, in order
	keyIdx  int      // index of the key in the scanned values; -1: none
	schema  *pipeline.Schema

	cursorField string
	cursorAfter any
	pushed      bool

	tx      pgx.Tx
	rows    pgx.Rows
	cells   []cell
	targets []any
	row     int64
	started bool
	eof     bool
	closed  bool
	err     error
	// slabs recycles the memory of the rows (the []any of their values)
	// once the engine has released a batch (pipeline.SlabPool).
	slabs pipeline.SlabPool
}

// Open returns a source reading opts's query. It checks the options but
// does no I/O: the connection is made by Schema. With env.Shard set, the
// source reads only its shard's rows and needs Options.ShardKey. The
// caller must Close the source. ctx's values (not its cancellation) are
// kept for the connection.
func Open(ctx context.Context, env *pipeline.Env, opts *Options) (*Source, error) {
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	if cfg.password != "" {
		redact.Register(cfg.password)
	}
	log := slog.New(slog.DiscardHandler)
	var shard pipeline.Shard
	if env != nil {
		shard = env.Shard
		if env.Logger != nil {
			log = env.Logger
		}
	}
	if shard.Count > 1 {
		if shard.Index < 0 || shard.Index >= shard.Count {
			return nil, fmt.Errorf("postgres: shard %d/%d: the index must be from 0 to %d", shard.Index, shard.Count, shard.Count-1)
		}
		if cfg.shardKey == "" {
			return nil, fmt.Errorf("postgres: --shard %s needs shard_key: a column to split the rows on (one query has no objects to share out); without it every shard would read every row", shard)
		}
	}
	ioCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &Source{cfg: cfg, shard: shard, log: log, ioCtx: ioCtx, ioCancel: cancel, keyIdx: -1}, nil
}

// connError describes a failed connection by host and port, never with
// the password.
func (s *Source) connError(err error) error {
	msg := err.Error()
	if s.cfg.password != "" {
		msg = strings.ReplaceAll(msg, s.cfg.password, "xxxxx")
	}
	return fmt.Errorf("postgres: connect to %s: %s; check the host, port, database, user and password in url (and sslmode: non-loopback hosts default to verify-full)", s.cfg.hostPort, msg)
}

// connect opens the connection, once.
func (s *Source) connect() error {
	if s.conn != nil {
		return nil
	}
	pc, err := pgx.ParseConfig(s.cfg.dsn)
	if err != nil {
		return s.connError(err)
	}
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = "bulkflow"
	}
	// A cancelled context sends the server a cancel request, so the query
	// stops there too, then cuts the socket if the server does not answer.
	pc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	conn, err := pgx.ConnectConfig(s.ioCtx, pc)
	if err != nil {
		return s.connError(err)
	}
	s.conn = conn
	return nil
}

// Project narrows the columns read to names, which must be columns of the
// query; only they are selected (the query is wrapped). Project may be
// called before or after Schema but not after the first Read.
func (s *Source) Project(names []string) error {
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return errors.New("postgres: Project called after Read; project columns before reading")
	}
	if err := pipeline.CheckProjection(names); err != nil {
		return fmt.Errorf("postgres: Project: %w", err)
	}
	if s.all == nil {
		s.project = slices.Clone(names)
		return nil
	}
	prev := s.project
	s.project = slices.Clone(names)
	if err := s.plan(); err != nil {
		s.project = prev
		if perr := s.plan(); perr != nil {
			return errors.Join(err, perr)
		}
		return err
	}
	return nil
}

// PushCursor has the database return only rows whose field is greater
// than after (or null). It implements pipeline.CursorPusher.
func (s *Source) PushCursor(field string, after any) {
	s.cursorField, s.cursorAfter, s.pushed = field, after, true
}

// Schema describes the query (no row is read) and returns its columns,
// typed as in the package doc. A column of a type the source does not read
// is an error naming it, its type and the cast to write.
func (s *Source) Schema(ctx context.Context) (*pipeline.Schema, error) {
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.schema != nil:
		return s.schema, nil
	case s.err != nil:
		return nil, s.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, s.ioCancel)
	defer stop()
	err := s.describe()
	if err == nil {
		err = s.plan()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		s.err = err
		return nil, err
	}
	return s.schema, nil
}

// describe reads the base query's field descriptions.
func (s *Source) describe() error {
	if err := s.connect(); err != nil {
		return err
	}
	sd, err := s.conn.PgConn().Prepare(s.ioCtx, "", s.cfg.query, nil)
	if err != nil {
		return fmt.Errorf("postgres %s: describe the query: %w", s.cfg.origin, err)
	}
	var problems []string
	seen := map[string]bool{}
	all := make([]column, 0, len(sd.Fields))
	for _, f := range sd.Fields {
		switch {
		case f.Name == "?column?":
			problems = append(problems, fmt.Sprintf("a column has no name (%q): give every expression a name with AS", f.Name))
			continue
		case seen[f.Name]:
			problems = append(problems, fmt.Sprintf("column %q comes twice: rename one with AS", f.Name))
			continue
		}
		seen[f.Name] = true
		c, ok := columnOf(f.Name, f.DataTypeOID)
		if !ok {
			tn := s.typeName(f.DataTypeOID, f.TypeModifier)
			problems = append(problems, fmt.Sprintf("column %q has type %s, which the postgres source does not read: cast it in the query, e.g. %s", f.Name, tn, castHint(f.Name, tn)))
			continue
		}
		all = append(all, c)
	}
	if len(problems) > 0 {
		hint := ""
		if s.cfg.table {
			hint = " (with table:, write a query: instead to cast)"
		}
		return fmt.Errorf("postgres %s: %s%s", s.cfg.origin, strings.Join(problems, "; "), hint)
	}
	if len(all) == 0 {
		return fmt.Errorf("postgres %s: the query returns no columns", s.cfg.origin)
	}
	s.all = all
	return nil
}

// typeName asks the server for a type's SQL name.
func (s *Source) typeName(oid uint32, typmod int32) string {
	var name string
	if err := s.conn.QueryRow(s.ioCtx, "SELECT format_type($1::oid, $2::int4)", oid, typmod).Scan(&name); err != nil {
		return fmt.Sprintf("OID %d", oid)
	}
	return name
}

// find returns the column named name among every column of the query.
func (s *Source) find(name string) (column, bool) {
	for _, c := range s.all {
		if c.name == name {
			return c, true
		}
	}
	return column{}, false
}

// plan computes the columns read and the schema from s.all, the
// projection and the key.
func (s *Source) plan() error {
	names := make([]string, 0, len(s.all))
	for _, c := range s.all {
		names = append(names, c.name)
	}
	cols := s.all
	if s.project != nil {
		want := map[string]bool{}
		for _, n := range s.project {
			if _, ok := s.find(n); !ok {
				return fmt.Errorf("postgres %s: Project: %q is not a column of the query (columns: %s)", s.cfg.origin, n, strings.Join(names, ", "))
			}
			want[n] = true
		}
		cols = nil
		for _, c := range s.all {
			if want[c.name] {
				cols = append(cols, c)
			}
		}
	}
	for _, k := range []struct{ opt, name string }{{"key", s.cfg.key}, {"shard_key", s.cfg.shardKey}} {
		if k.name == "" {
			continue
		}
		if _, ok := s.find(k.name); !ok {
			return fmt.Errorf("postgres %s: %s %q is not a column of the query (columns: %s)", s.cfg.origin, k.opt, k.name, strings.Join(names, ", "))
		}
	}
	fields := make([]pipeline.Field, len(cols))
	for i, c := range cols {
		fields[i] = pipeline.Field{Name: c.name, Type: c.typ}
	}
	sch, err := pipeline.NewSchema(fields...)
	if err != nil {
		return fmt.Errorf("postgres %s: %w", s.cfg.origin, err)
	}
	s.keyIdx = -1
	if s.cfg.key != "" {
		s.keyIdx = slices.IndexFunc(cols, func(c column) bool { return c.name == s.cfg.key })
		if s.keyIdx < 0 { // read, not returned
			kc, _ := s.find(s.cfg.key)
			cols = append(slices.Clone(cols), kc)
			s.keyIdx = len(cols) - 1
		}
	}
	s.cols, s.schema = cols, sch
	return nil
}

// sql returns the statement Read sends and its arguments: the base query,
// wrapped when columns are projected, a cursor is pushed, a shard is read
// or a table is ordered by its key.
func (s *Source) sql() (string, []any) {
	projected := len(s.cols) != len(s.all)
	if !projected {
		for i := range s.cols {
			projected = projected || s.cols[i].name != s.all[i].name
		}
	}
	var where, order []string
	var args []any
	if s.pushed {
		c, _ := s.find(s.cursorField)
		id := "q." + quoteIdent(s.cursorField)
		ph := "$1"
		switch c.kind {
		case kText:
			id += ` COLLATE "C"`
		case kNumeric:
			ph = "$1::numeric"
		case kTimestamp:
			ph = "$1::timestamp"
		case kTimestamptz:
			ph = "$1::timestamptz"
		case kDate:
			ph = "$1::date"
		}
		where = append(where, fmt.Sprintf("(%s > %s OR %s IS NULL)", id, ph, "q."+quoteIdent(s.cursorField)))
		args = append(args, cursorArg(c.kind, s.cursorAfter))
		order = append(order, "q."+quoteIdent(s.cursorField))
	}
	if s.shard.Count > 1 {
		c, _ := s.find(s.cfg.shardKey)
		id := "q." + quoteIdent(s.cfg.shardKey)
		n := s.shard.Count
		expr := fmt.Sprintf("mod(mod(hashtext(%s::text)::int8, %d) + %d, %d)", id, n, n, n)
		if c.kind == kInt {
			expr = fmt.Sprintf("mod(mod(%s::int8, %d) + %d, %d)", id, n, n, n)
		}
		where = append(where, fmt.Sprintf("coalesce(%s, 0) = %d", expr, s.shard.Index))
	}
	if s.cfg.key != "" && (s.cfg.table || len(order) > 0) {
		order = append(order, "q."+quoteIdent(s.cfg.key))
	}
	if !projected && len(where) == 0 && len(order) == 0 {
		return s.cfg.query, nil
	}
	list := make([]string, len(s.cols))
	for i, c := range s.cols {
		list[i] = "q." + quoteIdent(c.name)
	}
	q := "SELECT " + strings.Join(list, ", ") + " FROM (" + s.cfg.query + "\n) q"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if len(order) > 0 {
		q += " ORDER BY " + strings.Join(order, ", ")
	}
	return q, args
}

// cursorArg is the query argument for a watermark of a column of kind k.
func cursorArg(k kind, after any) any {
	if t, ok := after.(time.Time); ok {
		switch k {
		case kTimestamp, kDate:
			return t.UTC().Format("2006-01-02 15:04:05.999999")
		default:
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return after
}

// Read returns the next batch of up to Options.BatchSize rows. Rows holding
// a value their column's type cannot hold are Drops with a
// *pipeline.RowError (code bad_value). It returns io.EOF after the last
// batch and on every later call, and ctx.Err() promptly when ctx is
// cancelled; a cancelled read also stops the query on the server.
func (s *Source) Read(ctx context.Context) (*pipeline.Batch, error) {
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.err != nil:
		return nil, s.err
	case s.eof:
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		if s.rows != nil { // stop the query on the server: the run is over
			s.abort()
			s.err = err
		}
		return nil, err
	}
	if s.schema == nil {
		if _, err := s.Schema(ctx); err != nil {
			return nil, err
		}
	}
	s.started = true
	stop := context.AfterFunc(ctx, s.ioCancel)
	b, err := s.next()
	if !stop() && ctx.Err() != nil {
		s.abort()
		b, err = nil, ctx.Err() // the query was cancelled: no way back
	}
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.err = err
	}
	return b, err
}

// start opens the snapshot and sends the query.
func (s *Source) start() error {
	tx, err := s.conn.BeginTx(s.ioCtx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres %s: begin a read-only snapshot: %w", s.cfg.origin, err)
	}
	s.tx = tx
	q, args := s.sql()
	if s.shard.Count > 1 {
		s.log.Info("postgres: this shard reads its part of the rows", "origin", s.cfg.origin, "shard", s.shard.String(), "shard_key", s.cfg.shardKey)
	}
	if !s.cfg.table {
		s.log.Info("postgres: query", "origin", s.cfg.origin, "sql", q)
	}
	// Binary results (pgx's choice per type), except numeric: the server's
	// own text keeps the scale ("0.00"), which decoding the binary form
	// drops for zero.
	formats := make(pgx.QueryResultFormats, len(s.cols))
	for i, c := range s.cols {
		formats[i] = s.conn.TypeMap().FormatCodeForOID(c.oid)
		if c.kind == kNumeric {
			formats[i] = pgx.TextFormatCode
		}
	}
	args = append([]any{formats}, args...)
	rows, err := tx.Query(s.ioCtx, q, args...)
	if err != nil {
		return fmt.Errorf("postgres %s: query: %w", s.cfg.origin, err)
	}
	s.rows = rows
	fds := rows.FieldDescriptions()
	if len(fds) == 0 { // the query failed before its first row
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("postgres %s: query: %w", s.cfg.origin, err)
		}
	}
	if len(fds) != len(s.cols) {
		return fmt.Errorf("postgres %s: the query returned %d columns, %d when described; the table changed since: run again", s.cfg.origin, len(fds), len(s.cols))
	}
	s.cells = make([]cell, len(s.cols))
	s.targets = make([]any, len(s.cols))
	for i := range s.cols {
		if fds[i].Name != s.cols[i].name || fds[i].DataTypeOID != s.cols[i].oid {
			return fmt.Errorf("postgres %s: column %d is %q (OID %d), %q (OID %d) when described; the table changed since: run again", s.cfg.origin, i+1, fds[i].Name, fds[i].DataTypeOID, s.cols[i].name, s.cols[i].oid)
		}
		s.cells[i].col = &s.cols[i]
		s.targets[i] = s.cells[i].target()
	}
	return nil
}

// next reads up to one batch.
func (s *Source) next() (*pipeline.Batch, error) {
	if s.rows == nil {
		if err := s.start(); err != nil {
			return nil, err
		}
	}
	n := s.schema.Len()
	b := pipeline.NewBatch(s.schema, s.cfg.batchSize)
	slab := s.slabs.Get(s.cfg.batchSize * n)
	b.Recycle(&s.slabs, slab)
	for b.Settled() < s.cfg.batchSize && s.rows.Next() {
		if err := s.rows.Scan(s.targets...); err != nil {
			return nil, fmt.Errorf("postgres %s#row=%d: %w", s.cfg.origin, s.row+1, err)
		}
		s.row++
		row := pipeline.Row(slab[:n:n])
		slab = slab[n:]
		var bad []string
		var badField []string
		for j := range s.cells {
			v, problem := s.cells[j].value()
			if problem != "" {
				bad, badField = append(bad, problem), append(badField, s.cols[j].name)
			}
			if j < n {
				row[j] = v
			}
		}
		origin := pipeline.Origin{Object: s.cfg.origin, Row: s.row}
		if s.keyIdx >= 0 {
			kv, _ := s.cells[s.keyIdx].value()
			origin.Object = s.cfg.origin + "(" + s.cfg.key + "=" + keyText(kv) + ")"
		}
		if bad != nil {
			b.Drop(pipeline.Drop{Row: row, Origin: origin, Err: &pipeline.RowError{
				Origin: origin, Code: CodeBadValue, Field: strings.Join(badField, ";"), Err: errors.New(strings.Join(bad, "; ")),
			}})
			continue
		}
		b.Append(row, origin)
	}
	if b.Settled() > 0 {
		return b, nil
	}
	if err := s.rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres %s: after row %d: %w", s.cfg.origin, s.row, err)
	}
	s.rows.Close()
	if err := s.tx.Commit(s.ioCtx); err != nil {
		return nil, fmt.Errorf("postgres %s: end the snapshot: %w", s.cfg.origin, err)
	}
	s.tx = nil
	return nil, io.EOF
}

// abort stops the query on the server: a cancel request (the context
// watcher sends it when ioCtx ends), then the connection is closed, which
// also ends a backend blocked sending rows nobody reads (PostgreSQL only
// acts on a cancel request once such a write completes).
func (s *Source) abort() {
	s.ioCancel()
	if s.conn == nil || s.conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	defer cancel()
	s.conn.PgConn().Close(ctx)
}

// Close stops the query (on the server too) if it is still running and
// closes the connection. It is idempotent and safe after an error; Read,
// Schema and Project return ErrClosed afterwards.
func (s *Source) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.rows != nil && !s.eof {
		s.abort() // the rest of the result is not read, nor sent
	}
	if s.rows != nil {
		s.rows.Close()
	}
	s.ioCancel()
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
		defer cancel()
		s.conn.Close(ctx) // a read-only transaction: closing rolls it back
	}
	return nil
}

// The PostgreSQL source satisfies these engine interfaces.
var (
	_ pipeline.Source       = (*Source)(nil)
	_ pipeline.Projector    = (*Source)(nil)
	_ pipeline.CursorPusher = (*Source)(nil)
)
