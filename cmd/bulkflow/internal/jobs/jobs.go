// Package jobs implements `bulkflow jobs`: list, show, results, abort,
// delete and create Bulk API 2.0 ingest jobs on any org (or the emulator)
// through the sinks/salesforce client, with the connection given by flags,
// SF_* environment variables or a pipeline file's salesforce sink (Conn).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/scratch"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"     // also registers the "salesforce" sink for --pipeline files
	"github.com/bulkflow/bulkflow/sources/salesforcesource" // registers the "salesforce" source for --pipeline files
)

// jobsUsage is the help text of `bulkflow jobs`.
const jobsUsage = `Usage:
  bulkflow jobs list    [--state S] [--object O] [--since DURATION|TIME] [--json] [--no-counters]
  bulkflow jobs show    JOB_ID [--json]
  bulkflow jobs results JOB_ID [--successful] [--failed] [--unprocessed] [--out DIR_OR_BLOB_URL]
  bulkflow jobs abort   JOB_ID...
  bulkflow jobs delete  JOB_ID...
  bulkflow jobs create  --object O --operation OP --file CSV_OR_BLOB_URL [--external-id F]
                        [--line-ending LF|CRLF] [--delimiter COMMA|TAB|SEMICOLON|PIPE|CARET|BACKQUOTE]
                        [--max-job-bytes N] [--wait [--poll D] [--timeout D] [--out DIR_OR_BLOB_URL]]

Inspect and manage Salesforce Bulk API 2.0 ingest jobs.

Connection flags (every subcommand; environment fallbacks in brackets):
  --instance-url URL      [SF_INSTANCE_URL]  with --token: the org's instance URL
  --token TOKEN           [SF_ACCESS_TOKEN]  static access token
  --login-url URL         [SF_LOGIN_URL]     token host (default: the instance URL for client
                                             credentials, https://login.salesforce.com otherwise)
  --client-id ID          [SF_CLIENT_ID]     connected-app consumer key
  --client-secret SECRET  [SF_CLIENT_SECRET] client credentials (or refresh token) flow
  --username USER         [SF_USERNAME]      JWT bearer flow, with --private-key-file
  --private-key-file FILE [SF_PRIVATE_KEY_FILE]
  --refresh-token TOKEN   [SF_REFRESH_TOKEN] refresh token flow
  --audience URL          [SF_AUDIENCE]      JWT aud claim (default https://login.salesforce.com)
  --api-version V         [SF_API_VERSION]   e.g. 62.0 (default 62.0)
  --pipeline FILE         reuse auth, instance_url and api_version of the first salesforce sink
                          in FILE; explicit flags override it and SF_* variables are not read

The flow is chosen from what is set: a token -> static token; client id + private key file
-> JWT bearer; client id + refresh token -> refresh token; client id + secret -> client
credentials. Secrets are never printed.

Exit codes: 0 ok, 1 failure (API error, NOT_FOUND, refused transition, count mismatch,
job ended Failed or Aborted), 2 usage or bad input.
`

// httpClient, when set (by tests), replaces http.DefaultClient for the
// Salesforce API and token calls of `bulkflow jobs`.
var httpClient *http.Client

// jobIDPattern matches a Bulk API job id: 15 or 18 alphanumeric characters
// with the job key prefix 750.
var jobIDPattern = regexp.MustCompile(`^750[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$`)

// Run implements `bulkflow jobs SUBCOMMAND`: list, show, results,
// abort, delete and create Bulk API 2.0 ingest jobs through the
// sinks/salesforce client. It returns 0 on success, 1 on a failure
// reported by Salesforce (or a result count mismatch) and 2 on a usage
// error or bad input.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, jobsUsage)
		return cli.ExitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, jobsUsage)
		return cli.ExitOK
	case "list":
		return jobsList(ctx, rest, stdout, stderr)
	case "show":
		return jobsShow(ctx, rest, stdout, stderr)
	case "results":
		return jobsResults(ctx, rest, stdout, stderr)
	case "abort":
		return jobsAbortDelete(ctx, "abort", rest, stdout, stderr)
	case "delete":
		return jobsAbortDelete(ctx, "delete", rest, stdout, stderr)
	case "create":
		return jobsCreate(ctx, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "bulkflow jobs: unknown subcommand %q\n\n%s", sub, jobsUsage)
	return cli.ExitUsage
}

// Conn is a Salesforce connection described by flags, the SF_* environment
// variables or a pipeline file's first salesforce sink: the settings every
// `bulkflow jobs` subcommand (and `bulkflow plan`'s /limits check) shares.
// The zero value is ready for RegisterFlags.
type Conn struct {
	instanceURL, token, loginURL, clientID, clientSecret, username string
	privateKeyFile, refreshToken, audience, apiVersion, pipeline   string
}

