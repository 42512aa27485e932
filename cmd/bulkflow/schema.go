package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
)

const schemaUsage = `Usage: bulkflow schema [--out FILE]

Writes the JSON Schema of pipeline files, generated from the registered
plugins (every source, transform and sink with its options, types, defaults
and summary), to stdout or FILE. The repository keeps it as
pipelines/bulkflow.schema.json; editors with the YAML language server
complete and check a pipeline file that starts with

  # yaml-language-server: $schema=bulkflow.schema.json

(a path relative to the pipeline file, or the schema's URL).

Flags:`

// runSchema implements `bulkflow schema`.
func runSchema(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the schema to this `FILE` instead of stdout")
	fs.Usage = func() {
		fmt.Fprintln(stderr, schemaUsage)
		fs.PrintDefaults()
	}
	if err := cli.ParseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	b, err := schemaJSON(pipeline.DefaultRegistry())
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow schema: %v\n", err)
		return exitFailed
	}
	if *out == "" {
		stdout.Write(b)
		return exitOK
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintf(stderr, "bulkflow schema: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// schemaJSON is the schema as indented JSON with a final newline (the
// form of pipelines/bulkflow.schema.json).
func schemaJSON(reg *pipeline.Registry) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(config.JSONSchema(reg)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
