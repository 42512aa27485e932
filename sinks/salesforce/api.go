package salesforce

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// This file holds the wire types of Bulk API 2.0 (contract §2, §5.5, §6, §7).
// They mirror the JSON exactly; logic lives elsewhere.

// JobState is the state of an ingest or query job (contract §2.10).
type JobState string

// Job states.
const (
	StateOpen           JobState = "Open"
	StateUploadComplete JobState = "UploadComplete"
	StateInProgress     JobState = "InProgress"
	StateJobComplete    JobState = "JobComplete"
	StateFailed         JobState = "Failed"
	StateAborted        JobState = "Aborted"
)

// Terminal reports whether s is a final state (JobComplete, Failed or Aborted).
func (s JobState) Terminal() bool {
	return s == StateJobComplete || s == StateFailed || s == StateAborted
}

// Operation is an ingest or query job operation (contract §2.2, §6).
type Operation string

// Ingest and query operations.
const (
	OpInsert     Operation = "insert"
	OpUpdate     Operation = "update"
	OpUpsert     Operation = "upsert"
	OpDelete     Operation = "delete"
	OpHardDelete Operation = "hardDelete"
	OpQuery      Operation = "query"
	OpQueryAll   Operation = "queryAll"
)

// ColumnDelimiter is the CSV delimiter of a job (contract §2.2).
type ColumnDelimiter string

// Column delimiters.
const (
	DelimiterComma     ColumnDelimiter = "COMMA"
	DelimiterBackquote ColumnDelimiter = "BACKQUOTE"
	DelimiterCaret     ColumnDelimiter = "CARET"
	DelimiterPipe      ColumnDelimiter = "PIPE"
	DelimiterSemicolon ColumnDelimiter = "SEMICOLON"
	DelimiterTab       ColumnDelimiter = "TAB"
)

// Rune returns the delimiter character, or ',' for an empty or unknown value.
func (d ColumnDelimiter) Rune() rune {
	switch d {
	case DelimiterBackquote:
		return '`'
	case DelimiterCaret:
		return '^'
	case DelimiterPipe:
		return '|'
	case DelimiterSemicolon:
		return ';'
	case DelimiterTab:
		return '\t'
	}
	return ','
}

// LineEnding is the line terminator of a job's CSV (contract §2.2, §3.3).
type LineEnding string

// Line endings.
const (
	LineEndingLF   LineEnding = "LF"
	LineEndingCRLF LineEnding = "CRLF"
)

// TimeLayout is the layout of timestamps in job JSON (contract §0).
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// Timestamp is a time in Salesforce's job JSON format
// (2024-09-10T13:57:45.000+0000). It also accepts RFC 3339 when decoding.
type Timestamp struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	if str == "" {
		return nil
	}
	for _, layout := range []string{TimeLayout, "2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if v, err := time.Parse(layout, str); err == nil {
			t.Time = v
			return nil
		}
	}
	return fmt.Errorf("timestamp %q: unknown format", str)
}

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`""`), nil
	}
	return json.Marshal(t.UTC().Format(TimeLayout))
}

// CreateJobRequest is the body of POST /jobs/ingest (contract §2.2).
type CreateJobRequest struct {
	Object              string          `json:"object"`
	Operation           Operation       `json:"operation"`
	ExternalIDFieldName string          `json:"externalIdFieldName,omitempty"`
	ContentType         string          `json:"contentType,omitempty"`
	ColumnDelimiter     ColumnDelimiter `json:"columnDelimiter,omitempty"`
	LineEnding          LineEnding      `json:"lineEnding,omitempty"`
	AssignmentRuleID    string          `json:"assignmentRuleId,omitempty"`
}

// CreateQueryJobRequest is the body of POST /jobs/query (contract §6).
type CreateQueryJobRequest struct {
	Operation       Operation       `json:"operation"`
	Query           string          `json:"query"`
	ContentType     string          `json:"contentType,omitempty"`
	ColumnDelimiter ColumnDelimiter `json:"columnDelimiter,omitempty"`
	LineEnding      LineEnding      `json:"lineEnding,omitempty"`
}

// JobInfo describes an ingest or query job (contract §2.6, §6). Fields that
// Salesforce omits are left at their zero value; counters are 0 while Open.
type JobInfo struct {
	ID                      string          `json:"id"`
	Operation               Operation       `json:"operation"`
	Object                  string          `json:"object"`
	CreatedByID             string          `json:"createdById"`
	CreatedDate             Timestamp       `json:"createdDate"`
	SystemModstamp          Timestamp       `json:"systemModstamp"`
	State                   JobState        `json:"state"`
	ExternalIDFieldName     string          `json:"externalIdFieldName,omitempty"`
	ConcurrencyMode         string          `json:"concurrencyMode,omitempty"`
	ContentType             string          `json:"contentType,omitempty"`
	APIVersion              json.Number     `json:"apiVersion,omitempty"`
	JobType                 string          `json:"jobType,omitempty"`
	ContentURL              string          `json:"contentUrl,omitempty"`
	LineEnding              LineEnding      `json:"lineEnding,omitempty"`
	ColumnDelimiter         ColumnDelimiter `json:"columnDelimiter,omitempty"`
	NumberRecordsProcessed  int64           `json:"numberRecordsProcessed,omitempty"`
	NumberRecordsFailed     int64           `json:"numberRecordsFailed,omitempty"`
	Retries                 int64           `json:"retries,omitempty"`
	TotalProcessingTime     int64           `json:"totalProcessingTime,omitempty"`
	APIActiveProcessingTime int64           `json:"apiActiveProcessingTime,omitempty"`
	ApexProcessingTime      int64           `json:"apexProcessingTime,omitempty"`
	ErrorMessage            string          `json:"errorMessage,omitempty"`
	AssignmentRuleID        string          `json:"assignmentRuleId,omitempty"`
	// Query jobs only.
	Query                 string `json:"query,omitempty"`
	IsPkChunkingSupported bool   `json:"isPkChunkingSupported,omitempty"`
}

