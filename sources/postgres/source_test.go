package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/postgres"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// open opens a source on opts (URL filled in), closed with the test.
func open(t *testing.T, env *pipeline.Env, opts postgres.Options) *postgres.Source {
	t.Helper()
	src, err := postgres.Open(context.Background(), env, &opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// readRows reads src to the end: its rows and its drops.
func readRows(t *testing.T, src pipeline.Source) ([]pipeline.Row, []pipeline.Origin, []pipeline.Drop) {
	t.Helper()
	var rows []pipeline.Row
	var origins []pipeline.Origin
	var drops []pipeline.Drop
	for _, b := range sourcetest.ReadAll(context.Background(), t, src) {
		for i := range b.Len() {
			rows = append(rows, b.Row(i))
			origins = append(origins, b.Origin(i))
		}
		drops = append(drops, b.Drops()...)
	}
	return rows, origins, drops
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// TestTypes reads every supported type with edge values and checks each
// column's type and every value.
func TestTypes(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, `CREATE TABLE types (
		id int8, i2 int2, i4 int4, n numeric, n2 numeric(12,2), f4 float4, f8 float8,
		t text, vc varchar(20), c char(3), b bool, d date, ts timestamp, tz timestamptz,
		u uuid, j json, jb jsonb, ta text[], ia int4[][], da date[], na numeric[])`)
	exec(t, admin, `INSERT INTO types VALUES
		(1, -32768, 2147483647, 12345678901234567890.123456789012345678, 1234.50, 1.5, 'NaN', '', 'Zoë', 'ab', true,
		 '1969-07-20', '1900-01-01 00:00:00.000001', '1969-12-31 23:59:59+00', 'c4ca4238-a0b9-2382-0dcc-509a6f75849b',
		 '{"b": 1, "a": [1, 2]}', '{"b": 1, "a": [1, 2]}', '{"x",NULL,"日本"}', '{{1,2},{3,4}}', '{2000-01-02}', '{1.50,NaN}'),
		(2, 0, 0, -0.000000000000000000000000000000000001, 0, '-Infinity', 'Infinity', NULL, '', ' ', false,
		 '2262-04-12', '2300-01-01 12:00:00', '2263-01-01 00:00:00+02', NULL, NULL, NULL, '{}', NULL, NULL, NULL),
		(3, NULL, NULL, NULL, NULL, NULL, '-0', '🚀 emoji', NULL, NULL, NULL,
		 '4713-01-01 BC', '0001-01-01 00:00:00', '9999-12-31 23:59:59.999999+00', NULL, 'null', '"s"', NULL, NULL, NULL, NULL)`)
	src := open(t, nil, postgres.Options{URL: u, Query: "SELECT * FROM types ORDER BY id"})
	sch, err := src.Schema(context.Background())
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	wantTypes := map[string]pipeline.Type{
		"id": pipeline.TypeInt, "i2": pipeline.TypeInt, "i4": pipeline.TypeInt, "n": pipeline.TypeDecimal, "n2": pipeline.TypeDecimal,
		"f4": pipeline.TypeFloat, "f8": pipeline.TypeFloat, "t": pipeline.TypeString, "vc": pipeline.TypeString, "c": pipeline.TypeString,
		"b": pipeline.TypeBool, "d": pipeline.TypeDate, "ts": pipeline.TypeTimestamp, "tz": pipeline.TypeTimestamp,
		"u": pipeline.TypeString, "j": pipeline.TypeString, "jb": pipeline.TypeString, "ta": pipeline.TypeString,
		"ia": pipeline.TypeString, "da": pipeline.TypeString, "na": pipeline.TypeString,
	}
	for _, f := range sch.Fields() {
		if wantTypes[f.Name] != f.Type {
			t.Errorf("column %s: type %s, want %s", f.Name, f.Type, wantTypes[f.Name])
		}
	}
	if sch.Len() != len(wantTypes) {
		t.Errorf("schema %s, want %d columns", sch, len(wantTypes))
	}
	rows, origins, drops := readRows(t, src)
	if len(drops) != 0 {
		t.Fatalf("drops: %+v", drops)
	}
	want := []map[string]any{{
		"id": int64(1), "i2": int64(-32768), "i4": int64(2147483647),
		"n": "12345678901234567890.123456789012345678", "n2": "1234.50", "f4": float64(1.5), "f8": math.NaN(),
		"t": "", "vc": "Zoë", "c": "ab ", "b": true, "d": date(1969, 7, 20),
		"ts": time.Date(1900, 1, 1, 0, 0, 0, 1000, time.UTC), "tz": time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		"u": "c4ca4238-a0b9-2382-0dcc-509a6f75849b", "j": `{"b": 1, "a": [1, 2]}`, "jb": `{"a": [1, 2], "b": 1}`,
		"ta": `["x",null,"日本"]`, "ia": `[[1,2],[3,4]]`, "da": `["2000-01-02"]`, "na": `[1.50,"NaN"]`,
	}, {
		"id": int64(2), "i2": int64(0), "i4": int64(0), "n": "-0.000000000000000000000000000000000001", "n2": "0.00",
		"f4": math.Inf(-1), "f8": math.Inf(1), "t": nil, "vc": "", "c": "   ", "b": false, "d": date(2262, 4, 12),
		"ts": time.Date(2300, 1, 1, 12, 0, 0, 0, time.UTC), "tz": time.Date(2262, 12, 31, 22, 0, 0, 0, time.UTC),
		"u": nil, "j": nil, "jb": nil, "ta": `[]`, "ia": nil, "da": nil, "na": nil,
	}, {
		"id": int64(3), "i2": nil, "i4": nil, "n": nil, "n2": nil, "f4": nil, "f8": math.Copysign(0, -1),
		"t": "🚀 emoji", "vc": nil, "c": nil, "b": nil, "d": date(-4712, 1, 1),
		"ts": time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "tz": time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		"u": nil, "j": "null", "jb": `"s"`, "ta": nil, "ia": nil, "da": nil, "na": nil,
	}}
	if len(rows) != len(want) {
		t.Fatalf("read %d rows, want %d", len(rows), len(want))
	}
	for i, row := range rows {
		if o := origins[i]; !strings.HasPrefix(o.Object, "postgres:query-") || o.Row != int64(i+1) {
			t.Errorf("row %d: origin %+v", i+1, o)
		}
		for j, f := range sch.Fields() {
			got, w := row[j], want[i][f.Name]
			if !same(got, w) {
				t.Errorf("row %d column %s = %#v, want %#v", i+1, f.Name, got, w)
			}
		}
	}
}

// same compares values: floats bit for bit (NaN, -0), times by instant and
// location UTC.
func same(got, want any) bool {
	switch w := want.(type) {
	case float64:
		g, ok := got.(float64)
		return ok && (math.Float64bits(g) == math.Float64bits(w) || (math.IsNaN(g) && math.IsNaN(w)))
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w) && g.Location() == time.UTC
	}
	return reflect.DeepEqual(got, want)
}

// TestInfiniteValues: infinite dates and timestamps, and numeric NaN, are
// dead-lettered with bad_value, naming the column and what to write.
func TestInfiniteValues(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, "CREATE TABLE inf (id int, d date, ts timestamp, tz timestamptz)")
	exec(t, admin, "INSERT INTO inf VALUES (1, 'infinity', now(), now()), (2, '2000-01-01', '-infinity', now()), (3, '2000-01-01', now(), 'infinity'), (4, '2000-01-01', '2000-01-01', '2000-01-01')")
	src := open(t, nil, postgres.Options{URL: u, Table: "inf", Key: "id"})
	rows, _, drops := readRows(t, src)
	if len(rows) != 1 || rows[0][0] != int64(4) {
		t.Errorf("rows %v, want only id 4", rows)
	}
	wantFields := []string{"d", "ts", "tz"}
	if len(drops) != 3 {
		t.Fatalf("%d drops, want 3", len(drops))
	}
	for i, d := range drops {
		var re *pipeline.RowError
		if !errors.As(d.Err, &re) || re.Code != postgres.CodeBadValue || re.Field != wantFields[i] {
			t.Errorf("drop %d: %v (%+v)", i, d.Err, re)
			continue
		}
		wantObj := fmt.Sprintf("postgres:inf(id=%d)", i+1)
		if d.Origin.Object != wantObj || d.Origin.Row != int64(i+1) {
			t.Errorf("drop %d: origin %+v, want %s#row=%d", i, d.Origin, wantObj, i+1)
		}
		if msg := re.Error(); !strings.Contains(msg, "infinity") || !strings.Contains(msg, "isfinite(") {
			t.Errorf("drop %d: message %q does not say what is wrong and what to write", i, msg)
		}
	}
}

