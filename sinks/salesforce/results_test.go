package salesforce_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"

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