// RegisterFlags adds the connection flags to fs; withPipeline adds
// --pipeline FILE too (commands that take a pipeline file as their argument
// leave it out and call UsePipeline).
func (c *Conn) RegisterFlags(fs *flag.FlagSet, withPipeline bool) {
	fs.StringVar(&c.instanceURL, "instance-url", "", "instance `URL`, e.g. https://acme.my.salesforce.com [SF_INSTANCE_URL]")
	fs.StringVar(&c.token, "token", "", "static access `token` [SF_ACCESS_TOKEN]")
	fs.StringVar(&c.loginURL, "login-url", "", "OAuth token host `URL` [SF_LOGIN_URL]")
	fs.StringVar(&c.clientID, "client-id", "", "connected-app consumer key [SF_CLIENT_ID]")
	fs.StringVar(&c.clientSecret, "client-secret", "", "connected-app consumer `secret` [SF_CLIENT_SECRET]")
	fs.StringVar(&c.username, "username", "", "username for the JWT bearer flow [SF_USERNAME]")
	fs.StringVar(&c.privateKeyFile, "private-key-file", "", "RSA private key PEM `file` for the JWT bearer flow [SF_PRIVATE_KEY_FILE]")
	fs.StringVar(&c.refreshToken, "refresh-token", "", "OAuth refresh `token` [SF_REFRESH_TOKEN]")
	fs.StringVar(&c.audience, "audience", "", "JWT aud claim `URL` (default https://login.salesforce.com) [SF_AUDIENCE]")
	fs.StringVar(&c.apiVersion, "api-version", "", "Bulk API `version`, e.g. 62.0 [SF_API_VERSION]")
	if withPipeline {
		fs.StringVar(&c.pipeline, "pipeline", "", "pipeline `file` whose first salesforce sink supplies auth, instance_url and api_version")
	}
}

// Explicit reports whether any connection setting was given as a flag.
func (c *Conn) Explicit() bool {
	return c.instanceURL != "" || c.token != "" || c.clientID != "" || c.refreshToken != "" ||
		c.clientSecret != "" || c.privateKeyFile != ""
}

// UsePipeline makes Connect take what the flags left empty from file's
// first salesforce sink (instead of the SF_* environment variables).
func (c *Conn) UsePipeline(file string) { c.pipeline = file }

// fields lists the settings with their environment variables, for filling
// in what the flags left empty.
func (c *Conn) fields() []struct {
	p   *string
	env string
} {
	return []struct {
		p   *string
		env string
	}{
		{&c.instanceURL, "SF_INSTANCE_URL"}, {&c.token, "SF_ACCESS_TOKEN"}, {&c.loginURL, "SF_LOGIN_URL"},
		{&c.clientID, "SF_CLIENT_ID"}, {&c.clientSecret, "SF_CLIENT_SECRET"}, {&c.username, "SF_USERNAME"},
		{&c.privateKeyFile, "SF_PRIVATE_KEY_FILE"}, {&c.refreshToken, "SF_REFRESH_TOKEN"},
		{&c.audience, "SF_AUDIENCE"}, {&c.apiVersion, "SF_API_VERSION"},
	}
}

// usageError is bad input from the user: exit code 2.
type usageError struct{ msg string }

// Error implements error.
func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// resolve fills empty settings from the --pipeline file's salesforce sink
// or, without --pipeline, from the SF_* environment variables.
func (c *Conn) resolve() error {
	if c.pipeline == "" {
		for _, f := range c.fields() {
			if *f.p == "" {
				*f.p = os.Getenv(f.env)
			}
		}
		return nil
	}
	g, err := config.LoadFile(c.pipeline, pipeline.DefaultRegistry())
	if err != nil {
		return usagef("--pipeline: %v", err)
	}
	o, ok := pipelineConnection(g)
	if !ok {
		return usagef("--pipeline: %s has no stage with a salesforce sink or source", c.pipeline)
	}
	if o.InstanceURL == salesforcesink.EmulatorURL {
		return usagef("--pipeline: %s uses instance_url %q, an in-process emulator that lives only for one run; "+
			"start `bulkflow emulator` and pass --instance-url and --token instead", c.pipeline, salesforcesink.EmulatorURL)
	}
	key := o.Auth.PrivateKeyFile
	if key != "" && !filepath.IsAbs(key) && g.BaseDir != "" {
		key = filepath.Join(g.BaseDir, key)
	}
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&c.instanceURL, o.InstanceURL}, {&c.token, o.Auth.AccessToken}, {&c.loginURL, o.Auth.LoginURL},
		{&c.clientID, o.Auth.ClientID}, {&c.clientSecret, o.Auth.ClientSecret}, {&c.username, o.Auth.Username},
		{&c.privateKeyFile, key}, {&c.refreshToken, o.Auth.RefreshToken}, {&c.audience, o.Auth.Audience},
		{&c.apiVersion, o.APIVersion},
	} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
	return nil
}

// pipelineConnection returns the connection of g's first salesforce sink
// (its Options.Connection, the one definition of the connection keys), or
// of its first salesforce source when it has no such sink (an export
// pipeline: the source inlines the same Connection).
func pipelineConnection(g *pipeline.Graph) (salesforcesink.Connection, bool) {
	var conn salesforcesink.Connection
	found := false
	for _, st := range g.Stages {
		if so, ok := st.Options.(*salesforcesink.Options); ok && st.Kind == pipeline.KindSink {
			return so.Connection(), true
		}
		if so, ok := st.Options.(*salesforcesource.Options); ok && st.Kind == pipeline.KindSource && !found {
			conn, found = so.Connection, true
		}
	}
	return conn, found
}

