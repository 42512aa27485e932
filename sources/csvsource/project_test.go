package csvsource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// projData has a typed column (n: int) whose cell is bad in record 3, a
// record with too few fields (4) and one with invalid UTF-8 in column note
// (5).
const projData = "id,name,n,note,when\n" +
	"1,a,10,x,2024-01-01\n" +
	"2,\"b,c\",20,y,2024-01-02\n" +
	"3,d,notanint,z,2024-01-03\n" +
	"4,e\n" +
	"5,f,50,\xff,2024-01-05\n" +
	"6,\"g\",,NULL,\n"

var projCols = csvsource.Columns{{"n", "int"}, {"when", "date"}}

// dropSummary describes drops as code/field/row/raw, one per line.
func dropSummary(drops []pipeline.Drop) string {
	var b strings.Builder
	for _, d := range drops {
		var re *pipeline.RowError
		if !errors.As(d.Err, &re) {
			fmt.Fprintf(&b, "%v\n", d.Err)
			continue
		}
		row := "nil"
		if d.Row != nil {
			row = fmtRows([]pipeline.Row{d.Row})
		}
		fmt.Fprintf(&b, "%s/%s/%s/%q\n", re.Code, re.Field, row, d.Raw)
	}
	return b.String()
}

func TestProject(t *testing.T) {
	no := false
	tests := []struct {
		name       string
		data       string
		opts       csvsource.Options // URL is set to the data's object
		project    []string          // Project before Schema
		reproject  []string          // Project after Schema
		wantSchema string
		wantRows   string
		wantDrops  string // dropSummary
		wantErr    string // from Project, Schema or Read
	}{
		{
			name: "no projection", data: projData, opts: csvsource.Options{Columns: projCols},
			wantSchema: "id:string, name:string, n:int, note:string, when:date",
			wantRows:   `[["1" "a" int64(10) "x" time.Time(2024-01-01 00:00:00 +0000 UTC)] ["2" "b,c" int64(20) "y" time.Time(2024-01-02 00:00:00 +0000 UTC)] ["6" "g" <nil> "NULL" <nil>]]`,
			wantDrops: `bad_value/n/[["3" "d" "notanint" "z" "2024-01-03"]]/"3,d,notanint,z,2024-01-03"
field_count//nil/"4,e"
invalid_utf8/note/[["5" "f" "50" "\xff" "2024-01-05"]]/"5,f,50,\xff,2024-01-05"
`,
		},
		{
			name: "subset before schema", data: projData, opts: csvsource.Options{Columns: projCols}, project: []string{"name", "when"},
			wantSchema: "name:string, when:date",
			wantRows:   `[["a" time.Time(2024-01-01 00:00:00 +0000 UTC)] ["b,c" time.Time(2024-01-02 00:00:00 +0000 UTC)] ["d" time.Time(2024-01-03 00:00:00 +0000 UTC)] ["g" <nil>]]`,
			wantDrops: `field_count//nil/"4,e"
invalid_utf8/note/[["f" "2024-01-05"]]/"5,f,50,\xff,2024-01-05"
`,
		},
		{
			name: "order of names is not kept", data: projData, opts: csvsource.Options{Columns: projCols}, reproject: []string{"note", "id"},
			wantSchema: "id:string, note:string",
			wantRows:   `[["1" "x"] ["2" "y"] ["3" "z"] ["6" "NULL"]]`,
			wantDrops: `field_count//nil/"4,e"
invalid_utf8/note/[["5" "\xff"]]/"5,f,50,\xff,2024-01-05"
`,
		},
		{
			name: "bad value inside projection", data: projData, opts: csvsource.Options{Columns: projCols}, reproject: []string{"n"},
			wantSchema: "n:int",
			wantRows:   `[[int64(10)] [int64(20)] [<nil>]]`,
			wantDrops: `bad_value/n/[["notanint"]]/"3,d,notanint,z,2024-01-03"
field_count//nil/"4,e"
invalid_utf8/note/[["50"]]/"5,f,50,\xff,2024-01-05"
`,
		},
		{
			name: "later call replaces", data: projData, opts: csvsource.Options{Columns: projCols}, project: []string{"n"}, reproject: []string{"id"},
			wantSchema: "id:string",
			wantRows:   `[["1"] ["2"] ["3"] ["6"]]`,
			wantDrops: `field_count//nil/"4,e"
invalid_utf8/note/[["5"]]/"5,f,50,\xff,2024-01-05"
`,
		},
		{
			name: "nulls in projection", data: projData, opts: csvsource.Options{Columns: projCols, NullValues: []string{"NULL"}}, project: []string{"note", "name"},
			wantSchema: "name:string, note:string",
			wantRows:   `[["a" "x"] ["b,c" "y"] ["d" "z"] ["g" <nil>]]`,
			wantDrops: `field_count//nil/"4,e"
invalid_utf8/note/[["f" "\xff"]]/"5,f,50,\xff,2024-01-05"
`,
		},
		{
			name: "no header", data: "1,x,5\n2,y,bad\n", opts: csvsource.Options{Header: &no, Columns: csvsource.Columns{{"id", "int"}, {"s", ""}, {"k", "int"}}}, project: []string{"s", "id"},
			wantSchema: "id:int, s:string",
			wantRows:   `[[int64(1) "x"] [int64(2) "y"]]`,
		},
		{
			name: "fail mode still fails on field count", data: projData, opts: csvsource.Options{Columns: projCols, OnError: csvsource.OnErrorFail}, project: []string{"id"},
			wantSchema: "id:string",
			wantRows:   `[["1"] ["2"] ["3"]]`,
			wantErr:    "record has 2 fields, want 5",
		},
		{name: "unknown before schema", data: projData, project: []string{"id", "zzz"}, wantErr: `Project: "zzz" is not a column of the source (have "id", "name", "n", "note", "when")`},
		{name: "unknown after schema", data: projData, reproject: []string{"zzz"}, wantErr: `Project: "zzz" is not a column of the source`},
		{name: "unknown no header", data: "1\n", opts: csvsource.Options{Header: &no, Columns: csvsource.Columns{{"id", ""}}}, project: []string{"ID"}, wantErr: `csv: Project: "ID" is not a column of the source (have "id")`},
		{name: "duplicate", data: projData, project: []string{"id", "n", "id"}, wantErr: `csv: Project: column "id" listed twice`},
		{name: "duplicate after schema", data: projData, reproject: []string{"n", "n"}, wantErr: `listed twice`},
		{name: "empty", data: projData, project: []string{}, wantErr: "csv: Project: needs at least one column"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := writeFiles(t, map[string]string{"p.csv": tc.data})
			opts := tc.opts
			opts.URL = "p.csv"
			src, err := csvsource.Open(ctx, &pipeline.Env{BaseDir: dir}, &opts)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var sch *pipeline.Schema
			var rows []pipeline.Row
			var drops []pipeline.Drop
			err = func() error {
				if tc.project != nil {
					if err := src.Project(tc.project); err != nil {
						return err
					}
				}
				var err error
				if sch, err = src.Schema(ctx); err != nil {
					return err
				}
				if tc.reproject != nil {
					if err := src.Project(tc.reproject); err != nil {
						return err
					}
					if sch, err = src.Schema(ctx); err != nil {
						return err
					}
				}
				for {
					b, err := src.Read(ctx)
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					if b.Schema() != sch {
						t.Errorf("batch schema %s, want %s", b.Schema(), sch)
					}
					for i := range b.Len() {
						if len(b.Row(i)) != sch.Len() {
							t.Errorf("row %v has %d values, want %d", b.Row(i), len(b.Row(i)), sch.Len())
						}
						rows = append(rows, b.Row(i))
					}
					for _, d := range b.Drops() {
						if d.Row != nil && len(d.Row) != sch.Len() {
							t.Errorf("drop row %v has %d values, want %d", d.Row, len(d.Row), sch.Len())
						}
					}
					drops = append(drops, b.Drops()...)
				}
			}()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantSchema != "" && sch.String() != tc.wantSchema {
				t.Errorf("schema = %s, want %s", sch, tc.wantSchema)
			}
			if tc.wantRows != "" {
				if got := fmtRows(rows); got != tc.wantRows {
					t.Errorf("rows = %s\nwant   %s", got, tc.wantRows)
				}
			}
			if got := dropSummary(drops); got != tc.wantDrops {
				t.Errorf("drops =\n%s\nwant\n%s", got, tc.wantDrops)
			}
		})
	}
}