// TestUnsupportedTypes: Schema refuses bytea and types it does not read,
// naming the column, its type and the cast.
func TestUnsupportedTypes(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, "CREATE TYPE mood AS ENUM ('ok'); CREATE TABLE odd (id int, blob bytea, span interval, m mood)")
	tests := []struct {
		name string
		opts postgres.Options
		want []string
	}{
		{"query", postgres.Options{Query: "SELECT * FROM odd"}, []string{
			`column "blob" has type bytea`, `encode("blob", 'base64') AS "blob"`,
			`column "span" has type interval`, `"span"::text AS "span"`, `column "m" has type mood`}},
		{"table", postgres.Options{Table: "odd", Columns: []string{"id", "blob"}}, []string{`column "blob" has type bytea`, "write a query: instead"}},
		{"cast works", postgres.Options{Query: `SELECT id, encode(blob, 'base64') AS blob, span::text AS span, m::text AS m FROM odd`}, nil},
		{"unnamed", postgres.Options{Query: "SELECT 1, 2"}, []string{"has no name", "AS"}},
		{"twice", postgres.Options{Query: "SELECT 1 AS a, 2 AS a"}, []string{`column "a" comes twice`}},
		{"no such table", postgres.Options{Table: "nope"}, []string{`relation "nope" does not exist`}},
		{"key not a column", postgres.Options{Table: "odd", Columns: []string{"id"}, Key: "ID"}, []string{`key "ID" is not a column`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.URL = u
			_, err := open(t, nil, tc.opts).Schema(context.Background())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Schema: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Schema succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestOptions: Validate refuses bad options without I/O and never quotes
// the URL.
func TestOptions(t *testing.T) {
	const pw = "s3cr3t-pw-value"
	good := "postgres://u:" + pw + "@db.example.com/x"
	tests := []struct {
		name string
		opts postgres.Options
		want string // "" means valid
	}{
		{"query", postgres.Options{URL: good, Query: "SELECT 1 AS a"}, ""},
		{"table", postgres.Options{URL: good, Table: "s.t", Columns: []string{"a"}}, ""},
		{"no url", postgres.Options{Query: "SELECT 1"}, "url is required"},
		{"not postgres", postgres.Options{URL: "mysql://u:" + pw + "@h/x", Query: "SELECT 1"}, "want a postgres://"},
		{"neither", postgres.Options{URL: good}, "set query"},
		{"both", postgres.Options{URL: good, Query: "SELECT 1", Table: "t"}, "not both"},
		{"columns with query", postgres.Options{URL: good, Query: "SELECT 1", Columns: []string{"a"}}, "columns goes with table"},
		{"bad table", postgres.Options{URL: good, Table: "a.b.c"}, "want table or schema.table"},
		{"column twice", postgres.Options{URL: good, Table: "t", Columns: []string{"a", "a"}}, "listed twice"},
		{"batch", postgres.Options{URL: good, Query: "SELECT 1", BatchSize: -1}, "batch_size -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), pw):
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// TestConnectError: a failed connection names host and port, never the
// password; sslmode defaults to verify-full for other hosts.
func TestConnectError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	const pw = "s3cr3t-pw-value"
	src := open(t, nil, postgres.Options{URL: "postgres://u:" + pw + "@" + addr + "/db?connect_timeout=5", Query: "SELECT 1 AS a"})
	_, err = src.Schema(context.Background())
	if err == nil {
		t.Fatal("Schema succeeded against a closed port")
	}
	if msg := err.Error(); !strings.Contains(msg, "connect to "+addr) || strings.Contains(msg, pw) {
		t.Errorf("error %q: want it to name %s and not the password", msg, addr)
	}
	// A server with TLS off refuses verify-full: the default for non-loopback hosts.
	base := serverURL(t)
	pu, _ := url.Parse(base)
	q := pu.Query()
	q.Set("sslmode", "verify-full")
	pu.RawQuery = q.Encode()
	_, err = open(t, nil, postgres.Options{URL: pu.String(), Query: "SELECT 1 AS a"}).Schema(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connect to "+pu.Host) {
		t.Errorf("verify-full against a server without TLS: %v, want a connect error", err)
	}
}

// TestSnapshot: the query runs in a REPEATABLE READ, READ ONLY transaction.
func TestSnapshot(t *testing.T) {
	_, u := testSchema(t)
	src := open(t, nil, postgres.Options{URL: u, Query: "SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro"})
	rows, _, _ := readRows(t, src)
	if len(rows) != 1 || rows[0][0] != "repeatable read" || rows[0][1] != "on" {
		t.Errorf("rows %v, want [repeatable read on]", rows)
	}
}

// activeQueries returns the active queries of application app.
func activeQueries(t *testing.T, conn *pgx.Conn, app string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT query FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", app)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// waitQueries waits up to 5 s for app's active queries to number want.
func waitQueries(t *testing.T, conn *pgx.Conn, app string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		qs := activeQueries(t, conn, app)
		if len(qs) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d active queries of %s (%q), want %d", len(qs), app, qs, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// endless + endlessFrom streams 10^8 rows at once: a set-returning
// function alone would be computed whole before its first row is sent.
const (
	endless     = "SELECT a.i * 10000 + b.i AS g"
	endlessFrom = " FROM generate_series(1, 10000) a(i), generate_series(1, 10000) b(i)"
)

// waitClientWrite waits up to 5 s for app's backend to block sending rows
// nobody reads.
func waitClientWrite(t *testing.T, conn *pgx.Conn, app string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'ClientWrite'", app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend of %s never blocked writing", app)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCancelStopsServerQuery: cancelling a Read stops the query on the
// server, both mid-stream and while the server is still computing.
func TestCancelStopsServerQuery(t *testing.T) {
	admin, u := testSchema(t)
	tests := []struct {
		name, query string
		firstRead   bool // read one batch before cancelling
	}{
		{"mid-stream", endless + ", repeat('x', 100) AS pad" + endlessFrom, true},
		{"computing", "SELECT count(*) AS n FROM generate_series(1, 2000000000) g", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := "cancel_" + strings.ReplaceAll(tc.name, "-", "_")
			src := open(t, nil, postgres.Options{URL: u + "&application_name=" + app, Query: tc.query, BatchSize: 100})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.firstRead {
				if _, err := src.Read(ctx); err != nil {
					t.Fatalf("first Read: %v", err)
				}
				waitQueries(t, admin, app, 1)
				waitClientWrite(t, admin, app) // the case a cancel request alone does not end
				cancel()
			} else {
				go func() { // owned by this subtest: it ends when the server has the query
					defer cancel()
					deadline := time.Now().Add(5 * time.Second)
					for len(activeQueries(t, admin, app)) == 0 && time.Now().Before(deadline) {
						time.Sleep(20 * time.Millisecond)
					}
				}()
			}
			start := time.Now()
			_, err := src.Read(ctx)
			if tc.firstRead {
				_, err = src.Read(ctx)
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Read after cancel = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Read took %v after cancel", d)
			}
			waitQueries(t, admin, app, 0) // the server stopped it, before Close
			if err := src.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestCloseMidStream: Close before the end stops the query rather than
// reading the rest of the result.
func TestCloseMidStream(t *testing.T) {
	admin, u := testSchema(t)
	src := open(t, nil, postgres.Options{URL: u + "&application_name=close_mid", Query: endless + endlessFrom, BatchSize: 10})
	if _, err := src.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	waitQueries(t, admin, "close_mid", 0)
	if _, err := src.Read(context.Background()); !errors.Is(err, postgres.ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
}

// TestPushCursor: the watermark filter runs in SQL, keeps NULL cursors,
// orders by the cursor, and compares text in byte order.
func TestPushCursor(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, `CREATE TABLE acc (id int, name text, amount numeric(10,2), d date, ts timestamp, tz timestamptz)`)
	exec(t, admin, `INSERT INTO acc SELECT g, 'n' || g, g * 1.5, date '2000-01-01' + g, timestamp '2000-01-01' + g * interval '1 hour',
		timestamptz '2000-01-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(1, 20) g`)
	exec(t, admin, `INSERT INTO acc VALUES (21, NULL, NULL, NULL, NULL, NULL), (22, 'Zebra', 1, '2000-01-01', '2000-01-01', '2000-01-01'), (23, 'apple', 1, '2000-01-01', '2000-01-01', '2000-01-01')`)
	tests := []struct {
		field string
		after any
		want  []int64 // ids in order
	}{
		{"id", int64(17), []int64{18, 19, 20, 21, 22, 23}},
		{"amount", "27.00", []int64{19, 20}},
		{"d", date(2000, 1, 19), []int64{19, 20}},
		{"ts", time.Date(2000, 1, 1, 18, 0, 0, 0, time.UTC), []int64{19, 20}},
		{"tz", time.Date(2000, 1, 1, 19, 0, 0, 0, time.FixedZone("x", 3600)), []int64{19, 20}},
		// byte order: "Zebra" < "apple" < "n1" < "n19" < "n2" < "n20" < "n3"
		{"name", "n19", []int64{2, 20, 3, 4, 5, 6, 7, 8, 9}},
		{"name", "Zebra", []int64{23, 1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 2, 20, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			src := open(t, nil, postgres.Options{URL: u, Query: "SELECT id, name, amount, d, ts, tz FROM acc", Key: "id"})
			if _, err := src.Schema(context.Background()); err != nil {
				t.Fatal(err)
			}
			src.PushCursor(tc.field, tc.after)
			rows, _, _ := readRows(t, src)
			var ids []int64
			nulls := 0
			for _, r := range rows {
				if r[0] == int64(21) {
					nulls++ // NULL cursor: kept, position unspecified
					continue
				}
				ids = append(ids, r[0].(int64))
			}
			want := tc.want
			if tc.field != "id" {
				if nulls != 1 {
					t.Errorf("row with a NULL cursor read %d times, want 1", nulls)
				}
			} else {
				want = []int64{18, 19, 20, 22, 23}
			}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("ids %v, want %v", ids, want)
			}
		})
	}
}

// TestShard: shards split the rows on shard_key in SQL: disjoint, their
// union is every row (NULL keys in shard 0), for integer and text keys;
// without shard_key sharding is refused.
func TestShard(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, "CREATE TABLE s (id int8, code text)")
	exec(t, admin, "INSERT INTO s SELECT g - 500, 'c' || g FROM generate_series(1, 1000) g; INSERT INTO s VALUES (NULL, NULL)")
	for _, key := range []string{"id", "code"} {
		for _, n := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/%d", key, n), func(t *testing.T) {
				seen := map[string]int{}
				for i := range n {
					env := &pipeline.Env{Shard: pipeline.Shard{Index: i, Count: n}}
					src := open(t, env, postgres.Options{URL: u, Table: "s", Columns: []string{"id", "code"}, ShardKey: key})
					rows, _, _ := readRows(t, src)
					if len(rows) < 1001/n/2 {
						t.Errorf("shard %d/%d read only %d rows", i, n, len(rows))
					}
					for _, r := range rows {
						k := fmt.Sprint(r...)
						if prev, dup := seen[k]; dup {
							t.Errorf("row %s read by shards %d and %d", k, prev, i)
						}
						seen[k] = i
					}
				}
				if len(seen) != 1001 {
					t.Errorf("the shards read %d distinct rows, want 1001", len(seen))
				}
				if seen[fmt.Sprint(nil, nil)] != 0 {
					t.Errorf("the NULL key went to shard %d, want 0", seen[fmt.Sprint(nil, nil)])
				}
			})
		}
	}
	_, err := postgres.Open(context.Background(), &pipeline.Env{Shard: pipeline.Shard{Index: 0, Count: 2}}, &postgres.Options{URL: u, Table: "s"})
	if err == nil || !strings.Contains(err.Error(), "needs shard_key") {
		t.Errorf("shard without shard_key: %v", err)
	}
}

// TestKeyOrigin: with key, a table read is ordered by the key and origins
// name its value, also when the key is projected away.
func TestKeyOrigin(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, "CREATE TABLE k (id text, v int); INSERT INTO k VALUES ('b', 2), ('a', 1), ('c(x)', 3)")
	src := open(t, nil, postgres.Options{URL: u, Table: "k", Key: "id"})
	if err := src.Project([]string{"v"}); err != nil {
		t.Fatal(err)
	}
	rows, origins, _ := readRows(t, src)
	want := []pipeline.Origin{{Object: "postgres:k(id=a)", Row: 1}, {Object: "postgres:k(id=b)", Row: 2}, {Object: `postgres:k(id=c(x\))`, Row: 3}}
	if !reflect.DeepEqual(origins, want) {
		t.Errorf("origins %+v, want %+v", origins, want)
	}
	if len(rows) != 3 || len(rows[0]) != 1 || rows[0][0] != int64(1) {
		t.Errorf("rows %v, want [[1] [2] [3]]", rows)
	}
	if _, err := src.Read(context.Background()); err != io.EOF {
		t.Errorf("Read after the end = %v", err)
	}
}

// TestSchemaReadsNoRow: Schema (what validate calls) describes the query
// without running it: a function that fails on every row is not called
// until Read.
func TestSchemaReadsNoRow(t *testing.T) {
	admin, u := testSchema(t)
	exec(t, admin, `CREATE TABLE one (id int); INSERT INTO one VALUES (1);
		CREATE FUNCTION boom(int) RETURNS int LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'row % was read', $1; END$$`)
	src := open(t, nil, postgres.Options{URL: u, Query: "SELECT boom(id) AS b FROM one"})
	sch, err := src.Schema(context.Background())
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	if sch.String() != pipeline.MustSchema(pipeline.Field{Name: "b", Type: pipeline.TypeInt}).String() {
		t.Errorf("schema %s", sch)
	}
	if _, err := src.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "row 1 was read") {
		t.Errorf("Read = %v, want the function's error", err)
	}
}

// TestTLS: sslmode=verify-full against the test server's TLS (a throw-away
// CA, see .ci/postgres.sh with PG_TEST_TLS=1) reads over TLS; without the
// CA the certificate is refused, naming host and port.
func TestTLS(t *testing.T) {
	tlsURL := os.Getenv("BULKFLOW_TEST_POSTGRES_TLS_URL")
	if tlsURL == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("BULKFLOW_TEST_POSTGRES_TLS_URL is not set (start the server with PG_TEST_TLS=1 bash .ci/postgres.sh start)")
		}
		t.Skip("BULKFLOW_TEST_POSTGRES_TLS_URL is not set: start the server with PG_TEST_TLS=1 to run the TLS test")
	}
	src := open(t, nil, postgres.Options{URL: tlsURL, Query: "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"})
	rows, _, _ := readRows(t, src)
	if len(rows) != 1 || rows[0][0] != true {
		t.Errorf("pg_stat_ssl.ssl = %v, want true", rows)
	}
	u, err := url.Parse(tlsURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("sslrootcert")
	u.RawQuery = q.Encode()
	_, err = open(t, nil, postgres.Options{URL: u.String(), Query: "SELECT 1 AS a"}).Schema(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connect to "+u.Host) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("verify-full without the CA: %v, want a certificate error naming %s", err, u.Host)
	}
}

// TestSSLModeDefault: hosts other than loopback get sslmode=verify-full
// unless the URL sets sslmode.
func TestSSLModeDefault(t *testing.T) {
	tests := []struct{ url, want string }{
		{"postgres://u@db.example.com/x", "sslmode=verify-full"},
		{"postgres://u@10.1.2.3:6432/x?application_name=a", "sslmode=verify-full"},
		{"postgres://u@db.example.com/x?sslmode=require", "sslmode=require"},
		{"postgres://u@127.0.0.1:5432/x", ""},
		{"postgres://u@localhost/x", ""},
		{"postgres://u@[::1]:5432/x", ""},
	}
	for _, tc := range tests {
		dsn, err := postgres.DSN(&postgres.Options{URL: tc.url, Query: "SELECT 1 AS a"})
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		got := ""
		if i := strings.Index(dsn, "sslmode="); i >= 0 {
			got = dsn[i:]
			if j := strings.IndexByte(got, '&'); j >= 0 {
				got = got[:j]
			}
		}
		if got != tc.want {
			t.Errorf("%s: dsn %s, want %q", tc.url, dsn, tc.want)
		}
	}
}

// TestArrays: arrays are JSON text, nested by their dimensions, whatever
// the element type.
func TestArrays(t *testing.T) {
	_, u := testSchema(t)
	tests := []struct{ expr, want string }{
		{`ARRAY['a"b', 'back\slash', E'tab\there', E'nl\n', 'ünï', NULL]::text[]`, `["a\"b","back\\slash","tab\there","nl\n","ünï",null]`},
		{`ARRAY['x ', 'y']::char(2)[]`, `["x ","y "]`},
		{`'{{{1,2},{3,4}},{{5,6},{7,NULL}}}'::int8[]`, `[[[1,2],[3,4]],[[5,6],[7,null]]]`},
		{`ARRAY[-32768, 32767]::int2[]`, `[-32768,32767]`},
		{`'{}'::int4[]`, `[]`},
		{`ARRAY['c4ca4238-a0b9-2382-0dcc-509a6f75849b']::uuid[]`, `["c4ca4238-a0b9-2382-0dcc-509a6f75849b"]`},
		{`ARRAY[true, NULL]`, `[true,null]`},
		{`ARRAY[1.5, 'NaN']::float8[]`, ``}, // NaN has no JSON: bad_value
		{`ARRAY['{"k": [1]}'::jsonb]`, `[{"k":[1]}]`},
		{`ARRAY[timestamptz '2020-01-01 01:00:00+01', 'infinity']`, `["2020-01-01T00:00:00Z","infinity"]`},
		{`ARRAY[date '1969-07-20']`, `["1969-07-20"]`},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			src := open(t, nil, postgres.Options{URL: u, Query: "SELECT " + tc.expr + " AS a"})
			rows, _, drops := readRows(t, src)
			if tc.want == "" {
				if len(drops) != 1 || len(rows) != 0 {
					t.Errorf("rows %v, drops %v; want the row dead-lettered", rows, drops)
				}
				return
			}
			if len(rows) != 1 || rows[0][0] != tc.want {
				t.Errorf("got %v (drops %v), want %s", rows, drops, tc.want)
			}
		})
	}
}