// Connect builds a client from the resolved settings, with the sink's own
// auth setup (salesforcesink.NewAuth) over this package's HTTP client.
// Errors never carry secret values; a *usageError means the settings are
// incomplete.
func (c *Conn) Connect(ctx context.Context) (*salesforce.Client, error) {
	if err := c.resolve(); err != nil {
		return nil, err
	}
	if v := strings.TrimPrefix(c.apiVersion, "v"); v != "" {
		var major, minor int
		if n, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || n != 2 {
			return nil, usagef("--api-version %q must look like 62.0", c.apiVersion)
		}
		c.apiVersion = v
	}
	switch {
	case c.token != "":
		if c.instanceURL == "" {
			return nil, usagef("--token needs --instance-url (or SF_INSTANCE_URL)")
		}
	case c.clientID != "" && c.privateKeyFile != "":
		if c.username == "" {
			return nil, usagef("the JWT bearer flow (--private-key-file) needs --username")
		}
	case c.clientID != "" && c.refreshToken != "":
	case c.clientID != "" && c.clientSecret != "":
		if c.loginURL == "" && c.instanceURL == "" {
			return nil, usagef("the client credentials flow needs --login-url (your My Domain URL) or --instance-url")
		}
	case c.privateKeyFile != "" || c.refreshToken != "" || c.clientSecret != "":
		return nil, usagef("--client-id (SF_CLIENT_ID) is required with --client-secret, --private-key-file or --refresh-token")
	default:
		return nil, usagef("no Salesforce connection configured: set --token and --instance-url, " +
			"--client-id with --client-secret, --private-key-file + --username or --refresh-token " +
			"(or the SF_* environment variables), or --pipeline FILE")
	}
	hc := httpClient
	auth, err := salesforcesink.NewAuth(ctx, salesforcesink.AuthOptions{
		AccessToken: c.token, ClientID: c.clientID, ClientSecret: c.clientSecret, Username: c.username,
		PrivateKeyFile: c.privateKeyFile, RefreshToken: c.refreshToken, LoginURL: c.loginURL, Audience: c.audience,
	}, c.instanceURL, hc)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	client, err := salesforce.NewClient(ctx, auth, &salesforce.Options{APIVersion: c.apiVersion, HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return client, nil
}

// newJobsFlagSet returns a FlagSet for `bulkflow jobs <name>` with the
// connection flags registered.
func newJobsFlagSet(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *Conn) {
	fs := flag.NewFlagSet("bulkflow jobs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bulkflow jobs %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	cf := &Conn{}
	cf.RegisterFlags(fs, true)
	return fs, cf
}

// parseJobsArgs parses flags that may come before, between or after the
// positional arguments, and returns the positional arguments. Everything
// after "--" is positional. The returned code is -1 to continue, else the
// exit code (0 for --help).
func parseJobsArgs(fs *flag.FlagSet, args []string) ([]string, int) {
	var pos []string
	for {
		if err := cli.ParseFlags(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, cli.ExitOK
			}
			return nil, cli.ExitUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, -1
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), -1
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// checkJobIDs refuses malformed job ids before any call.
func checkJobIDs(name string, ids []string, stderr io.Writer) bool {
	ok := true
	for _, id := range ids {
		if !jobIDPattern.MatchString(id) {
			shown := fmt.Sprintf("%q", id)
			if len(id) > 32 { // never echo what may be a misplaced secret
				shown = fmt.Sprintf("a %d-character argument", len(id))
			}
			fmt.Fprintf(stderr, "bulkflow jobs %s: %s is not a Bulk API job id (15 or 18 letters and digits starting with 750)\n", name, shown)
			ok = false
		}
	}
	return ok
}

// connectOrExit connects and reports a failure with its exit code; the
// code is -1 on success.
func connectOrExit(ctx context.Context, name string, cf *Conn, stderr io.Writer) (*salesforce.Client, int) {
	c, err := cf.Connect(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs %s: %s\n", name, DescribeErr(err))
		var ue *usageError
		if errors.As(err, &ue) {
			return nil, cli.ExitUsage
		}
		return nil, cli.ExitFailed
	}
	return c, -1
}

// DescribeErr renders an error for users: Salesforce's own errorCode and
// message for API errors, the error text otherwise. Neither carries
// secrets (the client redacts them).
func DescribeErr(err error) string {
	var ae *salesforce.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Code != "" && ae.Message != "":
			return ae.Code + ": " + ae.Message
		case ae.Code != "":
			return fmt.Sprintf("%s (HTTP %d)", ae.Code, ae.StatusCode)
		case ae.Message != "":
			return fmt.Sprintf("HTTP %d: %s", ae.StatusCode, ae.Message)
		}
	}
	return err.Error()
}

// ---- list ----

// jobsList implements `bulkflow jobs list`.
func jobsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newJobsFlagSet("list", "[--state S] [--object O] [--since DURATION|TIME] [--json]", stderr)
	state := fs.String("state", "", "only jobs in this `state` (Open, UploadComplete, InProgress, JobComplete, Failed, Aborted)")
	object := fs.String("object", "", "only jobs on this sObject")
	since := fs.String("since", "", "only jobs created in the last `DURATION` (e.g. 24h) or since a TIME (RFC 3339 or 2006-01-02)")
	asJSON := fs.Bool("json", false, "print a JSON array of job infos")
	noCounters := fs.Bool("no-counters", false, "skip the per-job GET that fetches the counters (the job list carries none)")
	pos, code := parseJobsArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "bulkflow jobs list: unexpected argument %q\n", pos[0])
		return cli.ExitUsage
	}
	wantState, ok := parseState(*state)
	if !ok {
		fmt.Fprintf(stderr, "bulkflow jobs list: --state %q must be one of Open, UploadComplete, InProgress, JobComplete, Failed, Aborted\n", *state)
		return cli.ExitUsage
	}
	var after time.Time
	if *since != "" {
		var err error
		if after, err = parseSince(*since, time.Now()); err != nil {
			fmt.Fprintf(stderr, "bulkflow jobs list: %v\n", err)
			return cli.ExitUsage
		}
	}
	client, code := connectOrExit(ctx, "list", cf, stderr)
	if client == nil {
		return code
	}
	jobs := []salesforce.JobInfo{}
	for j, err := range client.ListJobs(ctx, nil) {
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow jobs list: %s\n", DescribeErr(err))
			return cli.ExitFailed
		}
		if (wantState != "" && j.State != wantState) || (*object != "" && !strings.EqualFold(j.Object, *object)) ||
			(!after.IsZero() && j.CreatedDate.Before(after)) {
			continue
		}
		jobs = append(jobs, *j)
	}
	if !*noCounters {
		var err error
		if jobs, err = addCounters(ctx, client, jobs); err != nil {
			fmt.Fprintf(stderr, "bulkflow jobs list: %s\n", DescribeErr(err))
			return cli.ExitFailed
		}
	}
	// The API lists in no particular order: oldest first, then by id.
	slices.SortStableFunc(jobs, func(a, b salesforce.JobInfo) int {
		if c := a.CreatedDate.Compare(b.CreatedDate.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if *asJSON {
		return writeJSON(stdout, stderr, "list", jobs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOBJECT\tOPERATION\tSTATE\tCREATED\tPROCESSED\tFAILED")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", j.ID, j.Object, j.Operation, j.State,
			fmtTime(j.CreatedDate), j.NumberRecordsProcessed, j.NumberRecordsFailed)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs list: %v\n", err)
		return cli.ExitFailed
	}
	return cli.ExitOK
}

// addCounters replaces the list records of jobs that are past Open with
// their full job info: the job list carries no counters (contract §2.7).
// Up to four GETs run at once; a job deleted meanwhile is dropped.
func addCounters(ctx context.Context, client *salesforce.Client, jobs []salesforce.JobInfo) ([]salesforce.JobInfo, error) {
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 4)
		errs  = make([]error, len(jobs))
		infos = make([]*salesforce.JobInfo, len(jobs))
	)
	for i := range jobs {
		if jobs[i].State == salesforce.StateOpen {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			infos[i], errs[i] = client.Job(ctx, jobs[i].ID)
		})
	}
	wg.Wait()
	out := jobs[:0]
	for i, j := range jobs {
		switch {
		case errors.Is(errs[i], salesforce.ErrNotFound):
			continue
		case errs[i] != nil:
			return nil, fmt.Errorf("job %s: %w", j.ID, errs[i])
		case infos[i] != nil:
			j = *infos[i]
		}
		out = append(out, j)
	}
	return out, nil
}

