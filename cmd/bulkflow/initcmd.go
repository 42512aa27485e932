package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

const initUsage = `Usage: bulkflow init --from SAMPLE.csv|SAMPLE.parquet [--object Account] [--name NAME] > my.yaml

Writes a commented starter pipeline to stdout: the sample file as the source
(CSV column types guessed from the first rows), a map stage that maps every
column whose name matches a field of the object (the others are listed,
commented out, to fill in), and a salesforce sink inserting into the object
on the built-in emulator (instance_url "emulator:"), so that

  bulkflow validate my.yaml && bulkflow run my.yaml

work at once. Then edit the mapping, write tests (bulkflow test --help) and
point the sink at an org (instance_url and auth, or --instance-url).

Flags:`

// runInit implements `bulkflow init`.
func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the sample `FILE` (.csv, .csv.gz or .parquet) whose header the pipeline reads")
	object := fs.String("object", "Account", "the Salesforce `OBJECT` to load")
	name := fs.String("name", "", "the pipeline's `NAME` (default: from the sample's file name)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, initUsage)
		fs.PrintDefaults()
	}
	if err := cli.ParseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if *from == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if *name == "" {
		*name = pipelineName(*from)
	}
	text, err := starterPipeline(ctx, *from, *object, *name, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow init: %v\n", err)
		return exitUsage
	}
	io.WriteString(stdout, text)
	return exitOK
}

// pipelineName derives a pipeline name from a file name: accounts.csv.gz
// -> accounts.
func pipelineName(path string) string {
	base := filepath.Base(path)
	base, _, _ = strings.Cut(base, ".")
	base = strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(base, "-"))
	if base == "" || base == "-" {
		return "my-pipeline"
	}
	return base
}

// sampleSchema opens the sample with the csv or parquet source and
// returns its columns, with CSV column types guessed from up to 200 rows.
func sampleSchema(ctx context.Context, path string) (typ string, fields []pipeline.Field, err error) {
	lower := strings.ToLower(path)
	typ = "csv"
	if strings.HasSuffix(lower, ".parquet") {
		typ = "parquet"
	}
	reg := pipeline.DefaultRegistry()
	opts, err := reg.NewOptions(pipeline.KindSource, typ)
	if err != nil {
		return "", nil, err
	}
	if err := yaml.Unmarshal([]byte("url: "+strconv.Quote(path)), opts); err != nil {
		return "", nil, err
	}
	env := &pipeline.Env{RunID: "init", Pipeline: "init", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	src, err := reg.OpenSource(ctx, env, typ, opts)
	if err != nil {
		return "", nil, fmt.Errorf("read the sample %s: %w", path, err)
	}
	defer src.Close()
	schema, err := src.Schema(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("read the sample %s: %w", path, err)
	}
	fields = schema.Fields()
	if typ != "csv" {
		return typ, fields, nil
	}
	// Guess CSV column types from the first rows' text.
	var rows []pipeline.Row
	for len(rows) < 200 {
		b, err := src.Read(ctx)
		if err != nil {
			break
		}
		for i := range b.Len() {
			rows = append(rows, b.Row(i))
		}
	}
	for i := range fields {
		fields[i].Type = guessType(rows, i)
	}
	return typ, fields, nil
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// guessType is the narrowest of int, float, date that at least 90% of
// the non-empty values of column i parse as, else string: a sample with a
// few broken values still gets the type, and the source dead-letters the
// broken rows.
func guessType(rows []pipeline.Row, i int) pipeline.Type {
	var n, ints, floats, dates int
	for _, r := range rows {
		s, _ := r[i].(string)
		if s == "" {
			continue
		}
		n++
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			ints++
		}
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			floats++
		}
		if _, err := time.Parse(time.DateOnly, s); err == nil && dateRE.MatchString(s) {
			dates++
		}
	}
	most := func(k int) bool { return n > 0 && k*10 >= n*9 }
	isInt, isFloat, isDate := most(ints), most(floats), most(dates)
	switch {
	case n == 0:
		return pipeline.TypeString
	case isInt:
		// Ids and codes with leading zeros stay text.
		for _, r := range rows {
			if s, _ := r[i].(string); len(s) > 1 && s[0] == '0' {
				return pipeline.TypeString
			}
		}
		return pipeline.TypeInt
	case isFloat:
		return pipeline.TypeFloat
	case isDate:
		return pipeline.TypeDate
	}
	return pipeline.TypeString
}