// Err returns nil unless the job ended Failed or Aborted. For Failed it
// returns a *JobError parsed from ErrorMessage (contract §5.3); for Aborted
// an error matching ErrJobAborted.
func (j *JobInfo) Err() error {
	switch j.State {
	case StateFailed:
		je := ParseJobError(j.ErrorMessage)
		je.JobID = j.ID
		return je
	case StateAborted:
		return fmt.Errorf("job %s: %w", j.ID, ErrJobAborted)
	}
	return nil
}

// stateRequest is the body of the close/abort PATCH (contract §2.5).
type stateRequest struct {
	State JobState `json:"state"`
}

// JobList is one page of GET /jobs/ingest or /jobs/query (contract §2.7).
type JobList struct {
	Done           bool      `json:"done"`
	Records        []JobInfo `json:"records"`
	NextRecordsURL string    `json:"nextRecordsUrl,omitempty"`
}

// Limit is one entry of GET /limits (contract §5.5). Nested per-app
// entries are ignored.
type Limit struct {
	Max       int64 `json:"Max"`
	Remaining int64 `json:"Remaining"`
}

// Limits is the result of GET /limits, keyed by limit name such as
// "DailyApiRequests" or "DailyBulkApiBatches".
type Limits map[string]Limit

// BulkBatches returns the daily Bulk API batch limit under its current name
// (DailyBulkApiBatches) or its pre-49.0 name (DailyBulkApiRequests).
func (l Limits) BulkBatches() (Limit, bool) {
	if v, ok := l["DailyBulkApiBatches"]; ok {
		return v, true
	}
	v, ok := l["DailyBulkApiRequests"]
	return v, ok
}

// APIUsage is the daily API call usage from the Sforce-Limit-Info header
// (contract §5.4).
type APIUsage struct {
	Used, Max int64
}

// ParseLimitInfo parses a Sforce-Limit-Info header value,
// "api-usage=25/15000" (possibly among other comma-separated entries).
func ParseLimitInfo(h string) (APIUsage, bool) { return parseLimitInfo(h) }

// parseLimitInfo parses "api-usage=25/15000" (possibly among other
// comma-separated entries).
func parseLimitInfo(h string) (APIUsage, bool) {
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "api-usage") {
			continue
		}
		used, max, ok := strings.Cut(strings.TrimSpace(v), "/")
		if !ok {
			return APIUsage{}, false
		}
		var u APIUsage
		if _, err := fmt.Sscan(used, &u.Used); err != nil {
			return APIUsage{}, false
		}
		if _, err := fmt.Sscan(max, &u.Max); err != nil {
			return APIUsage{}, false
		}
		return u, true
	}
	return APIUsage{}, false
}

// DescribeResult is the subset of GET /sobjects/{object}/describe used for
// mapping validation (contract §7).
type DescribeResult struct {
	Name       string  `json:"name"`
	Label      string  `json:"label"`
	KeyPrefix  string  `json:"keyPrefix"` // the first 3 characters of its record ids
	Createable bool    `json:"createable"`
	Updateable bool    `json:"updateable"`
	Deletable  bool    `json:"deletable"`
	Queryable  bool    `json:"queryable"`
	Fields     []Field `json:"fields"`
}

// Field finds a field by API name, case-insensitively.
func (d *DescribeResult) Field(name string) (*Field, bool) {
	for i := range d.Fields {
		if strings.EqualFold(d.Fields[i].Name, name) {
			return &d.Fields[i], true
		}
	}
	return nil, false
}

// Field is one entry of a describe result's fields (contract §7).
type Field struct {
	Name                  string          `json:"name"`
	Label                 string          `json:"label"`
	Type                  string          `json:"type"`
	Length                int             `json:"length"`
	Precision             int             `json:"precision"`
	Scale                 int             `json:"scale"`
	Digits                int             `json:"digits"`
	Nillable              bool            `json:"nillable"`
	Createable            bool            `json:"createable"`
	Updateable            bool            `json:"updateable"`
	DefaultedOnCreate     bool            `json:"defaultedOnCreate"`
	ExternalID            bool            `json:"externalId"`
	IDLookup              bool            `json:"idLookup"`
	Unique                bool            `json:"unique"`
	ReferenceTo           []string        `json:"referenceTo"`
	RelationshipName      string          `json:"relationshipName"`
	PolymorphicForeignKey bool            `json:"polymorphicForeignKey"`
	PicklistValues        []PicklistValue `json:"picklistValues"`
}

// RequiredOnInsert reports createable && !nillable && !defaultedOnCreate.
func (f *Field) RequiredOnInsert() bool {
	return f.Createable && !f.Nillable && !f.DefaultedOnCreate
}

// Polymorphic reports whether a relationship header for this field needs the
// ObjectType: prefix (contract §3.1).
func (f *Field) Polymorphic() bool {
	return f.PolymorphicForeignKey || len(f.ReferenceTo) >= 2
}

// PicklistValue is one allowed picklist value.
type PicklistValue struct {
	Active       bool   `json:"active"`
	DefaultValue bool   `json:"defaultValue"`
	Label        string `json:"label"`
	Value        string `json:"value"`
}

// apiErrorItem is one element of the JSON error array (contract §5.1).
type apiErrorItem struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}
