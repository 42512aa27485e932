package salesforcesink

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// Option defaults and limits.
const (
	DefaultAPIVersion  = "62.0"
	DefaultMaxJobBytes = 100 * 1000 * 1000 // raw CSV bytes per job
	MaxMaxJobBytes     = 150 * 1000 * 1000 // the Bulk API upload limit
	DefaultMaxJobRows  = 10000
	DefaultConcurrency = 4
	DefaultPollInitial = time.Second
	DefaultPollMax     = 30 * time.Second
	DefaultPollTimeout = 30 * time.Minute
	DefaultLockRetries = 2
	// DefaultLedger is where the write-ahead ledger lives when the ledger
	// option is empty (relative to the pipeline's base directory).
	DefaultLedger = ".bulkflow/ledger/"
	// LedgerOff disables the ledger.
	LedgerOff = "off"
	// EmulatorURL is the instance_url value that starts an in-process
	// salesforcetest emulator for the run.
	EmulatorURL = "emulator:"
)

// AuthOptions selects how the sink authenticates. Exactly one flow must be
// configured: access_token; client_id+client_secret (client credentials);
// client_id+username+private_key_file (JWT bearer); or
// client_id+refresh_token+login_url (+client_secret). Secrets should come from
// ${ENV} or ${file:PATH} interpolation; they are never logged.
type AuthOptions struct {
	AccessToken    string `yaml:"access_token"`
	ClientID       string `yaml:"client_id"`
	ClientSecret   string `yaml:"client_secret"`
	Username       string `yaml:"username"`
	PrivateKeyFile string `yaml:"private_key_file"`
	RefreshToken   string `yaml:"refresh_token"`
	// LoginURL is the token host: My Domain for client credentials,
	// https://login.salesforce.com or https://test.salesforce.com for JWT
	// and refresh tokens.
	LoginURL string `yaml:"login_url"`
	// Audience is the JWT aud claim (default https://login.salesforce.com).
	Audience string `yaml:"audience"`
}

// flow names the configured flow, or "" when none is.
func (a *AuthOptions) flow() string {
	switch {
	case a.AccessToken != "":
		return "access_token"
	case a.ClientID != "" && a.PrivateKeyFile != "":
		return "jwt"
	case a.ClientID != "" && a.RefreshToken != "":
		return "refresh_token"
	case a.ClientID != "" && a.ClientSecret != "":
		return "client_credentials"
	}
	return ""
}

// Options configures the "salesforce" sink. The YAML keys are documented
// in the package doc (# Options); NewOptions sets the defaults.
type Options struct {
	Object           string        `yaml:"object" doc:"sObject API name, e.g. Account or Invoice__c (required)"`
	Operation        string        `yaml:"operation" enum:"insert|update|upsert|delete|hardDelete" doc:"insert (default), update (needs Id), upsert (needs external_id_field), delete / hardDelete (exactly one column, Id)"`
	ExternalIDField  string        `yaml:"external_id_field" doc:"External ID field (or Id) that upsert matches on"`
	APIVersion       string        `yaml:"api_version"`
	InstanceURL      string        `yaml:"instance_url" doc:"https://MYDOMAIN.my.salesforce.com; plain http:// only on loopback; emulator: starts an in-process emulator for the run"`
	Auth             AuthOptions   `yaml:"auth"`
	LineEnding       string        `yaml:"line_ending" enum:"LF|CRLF" doc:"line ending of the job CSVs"`
	ColumnDelimiter  string        `yaml:"column_delimiter" enum:"COMMA|TAB|SEMICOLON|PIPE|CARET|BACKQUOTE" doc:"column delimiter of the job CSVs"`
	MaxJobBytes      int64         `yaml:"max_job_bytes"`
	MaxJobRows       int           `yaml:"max_job_rows" doc:"rows per Bulk job; memory is bounded by max_job_rows × concurrency rows"`
	Concurrency      int           `yaml:"concurrency" doc:"Bulk jobs in flight"`
	PollInitial      time.Duration `yaml:"poll_initial"`
	PollMax          time.Duration `yaml:"poll_max"`
	PollTimeout      time.Duration `yaml:"poll_timeout"`
	AssignmentRuleID string        `yaml:"assignment_rule_id"`
	LockRetries      *int          `yaml:"lock_retries"`
	ArchiveResults   string        `yaml:"archive_results"`
	DeleteJobs       bool          `yaml:"delete_jobs"`
	// Ledger is the write-ahead ledger location (a directory or blob URL
	// prefix); "" means DefaultLedger (off for instance_url "emulator:"),
	// "off" disables it.
	Ledger string `yaml:"ledger"`
	// MinAPIRemaining is the daily API request reserve: no job is created
	// while fewer requests remain (0 = no guard).
	MinAPIRemaining int64 `yaml:"min_api_remaining"`
	// ResponseCompression is when to ask Salesforce for gzip responses:
	// auto (default: except from a loopback host such as the emulator),
	// gzip, or none.
	ResponseCompression string `yaml:"response_compression" enum:"auto|gzip|none" doc:"ask for gzip result downloads: auto does except from a loopback host"`
	// API is how rows are sent: auto, bulk or rest (default DefaultAPI;
	// rest.go).
	API string `yaml:"api" enum:"auto|bulk|rest" doc:"auto: REST sObject Collections when the input is at most rest_max_rows rows, else Bulk API 2.0"`
	// RestMaxRows is the most rows api auto sends through REST
	// collections (default DefaultRestMaxRows).
	RestMaxRows int `yaml:"rest_max_rows" doc:"the largest input api auto sends through REST"`
	// Provenance, set by the CLI (not from YAML), is what this attempt of
	// the run reads: the ledger records the first attempt's, so that a
	// resume that cuts other chunks can say what changed. Optional.
	Provenance *Provenance `yaml:"-"`
	// ResumeCommand, set by the CLI (not from YAML) for runs that are not
	// started by `bulkflow run` (a `bulkflow replay`), is the command that
	// resumes this run, named by the sink's resume hints. Empty means
	// `bulkflow run FILE --resume RUN`.
	ResumeCommand string `yaml:"-"`
}

