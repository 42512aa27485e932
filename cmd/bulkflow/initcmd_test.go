package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInit: the starter pipeline bulkflow init writes from a CSV and from
// a Parquet sample validates (pre-flight against the emulator included)
// and runs.
func TestInit(t *testing.T) {
	root := repoRoot(t)
	work := t.TempDir()
	copyTree(t, filepath.Join(root, "pipelines"), filepath.Join(work, "pipelines"))
	t.Chdir(work)
	// A Parquet sample, written by bulkflow itself from the accounts CSV.
	os.WriteFile("to-parquet.yaml", []byte(`name: to-parquet
stages:
  - name: read
    source: {type: csv, url: pipelines/data/sf-contacts.csv, columns: {birthdate: date}}
  - name: write
    inputs: [read]
    sink: {type: parquet, url: out/contacts.parquet}
`), 0o644)
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"run", "to-parquet.yaml", "--progress", "none"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("writing the parquet sample: exit %d\n%s", code, stderr.String())
	}
	for _, tc := range []struct {
		from, object string
		want         []string // lines the pipeline must have
		runCode      int
	}{
		{"pipelines/data/accounts.csv", "Account", []string{"      annual_revenue: float", "      created_at: date", "      Name: company", "      # FIELD: account_id   # no Account field is named like it"}, exitPartial},
		{"pipelines/data/sf-contacts.csv", "contact", []string{"      FirstName: first_name", "      LastName: last_name", "      Email: email", "      Birthdate: birthdate", "      birthdate: date"}, exitPartial}, // C-0014 has no last name
		{"out/contacts.parquet", "Contact", []string{"      type: parquet", "      FirstName: first_name"}, exitPartial},
	} {
		t.Run(filepath.Base(tc.from), func(t *testing.T) {
			stdout.Reset()
			stderr.Reset()
			if code := realMain([]string{"init", "--from", tc.from, "--object", tc.object}, &stdout, &stderr); code != exitOK {
				t.Fatalf("init: exit %d\n%s", code, stderr.String())
			}
			text := stdout.String()
			for _, w := range tc.want {
				if !strings.Contains(text, w+"\n") {
					t.Errorf("no line %q in:\n%s", w, text)
				}
			}
			file := filepath.Join(work, "starter-"+filepath.Base(tc.from)+".yaml")
			if err := os.WriteFile(file, stdout.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			stdout.Reset()
			stderr.Reset()
			if code := realMain([]string{"validate", file}, &stdout, &stderr); code != exitOK {
				t.Fatalf("the starter pipeline does not validate: exit %d\n%s\n%s", code, stderr.String(), text)
			}
			stderr.Reset()
			if code := realMain([]string{"run", file, "--progress", "none"}, &stdout, &stderr); code != tc.runCode {
				t.Errorf("run: exit %d, want %d\n%s", code, tc.runCode, stderr.String())
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--from", "pipelines/data/accounts.csv", "--object", "Acount"}, `--object "Acount": the built-in emulator has no such object`},
		{[]string{"init", "--from", "pipelines/data/nope.csv"}, "read the sample pipelines/data/nope.csv"},
		{[]string{"init"}, "Usage: bulkflow init"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := realMain(tc.args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %s, want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
