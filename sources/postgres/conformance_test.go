package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/postgres"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// harness stores every fixture as a table of text columns and reads them
// back, in Name order, as one UNION ALL query.
type harness struct {
	admin  *pgx.Conn
	url    string
	n      int
	object string // origin object of the last query
}

func (h *harness) MakeSource(ctx context.Context, tb testing.TB, objects []sourcetest.Fixture) (pipeline.Source, error) {
	sorted := slices.Clone(objects)
	slices.SortFunc(sorted, func(a, b sourcetest.Fixture) int { return strings.Compare(a.Name, b.Name) })
	var parts []string
	for i, f := range sorted {
		h.n++
		table := fmt.Sprintf("f%d", h.n)
		cols := []string{"_ord int"}
		names := []string{"_ord"}
		list := make([]string, len(f.Header))
		for j, c := range f.Header {
			cols = append(cols, pgx.Identifier{c}.Sanitize()+" text")
			names = append(names, c)
			list[j] = pgx.Identifier{c}.Sanitize()
		}
		exec(tb, h.admin, "CREATE TABLE "+table+" ("+strings.Join(cols, ", ")+")")
		rows := make([][]any, len(f.Rows))
		for r, cells := range f.Rows {
			rows[r] = append([]any{r}, anys(cells)...)
		}
		if _, err := h.admin.CopyFrom(ctx, pgx.Identifier{table}, names, pgx.CopyFromRows(rows)); err != nil {
			tb.Fatalf("copy %s: %v", f.Name, err)
		}
		parts = append(parts, fmt.Sprintf("SELECT %d AS _o, _ord, %s FROM %s", i, strings.Join(list, ", "), table))
	}
	list := make([]string, len(sorted[0].Header))
	for j, c := range sorted[0].Header {
		list[j] = pgx.Identifier{c}.Sanitize()
	}
	q := "SELECT " + strings.Join(list, ", ") + " FROM (" + strings.Join(parts, " UNION ALL ") + ") u ORDER BY _o, _ord"
	sum := sha256.Sum256([]byte(q))
	h.object = "postgres:query-" + hex.EncodeToString(sum[:6])
	return postgres.Open(ctx, nil, &postgres.Options{URL: h.url, Query: q})
}

func anys(cells []string) []any {
	out := make([]any, len(cells))
	for i, c := range cells {
		out[i] = c
	}
	return out
}

// WantOrigin numbers rows across the whole query.
func (h *harness) WantOrigin(objects []sourcetest.Fixture, obj, row int) pipeline.Origin {
	n := 0
	for _, f := range objects[:obj] {
		n += len(f.Rows)
	}
	return pipeline.Origin{Object: h.object, Row: int64(n + row + 1)}
}

// BadRow reads numeric values that are no decimal (NaN, ±Infinity).
func (h *harness) BadRow(ctx context.Context, tb testing.TB) (sourcetest.BadRowCase, bool) {
	h.n++
	table := fmt.Sprintf("bad%d", h.n)
	exec(tb, h.admin, "CREATE TABLE "+table+" (id text, amount numeric)")
	exec(tb, h.admin, "INSERT INTO "+table+" VALUES ('1', 10.50), ('2', 'NaN'), ('3', 0), ('4', 'Infinity'), ('5', 7.25), ('6', '-Infinity')")
	src, err := postgres.Open(ctx, nil, &postgres.Options{URL: h.url, Query: "SELECT id, amount FROM " + table + " ORDER BY id"})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	sum := sha256.Sum256([]byte("SELECT id, amount FROM " + table + " ORDER BY id"))
	obj := "postgres:query-" + hex.EncodeToString(sum[:6])
	return sourcetest.BadRowCase{
		Source:  src,
		Records: 6,
		Rows:    [][]string{{"1", "10.50"}, {"3", "0"}, {"5", "7.25"}},
		Bad:     []pipeline.Origin{{Object: obj, Row: 2}, {Object: obj, Row: 4}, {Object: obj, Row: 6}},
	}, true
}

// Unimplementable: one query has no objects to deal out by index; shards
// split rows on shard_key instead (TestShard).
func (h *harness) Unimplementable() []string { return []string{"Shard"} }

func TestConformance(t *testing.T) {
	sourcetest.RunConformance(t, func(tb testing.TB) sourcetest.Harness {
		admin, u := testSchema(tb)
		return &harness{admin: admin, url: u}
	})
}