// parseState returns the job state named s (any case); "" is no filter.
func parseState(s string) (salesforce.JobState, bool) {
	if s == "" {
		return "", true
	}
	for _, st := range []salesforce.JobState{salesforce.StateOpen, salesforce.StateUploadComplete, salesforce.StateInProgress,
		salesforce.StateJobComplete, salesforce.StateFailed, salesforce.StateAborted} {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

// parseSince reads --since: a Go duration counted back from now, an RFC 3339
// time, or a date (midnight UTC).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q must not be negative", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q is neither a duration (24h, 90m) nor a time (2025-03-04T10:00:00Z, 2025-03-04)", s)
}

// fmtTime prints a job timestamp in UTC, or "-" when absent.
func fmtTime(t salesforce.Timestamp) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// writeJSON prints v as indented JSON.
func writeJSON(stdout, stderr io.Writer, name string, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		_, err = stdout.Write(append(b, '\n'))
	}
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs %s: %v\n", name, err)
		return cli.ExitFailed
	}
	return cli.ExitOK
}

// ---- show ----

// jobShowJSON is the --json form of `jobs show`: the job info plus derived
// values.
type jobShowJSON struct {
	salesforce.JobInfo
	// DurationMs is systemModstamp − createdDate.
	DurationMs int64 `json:"durationMs"`
	// NumberRecordsSuccessful is processed − failed, only for JobComplete.
	NumberRecordsSuccessful *int64 `json:"numberRecordsSuccessful,omitempty"`
}

