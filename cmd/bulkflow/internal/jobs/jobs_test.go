package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
	_ "github.com/bulkflow/bulkflow/sources/all" // the csv source of TestJobsPipeline's pipeline files
	"github.com/bulkflow/bulkflow/sources/salesforcesource"
)

var update = flag.Bool("update", false, "rewrite golden files")

// jobsClock is a settable emulator clock, so job timestamps in golden
// files are stable.
type jobsClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *jobsClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *jobsClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// jobsT0 is the emulator's start time in the tests.
var jobsT0 = time.Date(2025, 3, 4, 10, 15, 2, 0, time.UTC)

// newJobsServer starts an emulator with a settable clock and clears the
// SF_* environment so that only the flags of each test count.
func newJobsServer(t *testing.T, opts *salesforcetest.Options) (*salesforcetest.Server, *jobsClock) {
	t.Helper()
	for _, v := range []string{"SF_INSTANCE_URL", "SF_ACCESS_TOKEN", "SF_LOGIN_URL", "SF_CLIENT_ID", "SF_CLIENT_SECRET",
		"SF_USERNAME", "SF_PRIVATE_KEY_FILE", "SF_REFRESH_TOKEN", "SF_AUDIENCE", "SF_API_VERSION"} {
		t.Setenv(v, "")
	}
	clock := &jobsClock{t: jobsT0}
	if opts == nil {
		opts = &salesforcetest.Options{}
	}
	if opts.Clock == nil {
		opts.Clock = clock.now
	}
	srv := salesforcetest.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv, clock
}

// tokenFlags are the static-token connection flags for srv.
func tokenFlags(srv *salesforcetest.Server) []string {
	return []string{"--instance-url", srv.URL, "--token", srv.AccessToken()}
}

// jobsRun runs `bulkflow jobs args...` and returns the exit code and
// outputs. It checks that no secret of srv leaks into either output.
func jobsRun(t *testing.T, srv *salesforcetest.Server, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), args, &stdout, &stderr)
	if srv != nil {
		for _, secret := range []string{srv.AccessToken(), srv.ClientSecret(), srv.RefreshToken()} {
			if strings.Contains(stdout.String(), secret) || strings.Contains(stderr.String(), secret) {
				t.Errorf("jobs %s: a secret appears in the output:\n%s\n%s", args[0], stdout.String(), stderr.String())
			}
		}
	}
	return code, stdout.String(), stderr.String()
}

