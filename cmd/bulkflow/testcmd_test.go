package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBulkflowTestShipped runs `bulkflow test pipelines/`: every shipped
// pipeline's test cases pass.
func TestBulkflowTestShipped(t *testing.T) {
	t.Chdir(repoRoot(t))
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"test", "pipelines/"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if n := strings.Count(stdout.String(), "PASS "); n < 7 {
		t.Errorf("%d cases passed, want at least 7 (one per shipped CSV pipeline):\n%s", n, stdout.String())
	}
}

// TestBulkflowTestBrokenMapping: a deliberately broken mapping fails with
// a diff naming the row and field (golden), exit 1, and the same result
// in --json and --junit.
func TestBulkflowTestBrokenMapping(t *testing.T) {
	here, _ := os.Getwd()
	t.Chdir(repoRoot(t))
	dir := "cmd/bulkflow/testdata/pipetest"
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"test", dir}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFailed, stdout.String(), stderr.String())
	}
	golden(t, filepath.Join(here, "testdata/pipetest/broken-map.golden"), stdout.Bytes())

	junit := filepath.Join(t.TempDir(), "junit.xml")
	stdout.Reset()
	if code := realMain([]string{"test", "--json", dir, "--junit", junit}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("--json: exit %d", code)
	}
	var res struct {
		Passed, Failed int
		Tests          []struct {
			Name   string
			Passed bool
			Diffs  []string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	if res.Passed != 1 || res.Failed != 2 || len(res.Tests) != 3 || len(res.Tests[0].Diffs) != 3 {
		t.Errorf("--json = %+v, want 1 passed, 2 failed, 3 diffs in the first", res)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("--junit: %v\n%s", err, b)
	}
	if len(suites.Suites) != 1 || suites.Suites[0].Tests != 3 || suites.Suites[0].Failures != 2 ||
		!strings.Contains(suites.Suites[0].Cases[0].Failure.Text, `row 1 field Name: want "Acme", got " Acme "`) {
		t.Errorf("--junit = %s", b)
	}
}

// TestBulkflowTestBadFile: a test file naming a stage the pipeline does
// not have exits 2 with a did-you-mean; a missing path too.
func TestBulkflowTestBadFile(t *testing.T) {
	t.Chdir(repoRoot(t))
	for _, tc := range []struct{ path, want string }{
		{"cmd/bulkflow/testdata/pipetest-bad", `stage "mpa" is not in the pipeline (did you mean "map"?)`},
		{"cmd/bulkflow/testdata/no-such-dir", "cannot read cmd/bulkflow/testdata/no-such-dir"},
		{"pipelines/pg-accounts-sync.yaml", "has no tests"},
		{"pipelines/ cmd/bulkflow/testdata/pipetest", "one FILE or DIR, not 2"},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(append([]string{"test"}, strings.Fields(tc.path)...), &stdout, &stderr); code != exitUsage {
			t.Errorf("%s: exit %d, want %d", tc.path, code, exitUsage)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: stderr = %s, want %q", tc.path, stderr.String(), tc.want)
		}
	}
}

// TestBulkflowTestSet: --set changes the mapping under test, typed and
// checked like the file.
func TestBulkflowTestSet(t *testing.T) {
	t.Chdir(repoRoot(t))
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"test", "cmd/bulkflow/testdata/pipetest", "--set", "map.Name=trim(company)", "--set", "map.BillingCountry=upper(country)"}, &stdout, &stderr)
	// The fixed mapping passes the first case and now fails the third,
	// which expects the broken lower-case country.
	if want := "PASS cmd/bulkflow/testdata/pipetest/broken-map.test.yaml: company names are trimmed and countries upper-cased"; code != exitFailed || !strings.Contains(stdout.String(), want) ||
		!strings.Contains(stdout.String(), `row 1 field BillingCountry: want "fr", got "FR"`) {
		t.Errorf("exit %d, want 1 with the first case passing and the third failing:\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code = realMain([]string{"test", "cmd/bulkflow/testdata/pipetest", "--set", "mpa.Name=company"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), `--set mpa.Name: the pipeline has no stage "mpa" (did you mean "map"?)`) {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
}
