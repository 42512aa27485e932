package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
)

const schemaFile = "pipelines/bulkflow.schema.json"

// compileSchema compiles the committed schema with an independent
// validator (santhosh-tekuri/jsonschema).
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(config.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(config.SchemaID)
	if err != nil {
		t.Fatalf("the committed schema does not compile: %v", err)
	}
	return s
}

// yamlDoc reads YAML as the JSON value the validator takes.
func yamlDoc(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestSchemaCurrent: the committed pipelines/bulkflow.schema.json is what
// `bulkflow schema` writes (go test -update rewrites it).
func TestSchemaCurrent(t *testing.T) {
	t.Chdir(repoRoot(t))
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"schema"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if *update {
		if err := os.WriteFile(schemaFile, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("%s is not current: run go run ./cmd/bulkflow schema --out %s", schemaFile, schemaFile)
	}
}

// TestSchemaValidatesPipelines: every shipped pipeline (and every plugin's
// example) is valid against the committed schema, and a misspelled key,
// a wrong type or an unknown plugin type is not.
func TestSchemaValidatesPipelines(t *testing.T) {
	t.Chdir(repoRoot(t))
	s := compileSchema(t)
	files, _ := filepath.Glob("pipelines/*.yaml")
	files = slices.DeleteFunc(files, config.IsTestFile)
	if len(files) < 5 {
		t.Fatalf("%d pipelines", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlDoc(t, b)); err != nil {
			t.Errorf("%s does not validate against the schema: %v", f, err)
		}
	}
	reg := pipeline.DefaultRegistry()
	for _, kind := range []pipeline.Kind{pipeline.KindSource, pipeline.KindTransform, pipeline.KindSink} {
		for _, name := range reg.Names(kind) {
			spec, _ := reg.Spec(kind, name)
			var opts map[string]any
			if err := yaml.Unmarshal([]byte(spec.Example), &opts); err != nil {
				t.Fatalf("%s %s example: %v", kind, name, err)
			}
			if opts == nil {
				opts = map[string]any{}
			}
			opts["type"] = name
			p := map[string]any{"name": "ex", "stages": []any{map[string]any{"name": "s", string(kind): opts}}}
			b, _ := json.Marshal(p)
			doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err := s.Validate(doc); err != nil {
				t.Errorf("the example of %s %q does not validate: %v", kind, name, err)
			}
		}
	}
	quickstart, err := os.ReadFile("pipelines/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"misspelled option", "max_job_rows: 100", "max_job_row: 100"},
		{"misspelled stage key", "inputs: [map]", "input: [map]"},
		{"misspelled top key", "dead_letter:", "deadletter:"},
		{"wrong type", "concurrency: 2", "concurrency: two"},
		{"unknown plugin type", "type: csv", "type: cvs"},
		{"two bodies", "    filter: 'status", "    map: {a: b}\n    filter: 'status"},
		{"value not in the option's enum", "operation: insert", "operation: insret"},
		{"api not in its enum", "api: bulk", "api: soap"},
	} {
		bad := strings.Replace(string(quickstart), tc.from, tc.to, 1)
		if bad == string(quickstart) {
			t.Fatalf("%s: %q not in quickstart.yaml", tc.name, tc.from)
		}
		if err := s.Validate(yamlDoc(t, []byte(bad))); err == nil {
			t.Errorf("%s: the schema accepts it", tc.name)
		}
	}
	// Enum values are read in any case, as the plugins do, and may be a
	// ${VAR} reference.
	for _, to := range []string{"operation: INSERT", "operation: ${OP}"} {
		ok := strings.Replace(string(quickstart), "operation: insert", to, 1)
		if err := s.Validate(yamlDoc(t, []byte(ok))); err != nil {
			t.Errorf("%q: the schema refuses it: %v", to, err)
		}
	}
}
