package salesforce_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/google/go-cmp/cmp"
)

func TestParseRowError(t *testing.T) {
	tests := []struct {
		in   string
		want salesforce.RowError
	}{
		{"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
			salesforce.RowError{Code: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [Name]", Fields: []string{"Name"}}},
		{"INVALID_FIELD:Failed to deserialize field at col 3. Due to, '2003-04-987654321987654321' is not a valid value for the type xsd:date:CloseDate --",
			salesforce.RowError{Code: "INVALID_FIELD", Message: "Failed to deserialize field at col 3. Due to, '2003-04-987654321987654321' is not a valid value for the type xsd:date", Fields: []string{"CloseDate"}}},
		{"INVALID_FIELD:Foreign key external ID: A-999 not found for field Legacy_Id__c in entity Account:--",
			salesforce.RowError{Code: "INVALID_FIELD", Message: "Foreign key external ID: A-999 not found for field Legacy_Id__c in entity Account"}},
		{"DUPLICATE_VALUE:duplicate value found: Legacy_Id__c duplicates value on record with id: 003Hs00000LmNoPIAV:--",
			salesforce.RowError{Code: "DUPLICATE_VALUE", Message: "duplicate value found: Legacy_Id__c duplicates value on record with id: 003Hs00000LmNoPIAV"}},
		{"MALFORMED_ID:Contact ID: id value of incorrect type: 001900K0001pPuOAAU:Id --",
			salesforce.RowError{Code: "MALFORMED_ID", Message: "Contact ID: id value of incorrect type: 001900K0001pPuOAAU", Fields: []string{"Id"}}},
		{"INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--",
			salesforce.RowError{Code: "INVALID_CROSS_REFERENCE_KEY", Message: "invalid cross reference id"}},
		{"STRING_TOO_LONG:Last Name: data value too large: Xxxx (max length=80):LastName --",
			salesforce.RowError{Code: "STRING_TOO_LONG", Message: "Last Name: data value too large: Xxxx (max length=80)", Fields: []string{"LastName"}}},
		{"ENTITY_IS_DELETED:entity is deleted:--", salesforce.RowError{Code: "ENTITY_IS_DELETED", Message: "entity is deleted"}},
		{"INVALID_FIELD_FOR_INSERT_UPDATE:Unable to create/update fields: MasterRecordId. Please check the security settings of this field and verify that it is read/write for your profile or permission set.:MasterRecordId --",
			salesforce.RowError{Code: "INVALID_FIELD_FOR_INSERT_UPDATE", Message: "Unable to create/update fields: MasterRecordId. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", Fields: []string{"MasterRecordId"}}},
		{"UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: 001Hs00000XyZ1aIAF:--",
			salesforce.RowError{Code: "UNABLE_TO_LOCK_ROW", Message: "unable to obtain exclusive access to this record or 1 records: 001Hs00000XyZ1aIAF"}},
		{"FIELD_CUSTOM_VALIDATION_EXCEPTION:Bad:A,B --", salesforce.RowError{Code: "FIELD_CUSTOM_VALIDATION_EXCEPTION", Message: "Bad", Fields: []string{"A", "B"}}},
		{"", salesforce.RowError{}},
		{"just text", salesforce.RowError{Message: "just text"}},
		{"not a code: x:--", salesforce.RowError{Message: "not a code: x:--"}},
		{"CODE:no suffix", salesforce.RowError{Code: "CODE", Message: "no suffix"}},
		{"CODE:no fields --", salesforce.RowError{Code: "CODE", Message: "no fields"}},
	}
	for _, tc := range tests {
		got := salesforce.ParseRowError(tc.in)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseRowError(%q) (-want +got):\n%s", tc.in, diff)
		}
		if tc.want.Code != "" && strings.Count(tc.in, ":") >= 2 && strings.HasSuffix(tc.in, "--") && got.String() != tc.in {
			t.Errorf("ParseRowError(%q).String() = %q, want the input back", tc.in, got.String())
		}
	}
}

func TestParseJobError(t *testing.T) {
	tests := []struct {
		in   string
		want salesforce.JobError
	}{
		{"InvalidBatch : Field name not found : StageName_invalid_field_on_purpose",
			salesforce.JobError{Code: "InvalidBatch", Message: "Field name not found : StageName_invalid_field_on_purpose"}},
		{"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF",
			salesforce.JobError{Code: "ClientInputError", Message: "LineEnding is invalid on user data. Current LineEnding setting is LF"}},
		{"InvalidBatch : The 'delete' batch must contain only ids", salesforce.JobError{Code: "InvalidBatch", Message: "The 'delete' batch must contain only ids"}},
		{"\ufeffName is odd", salesforce.JobError{Message: "\ufeffName is odd"}},
		{"two words : text", salesforce.JobError{Message: "two words : text"}},
		{"", salesforce.JobError{}},
	}
	for _, tc := range tests {
		got := salesforce.ParseJobError(tc.in)
		if diff := cmp.Diff(&tc.want, got); diff != "" {
			t.Errorf("ParseJobError(%q) (-want +got):\n%s", tc.in, diff)
		}
		if !errors.Is(got, salesforce.ErrJobFailed) {
			t.Errorf("ParseJobError(%q) does not match ErrJobFailed", tc.in)
		}
	}
}

func TestResultReader(t *testing.T) {
	type row struct {
		ID      string
		Created bool
		Error   string
		Values  []string
	}
	tests := []struct {
		name     string
		in       string
		delim    salesforce.ColumnDelimiter
		wantCols []string
		want     []row
		wantErr  bool
	}{
		{"successful fixture", string(mustRead("successful.csv")), "",
			[]string{"Legacy_Id__c", "FirstName", "LastName", "Email", "Account.Legacy_Id__c", "Birthdate"},
			[]row{{"003Hs00000LmNoPIAV", false, "", []string{"C-0001", "Ada", "Lovelace", "ada@example.com", "A-100", "1815-12-10"}},
				{"003Hs00000LmNoQIAV", true, "", []string{"C-0002", "Alan", "Turing", "alan@example.com", "A-100", "#N/A"}}}, false},
		{"failed fixture", string(mustRead("failed.csv")), "",
			[]string{"Legacy_Id__c", "FirstName", "LastName", "Email", "Account.Legacy_Id__c", "Birthdate"},
			[]row{{"", false, "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --", []string{"C-0003", "Grace", "", "grace@example.com", "A-100", ""}}}, false},
		{"unprocessed fixture", string(mustRead("unprocessed.csv")), "",
			[]string{"Legacy_Id__c", "FirstName", "LastName", "Email", "Account.Legacy_Id__c", "Birthdate"},
			[]row{{"", false, "", []string{"C-0004", "Edsger", "Dijkstra", "ewd@example.com", "A-200", "1930-05-11"}}}, false},
		{"empty body", "", "", nil, nil, false},
		{"header only", "\"sf__Id\",\"sf__Error\",Name\n", "", []string{"Name"}, nil, false},
		{"crlf, quoted newline, pipe", "\"sf__Id\"|\"sf__Created\"|Name|Street\r\n\"001\"|\"true\"|\"A|B\"|\"1 Main\nSuite 2\"\r\n", salesforce.DelimiterPipe,
			[]string{"Name", "Street"}, []row{{"001", true, "", []string{"A|B", "1 Main\nSuite 2"}}}, false},
		{"canonicalised header case", "SF__ID,SF__CREATED,name\n001,TRUE,x\n", "", []string{"name"}, []row{{"001", true, "", []string{"x"}}}, false},
		{"short row", "sf__Id,sf__Created,A,B\n001,true,x\n", "", []string{"A", "B"}, []row{{"001", true, "", []string{"x", ""}}}, false},
		{"bare quote", "sf__Id,A\n0\"01,x\n", "", []string{"A"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr := salesforce.NewResultReader(strings.NewReader(tc.in), tc.delim)
			cols, err := rr.Columns()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantCols, cols); diff != "" {
				t.Errorf("Columns (-want +got):\n%s", diff)
			}
			var got []row
			for {
				r, err := rr.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					if !tc.wantErr {
						t.Fatal(err)
					}
					return
				}
				got = append(got, row{r.ID, r.Created, r.Error, append([]string(nil), r.Values...)})
			}
			if tc.wantErr {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func mustRead(name string) []byte {
	b, err := readFile("testdata/" + name)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzParseRowError: never panics, and the wire form round-trips.
func FuzzParseRowError(f *testing.F) {
	for _, s := range []string{
		"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
		"INVALID_FIELD:Foreign key external ID: A-999 not found for field Legacy_Id__c in entity Account:--",
		"X:a:b:c,d --", "", ":", "--", "A:--", "A: --", "A::--",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		re := salesforce.ParseRowError(s)
		if re.Code == "" {
			if re.Message != s || re.Fields != nil {
				t.Fatalf("ParseRowError(%q) = %+v: codeless result must keep the input as Message", s, re)
			}
			return
		}
		_ = re.Error()
		// The wire form is canonical: parsing it gives the same value.
		if diff := cmp.Diff(re, salesforce.ParseRowError(re.String())); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", s, re.String(), diff)
		}
		// Fields never contain separators or surrounding space.
		for _, fl := range re.Fields {
			if fl == "" || strings.ContainsAny(fl, ",:") || strings.TrimSpace(fl) != fl {
				t.Fatalf("ParseRowError(%q) field %q", s, fl)
			}
		}
	})
}

// FuzzParseJobError: never panics; code is a single word; code + message
// rebuild the input.
func FuzzParseJobError(f *testing.F) {
	for _, s := range []string{"InvalidBatch : Field name not found : X", "ClientInputError : LineEnding", "", " : ", "a : b : c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		je := salesforce.ParseJobError(s)
		_ = je.Error()
		rebuilt := je.Message
		if je.Code != "" {
			rebuilt = je.Code + " : " + je.Message
			if strings.ContainsAny(je.Code, " :") {
				t.Fatalf("code %q", je.Code)
			}
		}
		if rebuilt != s {
			t.Fatalf("ParseJobError(%q) = %+v, rebuilds %q", s, je, rebuilt)
		}
	})
}

// FuzzResultReader writes records with encoding/csv and checks that the
// reader gives them back, and that arbitrary bytes never panic it.
func FuzzResultReader(f *testing.F) {
	f.Add("001", "true", "a,b", "line1\nline2", byte(','))
	f.Add("", "false", "\"quoted\"", "", byte('|'))
	f.Add("x", "", "", "\r\n", byte('\t'))
	f.Fuzz(func(t *testing.T, id, created, v1, v2 string, delim byte) {
		d := map[byte]salesforce.ColumnDelimiter{',': "COMMA", '|': "PIPE", '\t': "TAB", ';': "SEMICOLON", '^': "CARET", '`': "BACKQUOTE"}[delim]
		if d == "" {
			d = "COMMA"
		}
		// Raw bytes: must not panic.
		raw := salesforce.NewResultReader(strings.NewReader(id+v1+"\n"+v2), d)
		for range 10 {
			if _, err := raw.Read(); err != nil {
				break
			}
		}
		for _, s := range []string{id, created, v1, v2} {
			if strings.ContainsRune(s, '\r') || !isValidUTF8(s) {
				return
			}
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.Comma = d.Rune()
		rec := []string{"sf__Id", "sf__Created", "A", "B"}
		w.Write(rec)
		if err := w.Write([]string{id, created, v1, v2}); err != nil {
			return
		}
		w.Flush()
		rr := salesforce.NewResultReader(&buf, d)
		row, err := rr.Read()
		if id == "" && created == "" && v1 == "" && v2 == "" {
			// encoding/csv writes an empty record as an empty line, which
			// readers skip.
			return
		}
		if err != nil {
			t.Fatalf("Read: %v (csv %q)", err, buf.String())
		}
		if row.ID != id || row.Created != strings.EqualFold(created, "true") || row.Values[0] != v1 || row.Values[1] != v2 {
			t.Fatalf("row = %+v, want %q %q %q %q", row, id, created, v1, v2)
		}
		if _, err := rr.Read(); err != io.EOF {
			t.Fatalf("second Read = %v", err)
		}
	})
}

// csvResults reads a result CSV as ResultReader did before its fast path,
// with encoding/csv alone: the reference for TestResultReaderShapes and
// FuzzResultReaderCSV.
func csvResults(r io.Reader, delim salesforce.ColumnDelimiter) (cols []string, rows []salesforce.ResultRow, err error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.Comma = delim.Rune()
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("result csv header: %w", err)
	}
	idIdx, crIdx, errIdx := -1, -1, -1
	var colIdx []int
	for i, name := range header {
		switch {
		case strings.EqualFold(name, salesforce.ColID):
			idIdx = i
		case strings.EqualFold(name, salesforce.ColCreated):
			crIdx = i
		case strings.EqualFold(name, salesforce.ColError):
			errIdx = i
		default:
			cols = append(cols, name)
			colIdx = append(colIdx, i)
		}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return cols, rows, nil
		}
		if err != nil {
			return cols, rows, fmt.Errorf("result csv: %w", err)
		}
		field := func(i int) string {
			if i >= 0 && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		row := salesforce.ResultRow{ID: field(idIdx), Created: strings.EqualFold(field(crIdx), "true"), Error: field(errIdx),
			Values: make([]string, len(colIdx))}
		row.Line, _ = cr.FieldPos(0)
		for j, i := range colIdx {
			row.Values[j] = field(i)
		}
		rows = append(rows, row)
	}
}

// readAllResults reads a result CSV with a ResultReader, copying each row
// before the next Read reuses its memory.
func readAllResults(r io.Reader, delim salesforce.ColumnDelimiter) (cols []string, rows []salesforce.ResultRow, err error) {
	rr := salesforce.NewResultReader(r, delim)
	if cols, err = rr.Columns(); err != nil {
		return nil, nil, err
	}
	for {
		row, err := rr.Read()
		if err == io.EOF {
			return cols, rows, nil
		}
		if err != nil {
			return cols, rows, err
		}
		cp := *row
		cp.ID, cp.Error = strings.Clone(row.ID), strings.Clone(row.Error)
		cp.Values = make([]string, len(row.Values))
		for i, v := range row.Values {
			cp.Values[i] = strings.Clone(v)
		}
		rows = append(rows, cp)
	}
}

var errBoom = errors.New("boom")

// chunkReader returns at most n bytes a Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// source returns data as a reader that gives at most chunk bytes a Read
// (any number when chunk is 0) and, when 0 <= failAt <= len(data), fails
// with errBoom after failAt bytes.
func source(data []byte, chunk, failAt int) io.Reader {
	var r io.Reader = bytes.NewReader(data)
	if failAt >= 0 && failAt <= len(data) {
		r = io.MultiReader(bytes.NewReader(data[:failAt]), iotest.ErrReader(errBoom))
	}
	if chunk > 0 {
		r = &chunkReader{r, chunk}
	}
	return r
}

// checkSameResults checks that ResultReader reads data exactly as
// encoding/csv does: columns, rows (values and lines) and error text.
func checkSameResults(t *testing.T, data []byte, delim salesforce.ColumnDelimiter, chunk, failAt int) {
	t.Helper()
	wantCols, wantRows, wantErr := csvResults(source(data, chunk, failAt), delim)
	gotCols, gotRows, gotErr := readAllResults(source(data, chunk, failAt), delim)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Errorf("%q (%s, chunk %d, fail at %d): error %v, want %v", data, delim, chunk, failAt, gotErr, wantErr)
	}
	if diff := cmp.Diff(wantCols, gotCols); diff != "" {
		t.Errorf("%q (%s, chunk %d, fail at %d): columns (-want +got):\n%s", data, delim, chunk, failAt, diff)
	}
	if diff := cmp.Diff(wantRows, gotRows); diff != "" {
		t.Errorf("%q (%s, chunk %d, fail at %d): rows (-want +got):\n%s", data, delim, chunk, failAt, diff)
	}
}

// resultShapes are inputs in and out of ResultReader's fast path.
var resultShapes = []struct {
	name  string
	in    string
	delim salesforce.ColumnDelimiter
}{
	{"empty", "", ""},
	{"header only", `"sf__Id","sf__Created",Name` + "\n", ""},
	{"header only no newline", `"sf__Id","sf__Created",Name`, ""},
	{"quoted", "\"sf__Id\",\"sf__Created\",A,B\n\"001\",\"true\",\"x\",\"y\"\n\"002\",\"false\",\"\",\"z\"\n", ""},
	{"unquoted", "sf__Id,sf__Created,A,B\n001,true,x,y\n002,false,,z\n", ""},
	{"no final newline", "sf__Id,A\n001,x\n002,\"y\"", ""},
	{"no final newline unquoted", "sf__Id,A\n001,x\n002,y", ""},
	{"crlf", "sf__Id,A,B\r\n\"001\",x,\"y\"\r\n002,,\r\n", ""},
	{"escaped quotes", "sf__Id,A\n001,\"say \"\"hi\"\"\"\n002,\"\"\"\"\n003,\"\"\n", ""},
	{"quoted newlines", "sf__Id,A,B\n001,\"line 1\nline 2\n\",x\n002,\"\n\",\"a\"\"\nb\"\n003,y,z\n", ""},
	{"quoted delimiter", "sf__Id|A|B\n\"001\"|\"a|b\"|\"c,d\"\n", salesforce.DelimiterPipe},
	{"tab", "sf__Id\tA\n001\t\"x\ty\"\n", salesforce.DelimiterTab},
	{"short and long rows", "sf__Id,sf__Created,A,B\n001\n002,true,x,y,z\n,\n", ""},
	{"trailing delimiter", "sf__Id,A\n001,\n002,", ""},
	{"sf__Error", "\"sf__Id\",\"sf__Error\",A\n\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [A]:A --\",\"\"\n", ""},
	{"blank line", "sf__Id,A\n001,x\n\n002,y\n", ""},
	{"blank crlf line", "sf__Id,A\r\n001,x\r\n\r\n002,y\r\n", ""},
	{"blank line first", "\nsf__Id,A\n001,x\n", ""},
	{"blank lines last", "sf__Id,A\n001,x\n\n\n", ""},
	{"crlf inside quotes", "sf__Id,A\n001,x\n002,\"a\r\nb\"\n003,z\n", ""},
	{"lone cr", "sf__Id,A\n001,x\n002,a\rb\n003,z\n", ""},
	{"lone cr inside quotes", "sf__Id,A\n001,\"a\rb\"\n003,z\n", ""},
	{"cr at eof", "sf__Id,A\n001,x\r", ""},
	{"cr after quote at eof", "sf__Id,A\n001,\"x\"\r", ""},
	{"bare quote", "sf__Id,A\n001,x\n0\"02,y\n003,z\n", ""},
	{"bare quote ending a field", "sf__Id,A\n001,x\"\n002,y\"\n", ""},
	{"text after quote", "sf__Id,A\n001,x\n\"002\"x,y\n", ""},
	{"space after quote", "sf__Id,A\n001,\"x\" \n", ""},
	{"unterminated quote", "sf__Id,A\n001,x\n002,\"y\n003,z\n", ""},
	{"unterminated quote at eof", "sf__Id,A\n001,\"", ""},
	{"quote in header", "sf\"_Id,A\n001,x\n", ""},
	{"error after fallback", "sf__Id,A\n001,x\n\n002,y\n003,\"z\n\n", ""},
	{"leading spaces", "sf__Id, A\n 001, \"x\"\n", ""},
	{"bom", "\ufeffsf__Id,A\n001,x\n", ""},
	{"bom before quote", "\ufeff\"sf__Id\",A\n001,x\n", ""},
	{"invalid utf-8", "sf__Id,A\n\xff\xfe,\"\xc3\"\n", ""},
	{"case of sf__ columns", "SF__ID,Sf__Created,SF__ERROR,x\n1,TRUE,e,v\n", ""},
}

// TestResultReaderShapes checks the reader against encoding/csv on inputs in
// and out of the fast path, read whole, a byte at a time and failing at
// every offset.
func TestResultReaderShapes(t *testing.T) {
	for _, tc := range resultShapes {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			for _, chunk := range []int{0, 1, 2, 3, 7} {
				checkSameResults(t, data, tc.delim, chunk, -1)
			}
			for failAt := range len(data) + 1 {
				checkSameResults(t, data, tc.delim, 0, failAt)
				checkSameResults(t, data, tc.delim, 1, failAt)
			}
		})
	}
}