// TestProjectErrors covers Project's state checks: a failed Project keeps
// the previous projection, Project after Read and after Close fail, and an
// unknown name given before Schema fails Schema and Read for good.
func TestProjectErrors(t *testing.T) {
	ctx := context.Background()
	dir := writeFiles(t, map[string]string{"p.csv": "a,b,c\n1,2,3\n"})
	open := func() *csvsource.Source {
		src, err := csvsource.Open(ctx, &pipeline.Env{BaseDir: dir}, &csvsource.Options{URL: "p.csv"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}

	src := open()
	if err := src.Project([]string{"c", "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Schema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Project([]string{"b", "x"}); err == nil || !strings.Contains(err.Error(), `"x" is not a column`) {
		t.Fatalf("Project(unknown) = %v", err)
	}
	if sch, _ := src.Schema(ctx); sch.String() != "a:string, c:string" {
		t.Fatalf("schema after failed Project = %s, want the previous projection", sch)
	}
	b, err := src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtRows([]pipeline.Row{b.Row(0)}); got != `[["1" "3"]]` {
		t.Fatalf("row = %s", got)
	}
	if err := src.Project([]string{"a"}); err == nil || err.Error() != "csv: Project called after Read; project columns before reading" {
		t.Fatalf("Project after Read = %v", err)
	}
	src.Close()
	if err := src.Project([]string{"a"}); !errors.Is(err, csvsource.ErrClosed) {
		t.Fatalf("Project after Close = %v, want ErrClosed", err)
	}

	src = open()
	if err := src.Project([]string{"zz"}); err != nil {
		t.Fatalf("Project before Schema = %v, want nil (checked by Schema)", err)
	}
	if _, err := src.Read(ctx); err == nil || !strings.Contains(err.Error(), `"zz" is not a column`) {
		t.Fatalf("Read = %v, want the unknown column", err)
	}
	if _, err := src.Schema(ctx); err == nil || !strings.Contains(err.Error(), `"zz" is not a column`) {
		t.Fatalf("Schema after = %v, want the same error", err)
	}
}

// TestProjectObjects checks that later objects' headers are still checked
// whole, projected columns or not, and that shards keep working.
func TestProjectObjects(t *testing.T) {
	ctx := context.Background()
	dir := writeFiles(t, map[string]string{
		"a.csv": "id,n,x\n1,10,p\n",
		"b.csv": "id,n,y\n2,20,q\n", // differs in an unprojected column
		"c.csv": "id,n,x\n3,30,r\n",
	})
	for _, tc := range []struct {
		url, want, wantErr string
		shard              pipeline.Shard
	}{
		{url: "[ac].csv", want: `[["1"] ["3"]]`},
		{url: "*.csv", want: `[]`, wantErr: `b.csv:1: header differs from the first object`}, // before any row
		{url: "[ac].csv", shard: pipeline.Shard{Index: 1, Count: 2}, want: `[["3"]]`},
	} {
		t.Run(tc.url+tc.shard.String(), func(t *testing.T) {
			env := &pipeline.Env{BaseDir: dir, Shard: tc.shard}
			src, err := csvsource.Open(ctx, env, &csvsource.Options{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if err := src.Project([]string{"id"}); err != nil {
				t.Fatal(err)
			}
			var rows []pipeline.Row
			for {
				b, err := src.Read(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					if tc.wantErr == "" || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("Read = %v, want %q", err, tc.wantErr)
					}
					tc.wantErr = ""
					break
				}
				for i := range b.Len() {
					rows = append(rows, b.Row(i))
				}
			}
			if tc.wantErr != "" {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			if got := fmtRows(rows); got != tc.want {
				t.Fatalf("rows = %s, want %s", got, tc.want)
			}
		})
	}
}
