package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// serverURL returns the test server's URL: it skips the test when none is
// running, and fails it under CI=true.
func serverURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("BULKFLOW_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("BULKFLOW_TEST_POSTGRES_URL is not set (start a server: eval \"$(bash .ci/postgres.sh start)\")")
		}
		tb.Skip("BULKFLOW_TEST_POSTGRES_URL is not set: start a server with eval \"$(bash .ci/postgres.sh start)\" to run the PostgreSQL tests")
	}
	return base
}

// testSchema makes a schema of its own for the test, dropped at its end,
// and returns an admin connection and a URL whose search_path is that
// schema.
func testSchema(tb testing.TB) (*pgx.Conn, string) {
	tb.Helper()
	base := serverURL(tb)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name+"; SET search_path = "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Error(err)
		}
		admin.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return admin, u.String()
}

// exec runs statements on conn, failing the test on error.
func exec(tb testing.TB, conn *pgx.Conn, sql string, args ...any) {
	tb.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}