// defaultLedger is DefaultLedger; tests turn it off.
var defaultLedger = DefaultLedger

// ledgerLocation returns where the ledger lives, or "" when it is off.
func (o *Options) ledgerLocation() string {
	loc := o.Ledger
	if loc == "" {
		if o.InstanceURL == EmulatorURL {
			return "" // the embedded emulator does not outlive the process: nothing to resume
		}
		loc = defaultLedger
	}
	switch strings.ToLower(loc) {
	case LedgerOff, "none", "false":
		return ""
	}
	return loc
}

// The options are the sink's run ledger for the CLI (--resume, the run
// lock, provenance).
var _ pipeline.RunLedger = (*Options)(nil)

// LedgerLocation implements pipeline.RunLedger: where the sink keeps its
// ledger (a directory or blob URL prefix), or "" when the ledger is off.
// The runs of a pipeline are under LedgerFolder(pipeline) there, one
// folder per run id.
func (o *Options) LedgerLocation() string { return o.ledgerLocation() }

// LedgerFolder implements pipeline.RunLedger: the folder, under
// LedgerLocation, of a pipeline's runs (its name made one path element).
func (o *Options) LedgerFolder(pipelineName string) string { return safeName(pipelineName) }

// SetProvenance implements pipeline.RunLedger: it records in
// o.Provenance what this attempt of the run reads (the ledger keeps the
// first attempt's; resume hints name file).
func (o *Options) SetProvenance(file, digest string, sources map[string]string) {
	o.Provenance = &Provenance{PipelineFile: file, PipelineDigest: digest, Sources: sources}
}

var _ pipeline.Resender = (*Options)(nil)

// ResendsDuplicate implements pipeline.Resender: an insert stores a row
// sent again as a second record; update, upsert and delete apply it again
// to the same record.
func (o *Options) ResendsDuplicate() bool { return o.operation() == salesforce.OpInsert }

// SetResumeCommand sets o.ResumeCommand: the command the sink's resume
// hints name for this run (`bulkflow replay` sets its own).
func (o *Options) SetResumeCommand(cmd string) { o.ResumeCommand = cmd }

// Connection returns the org the sink reaches and how it logs in, for a
// stage that reads its object back (a sync's seed: salesforce, --reconcile).
func (o *Options) Connection() Connection {
	return Connection{InstanceURL: o.InstanceURL, Auth: o.Auth, APIVersion: o.APIVersion, ResponseCompression: o.ResponseCompression}
}

// NewOptions returns Options with every default set.
func NewOptions() *Options {
	return &Options{
		Operation:       string(salesforce.OpInsert),
		APIVersion:      DefaultAPIVersion,
		LineEnding:      string(salesforce.LineEndingLF),
		ColumnDelimiter: string(salesforce.DelimiterComma),
		MaxJobBytes:     DefaultMaxJobBytes,
		MaxJobRows:      DefaultMaxJobRows,
		Concurrency:     DefaultConcurrency,
		PollInitial:     DefaultPollInitial,
		PollMax:         DefaultPollMax,
		PollTimeout:     DefaultPollTimeout,
		API:             DefaultAPI,
		RestMaxRows:     DefaultRestMaxRows,
	}
}

// operation returns the canonical operation, or "" if unknown.
func (o *Options) operation() salesforce.Operation {
	for _, op := range []salesforce.Operation{salesforce.OpInsert, salesforce.OpUpdate, salesforce.OpUpsert,
		salesforce.OpDelete, salesforce.OpHardDelete} {
		if strings.EqualFold(o.Operation, string(op)) {
			return op
		}
	}
	return ""
}

