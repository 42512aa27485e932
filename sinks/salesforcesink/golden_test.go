package salesforcesink

import (
	"bytes"
	"context"
	"flag"
	"hash/maphash"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// trickyRows exercise every encoding rule of contract §3.
func trickyRows() []pipeline.Row {
	ts := time.Date(2025, 3, 4, 12, 15, 2, 123456789, time.FixedZone("CET", 3600))
	return []pipeline.Row{
		{"G-1", "Plain", 1234.5, int64(42), "simple", time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), ts, true},
		{"G-2", "Comma, Inc", 1e21, int64(-7), `He said "hi"`, nil, nil, false},
		{"G-3", "Tab\tPipe|Caret^Semi;Back`", 0.000001, nil, "multi\r\nline\rtext\nend", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), ts.UTC(), nil},
		{"G-4", "  spaced  ", nil, int64(0), "", nil, nil, true},
		{"G-5", "Ünïcödé 名前", 12.0, int64(1), "#N/A? no: a string", nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
}

func TestGoldenUpload(t *testing.T) {
	for _, tc := range []struct{ name, delim, eol string }{
		{"comma_lf", "COMMA", "LF"}, {"comma_crlf", "COMMA", "CRLF"}, {"tab", "TAB", "LF"},
		{"semicolon", "SEMICOLON", "LF"}, {"pipe", "PIPE", "LF"}, {"caret", "CARET", "LF"}, {"backquote", "BACKQUOTE", "CRLF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			o := NewOptions()
			o.Object, o.InstanceURL, o.Auth.AccessToken = "Account", srv.URL, srv.AccessToken()
			o.ColumnDelimiter, o.LineEnding, o.PollInitial, o.PollMax = tc.delim, tc.eol, 5*time.Millisecond, 20*time.Millisecond
			o.API = APIBulk // the uploaded CSV is the golden file
			ctx := context.Background()
			s, err := Open(ctx, nil, o, accountSchema)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			b := pipeline.NewBatch(accountSchema, 0)
			for _, r := range trickyRows() {
				b.Append(r, pipeline.Origin{})
			}
			if err := s.Write(ctx, b); err != nil {
				t.Fatalf("Write: %v", err)
			}
			jobs := s.Jobs()
			if len(jobs) != 1 || jobs[0].Succeeded != 5 || jobs[0].State != "JobComplete" {
				t.Fatalf("jobs = %+v", jobs)
			}
			got := srv.UploadedCSV(jobs[0].ID)
			path := filepath.Join("testdata", tc.name+".csv")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("upload differs from %s:\n got: %q\nwant: %q", path, got, want)
			}
			if bytes.HasPrefix(got, []byte("\xef\xbb\xbf")) {
				t.Error("upload starts with a BOM")
			}
			// Every record (header included) ends with the job's line
			// ending; line breaks inside quoted values are LF in both modes.
			if tc.eol == "CRLF" && (bytes.Count(got, []byte("\r\n")) != 6 || !bytes.HasSuffix(got, []byte("\r\n"))) {
				t.Error("records do not end in CRLF")
			}
			if bytes.Contains(got, []byte("\r")) && tc.eol == "LF" {
				t.Error("CR in an LF upload")
			}
			recs := srv.Records("Account")
			if len(recs) != 5 {
				t.Fatalf("stored %d records", len(recs))
			}
			byExt := map[string]map[string]string{}
			for _, r := range recs {
				byExt[r["External_Id__c"]] = r
			}
			if d := byExt["G-3"]["Description"]; d != "multi\nline\ntext\nend" {
				t.Errorf("G-3 Description = %q", d)
			}
			if n := byExt["G-3"]["Name"]; n != "Tab\tPipe|Caret^Semi;Back`" {
				t.Errorf("G-3 Name = %q", n)
			}
			if d := byExt["G-2"]["AnnualRevenue"]; d != "1000000000000000000000" {
				t.Errorf("G-2 AnnualRevenue = %q", d)
			}
			if _, ok := byExt["G-2"]["SLAExpirationDate__c"]; ok {
				t.Error("G-2 SLAExpirationDate__c should be null")
			}
		})
	}
}

func TestCellText(t *testing.T) {
	ts := time.Date(2025, 3, 4, 12, 15, 2, 123456789, time.FixedZone("X", -5*3600))
	for _, tc := range []struct {
		v    any
		typ  pipeline.Type
		want string
	}{
		{nil, pipeline.TypeString, "#N/A"}, {"", pipeline.TypeString, ""}, {true, pipeline.TypeBool, "true"},
		{false, pipeline.TypeAny, "false"}, {int64(-3), pipeline.TypeInt, "-3"}, {1e-7, pipeline.TypeFloat, "0.0000001"},
		{2.5e15, pipeline.TypeFloat, "2500000000000000"}, {"12.50", pipeline.TypeDecimal, "12.50"},
		{time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), pipeline.TypeDate, "2024-02-29"},
		{ts, pipeline.TypeTimestamp, "2025-03-04T17:15:02.123Z"},
		{time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), pipeline.TypeTimestamp, "2024-02-29T00:00:00.000Z"},
		{time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), pipeline.TypeAny, "2024-02-29"},
		{"a\r\nb\rc", pipeline.TypeString, "a\nb\nc"},
	} {
		got, err := cellText(tc.v, tc.typ)
		if err != nil || got != tc.want {
			t.Errorf("cellText(%#v, %s) = %q, %v; want %q", tc.v, tc.typ, got, err, tc.want)
		}
	}
	if _, err := cellText(math.NaN(), pipeline.TypeFloat); err == nil {
		t.Error("NaN accepted")
	}
	e := newEncoder(pipeline.MustSchema(pipeline.Field{Name: "a"}), "PIPE", "LF")
	if got := string(e.appendCell(nil, `x|"y"`)); got != `"x|""y"""` {
		t.Errorf("appendCell = %s", got)
	}
	if got := string(e.appendCell(nil, "a,b")); got != "a,b" {
		t.Errorf("comma quoted under PIPE: %s", got)
	}
	m := &matcher{seed: maphash.MakeSeed()}
	if m.cellsHash([]string{"1:a", ""}, []int{0, 1}) == m.cellsHash([]string{"1", ":a"}, []int{0, 1}) ||
		m.cellsHash([]string{"a", "bc"}, []int{0, 1}) == m.cellsHash([]string{"ab", "c"}, []int{0, 1}) {
		t.Error("cellsHash ignores cell boundaries")
	}
}
