package postgres_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/bulkflow/bulkflow/sources/postgres"
)

// benchRows is the size of the benchmark table.
const benchRows = 1_000_000

// benchColumns is the benchmark query's select list: every kind of column
// the source reads (the shared test-server notes' table, without bytea).
const benchColumns = "id, amount, name, flag, d, ts_tz, ts, doc, uid, tags"

// benchTable creates and fills the benchmark table once per process and
// returns its qualified name.
var benchTable = sync.OnceValues(func() (string, error) {
	base := os.Getenv("BULKFLOW_TEST_POSTGRES_URL")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	const name = "bulkflow_bench.t1m"
	var n int64
	if conn.QueryRow(ctx, "SELECT count(*) FROM "+name).Scan(&n) == nil && n == benchRows {
		return name, nil
	}
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS bulkflow_bench CASCADE; CREATE SCHEMA bulkflow_bench;
		CREATE TABLE `+name+` (id int8 PRIMARY KEY, amount numeric(18,2), name text, flag bool, d date,
			ts_tz timestamptz, ts timestamp, doc jsonb, uid uuid, tags text[])`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `INSERT INTO `+name+` SELECT g, (g * 1.01)::numeric(18,2), CASE WHEN g % 100 = 0 THEN NULL ELSE 'name ' || g END,
			g % 2 = 0, date '2000-01-01' + (g % 10000)::int, timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second',
			timestamp '2020-01-01' + g * interval '1 second', jsonb_build_object('k', 'v' || g, 'id', g, 'arr', jsonb_build_array(1, 2)),
			md5(g::text)::uuid, ARRAY['a' || g, 'b' || g] FROM generate_series(1, $1::int8) g`, benchRows); err != nil {
		return "", err
	}
	_, err = conn.Exec(ctx, "VACUUM ANALYZE "+name)
	return name, err
})

// BenchmarkRead reads the same 1,000,000-row table (10 columns of every
// kind) with the source and with psql's \copy to a CSV file, in the same
// run, and reports rows/s of each and their ratio; then the source's peak
// RSS (a child process) at 100k and 1M rows. Beside them, for the choice
// of read path: the source's typed scan without its conversion to rows,
// from one streamed query and from a server-side cursor (FETCH 10000), and
// COPY ... TO STDOUT CSV parsed per column type.
//
//	go test -run '^$' -bench BenchmarkRead -benchtime 3x ./sources/postgres/
func BenchmarkRead(b *testing.B) {
	serverURL(b)
	start := time.Now()
	table, err := benchTable()
	if err != nil {
		b.Fatalf("benchmark table: %v", err)
	}
	b.Logf("table %s ready in %v", table, time.Since(start).Round(time.Millisecond))
	query := "SELECT " + benchColumns + " FROM " + table + " ORDER BY id"
	url := os.Getenv("BULKFLOW_TEST_POSTGRES_URL")
	psql, err := osexec.LookPath("psql")
	if err != nil {
		b.Skip("psql not found: no baseline to compare with")
	}
	out := filepath.Join(b.TempDir(), "out.csv")
	readers := []struct {
		name string
		read func(b *testing.B) int
	}{
		{"source", func(b *testing.B) int { return readSource(b, url, query, 0) }},
		{"psql_copy_csv", func(b *testing.B) int {
			cmd := osexec.Command(psql, url, "-X", "-q", "-c", `\copy (`+query+`) to '`+out+`' csv`)
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("psql: %v: %s", err, msg)
			}
			return countLines(b, out)
		}},
		{"pgx_query_scan", func(b *testing.B) int { return readCursor(b, url, query, false) }},
		{"pgx_cursor_fetch10000", func(b *testing.B) int { return readCursor(b, url, query, true) }},
		{"pgx_copy_csv_parsed", func(b *testing.B) int { return readCopyCSV(b, url, query) }},
	}
	// Every iteration runs each reader once, in turn, so that the load of
	// a shared machine falls on all of them alike.
	b.Run("paths", func(b *testing.B) {
		took := make([]time.Duration, len(readers))
		for b.Loop() {
			for i, r := range readers {
				t0 := time.Now()
				if n := r.read(b); n != benchRows {
					b.Fatalf("%s read %d rows, want %d", r.name, n, benchRows)
				}
				took[i] += time.Since(t0)
			}
		}
		for i, r := range readers {
			b.ReportMetric(float64(benchRows)*float64(b.N)/took[i].Seconds(), r.name+"-rows/s")
		}
		b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "source/psql")
		b.ReportMetric(took[3].Seconds()/took[2].Seconds(), "query/cursor")
	})
	for _, n := range []int{100_000, benchRows} {
		b.Run(fmt.Sprintf("rss_rows=%d", n), func(b *testing.B) {
			var kb int64
			for b.Loop() {
				kb = childRSS(b, url, "SELECT "+benchColumns+" FROM "+table+" ORDER BY id LIMIT "+strconv.Itoa(n), n)
			}
			b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
		})
	}
}

// readSource reads query with the source and returns the rows read.
func readSource(tb testing.TB, url, query string, batch int) int {
	src, err := postgres.Open(context.Background(), nil, &postgres.Options{URL: url, Query: query, BatchSize: batch})
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		bt, err := src.Read(context.Background())
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
		n += bt.Len()
	}
}

// typedTargets are the scan targets of the benchmark columns.
type typedTargets struct {
	id           pgtype.Int8
	amount, name pgtype.Text
	flag         pgtype.Bool
	d            pgtype.Date
	tstz         pgtype.Timestamptz
	ts           pgtype.Timestamp
	doc, uid     pgtype.Text
	tags         pgtype.Array[any]
	all          []any
}

func newTargets() *typedTargets {
	t := &typedTargets{}
	t.all = []any{&t.id, &t.amount, &t.name, &t.flag, &t.d, &t.tstz, &t.ts, &t.doc, &t.uid, &t.tags}
	return t
}

// cursorFormats are the source's result formats for the benchmark
// columns: binary, but text for numeric and jsonb.
var cursorFormats = pgx.QueryResultFormats{1, 0, 0, 1, 1, 1, 1, 0, 1, 1}

// readCursor reads query into typed values (the source's scan without its
// conversion to rows): through a server-side cursor, 10000 rows per FETCH,
// when cursor is set, else as one streamed query, as the source does.
func readCursor(tb testing.TB, url, query string, cursor bool) int {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(ctx)
	fetch := query
	if cursor {
		if _, err := tx.Exec(ctx, "DECLARE c NO SCROLL CURSOR FOR "+query); err != nil {
			tb.Fatal(err)
		}
		fetch = "FETCH FORWARD 10000 FROM c"
	}
	t := newTargets()
	n := 0
	for {
		rows, err := tx.Query(ctx, fetch, cursorFormats)
		if err != nil {
			tb.Fatal(err)
		}
		got := 0
		for rows.Next() {
			if err := rows.Scan(t.all...); err != nil {
				tb.Fatal(err)
			}
			got++
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		n += got
		if got == 0 || !cursor {
			return n
		}
	}
}

// readCopyCSV reads COPY (query) TO STDOUT CSV and parses every field to
// its column's type.
func readCopyCSV(tb testing.TB, url, query string) int {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { // ends when COPY ends or the reader side is closed
		_, err := conn.PgConn().CopyTo(ctx, pw, "COPY ("+query+") TO STDOUT WITH (FORMAT csv)")
		pw.CloseWithError(err)
		done <- err
	}()
	r := csv.NewReader(pr)
	r.ReuseRecord = true
	n := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			pr.Close()
			<-done
			tb.Fatal(err)
		}
		if _, err := strconv.ParseInt(rec[0], 10, 64); err != nil {
			tb.Fatal(err)
		}
		_ = rec[1] + rec[2]
		_, _ = strconv.ParseBool(rec[3])
		if _, err := time.Parse(time.DateOnly, rec[4]); err != nil {
			tb.Fatal(err)
		}
		if _, err := time.Parse("2006-01-02 15:04:05-07", rec[5]); err != nil {
			tb.Fatal(err)
		}
		if _, err := time.Parse(time.DateTime, rec[6]); err != nil {
			tb.Fatal(err)
		}
		n++
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return n
}

// countLines counts the lines of a file.
func countLines(tb testing.TB, path string) int {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// childRSS runs this test binary as a child that reads query with the
// source (see TestMain) and returns the child's peak RSS in KiB (VmHWM: the
// child's own address space, whereas rusage's maxrss starts from the
// parent's when the child is forked from it).
func childRSS(tb testing.TB, url, query string, want int) int64 {
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BULKFLOW_PG_RSS_CHILD="+query, "BULKFLOW_TEST_POSTGRES_URL="+url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("child: %v: %s", err, out)
	}
	var rows, kb int64
	if _, err := fmt.Sscanf(string(out), "%d %d", &rows, &kb); err != nil || rows != int64(want) {
		tb.Fatalf("child said %q, want %d rows and its VmHWM", out, want)
	}
	return kb
}

// vmHWM returns this process's peak RSS in KiB.
func vmHWM() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// TestMain runs the RSS child of BenchmarkRead when asked to, else the tests.
func TestMain(m *testing.M) {
	if q := os.Getenv("BULKFLOW_PG_RSS_CHILD"); q != "" {
		n := readSource(childTB{}, os.Getenv("BULKFLOW_TEST_POSTGRES_URL"), q, 0)
		fmt.Println(n, vmHWM())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childTB is the testing.TB of the RSS child: any failure exits non-zero.
type childTB struct{ testing.TB }

func (childTB) Helper()           {}
func (childTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(2) }
