package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/postgres"
)

// TestRegistry: "postgres" is registered, its example decodes strictly and
// validates, and the registry opens a source that reads the server.
func TestRegistry(t *testing.T) {
	reg := pipeline.DefaultRegistry()
	spec, err := reg.Spec(pipeline.KindSource, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := reg.NewOptions(pipeline.KindSource, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	o := opts.(*postgres.Options)
	if o.BatchSize != postgres.DefaultBatchSize {
		t.Errorf("default batch_size = %d", o.BatchSize)
	}
	// The loader interpolates ${PGPASSWORD} before decoding.
	example := strings.ReplaceAll(spec.Example, "${PGPASSWORD}", "pw")
	if err := yaml.UnmarshalWithOptions([]byte(example), o, yaml.Strict()); err != nil {
		t.Fatalf("Spec.Example does not decode: %v", err)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Spec.Example does not validate: %v", err)
	}
	if _, err := reg.OpenSource(context.Background(), nil, "postgres", struct{}{}); err == nil {
		t.Errorf("OpenSource with the wrong options type succeeded")
	}
	_, u := testSchema(t)
	src, err := reg.OpenSource(context.Background(), &pipeline.Env{}, "postgres", &postgres.Options{URL: u, Query: "SELECT g FROM generate_series(1, 5) g"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rows, _, _ := readRows(t, src)
	if len(rows) != 5 || rows[4][0] != int64(5) {
		t.Errorf("rows %v, want 1..5", rows)
	}
}