// jobsShow implements `bulkflow jobs show`.
func jobsShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newJobsFlagSet("show", "JOB_ID [--json]", stderr)
	asJSON := fs.Bool("json", false, "print the job info as JSON")
	pos, code := parseJobsArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "bulkflow jobs show: want exactly one JOB_ID, got %d arguments\n", len(pos))
		return cli.ExitUsage
	}
	if !checkJobIDs("show", pos, stderr) {
		return cli.ExitUsage
	}
	client, code := connectOrExit(ctx, "show", cf, stderr)
	if client == nil {
		return code
	}
	j, err := client.Job(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs show %s: %s\n", pos[0], DescribeErr(err))
		return cli.ExitFailed
	}
	dur := time.Duration(0)
	if !j.CreatedDate.IsZero() && !j.SystemModstamp.IsZero() {
		dur = j.SystemModstamp.Sub(j.CreatedDate.Time)
	}
	var succ *int64
	if j.State == salesforce.StateJobComplete {
		n := j.NumberRecordsProcessed - j.NumberRecordsFailed
		succ = &n
	}
	if *asJSON {
		return writeJSON(stdout, stderr, "show", jobShowJSON{JobInfo: *j, DurationMs: dur.Milliseconds(), NumberRecordsSuccessful: succ})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	opt := func(k, v string) {
		if v != "" {
			row(k, v)
		}
	}
	row("Job", j.ID)
	row("Object", j.Object)
	row("Operation", j.Operation)
	opt("External id field", j.ExternalIDFieldName)
	row("State", j.State)
	opt("Error", j.ErrorMessage)
	row("Created", fmtTime(j.CreatedDate))
	row("Last change", fmtTime(j.SystemModstamp))
	row("Duration", dur)
	row("Records processed", j.NumberRecordsProcessed)
	if succ != nil {
		row("Records successful", *succ)
	}
	row("Records failed", j.NumberRecordsFailed)
	row("Retries", j.Retries)
	row("Processing time", fmt.Sprintf("%s total, %s API active, %s Apex",
		time.Duration(j.TotalProcessingTime)*time.Millisecond, time.Duration(j.APIActiveProcessingTime)*time.Millisecond,
		time.Duration(j.ApexProcessingTime)*time.Millisecond))
	opt("Job type", j.JobType)
	opt("Content type", j.ContentType)
	opt("Line ending", string(j.LineEnding))
	opt("Column delimiter", string(j.ColumnDelimiter))
	opt("Concurrency mode", j.ConcurrencyMode)
	opt("API version", j.APIVersion.String())
	opt("Assignment rule", j.AssignmentRuleID)
	opt("Created by", j.CreatedByID)
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs show: %v\n", err)
		return cli.ExitFailed
	}
	return cli.ExitOK
}

// ---- results ----

// resultKind is one of the three result files of a job.
type resultKind struct {
	name  string // successful, failed, unprocessed
	fetch func(*salesforce.Client, context.Context, string) (io.ReadCloser, error)
}

var resultKinds = []resultKind{
	{"successful", (*salesforce.Client).SuccessfulResults},
	{"failed", (*salesforce.Client).FailedResults},
	{"unprocessed", (*salesforce.Client).UnprocessedRecords},
}

// jobsResults implements `bulkflow jobs results`.
func jobsResults(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newJobsFlagSet("results", "JOB_ID [--successful] [--failed] [--unprocessed] [--out DIR_OR_BLOB_URL]", stderr)
	want := map[string]*bool{}
	for _, k := range resultKinds {
		want[k.name] = fs.Bool(k.name, false, "fetch the "+k.name+" results (default: all three)")
	}
	out := fs.String("out", ".", "directory or blob URL prefix (s3://, gs://, azblob://, mem://) to write <id>-<kind>.csv under")
	pos, code := parseJobsArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "bulkflow jobs results: want exactly one JOB_ID, got %d arguments\n", len(pos))
		return cli.ExitUsage
	}
	if !checkJobIDs("results", pos, stderr) {
		return cli.ExitUsage
	}
	loc, err := blobio.Parse("", *out)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs results: --out: %v\n", err)
		return cli.ExitUsage
	}
	var kinds []string
	for _, k := range resultKinds {
		if *want[k.name] {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) == 0 {
		kinds = []string{"successful", "failed", "unprocessed"}
	}
	client, code := connectOrExit(ctx, "results", cf, stderr)
	if client == nil {
		return code
	}
	j, err := client.Job(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs results %s: %s\n", pos[0], DescribeErr(err))
		return cli.ExitFailed
	}
	return fetchResults(ctx, client, j, kinds, loc, stdout, stderr)
}