// normName folds a column or field name for matching: lower case, no
// underscores, spaces or __c suffix.
func normName(s string) string {
	s = strings.TrimSuffix(strings.ToLower(s), "__c")
	return strings.NewReplacer("_", "", " ", "", "-", "").Replace(s)
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// starterPipeline writes the starter pipeline's text.
func starterPipeline(ctx context.Context, from, object, name string, stderr io.Writer) (string, error) {
	typ, cols, err := sampleSchema(ctx, from)
	if err != nil {
		return "", err
	}
	desc, err := emulatorObject(object)
	if err != nil {
		return "", err
	}
	mapped, unmapped, err := starterMappings(desc, cols)
	if err != nil {
		return "", err
	}
	if len(mapped) == 0 {
		return "", fmt.Errorf("no column of %s matches a field of %s: pass --object, or rename the columns", from, desc.Name)
	}
	if len(unmapped) > 0 {
		fmt.Fprintf(stderr, "bulkflow init: %d of %d columns are not mapped (commented out in the map stage): %s\n", len(unmapped), len(cols), joinCols(unmapped, func(m starterMapping) string { return m.col }))
	}
	return renderStarter(from, typ, name, desc, cols, mapped, unmapped), nil
}

// emulatorObject finds object (any case) among the built-in emulator's
// objects, whose describe the starter pipeline is written against.
func emulatorObject(object string) (*salesforcetest.ObjectDescribe, error) {
	var objects []string
	for _, o := range salesforcetest.DefaultObjects() {
		if strings.EqualFold(o.Name, object) {
			return &o, nil
		}
		objects = append(objects, o.Name)
	}
	return nil, fmt.Errorf("--object %q: the built-in emulator has no such object (it has %s)%s; start from one of them and change object: later", object, strings.Join(objects, ", "), didYouMean(object, objects))
}

// starterMapping is one line of a starter pipeline's map stage: a
// Salesforce field from a column, with a note when it needs a look.
type starterMapping struct{ field, col, note string }

// starterMappings matches the sample's columns to the object's createable,
// non-reference fields by name, then maps every field an insert requires
// from the sample's likeliest name column. Columns left over are returned
// as unmapped, each with the reason.
func starterMappings(desc *salesforcetest.ObjectDescribe, cols []pipeline.Field) (mapped, unmapped []starterMapping, err error) {
	fieldByNorm := map[string]salesforcetest.FieldDescribe{}
	for _, f := range desc.Fields {
		if f.Createable && f.Type != "reference" && f.Type != "id" {
			fieldByNorm[normName(f.Name)] = f
		}
	}
	used := map[string]bool{}
	for _, c := range cols {
		f, ok := fieldByNorm[normName(c.Name)]
		switch {
		case !identRE.MatchString(c.Name):
			unmapped = append(unmapped, starterMapping{"FIELD", c.Name, "the column name is not an identifier: use $env[\"" + c.Name + "\"]"})
		case ok && !used[f.Name]:
			used[f.Name] = true
			mapped = append(mapped, starterMapping{f.Name, c.Name, ""})
		default:
			unmapped = append(unmapped, starterMapping{"FIELD", c.Name, "no " + desc.Name + " field is named like it"})
		}
	}
	// Fields an insert needs: map them from a column, or say so.
	nameCol := likelyNameColumn(cols)
	for _, f := range desc.Fields {
		if !f.Createable || f.Nillable || f.DefaultedOnCreate || used[f.Name] || f.Type == "reference" || f.Type == "id" {
			continue
		}
		if nameCol == "" {
			return nil, nil, fmt.Errorf("%s requires %s on insert and the sample has no text column to map it from", desc.Name, f.Name)
		}
		used[f.Name], used[nameCol] = true, true
		mapped = append(mapped, starterMapping{f.Name, nameCol, fmt.Sprintf("required by %s on insert: choose the column (or expression) that holds it", desc.Name)})
	}
	var still []starterMapping
	for _, m := range unmapped {
		if m.col != nameCol || !used[m.col] {
			still = append(still, m)
		}
	}
	return mapped, still, nil
}

// likelyNameColumn is the text column most likely to hold a name: one
// named like "name" or "company", else the first text column ("" if none).
func likelyNameColumn(cols []pipeline.Field) string {
	var first string
	for _, c := range cols {
		if c.Type != pipeline.TypeString || !identRE.MatchString(c.Name) {
			continue
		}
		n := normName(c.Name)
		if first == "" || strings.Contains(n, "name") || n == "company" {
			first = c.Name
		}
		if strings.Contains(n, "name") || n == "company" {
			break
		}
	}
	return first
}

// renderStarter writes the commented starter pipeline: source, map, sink.
func renderStarter(from, typ, name string, desc *salesforcetest.ObjectDescribe, cols []pipeline.Field, mapped, unmapped []starterMapping) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# A starter pipeline written by `bulkflow init --from %s --object %s`.\n", from, desc.Name)
	w("# Check it with `bulkflow validate FILE`, test the mapping with `bulkflow test`\n")
	w("# (a FILE.test.yaml beside it; see bulkflow test --help), run it with\n")
	w("# `bulkflow run FILE`. Paths are relative to the directory bulkflow runs in.\n")
	w("#\n")
	w("# Editor completion and checks: put the schema beside this file with\n")
	w("# `bulkflow schema --out bulkflow.schema.json` (or point at the repository's\n")
	w("# pipelines/bulkflow.schema.json):\n")
	w("# yaml-language-server: $schema=bulkflow.schema.json\n")
	w("name: %s\n", yq(name))
	w("description: %s -> Salesforce %s\n", yq(filepath.Base(from)), desc.Name)
	w("dead_letter: %s\n\n", yq("out/"+name+"/dead-letter/"))
	w("stages:\n")
	w("  - name: read\n    source:\n      type: %s\n      url: %s\n", typ, yq(from))
	if typ == "csv" {
		var typed []string
		for _, c := range cols {
			if c.Type != pipeline.TypeString {
				typed = append(typed, fmt.Sprintf("        %s: %s", yq(c.Name), c.Type))
			}
		}
		w("      # Column types (undeclared columns are text); guessed from the sample:\n")
		if len(typed) > 0 {
			w("      columns:\n%s\n", strings.Join(typed, "\n"))
		} else {
			w("      # columns: {amount: float, created_at: date}\n")
		}
	}
	w("\n  - name: map\n    inputs: [read]\n    # Salesforce field: expression over the columns (trim(x), upper(x),\n")
	w("    # sfDate(x, \"02/01/2006\"), sfBool(x), lookup(\"table\", x), a ? b : c, ...).\n")
	w("    map:\n")
	for _, m := range mapped {
		if m.note != "" {
			w("      # %s\n", m.note)
		}
		w("      %s: %s\n", yq(m.field), yq(m.col))
	}
	for _, m := range unmapped {
		w("      # %s: %s   # %s\n", m.field, yq(m.col), m.note)
	}
	w("\n  - name: load\n    inputs: [map]\n    sink:\n")
	w("      type: salesforce\n      object: %s\n", desc.Name)
	w("      operation: insert           # or update (with Id), upsert (with external_id_field), delete\n")
	w("      # The built-in emulator: nothing leaves the machine. For an org, or a\n")
	w("      # running `bulkflow emulator`, run with --instance-url URL, or write:\n")
	w("      #   instance_url: https://MYDOMAIN.my.salesforce.com\n")
	w("      #   auth: {client_id: \"${SF_CLIENT_ID}\", client_secret: \"${SF_CLIENT_SECRET}\", login_url: https://MYDOMAIN.my.salesforce.com}\n")
	w("      instance_url: \"emulator:\"\n")
	return b.String()
}

func joinCols[T any](xs []T, f func(T) string) string {
	var out []string
	for _, x := range xs {
		out = append(out, f(x))
	}
	return strings.Join(out, ", ")
}

// yq returns s as a YAML scalar: bare when that reads back as the same
// string, double-quoted otherwise.
func yq(s string) string {
	var back any
	if regexp.MustCompile(`^[A-Za-z_./][A-Za-z0-9_./-]*$`).MatchString(s) && yaml.Unmarshal([]byte("v: "+s), &map[string]any{}) == nil {
		if err := yaml.Unmarshal([]byte(s), &back); err == nil {
			if str, ok := back.(string); ok && str == s {
				return s
			}
		}
	}
	return strconv.Quote(s)
}

func didYouMean(got string, names []string) string {
	if m := pipeline.Closest(got, names); m != "" {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return ""
}