// sfClient returns a client of srv for setting up and checking jobs.
func sfClient(t *testing.T, srv *salesforcetest.Server) *salesforce.Client {
	t.Helper()
	auth, err := salesforce.StaticToken(srv.URL, srv.AccessToken())
	if err != nil {
		t.Fatal(err)
	}
	c, err := salesforce.NewClient(t.Context(), auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// loadJob creates, uploads and closes an Account insert job with csv and,
// when finish is set, waits until it is JobComplete.
func loadJob(t *testing.T, srv *salesforcetest.Server, c *salesforce.Client, csv string, finish bool) string {
	t.Helper()
	ctx := t.Context()
	j, err := c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
	if err != nil {
		t.Fatal(err)
	}
	if csv == "" {
		return j.ID
	}
	if err := c.UploadJobData(ctx, j.ID, salesforce.BytesBody([]byte(csv))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CloseJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if finish {
		awaitState(t, srv, j.ID, salesforcetest.StateJobComplete)
	}
	return j.ID
}

// awaitState waits until the emulator's job id is in state.
func awaitState(t *testing.T, srv *salesforcetest.Server, id, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := srv.AwaitJobState(ctx, id, state); err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
}

// accountsCSV has 4 good rows (one with a newline inside a quoted value
// and one with escaped quotes) and 1 row missing the required Name.
const accountsCSV = "Name,Description,External_Id__c\n" +
	"Acme,\"two\nlines\",A-1\n" +
	"Globex,\"say \"\"hi\"\"\",A-2\n" +
	",no name,A-3\n" +
	"Initech,plain,A-4\n" +
	"Umbrella,,A-5\n"

// TestJobsUsage checks usage errors exit 2 and help exits 0, before any
// request.
func TestJobsUsage(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, cli.ExitUsage, "Usage:"},
		{[]string{"help"}, cli.ExitOK, ""},
		{[]string{"frobnicate"}, cli.ExitUsage, `unknown subcommand "frobnicate"`},
		{[]string{"list", "--bogus"}, cli.ExitUsage, "unknown flag --bogus"},
		{[]string{"list", "--help"}, cli.ExitOK, "Usage: bulkflow jobs list"},
		{[]string{"list", "--state", "Done"}, cli.ExitUsage, "--state"},
		{[]string{"list", "--since", "yesterday"}, cli.ExitUsage, "--since"},
		{[]string{"list", "extra"}, cli.ExitUsage, "unexpected argument"},
		{[]string{"list"}, cli.ExitUsage, "no Salesforce connection configured"},
		{[]string{"list", "--token", "x"}, cli.ExitUsage, "--token needs --instance-url"},
		{[]string{"list", "--client-secret", "x", "--instance-url", srv.URL}, cli.ExitUsage, "--client-id"},
		{[]string{"show"}, cli.ExitUsage, "exactly one JOB_ID"},
		{[]string{"abort"}, cli.ExitUsage, "at least one JOB_ID"},
		{[]string{"create", "--operation", "insert", "--file", "x.csv"}, cli.ExitUsage, "--object is required"},
		{[]string{"create", "--object", "Account", "--operation", "merge", "--file", "x.csv"}, cli.ExitUsage, "--operation"},
		{[]string{"create", "--object", "Account", "--operation", "upsert", "--file", "x.csv"}, cli.ExitUsage, "--external-id"},
		{[]string{"create", "--object", "Account", "--operation", "insert"}, cli.ExitUsage, "--file is required"},
		{[]string{"create", "--object", "Account", "--operation", "insert", "--file", "x.csv", "--delimiter", "X"}, cli.ExitUsage, "--delimiter"},
		{[]string{"create", "--object", "Account", "--operation", "insert", "--file", "x.csv", "--line-ending", "CR"}, cli.ExitUsage, "--line-ending"},
		{[]string{"create", "--object", "Account", "--operation", "insert", "--file", "x.csv", "--max-job-bytes", "0"}, cli.ExitUsage, "--max-job-bytes"},
		{[]string{"create", "--object", "Account", "--operation", "insert", "--file", "x.csv", "--out", "d"}, cli.ExitUsage, "--out needs --wait"},
	} {
		code, stdout, stderr := jobsRun(t, srv, tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.msg) {
			t.Errorf("jobs %q: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.msg, stdout, stderr)
		}
	}
	if n := srv.Requests()["total"]; n != 0 {
		t.Errorf("usage errors made %d requests, want 0", n)
	}
}

// TestJobsMalformedID refuses malformed job ids with exit 2 before any
// HTTP call.
func TestJobsMalformedID(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	good := "750Hs00000KqZ3mIAF"
	for _, args := range [][]string{
		{"show", "001Hs00000KqZ3mIAF"},
		{"show", "750Hs00000KqZ3m"[:14]},
		{"results", "750Hs00000KqZ3mIA"},
		{"abort", good, "750Hs00000KqZ3m-AF"},
		{"delete", "750Hs00000KqZ3mIAF'; drop"},
		{"abort", "--", "-750Hs00000KqZ3mI"},
	} {
		all := append(append([]string{args[0]}, tokenFlags(srv)...), args[1:]...)
		code, _, stderr := jobsRun(t, srv, all...)
		if code != cli.ExitUsage || !strings.Contains(stderr, "is not a Bulk API job id") {
			t.Errorf("jobs %q: exit %d, want %d; stderr:\n%s", args, code, cli.ExitUsage, stderr)
		}
	}
	if n := srv.Requests()["total"]; n != 0 {
		t.Errorf("malformed ids made %d requests, want 0: %v", n, srv.Requests())
	}
}

// TestJobsUnknownID prints Salesforce's NOT_FOUND message and exits 1;
// 15-character ids are accepted.
func TestJobsUnknownID(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	unknown := "750Hs00000ZZZZZIAF"
	for _, args := range [][]string{{"show", unknown}, {"results", unknown}, {"abort", unknown}, {"delete", unknown}, {"show", unknown[:15]}} {
		code, stdout, stderr := jobsRun(t, srv, append(args, tokenFlags(srv)...)...)
		if code != cli.ExitFailed || !strings.Contains(stderr, "NOT_FOUND: ") || !strings.Contains(stderr, args[1]) {
			t.Errorf("jobs %q: exit %d, want %d; output:\n%s%s", args, code, cli.ExitFailed, stdout, stderr)
		}
	}
}

// TestJobsListShowGolden lists jobs across several pages (table and JSON
// goldens), filters them, and shows one.
func TestJobsListShowGolden(t *testing.T) {
	srv, clock := newJobsServer(t, &salesforcetest.Options{ListPageSize: 2})
	c := sfClient(t, srv)
	done := loadJob(t, srv, c, "", false) // created at T0
	if err := c.UploadJobData(t.Context(), done, salesforce.BytesBody([]byte(accountsCSV))); err != nil {
		t.Fatal(err)
	}
	clock.set(jobsT0.Add(7 * time.Second)) // closed and processed at +7s
	if _, err := c.CloseJob(t.Context(), done); err != nil {
		t.Fatal(err)
	}
	awaitState(t, srv, done, salesforcetest.StateJobComplete)
	clock.set(jobsT0.Add(time.Minute))
	open := loadJob(t, srv, c, "", false)
	clock.set(jobsT0.Add(2 * time.Minute))
	aborted := loadJob(t, srv, c, "", false)
	if _, err := c.AbortJob(t.Context(), aborted); err != nil {
		t.Fatal(err)
	}
	clock.set(jobsT0.Add(3 * time.Minute))
	j, err := c.CreateJob(t.Context(), salesforce.CreateJobRequest{Object: "Contact", Operation: salesforce.OpUpsert, ExternalIDFieldName: "External_Id__c"})
	if err != nil {
		t.Fatal(err)
	}
	contact := j.ID

	listsBefore := srv.Requests()["GET /services/data/vXX.X/jobs/ingest"]
	code, stdout, stderr := jobsRun(t, srv, append([]string{"list"}, tokenFlags(srv)...)...)
	if code != cli.ExitOK {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	pipelinetest.Golden(t, "testdata/jobs/list.golden", []byte(stdout), *update)
	if pages := srv.Requests()["GET /services/data/vXX.X/jobs/ingest"] - listsBefore; pages < 2 {
		t.Errorf("list fetched %d pages, want 2 (page size 2, 4 jobs); requests: %v", pages, srv.Requests())
	}
	code, stdout, stderr = jobsRun(t, srv, append([]string{"list", "--json"}, tokenFlags(srv)...)...)
	if code != cli.ExitOK {
		t.Fatalf("list --json: exit %d: %s", code, stderr)
	}
	pipelinetest.Golden(t, "testdata/jobs/list.json.golden", []byte(stdout), *update)
	var listed []salesforce.JobInfo
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil || len(listed) != 4 {
		t.Fatalf("list --json: %d jobs, %v", len(listed), err)
	}

	for _, tc := range []struct {
		filter []string
		want   []string
	}{
		{[]string{"--state", "jobcomplete"}, []string{done}},
		{[]string{"--state", "Open", "--object", "account"}, []string{open}},
		{[]string{"--object", "Contact"}, []string{contact}},
		{[]string{"--since", jobsT0.Add(90 * time.Second).Format(time.RFC3339)}, []string{aborted, contact}},
		{[]string{"--since", "1h"}, nil}, // the emulator's clock is in 2025
	} {
		code, stdout, stderr := jobsRun(t, srv, append(append([]string{"list", "--json"}, tc.filter...), tokenFlags(srv)...)...)
		var got []salesforce.JobInfo
		if err := json.Unmarshal([]byte(stdout), &got); code != cli.ExitOK || err != nil {
			t.Fatalf("list %q: exit %d, %v: %s", tc.filter, code, err, stderr)
		}
		var ids []string
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("list %q = %v, want %v", tc.filter, ids, tc.want)
		}
	}

	code, stdout, stderr = jobsRun(t, srv, append([]string{"show", done}, tokenFlags(srv)...)...)
	if code != cli.ExitOK {
		t.Fatalf("show: exit %d: %s", code, stderr)
	}
	pipelinetest.Golden(t, "testdata/jobs/show.golden", []byte(stdout), *update)
	// Flags after or before the id.
	code, stdout, stderr = jobsRun(t, srv, append(append([]string{"show"}, tokenFlags(srv)...), done, "--json")...)
	if code != cli.ExitOK {
		t.Fatalf("show --json: exit %d: %s", code, stderr)
	}
	pipelinetest.Golden(t, "testdata/jobs/show.json.golden", []byte(stdout), *update)
	var shown struct {
		ID         string `json:"id"`
		DurationMs int64  `json:"durationMs"`
		Successful *int64 `json:"numberRecordsSuccessful"`
		Failed     int64  `json:"numberRecordsFailed"`
	}
	if err := json.Unmarshal([]byte(stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.ID != done || shown.DurationMs != 7000 || shown.Successful == nil || *shown.Successful != 4 || shown.Failed != 1 {
		t.Errorf("show --json = %+v, want 7000 ms, 4 successful, 1 failed", shown)
	}
}

// TestJobsListSince checks --since with a duration against a real clock.
func TestJobsListSince(t *testing.T) {
	srv, _ := newJobsServer(t, &salesforcetest.Options{Clock: time.Now})
	id := loadJob(t, srv, sfClient(t, srv), "", false)
	code, stdout, stderr := jobsRun(t, srv, append([]string{"list", "--since", "1h"}, tokenFlags(srv)...)...)
	if code != cli.ExitOK || !strings.Contains(stdout, id) || !strings.HasPrefix(stdout, "ID ") {
		t.Errorf("list --since 1h: exit %d, want %s listed:\n%s%s", code, id, stdout, stderr)
	}
}

// readAll returns a function reading a whole stream (a result file
// through the client, for comparison).
func readAll(t *testing.T) func(rc io.ReadCloser, err error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestJobsResults streams the three result files to a directory and to a
// blob URL, byte-identical to what the emulator serves, and prints the
// rows of each (CSV records, not lines).
func TestJobsResults(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	c := sfClient(t, srv)
	id := loadJob(t, srv, c, accountsCSV, true)
	want := map[string][]byte{
		"successful":  readAll(t)(c.SuccessfulResults(t.Context(), id)),
		"failed":      readAll(t)(c.FailedResults(t.Context(), id)),
		"unprocessed": readAll(t)(c.UnprocessedRecords(t.Context(), id)),
	}
	if !bytes.Contains(want["successful"], []byte("two\nlines")) {
		t.Fatalf("successful results lack the multi-line value:\n%s", want["successful"])
	}

	dir := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := jobsRun(t, srv, append([]string{"results", id, "--out", dir}, tokenFlags(srv)...)...)
	if code != cli.ExitOK {
		t.Fatalf("results: exit %d:\n%s%s", code, stdout, stderr)
	}
	for kind, rows := range map[string]int{"successful": 4, "failed": 1, "unprocessed": 0} {
		got, err := os.ReadFile(filepath.Join(dir, id+"-"+kind+".csv"))
		if err != nil || !bytes.Equal(got, want[kind]) {
			t.Errorf("%s results differ from the emulator's (%v):\n%s\nwant:\n%s", kind, err, got, want[kind])
		}
		if line := fmt.Sprintf("%s  %-11s %8d rows", id, kind, rows); !strings.Contains(stdout, line) {
			t.Errorf("stdout lacks %q:\n%s", line, stdout)
		}
	}

	// Only the failed file, to a blob URL.
	code, stdout, stderr = jobsRun(t, srv, append([]string{"results", "--failed", "--out", "mem://jobs-results/run1", id}, tokenFlags(srv)...)...)
	if code != cli.ExitOK || strings.Contains(stdout, "successful") {
		t.Fatalf("results --failed: exit %d:\n%s%s", code, stdout, stderr)
	}
	loc, err := blobio.Parse("", "mem://jobs-results/run1/"+id+"-failed.csv")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := blobio.NewReader(t.Context(), loc)
	if got := readAll(t)(rc, err); !bytes.Equal(got, want["failed"]) {
		t.Errorf("blob failed results differ:\n%s\nwant:\n%s", got, want["failed"])
	}

	// Results of an unfinished job are refused with exit 1.
	open := loadJob(t, srv, c, "", false)
	code, _, stderr = jobsRun(t, srv, append([]string{"results", open}, tokenFlags(srv)...)...)
	if code != cli.ExitFailed || !strings.Contains(stderr, "the job is Open") {
		t.Errorf("results of an Open job: exit %d:\n%s", code, stderr)
	}
}

// TestJobsAbortDelete aborts and deletes jobs; refused transitions print
// Salesforce's own error, exit 1, and the other ids are still processed.
func TestJobsAbortDelete(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	c := sfClient(t, srv)
	complete := loadJob(t, srv, c, accountsCSV, true)
	open1 := loadJob(t, srv, c, "", false)
	open2 := loadJob(t, srv, c, "", false)

	code, stdout, stderr := jobsRun(t, srv, append([]string{"abort", complete, open1}, tokenFlags(srv)...)...)
	if code != cli.ExitFailed {
		t.Errorf("abort: exit %d, want %d", code, cli.ExitFailed)
	}
	if want := "bulkflow jobs abort " + complete + ": INVALIDJOBSTATE: Aborting already Completed Job not allowed"; !strings.Contains(stderr, want) {
		t.Errorf("abort stderr lacks %q:\n%s", want, stderr)
	}
	if want := open1 + "  Aborted\n"; stdout != want {
		t.Errorf("abort stdout = %q, want %q", stdout, want)
	}
	if j, _ := srv.Job(open1); j.State != salesforcetest.StateAborted {
		t.Errorf("job %s is %s, want Aborted", open1, j.State)
	}

	code, stdout, stderr = jobsRun(t, srv, append([]string{"delete", open2, complete, open1}, tokenFlags(srv)...)...)
	if code != cli.ExitFailed || !strings.Contains(stderr, "bulkflow jobs delete "+open2+": API_ERROR: ") {
		t.Errorf("delete of an Open job: exit %d:\n%s", code, stderr)
	}
	if want := complete + "  deleted\n" + open1 + "  deleted\n"; stdout != want {
		t.Errorf("delete stdout = %q, want %q", stdout, want)
	}
	for _, id := range []string{complete, open1} {
		if _, ok := srv.Job(id); ok {
			t.Errorf("job %s still exists", id)
		}
	}
	if _, ok := srv.Job(open2); !ok {
		t.Errorf("open job %s was deleted", open2)
	}
	code, _, stderr = jobsRun(t, srv, append([]string{"show", complete}, tokenFlags(srv)...)...)
	if code != cli.ExitFailed || !strings.Contains(stderr, "NOT_FOUND") {
		t.Errorf("show of a deleted job: exit %d:\n%s", code, stderr)
	}
}

// TestJobsCreateWait creates one job from a CSV, waits, and writes its
// results.
func TestJobsCreateWait(t *testing.T) {
	srv, _ := newJobsServer(t, &salesforcetest.Options{Clock: time.Now})
	file := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(file, []byte("\xef\xbb\xbf"+accountsCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "results")
	code, stdout, stderr := jobsRun(t, srv, append([]string{"create", "--object", "Account", "--operation", "insert",
		"--file", file, "--wait", "--poll", "10ms", "--out", out}, tokenFlags(srv)...)...)
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d:\n%s%s", code, stdout, stderr)
	}
	jobs := srv.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	id := jobs[0].ID
	for _, want := range []string{
		id + "  part 1/1  5 rows  " + fmt.Sprint(len(accountsCSV)) + " bytes  UploadComplete\n",
		id + "  JobComplete  processed 5  failed 1  successful 4\n",
		id + "  successful         4 rows",
		id + "  failed             1 rows",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if got := srv.UploadedCSV(id); string(got) != accountsCSV {
		t.Errorf("uploaded %q, want the file without its BOM", got)
	}
	if n := len(srv.Records("Account")); n != 4 {
		t.Errorf("%d Accounts stored, want 4", n)
	}
	if _, err := os.Stat(filepath.Join(out, id+"-unprocessed.csv")); err != nil {
		t.Error(err)
	}

	// Without --wait: the job is closed and left to Salesforce.
	code, stdout, stderr = jobsRun(t, srv, append([]string{"create", "--object", "Account", "--operation", "upsert",
		"--external-id", "External_Id__c", "--file", file}, tokenFlags(srv)...)...)
	if code != cli.ExitOK || !strings.Contains(stdout, "part 1/1") || strings.Contains(stdout, "JobComplete") {
		t.Errorf("create without --wait: exit %d:\n%s%s", code, stdout, stderr)
	}

	// A job that fails: delete with extra columns.
	code, stdout, stderr = jobsRun(t, srv, append([]string{"create", "--object", "Account", "--operation", "delete",
		"--file", file, "--wait", "--poll", "10ms"}, tokenFlags(srv)...)...)
	if code != cli.ExitFailed || !strings.Contains(stdout, "Failed") || !strings.Contains(stderr, "ended Failed") {
		t.Errorf("failing create: exit %d:\n%s%s", code, stdout, stderr)
	}
}

// TestJobsCreateSplit splits a file over --max-job-bytes into several
// jobs at record boundaries, each starting with the header, and checks
// the emulator stored every row exactly once.
func TestJobsCreateSplit(t *testing.T) {
	srv, _ := newJobsServer(t, &salesforcetest.Options{Clock: time.Now})
	const header = "Name,Description,External_Id__c\r\n"
	var b strings.Builder
	b.WriteString(header)
	var names []string
	for i := range 40 {
		name := fmt.Sprintf("Account %02d", i)
		names = append(names, name)
		fmt.Fprintf(&b, "%s,\"line one\r\nline \"\"two\"\", %d\",X-%02d\r\n", name, i, i)
	}
	file := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const maxBytes = 400
	code, stdout, stderr := jobsRun(t, srv, append([]string{"create", "--object", "Account", "--operation", "insert",
		"--file", "file://" + file, "--max-job-bytes", fmt.Sprint(maxBytes), "--wait", "--poll", "10ms"}, tokenFlags(srv)...)...)
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d:\n%s%s", code, stdout, stderr)
	}
	jobs := srv.Jobs()
	if len(jobs) < 2 {
		t.Fatalf("%d jobs, want at least 2", len(jobs))
	}
	var rows int64
	var body strings.Builder
	for _, j := range jobs {
		up := string(srv.UploadedCSV(j.ID))
		if len(up) > maxBytes || !strings.HasPrefix(up, header) || !strings.HasSuffix(up, "\r\n") {
			t.Errorf("job %s upload (%d bytes) is not a header + whole records under %d bytes:\n%s", j.ID, len(up), maxBytes, up)
		}
		if j.LineEnding != "CRLF" || j.State != salesforcetest.StateJobComplete {
			t.Errorf("job %s: line ending %s, state %s", j.ID, j.LineEnding, j.State)
		}
		body.WriteString(strings.TrimPrefix(up, header))
		rows += j.NumberRecordsProcessed
	}
	for i := range jobs {
		if want := fmt.Sprintf("%s  part %d/%d  ", jobs[i].ID, i+1, len(jobs)); !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if want := strings.TrimPrefix(b.String(), header); body.String() != want {
		t.Errorf("the parts do not add up to the file:\n%s\nwant:\n%s", body.String(), want)
	}
	var stored []string
	for _, r := range srv.Records("Account") {
		stored = append(stored, r["Name"])
		if !strings.Contains(r["Description"], "\"two\"") {
			t.Errorf("record %s has Description %q", r["Name"], r["Description"])
		}
	}
	slices.Sort(stored)
	if rows != 40 || !slices.Equal(stored, names) {
		t.Errorf("processed %d rows; stored %v, want each of %v once", rows, stored, names)
	}
	if n := strings.Count(stdout, "JobComplete  processed"); n != len(jobs) {
		t.Errorf("%d final states printed, want %d:\n%s", n, len(jobs), stdout)
	}

	// A record that cannot fit with the header is bad input, refused
	// before any request.
	before := srv.Requests()["total"]
	code, _, stderr = jobsRun(t, srv, append([]string{"create", "--object", "Account", "--operation", "insert",
		"--file", file, "--max-job-bytes", "60"}, tokenFlags(srv)...)...)
	if code != cli.ExitUsage || !strings.Contains(stderr, "does not fit") || srv.Requests()["total"] != before {
		t.Errorf("oversized record: exit %d:\n%s", code, stderr)
	}
}

// expireAfterToken is a transport that expires every emulator token right
// after the first token response, so the next API call gets 401.
type expireAfterToken struct {
	srv  *salesforcetest.Server
	once sync.Once
}

// RoundTrip implements http.RoundTripper.
func (e *expireAfterToken) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/oauth2/token") {
		e.once.Do(e.srv.ExpireTokens)
	}
	return resp, err
}

// TestJobsExpiredToken: with client credentials the client re-authenticates
// once after 401 INVALID_SESSION_ID; a static token cannot, and the error
// is reported without the token.
func TestJobsExpiredToken(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	id := loadJob(t, srv, sfClient(t, srv), accountsCSV, true)
	httpClient = &http.Client{Transport: &expireAfterToken{srv: srv}}
	t.Cleanup(func() { httpClient = nil })
	t.Setenv("SF_CLIENT_ID", srv.ClientID())
	t.Setenv("SF_CLIENT_SECRET", srv.ClientSecret())
	t.Setenv("SF_LOGIN_URL", srv.LoginURL())
	tokenCalls := func() int { return srv.Requests()["POST /services/oauth2/token"] }
	before := tokenCalls()
	code, stdout, stderr := jobsRun(t, srv, "show", id)
	if code != cli.ExitOK || !strings.Contains(stdout, "JobComplete") {
		t.Fatalf("show after expiry: exit %d:\n%s%s", code, stdout, stderr)
	}
	if n := tokenCalls() - before; n != 2 {
		t.Errorf("%d token requests, want 2 (first token, one re-authentication); %v", n, srv.Requests())
	}

	httpClient = nil
	srv.ExpireTokens()
	code, _, stderr = jobsRun(t, srv, append([]string{"show", id}, tokenFlags(srv)...)...)
	if code != cli.ExitFailed || !strings.Contains(stderr, "INVALID_SESSION_ID") {
		t.Errorf("show with an expired static token: exit %d:\n%s", code, stderr)
	}
}

// TestJobsNoSecrets runs every command (successes and failures) and checks
// that neither the access token nor the client secret is printed.
func TestJobsNoSecrets(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	id := loadJob(t, srv, sfClient(t, srv), accountsCSV, true)
	file := filepath.Join(t.TempDir(), "a.csv")
	if err := os.WriteFile(file, []byte(accountsCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	cc := []string{"--client-id", srv.ClientID(), "--client-secret", srv.ClientSecret(), "--login-url", srv.LoginURL()}
	var all strings.Builder
	for _, args := range [][]string{
		append([]string{"list", "--json"}, tokenFlags(srv)...),
		append([]string{"list"}, cc...),
		append([]string{"show", id, "--json"}, cc...),
		append([]string{"results", id, "--out", "mem://jobs-secrets/x"}, tokenFlags(srv)...),
		append([]string{"abort", id}, tokenFlags(srv)...),
		append([]string{"create", "--object", "Account", "--operation", "insert", "--file", file, "--wait", "--poll", "10ms"}, cc...),
		{"list", "--client-id", srv.ClientID(), "--client-secret", srv.ClientSecret() + "x", "--login-url", srv.LoginURL()},
		{"list", "--instance-url", srv.URL, "--token", srv.AccessToken() + "x"},
		{"list", "--instance-url", "http://203.0.113.1", "--token", srv.AccessToken()},
	} {
		_, stdout, stderr := jobsRun(t, srv, args...) // jobsRun checks the secrets
		all.WriteString(stdout + stderr)
	}
	if !strings.Contains(all.String(), "INVALID_SESSION_ID") && !strings.Contains(all.String(), "invalid") {
		t.Errorf("the bad-credential runs printed no error:\n%s", all.String())
	}
}

// TestJobsPipeline reuses the connection of a pipeline file's salesforce
// sink, and refuses the throwaway "emulator:" instance.
func TestJobsPipeline(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	id := loadJob(t, srv, sfClient(t, srv), "", false)
	dir := t.TempDir()
	root, err := filepath.Abs("../../../..") // the repository root
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, sink string) string {
		p := filepath.Join(dir, name)
		y := "name: p\nstages:\n  - name: read\n    source: {type: csv, url: " + filepath.Join(root, "pipelines/data/sf-contacts.csv") +
			"}\n  - name: load\n    inputs: [read]\n    sink:\n      type: salesforce\n      object: Contact\n      operation: insert\n" + sink
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("TEST_SF_SECRET", srv.ClientSecret())
	good := write("good.yaml", "      instance_url: "+srv.URL+"\n      api_version: \"61.0\"\n      auth:\n        client_id: "+srv.ClientID()+
		"\n        client_secret: ${TEST_SF_SECRET}\n        login_url: "+srv.LoginURL()+"\n")
	before := srv.Requests()["POST /services/oauth2/token"]
	code, stdout, stderr := jobsRun(t, srv, "list", "--pipeline", good)
	if code != cli.ExitOK || !strings.Contains(stdout, id) {
		t.Fatalf("list --pipeline: exit %d:\n%s%s", code, stdout, stderr)
	}
	if srv.Requests()["POST /services/oauth2/token"] == before {
		t.Error("list --pipeline did not use the client credentials flow")
	}
	if srv.Requests()["GET /services/data/vXX.X/jobs/ingest"] == 0 {
		t.Errorf("no list request: %v", srv.Requests())
	}
	emu := write("emu.yaml", "      instance_url: \"emulator:\"\n")
	if code, _, stderr := jobsRun(t, srv, "list", "--pipeline", emu); code != cli.ExitUsage || !strings.Contains(stderr, "emulator") {
		t.Errorf("list --pipeline with emulator: exit %d:\n%s", code, stderr)
	}
	if code, _, stderr := jobsRun(t, srv, "list", "--pipeline", filepath.Join(dir, "missing.yaml")); code != cli.ExitUsage {
		t.Errorf("list --pipeline missing file: exit %d:\n%s", code, stderr)
	}
}

// TestJobsCSVRecordCounter counts records, not lines.
func TestJobsCSVRecordCounter(t *testing.T) {
	for in, want := range map[string]int64{
		"":                         0,
		"a,b\n":                    1,
		"a,b\n1,2":                 2,
		"a,b\r\n1,2\r\n\r\n":       2,
		"a,b\n\"x\ny\",\"\"\"\"\n": 2,
		"\"a\",\"b\"\n\"1\n\n2\",\"q\"\"\n\"\n3,4\n": 3,
	} {
		for _, chunk := range []int{1, 3, 1 << 20} {
			var c csvRecordCounter
			for b := []byte(in); len(b) > 0; {
				n := min(chunk, len(b))
				c.Write(b[:n])
				b = b[n:]
			}
			if got := c.records(); got != want {
				t.Errorf("records(%q) in chunks of %d = %d, want %d", in, chunk, got, want)
			}
		}
	}
}

// TestJobsResultsMismatch warns and exits 1 when the rows in the result
// files disagree with the job's counters. The emulator is always
// consistent, so a tiny fake Salesforce serves inconsistent counters.
func TestJobsResultsMismatch(t *testing.T) {
	newJobsServer(t, nil) // clears SF_* variables
	const id = "750Hs00000KqZ3mIAF"
	mux := http.NewServeMux()
	base := "/services/data/v62.0/jobs/ingest/" + id
	mux.HandleFunc("GET "+base, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"operation":"insert","object":"Account","state":"JobComplete",`+
			`"createdDate":"2025-03-04T10:15:02.000+0000","systemModstamp":"2025-03-04T10:15:09.000+0000",`+
			`"numberRecordsProcessed":5,"numberRecordsFailed":2}`, id)
	})
	csv := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/csv")
			io.WriteString(w, body)
		}
	}
	mux.HandleFunc("GET "+base+"/successfulResults", csv("\"sf__Id\",\"sf__Created\",Name\n\"001\",\"true\",\"a\nb\"\n\"002\",\"true\",\"c\""))
	mux.HandleFunc("GET "+base+"/failedResults", csv("\"sf__Id\",\"sf__Error\",Name\n\"\",\"REQUIRED_FIELD_MISSING:x:Name --\",\"\""))
	mux.HandleFunc("GET "+base+"/unprocessedrecords", csv("Name\n"))
	fake := httptestServer(t, mux)
	dir := t.TempDir()
	code, stdout, stderr := jobsRun(t, nil, "results", id, "--out", dir, "--instance-url", fake, "--token", "00Dfake!token")
	if code != cli.ExitFailed {
		t.Errorf("exit %d, want %d", code, cli.ExitFailed)
	}
	for _, want := range []string{
		"warning: failed has 1 rows but numberRecordsFailed is 2",
		"warning: successful has 2 rows but numberRecordsProcessed − numberRecordsFailed is 3",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, id+"  successful         2 rows") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if strings.Contains(stdout+stderr, "00Dfake!token") {
		t.Error("the token was printed")
	}
	if b, err := os.ReadFile(filepath.Join(dir, id+"-successful.csv")); err != nil || !strings.HasSuffix(string(b), `"c"`) {
		t.Errorf("successful file: %q, %v", b, err)
	}
}

// httptestServer serves h on a loopback port until the test ends.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestJobsCreateFromBlob reads the CSV from a blob URL.
func TestJobsCreateFromBlob(t *testing.T) {
	srv, _ := newJobsServer(t, nil)
	loc, err := blobio.Parse("", "mem://jobs-in/accounts.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := blobio.WriteAll(t.Context(), loc, []byte(accountsCSV)); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := jobsRun(t, srv, append([]string{"create", "--object", "Account", "--operation", "insert",
		"--file", "mem://jobs-in/accounts.csv", "--line-ending", "lf", "--delimiter", "comma"}, tokenFlags(srv)...)...)
	if code != cli.ExitOK || len(srv.Jobs()) != 1 || string(srv.UploadedCSV(srv.Jobs()[0].ID)) != accountsCSV {
		t.Errorf("create from mem://: exit %d:\n%s%s", code, stdout, stderr)
	}
	for _, bad := range []string{"", "Name\n", "Name\n\"open quote\n"} {
		if err := blobio.WriteAll(t.Context(), loc, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := jobsRun(t, srv, append([]string{"create", "--object", "Account", "--operation", "insert",
			"--file", "mem://jobs-in/accounts.csv"}, tokenFlags(srv)...)...)
		if code != cli.ExitUsage {
			t.Errorf("create from %q: exit %d, want %d:\n%s", bad, code, cli.ExitUsage, stderr)
		}
	}
}

// TestJobsAuthFlows connects with the refresh token and JWT bearer flows,
// from flags and from SF_* variables.
func TestJobsAuthFlows(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, _ := newJobsServer(t, &salesforcetest.Options{JWTPublicKey: &key.PublicKey})
	id := loadJob(t, srv, sfClient(t, srv), "", false)
	tokenCalls := func() int { return srv.Requests()["POST /services/oauth2/token"] }

	before := tokenCalls()
	code, stdout, stderr := jobsRun(t, srv, "show", id, "--client-id", srv.ClientID(), "--refresh-token", srv.RefreshToken(),
		"--login-url", srv.LoginURL())
	if code != cli.ExitOK || tokenCalls() != before+1 {
		t.Errorf("refresh token flow: exit %d, %d token calls:\n%s%s", code, tokenCalls()-before, stdout, stderr)
	}

	t.Setenv("SF_CLIENT_ID", srv.ClientID())
	t.Setenv("SF_USERNAME", srv.Username())
	t.Setenv("SF_PRIVATE_KEY_FILE", keyFile)
	t.Setenv("SF_LOGIN_URL", srv.LoginURL())
	before = tokenCalls()
	code, stdout, stderr = jobsRun(t, srv, "show", id)
	if code != cli.ExitOK || tokenCalls() != before+1 {
		t.Errorf("JWT flow from SF_* variables: exit %d, %d token calls:\n%s%s", code, tokenCalls()-before, stdout, stderr)
	}
	t.Setenv("SF_USERNAME", "")
	if code, _, stderr := jobsRun(t, srv, "show", id); code != cli.ExitUsage || !strings.Contains(stderr, "--username") {
		t.Errorf("JWT flow without a username: exit %d:\n%s", code, stderr)
	}
}

// TestPipelineConnection: --pipeline takes the whole connection of the
// first salesforce sink (its Options.Connection: every key, compression
// too), else of a salesforce source, and a sink wins over an earlier
// source.
func TestPipelineConnection(t *testing.T) {
	sink := salesforcesink.NewOptions()
	sink.InstanceURL, sink.APIVersion, sink.ResponseCompression = "https://sink.example", "61.0", "gzip"
	sink.Auth = salesforcesink.AuthOptions{ClientID: "cid", ClientSecret: "s", LoginURL: "https://login.example", Audience: "aud"}
	src := &salesforcesource.Options{Connection: salesforcesink.Connection{InstanceURL: "https://source.example",
		APIVersion: "60.0", ResponseCompression: "gzip", Auth: salesforcesink.AuthOptions{AccessToken: "tok"}}}
	csv := pipeline.StageSpec{Name: "read", Kind: pipeline.KindSource, Type: "csv"}
	for _, tc := range []struct {
		name   string
		stages []pipeline.StageSpec
		want   salesforcesink.Connection
		ok     bool
	}{
		{"sink", []pipeline.StageSpec{csv, {Name: "load", Kind: pipeline.KindSink, Type: "salesforce", Options: sink}}, sink.Connection(), true},
		{"source", []pipeline.StageSpec{{Name: "read", Kind: pipeline.KindSource, Type: "salesforce", Options: src}}, src.Connection, true},
		{"sink after a source", []pipeline.StageSpec{{Name: "read", Kind: pipeline.KindSource, Type: "salesforce", Options: src},
			{Name: "load", Kind: pipeline.KindSink, Type: "salesforce", Options: sink}}, sink.Connection(), true},
		{"neither", []pipeline.StageSpec{csv}, salesforcesink.Connection{}, false},
	} {
		got, ok := pipelineConnection(&pipeline.Graph{Stages: tc.stages})
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if c := sink.Connection(); c.ResponseCompression != "gzip" || c.Auth.Audience != "aud" {
		t.Errorf("the sink's connection lost keys: %+v", c)
	}
}