// fetchResults streams the chosen result files of a terminal job to loc,
// prints the rows of each and checks them against the job's counters.
func fetchResults(ctx context.Context, client *salesforce.Client, j *salesforce.JobInfo, kinds []string,
	loc blobio.Location, stdout, stderr io.Writer) int {
	if !j.State.Terminal() {
		fmt.Fprintf(stderr, "bulkflow jobs results %s: the job is %s; results exist once it is JobComplete, Failed or Aborted\n", j.ID, j.State)
		return cli.ExitFailed
	}
	counts := map[string]int64{}
	for _, k := range resultKinds {
		if !slices.Contains(kinds, k.name) {
			continue
		}
		dst := blobio.Join(loc, j.ID+"-"+k.name+".csv")
		n, err := streamResult(ctx, client, j, k, dst)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow jobs results %s: %s results: %s\n", j.ID, k.name, DescribeErr(err))
			return cli.ExitFailed
		}
		counts[k.name] = n
		fmt.Fprintf(stdout, "%s  %-11s %8d rows  %s\n", j.ID, k.name, n, dst)
	}
	// Check the counts against the counters (contract §2.6, §4.3): failed
	// is numberRecordsFailed always; successful and unprocessed derive from
	// the counters only for JobComplete.
	var problems []string
	check := func(kind string, want int64, what string) {
		if got, ok := counts[kind]; ok && got != want {
			problems = append(problems, fmt.Sprintf("%s has %d rows but %s is %d", kind, got, what, want))
		}
	}
	check("failed", j.NumberRecordsFailed, "numberRecordsFailed")
	if j.State == salesforce.StateJobComplete {
		check("successful", j.NumberRecordsProcessed-j.NumberRecordsFailed, "numberRecordsProcessed − numberRecordsFailed")
		check("unprocessed", 0, "the unprocessed count of a JobComplete job")
	} else if s, ok := counts["successful"]; ok && s+counts["failed"] > j.NumberRecordsProcessed {
		problems = append(problems, fmt.Sprintf("successful + failed rows (%d) exceed numberRecordsProcessed %d",
			s+counts["failed"], j.NumberRecordsProcessed))
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "bulkflow jobs results %s: warning: %s\n", j.ID, p)
	}
	if len(problems) > 0 {
		return cli.ExitFailed
	}
	return cli.ExitOK
}

// streamResult copies one result file to dst, counting its CSV records
// while streaming. It returns the data rows (records minus the header).
func streamResult(ctx context.Context, client *salesforce.Client, j *salesforce.JobInfo, k resultKind, dst blobio.Location) (int64, error) {
	rc, err := k.fetch(client, ctx, j.ID)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	w, err := blobio.NewWriter(ctx, dst)
	if err != nil {
		return 0, err
	}
	var rcount csvRecordCounter
	if _, err := io.Copy(w, io.TeeReader(rc, &rcount)); err != nil {
		w.Abort()
		w.Close()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", dst, err)
	}
	return max(rcount.records()-1, 0), nil
}

// csvRecordCounter counts CSV records in the bytes written to it, so a
// value holding newlines inside quotes counts once. Blank lines are not
// records. It buffers nothing.
type csvRecordCounter struct {
	n       int64
	inQuote bool
	content bool // the current record has bytes
}

// Write implements io.Writer.
func (c *csvRecordCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		switch {
		case b == '"':
			c.inQuote = !c.inQuote // "" inside quotes toggles twice
			c.content = true
		case c.inQuote:
		case b == '\n':
			if c.content {
				c.n++
			}
			c.content = false
		case b == '\r':
		default:
			c.content = true
		}
	}
	return len(p), nil
}

// records returns the records seen, counting an unterminated last one.
func (c *csvRecordCounter) records() int64 {
	if c.content {
		return c.n + 1
	}
	return c.n
}

// ---- abort / delete ----

// jobsAbortDelete implements `bulkflow jobs abort` and `bulkflow jobs
// delete`: every id is tried; a refused one prints Salesforce's error and
// makes the exit code 1.
func jobsAbortDelete(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	fs, cf := newJobsFlagSet(name, "JOB_ID...", stderr)
	ids, code := parseJobsArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(ids) == 0 {
		fmt.Fprintf(stderr, "bulkflow jobs %s: want at least one JOB_ID\n", name)
		return cli.ExitUsage
	}
	if !checkJobIDs(name, ids, stderr) {
		return cli.ExitUsage
	}
	client, code := connectOrExit(ctx, name, cf, stderr)
	if client == nil {
		return code
	}
	rc := cli.ExitOK
	for _, id := range ids {
		var err error
		if name == "abort" {
			var j *salesforce.JobInfo
			if j, err = client.AbortJob(ctx, id); err == nil {
				fmt.Fprintf(stdout, "%s  %s\n", id, j.State)
			}
		} else if err = client.DeleteJob(ctx, id); err == nil {
			fmt.Fprintf(stdout, "%s  deleted\n", id)
		}
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow jobs %s %s: %s\n", name, id, DescribeErr(err))
			rc = cli.ExitFailed
			if ctx.Err() != nil {
				return rc
			}
		}
	}
	return rc
}

// ---- create ----

