package salesforcesource

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

// Option defaults and limits.
const (
	// DefaultBatchSize is the number of rows per batch when batch_size is 0.
	DefaultBatchSize = 2000
	// DefaultMaxRecords is the number of records per results page asked
	// for when max_records is 0 (what simple-salesforce asks, contract §6).
	DefaultMaxRecords = 50000
	// DefaultPollTimeout is how long the source waits for a query job.
	DefaultPollTimeout = 30 * time.Minute
)

// Options configures the "salesforce" source: query (a SOQL SELECT) or
// object + fields, and the connection options of the salesforce sink
// (instance_url, auth, api_version, response_compression).
type Options struct {
	// Connection is shared with the sink, key for key.
	salesforcesink.Connection `yaml:",inline"`
	// Query is the SOQL to run as a Bulk API 2.0 query job.
	Query string `yaml:"query"`
	// Object and Fields build "SELECT fields FROM object" when Query is
	// empty.
	Object string   `yaml:"object"`
	Fields []string `yaml:"fields"`
	// AllRows runs a queryAll job: deleted and archived records too (with
	// IsDeleted when selected).
	AllRows bool `yaml:"all_rows"`
	// MaxRecords is the maxRecords of each results page: the most records
	// held in memory at once (default DefaultMaxRecords).
	MaxRecords int `yaml:"max_records"`
	// BatchSize is the most rows per batch (default DefaultBatchSize).
	BatchSize int `yaml:"batch_size"`
	// PollInitial and PollMax bound the delay between polls of the job;
	// PollTimeout is how long to wait for it (default 30m).
	PollInitial time.Duration `yaml:"poll_initial"`
	PollMax     time.Duration `yaml:"poll_max"`
	PollTimeout time.Duration `yaml:"poll_timeout"`
}

func newOptions() any {
	return &Options{BatchSize: DefaultBatchSize, MaxRecords: DefaultMaxRecords, PollTimeout: DefaultPollTimeout}
}

// Validate checks the options without I/O. It implements
// pipeline.Validator.
func (o *Options) Validate() error {
	_, err := o.soql()
	return err
}

// soql returns the configured query, cut.
func (o *Options) soql() (*soql, error) {
	if o == nil {
		return nil, errors.New("salesforce source: options are required (query, or object and fields)")
	}
	var errs []string
	if o.InstanceURL == "" {
		errs = append(errs, "instance_url is required (https://MYDOMAIN.my.salesforce.com, or emulator:)")
	}
	if o.BatchSize < 0 || o.MaxRecords < 0 {
		errs = append(errs, "batch_size and max_records must not be negative")
	}
	q := strings.TrimSpace(o.Query)
	switch {
	case q == "" && o.Object == "":
		errs = append(errs, "set query (a SOQL SELECT) or object with fields")
	case q != "" && (o.Object != "" || len(o.Fields) > 0):
		errs = append(errs, "set either query or object with fields, not both")
	case q == "" && len(o.Fields) == 0:
		errs = append(errs, fmt.Sprintf("object %s needs fields: the fields to select (SOQL has no SELECT *)", o.Object))
	case q == "":
		for _, f := range o.Fields {
			if f == "" || strings.ContainsAny(f, " ,()'") {
				errs = append(errs, fmt.Sprintf("fields: %q is not a field name", f))
			}
		}
		if strings.ContainsAny(o.Object, " ,()'") {
			errs = append(errs, fmt.Sprintf("object: %q is not an object name", o.Object))
		}
		q = "SELECT " + strings.Join(o.Fields, ", ") + " FROM " + o.Object
	}
	if len(errs) > 0 {
		return nil, errors.New("salesforce source: " + strings.Join(errs, "; "))
	}
	s, err := parseSOQL(q)
	if err != nil {
		return nil, fmt.Errorf("salesforce source: query %q: %w", q, err)
	}
	return s, nil
}
