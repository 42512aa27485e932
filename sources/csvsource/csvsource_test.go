package csvsource_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// writeFiles writes name → content files into a new temp dir and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		write(context.Background(), t, "file://"+filepath.Join(dir, name), []byte(content))
	}
	return dir
}

// readAll opens opts against dir and reads to the end.
func readAll(t *testing.T, dir string, opts *csvsource.Options) (*pipeline.Schema, []pipeline.Row, []pipeline.Origin, []pipeline.Drop, error) {
	t.Helper()
	ctx := context.Background()
	src, err := csvsource.Open(ctx, &pipeline.Env{BaseDir: dir}, opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	defer src.Close()
	sch, err := src.Schema(ctx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var rows []pipeline.Row
	var origins []pipeline.Origin
	var drops []pipeline.Drop
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			return sch, rows, origins, drops, nil
		}
		if err != nil {
			return sch, rows, origins, drops, err
		}
		for i := range b.Len() {
			rows = append(rows, b.Row(i))
			origins = append(origins, b.Origin(i))
		}
		drops = append(drops, b.Drops()...)
	}
}

func TestValidate(t *testing.T) {
	no := false
	tests := []struct {
		name    string
		opts    csvsource.Options
		wantErr string
	}{
		{name: "minimal", opts: csvsource.Options{URL: "x.csv"}},
		{name: "all set", opts: csvsource.Options{URL: "x.csv", Delimiter: ";", Quote: "'", OnError: "fail", BatchSize: 10, Columns: csvsource.Columns{{Name: "a", Type: "int"}}, NullValues: []string{"NULL"}}},
		{name: "tab escape", opts: csvsource.Options{URL: "x.csv", Delimiter: `\t`}},
		{name: "no url", opts: csvsource.Options{}, wantErr: "url is required"},
		{name: "long delimiter", opts: csvsource.Options{URL: "x", Delimiter: ";;"}, wantErr: "delimiter"},
		{name: "non-ascii delimiter", opts: csvsource.Options{URL: "x", Delimiter: "§"}, wantErr: "delimiter"},
		{name: "newline delimiter", opts: csvsource.Options{URL: "x", Delimiter: "\n"}, wantErr: "line break"},
		{name: "quote equals delimiter", opts: csvsource.Options{URL: "x", Quote: ","}, wantErr: "both"},
		{name: "bad on_error", opts: csvsource.Options{URL: "x", OnError: "skip"}, wantErr: "on_error"},
		{name: "negative batch", opts: csvsource.Options{URL: "x", BatchSize: -1}, wantErr: "batch_size"},
		{name: "no header no columns", opts: csvsource.Options{URL: "x", Header: &no}, wantErr: "columns must name"},
		{name: "bad type", opts: csvsource.Options{URL: "x", Columns: csvsource.Columns{{Name: "a", Type: "integer"}}}, wantErr: "unknown type"},
		{name: "any type", opts: csvsource.Options{URL: "x", Columns: csvsource.Columns{{Name: "a", Type: "any"}}}, wantErr: "any"},
		{name: "duplicate column", opts: csvsource.Options{URL: "x", Columns: csvsource.Columns{{Name: "a"}, {Name: "a"}}}, wantErr: "declared twice"},
		{name: "several errors", opts: csvsource.Options{OnError: "x", BatchSize: -2}, wantErr: "url is required; on_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestColumnsYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    string
		wantErr bool
	}{
		{name: "mapping keeps order", yaml: "columns: {z: int, a: date, m: decimal}", want: "[{z int} {a date} {m decimal}]"},
		{name: "block mapping", yaml: "columns:\n  b: bool\n  a: float\n", want: "[{b bool} {a float}]"},
		{name: "list", yaml: "columns:\n  - {name: x, type: int}\n  - name: y\n", want: "[{x int} {y }]"},
		{name: "list unknown key", yaml: "columns:\n  - {name: x, typ: int}\n", wantErr: true},
		{name: "scalar", yaml: "columns: 3", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o csvsource.Options
			err := yaml.UnmarshalWithOptions([]byte(tc.yaml), &o, yaml.Strict())
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal(%q) = nil error, got %v", tc.yaml, o.Columns)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%q): %v", tc.yaml, err)
			}
			if got := fmt.Sprint(o.Columns); got != tc.want {
				t.Errorf("Columns = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRegistry checks "csv" is registered and its example decodes strictly
// and validates.
func TestRegistry(t *testing.T) {
	spec, err := pipeline.DefaultRegistry().Spec(pipeline.KindSource, "csv")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := pipeline.DefaultRegistry().NewOptions(pipeline.KindSource, "csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalWithOptions([]byte(spec.Example), opts, yaml.Strict()); err != nil {
		t.Fatalf("example does not decode: %v", err)
	}
	if err := opts.(pipeline.Validator).Validate(); err != nil {
		t.Fatalf("example does not validate: %v", err)
	}
	o := opts.(*csvsource.Options)
	if o.BatchSize != 1024 || o.Delimiter != "," || len(o.Columns) != 3 || o.Columns[0].Name != "AnnualRevenue" {
		t.Errorf("decoded example = %+v", o)
	}
	// Opening through the registry works too.
	dir := writeFiles(t, map[string]string{"a.csv": "x\n1\n"})
	o.URL = "a.csv"
	o.Columns = nil
	src, err := pipeline.DefaultRegistry().OpenSource(context.Background(), &pipeline.Env{BaseDir: dir}, "csv", o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTypes(t *testing.T) {
	cols := csvsource.Columns{{"i", "int"}, {"f", "float"}, {"b", "bool"}, {"d", "date"}, {"ts", "timestamp"}, {"dec", "decimal"}}
	tests := []struct {
		name      string
		cells     string
		want      string // fmt %v of the row
		wantField string // field of a bad_value drop
	}{
		{name: "values", cells: "-42,1.5,TRUE,2024-02-29,2024-01-02T03:04:05+02:00,-12.50", want: "[-42 1.5 true 2024-02-29 00:00:00 +0000 UTC 2024-01-02 03:04:05 +0200 +0200 -12.50 s]"},
		{name: "empty typed cells are null", cells: ",,,,,", want: "[<nil> <nil> <nil> <nil> <nil> <nil> s]"},
		{name: "bool words", cells: "0,1e3,No,2024-01-01,2024-01-02 03:04:05,.5", want: "[0 1000 false 2024-01-01 00:00:00 +0000 UTC 2024-01-02 03:04:05 +0000 UTC .5 s]"},
		{name: "yes and fraction", cells: "1,0,yes,2024-01-01,2024-01-02 03:04:05.25,7", want: "[1 0 true 2024-01-01 00:00:00 +0000 UTC 2024-01-02 03:04:05.25 +0000 UTC 7 s]"},
		{name: "bad int", cells: "1.0,,,,,", wantField: "i"},
		{name: "int overflow", cells: "99999999999999999999,,,,,", wantField: "i"},
		{name: "bad float", cells: ",x,,,,", wantField: "f"},
		{name: "bad bool", cells: ",,maybe,,,", wantField: "b"},
		{name: "bad date", cells: ",,,2024-02-30,,", wantField: "d"},
		{name: "bad timestamp", cells: ",,,,2024-01-02T03:04,", wantField: "ts"},
		{name: "bad decimal", cells: ",,,,,1e5", wantField: "dec"},
		{name: "bad decimal dot", cells: ",,,,,.", wantField: "dec"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"t.csv": "i,f,b,d,ts,dec,s\n" + tc.cells + ",s\n"})
			sch, rows, _, drops, err := readAll(t, dir, &csvsource.Options{URL: "t.csv", Columns: cols})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sch.String(), "i:int, f:float, b:bool, d:date, ts:timestamp, dec:decimal, s:string"; got != want {
				t.Errorf("schema = %s, want %s", got, want)
			}
			if tc.wantField != "" {
				if len(drops) != 1 || len(rows) != 0 {
					t.Fatalf("got %d rows, %d drops; want one drop", len(rows), len(drops))
				}
				var re *pipeline.RowError
				if !errors.As(drops[0].Err, &re) || re.Code != "bad_value" || re.Field != tc.wantField {
					t.Fatalf("drop error = %#v, want bad_value in field %s", drops[0].Err, tc.wantField)
				}
				if len(drops[0].Row) != 7 || drops[0].Row[6] != "s" {
					t.Errorf("drop row = %v, want the 7 fields as strings", drops[0].Row)
				}
				return
			}
			if len(rows) != 1 || len(drops) != 0 {
				t.Fatalf("got %d rows, %d drops (%v); want one row", len(rows), len(drops), drops)
			}
			if got := fmt.Sprint(rows[0]); got != tc.want {
				t.Errorf("row = %s\nwant  %s", got, tc.want)
			}
		})
	}
}

func gz(t *testing.T, s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func TestObjects(t *testing.T) {
	no := false
	tests := []struct {
		name     string
		files    map[string]string
		opts     csvsource.Options
		want     string // rows, %q of the cells
		wantErr  string // error from Schema or Read
		wantOrig string // origin of the last row
	}{
		{name: "bom stripped", files: map[string]string{"a.csv": "\uFEFFid,n\n1,x\n"}, opts: csvsource.Options{URL: "a.csv"}, want: `[["1" "x"]]`},
		{name: "gzip", files: map[string]string{"a.csv.gz": gz(t, "id\n1\n2\n")}, opts: csvsource.Options{URL: "a.csv.gz"}, want: `[["1"] ["2"]]`, wantOrig: "a.csv.gz:3"},
		{name: "gzip bom glob", files: map[string]string{"a.csv.gz": gz(t, "\uFEFFid\n1\n"), "b.csv": "id\n2\n"}, opts: csvsource.Options{URL: "*.csv*"}, want: `[["1"] ["2"]]`, wantOrig: "b.csv:2"},
		{name: "cr only line ends", files: map[string]string{"a.csv": "id,n\r1,x\r\"2\r\",y\r3,z"}, opts: csvsource.Options{URL: "a.csv"}, want: `[["1" "x"] ["2\r" "y"] ["3" "z"]]`, wantOrig: "a.csv:5"},
		{name: "cr only glob mixed", files: map[string]string{"a.csv.gz": gz(t, "\uFEFFid,n\r1,x\r"), "b.csv": "id,n\r\n2,y\r\n", "c.csv": "id,n\r3,z\r"}, opts: csvsource.Options{URL: "*.csv*"}, want: `[["1" "x"] ["2" "y"] ["3" "z"]]`, wantOrig: "c.csv:2"},
		{name: "cr only header differs", files: map[string]string{"a.csv": "id,n\n1,x\n", "b.csv": "id,m\r2,y\r"}, opts: csvsource.Options{URL: "*.csv"}, want: `[]`, wantErr: `b.csv:1: header differs from the first object`},
		{name: "cr only after a long header", files: map[string]string{"a.csv": "id," + strings.Repeat("n", 70<<10) + "\r1,x\r2,y\r"}, opts: csvsource.Options{URL: "a.csv"}, want: `[]`, wantErr: "a.csv:1: header: column 2 holds a carriage return"},
		{name: "tab and null values", files: map[string]string{"a.tsv": "a\tb\tc\nNULL\t\t\\N\n"}, opts: csvsource.Options{URL: "a.tsv", Delimiter: "\t", NullValues: []string{"NULL", `\N`}}, want: `[[<nil> "" <nil>]]`},
		{name: "quote char", files: map[string]string{"a.csv": "a;b\n'x;y';'it''s'\n"}, opts: csvsource.Options{URL: "a.csv", Delimiter: ";", Quote: "'"}, want: `[["x;y" "it's"]]`},
		{name: "no header", files: map[string]string{"a.csv": "1,x\n2,y\n"}, opts: csvsource.Options{URL: "a.csv", Header: &no, Columns: csvsource.Columns{{"id", "int"}, {"n", ""}}}, want: `[[int64(1) "x"] [int64(2) "y"]]`, wantOrig: "a.csv:2"},
		{name: "no header empty object", files: map[string]string{"a.csv": ""}, opts: csvsource.Options{URL: "a.csv", Header: &no, Columns: csvsource.Columns{{"id", ""}}}, want: `[]`},
		{name: "no match", files: map[string]string{"a.csv": "x\n"}, opts: csvsource.Options{URL: "b*.csv"}, wantErr: "no objects match"},
		{name: "empty object", files: map[string]string{"a.csv": ""}, opts: csvsource.Options{URL: "a.csv"}, wantErr: "a.csv: empty object"},
		{name: "blank lines only", files: map[string]string{"a.csv": "\n\r\n"}, opts: csvsource.Options{URL: "a.csv"}, wantErr: "a.csv: empty object"},
		{name: "later empty object", files: map[string]string{"a.csv": "x\n1\n", "b.csv": ""}, opts: csvsource.Options{URL: "*.csv"}, wantErr: "b.csv: empty object"},
		{name: "duplicate header", files: map[string]string{"a.csv": "id,name,id\n"}, opts: csvsource.Options{URL: "a.csv"}, wantErr: `a.csv:1: duplicate column name "id" (columns 1 and 3)`},
		{name: "empty header name", files: map[string]string{"a.csv": "id,,x\n"}, opts: csvsource.Options{URL: "a.csv"}, wantErr: `a.csv:1: column 2 has an empty name`},
		{name: "bad header quote", files: map[string]string{"a.csv": "i\"d\n"}, opts: csvsource.Options{URL: "a.csv"}, wantErr: `a.csv:1: header: bare quote`},
		{name: "header mismatch", files: map[string]string{"a.csv": "id,n\n1,x\n", "b.csv": "id,name\n2,y\n"}, opts: csvsource.Options{URL: "*.csv"}, wantErr: `b.csv:1: header differs from the first object `, want: `[]`}, // refused before any row
		{name: "header count mismatch", files: map[string]string{"a.csv": "id,n\n", "b.csv": "id\n"}, opts: csvsource.Options{URL: "*.csv"}, wantErr: `1 columns, want 2`},
		{name: "declared column missing", files: map[string]string{"a.csv": "id\n"}, opts: csvsource.Options{URL: "a.csv", Columns: csvsource.Columns{{"idd", "int"}}}, wantErr: `column "idd" declared in columns is not in the header`},
		{name: "not gzip", files: map[string]string{"a.csv.gz": "id\n"}, opts: csvsource.Options{URL: "a.csv.gz"}, wantErr: "a.csv.gz: gunzip"},
		{name: "fail on bad row", files: map[string]string{"a.csv": "id,n\n1,x\n2\n3,z\n"}, opts: csvsource.Options{URL: "a.csv", OnError: "fail"}, want: `[["1" "x"]]`, wantErr: "a.csv:3: record has 1 fields, want 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			_, rows, origins, drops, err := readAll(t, dir, &tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(drops) > 0 {
				t.Errorf("unexpected drops: %v", drops)
			}
			if tc.want != "" {
				if got := fmtRows(rows); got != tc.want {
					t.Errorf("rows = %s, want %s", got, tc.want)
				}
			}
			if tc.wantOrig != "" {
				if len(origins) == 0 || !strings.HasSuffix(origins[len(origins)-1].String(), tc.wantOrig) {
					t.Errorf("origins = %v, want the last to end in %s", origins, tc.wantOrig)
				}
			}
		})
	}
}

// TestFailIsSticky checks that with on_error fail the RowError comes back
// after the rows before it, on every later Read, and names object:line.
func TestFailIsSticky(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.csv": "id\n1\n\"x\n"})
	src, err := csvsource.Open(context.Background(), &pipeline.Env{BaseDir: dir}, &csvsource.Options{URL: "a.csv", OnError: csvsource.OnErrorFail})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := src.Read(context.Background())
	if err != nil || b.Len() != 1 {
		t.Fatalf("first Read = %v, %v; want the one good row", b, err)
	}
	for range 2 {
		_, err := src.Read(context.Background())
		var re *pipeline.RowError
		if !errors.As(err, &re) || re.Code != "bad_quote" || re.Origin.Line != 3 || !strings.HasSuffix(re.Origin.Object, "a.csv") {
			t.Fatalf("Read = %v, want a bad_quote RowError at a.csv:3", err)
		}
	}
}