func (o *Options) delimiter() salesforce.ColumnDelimiter {
	if o.ColumnDelimiter == "" {
		return salesforce.DelimiterComma
	}
	return salesforce.ColumnDelimiter(strings.ToUpper(o.ColumnDelimiter))
}

func (o *Options) lineEnding() salesforce.LineEnding {
	if strings.EqualFold(o.LineEnding, "CRLF") {
		return salesforce.LineEndingCRLF
	}
	return salesforce.LineEndingLF
}

func (o *Options) lockRetries() int {
	if o.LockRetries == nil {
		return DefaultLockRetries
	}
	return *o.LockRetries
}

// Validate checks the options without I/O. It never echoes secret values.
func (o *Options) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Object == "" {
		add("object is required: the sObject API name, e.g. object: Account")
	}
	op := o.operation()
	switch {
	case op == "":
		add("operation %q must be one of insert, update, upsert, delete, hardDelete", o.Operation)
	case op == salesforce.OpUpsert && o.ExternalIDField == "":
		add("external_id_field is required for operation upsert (an External ID field, or Id)")
	case op != salesforce.OpUpsert && o.ExternalIDField != "":
		add("external_id_field is only used with operation upsert (operation is %s)", op)
	}
	if o.APIVersion != "" {
		v := strings.TrimPrefix(o.APIVersion, "v")
		var major, minor int
		if n, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || n != 2 || major < 41 {
			add("api_version %q must look like 62.0 (41.0 or later)", o.APIVersion)
		} else if o.AssignmentRuleID != "" && major < 49 {
			add("assignment_rule_id needs api_version 49.0 or later")
		}
	}
	switch {
	case o.InstanceURL == EmulatorURL:
	case o.InstanceURL == "":
		if f := o.Auth.flow(); f == "access_token" || f == "" {
			add("instance_url is required with auth.access_token (https://<domain>.my.salesforce.com), or use %q for the built-in emulator", EmulatorURL)
		}
	default:
		u, err := url.Parse(o.InstanceURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("instance_url %q must be an https URL such as https://acme.my.salesforce.com, or %q", o.InstanceURL, EmulatorURL)
		}
	}
	if o.InstanceURL != EmulatorURL {
		switch o.Auth.flow() {
		case "":
			add("auth: configure one flow: access_token; client_id+client_secret+login_url; client_id+username+private_key_file+login_url; or client_id+refresh_token+login_url")
		case "jwt":
			if o.Auth.Username == "" {
				add("auth.username is required with auth.private_key_file (JWT bearer)")
			}
			if o.Auth.LoginURL == "" {
				add("auth.login_url is required for the JWT bearer flow")
			}
		case "client_credentials", "refresh_token":
			if o.Auth.LoginURL == "" {
				add("auth.login_url is required for the %s flow", o.Auth.flow())
			}
		}
	}
	switch strings.ToUpper(o.LineEnding) {
	case "", "LF", "CRLF":
	default:
		add("line_ending %q must be LF or CRLF", o.LineEnding)
	}
	switch o.delimiter() {
	case salesforce.DelimiterComma, salesforce.DelimiterTab, salesforce.DelimiterSemicolon,
		salesforce.DelimiterPipe, salesforce.DelimiterCaret, salesforce.DelimiterBackquote:
	default:
		add("column_delimiter %q must be one of COMMA, TAB, SEMICOLON, PIPE, CARET, BACKQUOTE", o.ColumnDelimiter)
	}
	switch {
	case o.MaxJobBytes <= 0:
		add("max_job_bytes must be positive")
	case o.MaxJobBytes > MaxMaxJobBytes:
		add("max_job_bytes %d is above the Bulk API upload limit of %d bytes", o.MaxJobBytes, MaxMaxJobBytes)
	}
	if o.MaxJobRows <= 0 {
		add("max_job_rows must be positive")
	}
	if o.Concurrency <= 0 {
		add("concurrency must be positive")
	}
	if o.PollInitial <= 0 || o.PollMax <= 0 || o.PollTimeout <= 0 {
		add("poll_initial, poll_max and poll_timeout must be positive durations")
	} else if o.PollMax < o.PollInitial {
		add("poll_max (%v) must not be below poll_initial (%v)", o.PollMax, o.PollInitial)
	}
	if o.MinAPIRemaining < 0 {
		add("min_api_remaining must not be negative")
	}
	if o.LockRetries != nil && *o.LockRetries < 0 {
		add("lock_retries must not be negative")
	}
	if !salesforce.Compression(o.ResponseCompression).Valid() {
		add("response_compression %q: want auto, gzip or none", o.ResponseCompression)
	}
	errs = append(errs, o.validateAPI()...)
	return errors.Join(errs...)
}