// TestResultReaderLines checks Line (and that the strict shape takes
// "\r\n" and quoted newlines) on a few inputs directly.
func TestResultReaderLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []int
	}{
		{"lf", "sf__Id,A\n1,a\n2,b\n", []int{2, 3}},
		{"crlf", "sf__Id,A\r\n1,a\r\n2,b\r\n", []int{2, 3}},
		{"quoted newlines", "sf__Id,A\n1,\"a\n\nb\"\n2,b\n3,\"c\r\nd\"\n4,\"e\n\"", []int{2, 5, 6, 8}},
		{"blank lines", "\nsf__Id,A\n\n1,a\n\r\n2,b\n", []int{4, 6}},
	}
	for _, tc := range tests {
		_, rows, err := readAllResults(strings.NewReader(tc.in), "")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []int
		for _, r := range rows {
			got = append(got, r.Line)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: lines (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestResultReaderLarge reads files larger than the reader's buffer: many
// rows (records cut by every refill), a field larger than the buffer, and
// a fallback far into the file.
func TestResultReaderLarge(t *testing.T) {
	rows := successfulResults(5000)
	big := []byte("sf__Id,A,B\n001,\"" + strings.Repeat("x\"\"\n", 100000) + "\",y\n002,z,\n")
	fallback := append(slices.Clip(rows), "\n001,\"x\"\"\"\r\n\"002\",\"x\"y\n"...)
	for _, data := range [][]byte{rows, big, fallback} {
		for _, chunk := range []int{0, 1000, 4093} {
			checkSameResults(t, data, "", chunk, -1)
			checkSameResults(t, data, "", chunk, len(data)/2)
		}
	}
}

// FuzzResultReaderCSV checks that ResultReader reads any input exactly as
// encoding/csv does: columns, rows (values and lines) and error text,
// whatever the delimiter, the size of reads and a read error.
func FuzzResultReaderCSV(f *testing.F) {
	for _, tc := range resultShapes {
		f.Add([]byte(tc.in), byte(0), uint8(0), int16(-1))
		f.Add([]byte(tc.in), byte(1), uint8(1), int16(len(tc.in)/2))
	}
	f.Add(successfulResults(20), byte(0), uint8(13), int16(-1))
	delims := []salesforce.ColumnDelimiter{salesforce.DelimiterComma, salesforce.DelimiterPipe, salesforce.DelimiterTab,
		salesforce.DelimiterSemicolon, salesforce.DelimiterCaret, salesforce.DelimiterBackquote}
	f.Fuzz(func(t *testing.T, data []byte, delim byte, chunk uint8, failAt int16) {
		checkSameResults(t, data, delims[int(delim)%len(delims)], int(chunk), int(failAt))
	})
}

// TestResultReaderValuesLayout reads the same rows with the sf__ columns
// first (the echoed columns adjacent: Values are a part of the record,
// not copied) and between the echoed columns (copied), including short
// and long records: both must give the same Values.
func TestResultReaderValuesLayout(t *testing.T) {
	rows := [][]string{{"001A", "true", "a", "b, c", "d"}, {"001B", "false", "", `e"f`, "g"},
		{"001C", "true", "h"}, {"001D", "true", "i", "j", "k", "extra"}, {"001E", "true", "l", "m", "n"}}
	write := func(order []int) []byte {
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		head := []string{"sf__Id", "sf__Created", "A", "B", "C"}
		rec := make([]string, 0, 6)
		for _, k := range order {
			rec = append(rec, head[k])
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			rec = rec[:0]
			for _, k := range order {
				v := ""
				if k < len(r) {
					v = r[k]
				}
				rec = append(rec, v)
			}
			if len(r) > 5 {
				rec = append(rec, r[5:]...)
			}
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		return b.Bytes()
	}
	read := func(data []byte) [][]string {
		rr := salesforce.NewResultReader(bytes.NewReader(data), "")
		var out [][]string
		for {
			row, err := rr.Read()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, append([]string{row.ID}, row.Values...))
		}
	}
	adjacent := read(write([]int{0, 1, 2, 3, 4}))
	between := read(write([]int{2, 0, 3, 1, 4}))
	want := [][]string{{"001A", "a", "b, c", "d"}, {"001B", "", `e"f`, "g"}, {"001C", "h", "", ""},
		{"001D", "i", "j", "k"}, {"001E", "l", "m", "n"}}
	if d := cmp.Diff(want, adjacent); d != "" {
		t.Errorf("sf__ columns first (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, between); d != "" {
		t.Errorf("sf__ columns between (-want +got):\n%s", d)
	}
	// A short record and a long one after rows of the adjacent layout.
	short := read([]byte("sf__Id,sf__Created,A,B\n1,true,x,y\n2,true,z\n3,true,u,v,w\n4,true,s,t\n"))
	if d := cmp.Diff([][]string{{"1", "x", "y"}, {"2", "z", ""}, {"3", "u", "v"}, {"4", "s", "t"}}, short); d != "" {
		t.Errorf("short and long records (-want +got):\n%s", d)
	}
}

// readAllEcho reads r with ReadEcho, expecting each row to echo
// guess(k, want): the values the caller guesses for row k. Where a guess
// breaks ReadEcho's rule (a '"', CR or LF in a value) it calls Read. It
// returns the rows and, per row, whether ReadEcho matched.
func readAllEcho(r io.Reader, delim salesforce.ColumnDelimiter, guess func(k int) []string) (rows []salesforce.ResultRow, matched []bool, err error) {
	rr := salesforce.NewResultReader(r, delim)
	if _, err = rr.Columns(); err != nil {
		return nil, nil, err
	}
	for k := 0; ; k++ {
		vals := guess(k)
		var row *salesforce.ResultRow
		hit := false
		if vals != nil && !slices.ContainsFunc(vals, func(v string) bool { return strings.ContainsAny(v, "\"\r\n") }) {
			row, hit, err = rr.ReadEcho(vals)
		} else {
			row, err = rr.Read()
		}
		if err == io.EOF {
			return rows, matched, nil
		}
		if err != nil {
			return rows, matched, err
		}
		cp := *row
		cp.ID, cp.Error = strings.Clone(row.ID), strings.Clone(row.Error)
		cp.Values = make([]string, len(row.Values))
		for i, v := range row.Values {
			cp.Values[i] = strings.Clone(v)
		}
		rows, matched = append(rows, cp), append(matched, hit)
	}
}

// checkEcho checks ReadEcho against encoding/csv: whatever the guesses,
// every row reads as encoding/csv reads it, the error is the same, and a
// row matches only when the guess is its values. mode picks the guesses:
// 0 the row's own values, 1 those of the next row, 2 its values with one
// changed, 3 with one cut short.
func checkEcho(t *testing.T, data []byte, delim salesforce.ColumnDelimiter, chunk, failAt int, mode, col uint8) []bool {
	t.Helper()
	_, want, wantErr := csvResults(source(data, chunk, failAt), delim)
	guess := func(k int) []string {
		if mode == 1 {
			k++
		}
		if k >= len(want) {
			return nil
		}
		vals := slices.Clone(want[k].Values)
		if len(vals) > 0 {
			c := int(col) % len(vals)
			switch mode {
			case 2:
				vals[c] += "x"
			case 3:
				if vals[c] != "" {
					vals[c] = vals[c][:len(vals[c])-1]
				}
			}
		}
		return vals
	}
	got, matched, gotErr := readAllEcho(source(data, chunk, failAt), delim, guess)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Errorf("%q (%s, chunk %d, fail at %d, mode %d): error %v, want %v", data, delim, chunk, failAt, mode, gotErr, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%q (%s, chunk %d, fail at %d, mode %d): rows (-want +got):\n%s", data, delim, chunk, failAt, mode, diff)
	}
	for k, hit := range matched {
		if hit && (k >= len(want) || !slices.Equal(guess(k), want[k].Values)) {
			t.Errorf("%q (%s, mode %d): row %d matched the guess %q, but reads as %q", data, delim, mode, k+1, guess(k), want[k].Values)
		}
	}
	return matched
}

// TestReadEcho checks ReadEcho on the shapes of ResultReader's tests, and
// that it matches the rows of a file as Salesforce writes it (every value
// quoted) and as read in small pieces.
func TestReadEcho(t *testing.T) {
	for _, tc := range resultShapes {
		for mode := range uint8(4) {
			for _, chunk := range []int{0, 1, 7} {
				checkEcho(t, []byte(tc.in), tc.delim, chunk, -1, mode, 1)
			}
			checkEcho(t, []byte(tc.in), tc.delim, 0, len(tc.in)/2, mode, 0)
		}
	}
	// Guesses that would match if the line were only compared as text:
	// an unquoted field holding the delimiter is two fields, and a line
	// the guess does not reach the end of holds more.
	for _, tc := range []struct {
		in    string
		guess []string
		want  []string
	}{
		{"sf__Id,A,B\n1,x,y,z\n", []string{"x,y", "z"}, []string{"x", "y"}},
		{"sf__Id,A,B\n1,\"x\",\"y\",\"z\"\n", []string{"x", "y"}, []string{"x", "y"}},
		{"sf__Id,A\n1,\"x\"y\n", []string{"x"}, nil},
	} {
		rr := salesforce.NewResultReader(strings.NewReader(tc.in), "")
		row, hit, err := rr.ReadEcho(tc.guess)
		if hit || (err == nil) != (tc.want != nil) || err == nil && !slices.Equal(row.Values, tc.want) {
			t.Errorf("%q, guess %q: matched %v, err %v, want no match and %q", tc.in, tc.guess, hit, err, tc.want)
		}
	}
	data := successfulResults(200)
	for _, chunk := range []int{0, 64} {
		matched := checkEcho(t, data, "", chunk, -1, 0, 0)
		n := 0
		for _, hit := range matched {
			if hit {
				n++
			}
		}
		// Read in 64-byte pieces, a record is always cut by the end of the
		// input read so far: ReadEcho then reads it as Read does.
		if len(matched) != 200 || chunk == 0 && n != 200 {
			t.Errorf("chunk %d: %d of %d rows matched their own values", chunk, n, len(matched))
		}
	}
}

// FuzzReadEcho checks ReadEcho against encoding/csv on any input (see
// checkEcho), whatever the delimiter, the size of reads and a read error.
func FuzzReadEcho(f *testing.F) {
	for _, tc := range resultShapes {
		f.Add([]byte(tc.in), byte(0), uint8(0), int16(-1), uint8(0), uint8(0))
		f.Add([]byte(tc.in), byte(1), uint8(1), int16(len(tc.in)/2), uint8(2), uint8(1))
	}
	f.Add(successfulResults(20), byte(0), uint8(13), int16(-1), uint8(0), uint8(0))
	f.Add(successfulResults(20), byte(0), uint8(0), int16(-1), uint8(3), uint8(4))
	delims := []salesforce.ColumnDelimiter{salesforce.DelimiterComma, salesforce.DelimiterPipe, salesforce.DelimiterTab,
		salesforce.DelimiterSemicolon, salesforce.DelimiterCaret, salesforce.DelimiterBackquote}
	f.Fuzz(func(t *testing.T, data []byte, delim byte, chunk uint8, failAt int16, mode, col uint8) {
		checkEcho(t, data, delims[int(delim)%len(delims)], int(chunk), int(failAt), mode%4, col)
	})
}
