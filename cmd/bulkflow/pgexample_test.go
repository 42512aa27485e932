package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// pgExampleEnv prepares what an example pipeline reading PostgreSQL
// (pipelines/pg-accounts-sync.yaml) needs to validate: BULKFLOW_PG_URL
// naming a fresh schema of the test server that holds its accounts table.
// It returns false (the caller leaves the file out) when the file reads no
// PostgreSQL, and when no server runs outside CI; under CI=true a missing
// server fails the test.
func pgExampleEnv(t *testing.T, file string) bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "type: postgres") {
		return true
	}
	base := os.Getenv("BULKFLOW_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s reads PostgreSQL and BULKFLOW_TEST_POSTGRES_URL is not set (run .ci/postgres.sh start)", file)
		}
		t.Logf("%s left out: BULKFLOW_TEST_POSTGRES_URL is not set", file)
		return false
	}
	pgTestSchema(t, base, "example_", `CREATE TABLE accounts (account_id text PRIMARY KEY,
		company text, country text, annual_revenue numeric(14,2), status text, updated_at timestamptz NOT NULL)`)
	return true
}

// pgTestURL returns the test server's URL (.ci/postgres.sh start sets
// BULKFLOW_TEST_POSTGRES_URL), skipping the test without one, or failing
// it under CI, which must run it.
func pgTestURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("BULKFLOW_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("BULKFLOW_TEST_POSTGRES_URL is not set (run .ci/postgres.sh start)")
		}
		t.Skip("BULKFLOW_TEST_POSTGRES_URL is not set")
	}
	return base
}

// pgTestSchema creates a schema named prefix plus random hex on the test
// server at base, runs ddl in it, points BULKFLOW_PG_URL at it (through
// search_path) and drops it when the test ends. It returns a connection
// whose search_path is the schema, for the test's own statements.
func pgTestSchema(t *testing.T, base, prefix, ddl string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema+"; SET search_path TO "+schema+"; "+ddl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
		admin.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Setenv("BULKFLOW_PG_URL", u.String())
	return admin
}