// createOpts are the validated flags of `jobs create`.
type createOpts struct {
	req         salesforce.CreateJobRequest
	lineEnding  string // flag value; "" means detect from the header
	maxJobBytes int64
	in          blobio.Location
	out         string          // --out as given; "" means no result files
	outLoc      blobio.Location // --out parsed
	wait        bool
	poll        salesforce.PollOptions
}

// jobsCreate implements `bulkflow jobs create`: split --file at record
// boundaries into parts of at most --max-job-bytes, upload each as a job,
// and with --wait follow them to the end (and fetch their results).
func jobsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, cf, code := parseCreate(args, stderr)
	if o == nil {
		return code
	}
	// Spool the parts first: bad input is refused before any job exists,
	// and every upload can be replayed from its file.
	sd, err := scratch.New("", "bulkflow-jobs-")
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs create: spool: %v\n", err)
		return cli.ExitFailed
	}
	defer sd.Remove()
	spool := sd.Path
	parts, le, err := splitCSV(ctx, o.in, o.maxJobBytes, spool)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow jobs create: %s: %v\n", o.in, err)
		var ue *usageError
		if errors.As(err, &ue) {
			return cli.ExitUsage
		}
		return cli.ExitFailed
	}
	o.req.LineEnding = salesforce.LineEnding(le)
	if o.lineEnding != "" {
		o.req.LineEnding = salesforce.LineEnding(o.lineEnding)
		if o.lineEnding != le {
			fmt.Fprintf(stderr, "bulkflow jobs create: warning: --line-ending %s but the header line ends with %s; Salesforce may fail the job\n", o.lineEnding, le)
		}
	}
	client, code := connectOrExit(ctx, "create", cf, stderr)
	if client == nil {
		return code
	}
	created, rc := uploadParts(ctx, client, o, parts, stdout, stderr)
	if !o.wait {
		return rc
	}
	if waitCreated(ctx, client, o, created, stdout, stderr) != cli.ExitOK {
		rc = cli.ExitFailed
	}
	return rc
}

// parseCreate parses and checks the flags of `jobs create`. A nil
// *createOpts comes with the exit code to return (usage printed).
func parseCreate(args []string, stderr io.Writer) (*createOpts, *Conn, int) {
	fs, cf := newJobsFlagSet("create", "--object O --operation OP --file CSV_OR_BLOB_URL [flags]", stderr)
	object := fs.String("object", "", "sObject API name, e.g. Account (required)")
	operation := fs.String("operation", "", "insert, update, upsert, delete or hardDelete (required)")
	extID := fs.String("external-id", "", "external id field for upsert (an External ID field, or Id)")
	lineEnding := fs.String("line-ending", "", "LF or CRLF (default: detected from the header line)")
	delimiter := fs.String("delimiter", "COMMA", "column delimiter: COMMA, TAB, SEMICOLON, PIPE, CARET or BACKQUOTE")
	file := fs.String("file", "", "CSV file: a local path or blob URL (required)")
	maxBytes := fs.Int64("max-job-bytes", salesforcesink.DefaultMaxJobBytes, "split the file into several jobs of at most this many bytes each")
	wait := fs.Bool("wait", false, "wait for every job to finish and print its final state and counters")
	poll := fs.Duration("poll", time.Second, "first delay between polls with --wait (grows to 10s)")
	timeout := fs.Duration("timeout", 0, "give up waiting after this long (0 = no limit)")
	out := fs.String("out", "", "with --wait: write each job's result files under this directory or blob URL")
	pos, code := parseJobsArgs(fs, args)
	if code >= 0 {
		return nil, nil, code
	}
	fail := func(format string, a ...any) (*createOpts, *Conn, int) {
		fmt.Fprintf(stderr, "bulkflow jobs create: "+format+"\n", a...)
		return nil, nil, cli.ExitUsage
	}
	if len(pos) > 0 {
		return fail("unexpected argument %q (the CSV goes in --file)", pos[0])
	}
	o := &createOpts{out: *out, wait: *wait, maxJobBytes: *maxBytes}
	o.req.Object = *object
	o.req.ExternalIDFieldName = *extID
	if *object == "" {
		return fail("--object is required")
	}
	o.req.Operation = parseOperation(*operation)
	switch {
	case o.req.Operation == "":
		return fail("--operation %q must be one of insert, update, upsert, delete, hardDelete", *operation)
	case o.req.Operation == salesforce.OpUpsert && *extID == "":
		return fail("--operation upsert needs --external-id")
	case o.req.Operation != salesforce.OpUpsert && *extID != "":
		return fail("--external-id is only used with --operation upsert")
	}
	switch strings.ToUpper(*lineEnding) {
	case "", "LF", "CRLF":
		o.lineEnding = strings.ToUpper(*lineEnding)
	default:
		return fail("--line-ending %q must be LF or CRLF", *lineEnding)
	}
	o.req.ColumnDelimiter = salesforce.ColumnDelimiter(strings.ToUpper(*delimiter))
	switch o.req.ColumnDelimiter {
	case salesforce.DelimiterComma, salesforce.DelimiterTab, salesforce.DelimiterSemicolon,
		salesforce.DelimiterPipe, salesforce.DelimiterCaret, salesforce.DelimiterBackquote:
	default:
		return fail("--delimiter %q must be one of COMMA, TAB, SEMICOLON, PIPE, CARET, BACKQUOTE", *delimiter)
	}
	if *maxBytes <= 0 || *maxBytes > salesforcesink.MaxMaxJobBytes {
		return fail("--max-job-bytes must be between 1 and %d (the Bulk API upload limit)", int64(salesforcesink.MaxMaxJobBytes))
	}
	if *file == "" {
		return fail("--file is required")
	}
	if *out != "" && !*wait {
		return fail("--out needs --wait (results exist only once a job has finished)")
	}
	var err error
	if *out != "" {
		if o.outLoc, err = blobio.Parse("", *out); err != nil {
			return fail("--out: %v", err)
		}
	}
	if *poll <= 0 {
		return fail("--poll must be positive")
	}
	o.poll = salesforce.PollOptions{Initial: *poll, Max: max(*poll, 10*time.Second), Timeout: *timeout}
	if o.in, err = blobio.Parse("", *file); err != nil {
		return fail("--file: %v", err)
	}
	return o, cf, -1
}