// TestBatchSize checks batches hold at most batch_size records, drops
// included, and that a file of only bad records still ends.
func TestBatchSize(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.csv": "a,b\n" + strings.Repeat("1,2\n3\n", 10)})
	src, err := csvsource.Open(context.Background(), &pipeline.Env{BaseDir: dir}, &csvsource.Options{URL: "a.csv", BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var sizes []int
	total := 0
	for {
		b, err := src.Read(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, b.Settled())
		total += b.Settled()
		for _, d := range b.Drops() {
			if d.Raw != "3" || d.Row != nil {
				t.Errorf("drop = %+v, want raw %q and no row", d, "3")
			}
		}
	}
	if total != 20 || fmt.Sprint(sizes) != "[3 3 3 3 3 3 2]" {
		t.Errorf("batch sizes = %v (total %d), want [3 3 3 3 3 3 2]", sizes, total)
	}
}

// TestCRLFExact checks quoted content keeps "\r\n" and the raw text of a bad
// record is byte-exact.
func TestCRLFExact(t *testing.T) {
	dir := writeFiles(t, testdataFiles(t, "crlf.csv"))
	_, rows, origins, drops, err := readAll(t, dir, &csvsource.Options{URL: "crlf.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%q", rows); got != `[["1" "line one\r\nline two"] ["3" "ok"]]` {
		t.Errorf("rows = %s", got)
	}
	if origins[1].Line != 6 {
		t.Errorf("origins = %v, want the second row on line 6", origins)
	}
	if len(drops) != 1 || drops[0].Raw != "2,\"a\r\nb\"c" || drops[0].Origin.Line != 4 {
		t.Errorf("drops = %q, want the raw record 2,\"a\\r\\nb\"c at line 4", drops)
	}
}

// testdataFiles reads files from testdata/ into a map for writeFiles.
func testdataFiles(t *testing.T, names ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		m[n] = string(b)
	}
	return m
}

// fmtRows formats rows as [[v ...] ...] with strings quoted and other
// values as type(value).
func fmtRows(rows []pipeline.Row) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('[')
		for j, v := range r {
			if j > 0 {
				b.WriteByte(' ')
			}
			switch v := v.(type) {
			case string:
				fmt.Fprintf(&b, "%q", v)
			case nil:
				b.WriteString("<nil>")
			default:
				fmt.Fprintf(&b, "%T(%v)", v, v)
			}
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
	return b.String()
}

// TestShard covers what the conformance suite's Shard check does not:
// objects without a header, a first object another shard reads whose
// header is still checked, and a shard index out of range.
func TestShard(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"h-0.csv": "id,name\n1,a\n",
		"h-1.csv": "id,name\n2,b\n",
		"h-2.csv": "id,name\n3,c\n",
		"n-0.csv": "1,a\n",
		"n-1.csv": "2,b\n",
		"n-2.csv": "3,c\n",
		"x-0.csv": "id,id\n1,2\n", // duplicate column in the first object
		"x-1.csv": "id,name\n2,b\n",
	})
	noHeader := false
	tests := []struct {
		name    string
		opts    csvsource.Options
		shard   pipeline.Shard
		want    []string // id column
		wantErr string
	}{
		{name: "header, shard 1/2", opts: csvsource.Options{URL: "h-*.csv"}, shard: pipeline.Shard{Index: 1, Count: 2}, want: []string{"2"}},
		{name: "header, shard 0/2", opts: csvsource.Options{URL: "h-*.csv"}, shard: pipeline.Shard{Index: 0, Count: 2}, want: []string{"1", "3"}},
		{name: "no header, shard 1/2", opts: csvsource.Options{URL: "n-*.csv", Header: &noHeader, Columns: csvsource.Columns{{Name: "id", Type: "string"}, {Name: "name", Type: "string"}}},
			shard: pipeline.Shard{Index: 1, Count: 2}, want: []string{"2"}},
		{name: "no header, shard 2/3", opts: csvsource.Options{URL: "n-*.csv", Header: &noHeader, Columns: csvsource.Columns{{Name: "id", Type: "string"}, {Name: "name", Type: "string"}}},
			shard: pipeline.Shard{Index: 2, Count: 3}, want: []string{"3"}},
		{name: "first object's header checked by every shard", opts: csvsource.Options{URL: "x-*.csv"}, shard: pipeline.Shard{Index: 1, Count: 2}, wantErr: `duplicate column name "id"`},
		{name: "index too large", opts: csvsource.Options{URL: "h-*.csv"}, shard: pipeline.Shard{Index: 2, Count: 2}, wantErr: "shard 2/2"},
		{name: "negative index", opts: csvsource.Options{URL: "h-*.csv"}, shard: pipeline.Shard{Index: -1, Count: 2}, wantErr: "shard -1/2"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := csvsource.Open(ctx, &pipeline.Env{BaseDir: dir, Shard: tc.shard}, &tc.opts)
			if err == nil {
				defer src.Close()
				_, err = src.Schema(ctx)
			}
			var got []string
			for err == nil {
				var b *pipeline.Batch
				if b, err = src.Read(ctx); err == nil {
					for i := range b.Len() {
						got = append(got, b.Row(i)[0].(string))
					}
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != io.EOF {
				t.Fatalf("Read: %v", err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
	// CSV cannot skip by a cursor: it does not offer to.
	src, err := csvsource.Open(ctx, nil, &csvsource.Options{URL: "x.csv"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, ok := any(src).(pipeline.CursorPusher); ok {
		t.Errorf("the CSV source implements pipeline.CursorPusher")
	}
}