// parseOperation returns the ingest operation named s (any case), or "".
func parseOperation(s string) salesforce.Operation {
	for _, op := range []salesforce.Operation{salesforce.OpInsert, salesforce.OpUpdate, salesforce.OpUpsert,
		salesforce.OpDelete, salesforce.OpHardDelete} {
		if strings.EqualFold(s, string(op)) {
			return op
		}
	}
	return ""
}

// uploadParts creates one job per part, in order, and stops at the first
// failure (saying which parts were not loaded). It returns the ids of the
// jobs whose upload completed.
func uploadParts(ctx context.Context, client *salesforce.Client, o *createOpts, parts []csvPart, stdout, stderr io.Writer) ([]string, int) {
	var created []string
	for i, p := range parts {
		id, err := uploadPart(ctx, client, o.req, p)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow jobs create: part %d/%d (%d rows): %s\n", i+1, len(parts), p.rows, DescribeErr(err))
			if id != "" {
				fmt.Fprintf(stderr, "bulkflow jobs create: aborted job %s\n", id)
			}
			if i+1 < len(parts) {
				fmt.Fprintf(stderr, "bulkflow jobs create: parts %d to %d were not loaded\n", i+2, len(parts))
			}
			return created, cli.ExitFailed
		}
		created = append(created, id)
		fmt.Fprintf(stdout, "%s  part %d/%d  %d rows  %d bytes  UploadComplete\n", id, i+1, len(parts), p.rows, p.size)
	}
	return created, cli.ExitOK
}

// waitCreated follows each created job to a final state, prints its
// counters, and with --out fetches its result files.
func waitCreated(ctx context.Context, client *salesforce.Client, o *createOpts, created []string, stdout, stderr io.Writer) int {
	rc := cli.ExitOK
	for _, id := range created {
		j, err := client.WaitJob(ctx, id, &o.poll)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow jobs create: wait for %s: %s\n", id, DescribeErr(err))
			rc = cli.ExitFailed
			if ctx.Err() != nil {
				return rc
			}
			continue
		}
		fmt.Fprintf(stdout, "%s  %s  processed %d  failed %d", j.ID, j.State, j.NumberRecordsProcessed, j.NumberRecordsFailed)
		if j.State == salesforce.StateJobComplete {
			fmt.Fprintf(stdout, "  successful %d", j.NumberRecordsProcessed-j.NumberRecordsFailed)
		}
		fmt.Fprintln(stdout)
		if j.State != salesforce.StateJobComplete {
			msg := j.ErrorMessage
			if msg == "" {
				msg = "the job was aborted"
			}
			fmt.Fprintf(stderr, "bulkflow jobs create: job %s ended %s: %s\n", j.ID, j.State, msg)
			rc = cli.ExitFailed
		}
		if o.out != "" {
			if c := fetchResults(ctx, client, j, []string{"successful", "failed", "unprocessed"}, o.outLoc, stdout, stderr); c != cli.ExitOK {
				rc = cli.ExitFailed
			}
		}
	}
	return rc
}

// uploadPart creates one job, uploads a spooled part and closes the job.
// After a failed upload or close it aborts the job (best effort) and
// returns its id with the error.
func uploadPart(ctx context.Context, client *salesforce.Client, req salesforce.CreateJobRequest, p csvPart) (string, error) {
	j, err := client.CreateJob(ctx, req)
	if err != nil {
		return "", err
	}
	body, err := salesforce.FileBody(p.path)
	if err == nil {
		err = client.UploadJobData(ctx, j.ID, body)
	}
	if err == nil {
		_, err = client.CloseJob(ctx, j.ID)
	}
	if err != nil {
		_, _ = client.AbortJob(context.WithoutCancel(ctx), j.ID)
		return j.ID, fmt.Errorf("job %s: %w", j.ID, err)
	}
	return j.ID, nil
}
