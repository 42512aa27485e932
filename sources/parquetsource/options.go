package parquetsource

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultBatchSize is the number of rows per batch when Options.BatchSize is
// zero.
const DefaultBatchSize = 1024

// MaxBatchSize is the largest Options.BatchSize accepted.
const MaxBatchSize = 1 << 20

// Options configures a Parquet source. The zero value of every field except
// URL means its default, so Go users may set only what they need.
type Options struct {
	// URL is the object(s) to read: a local path or a blob URL (file://,
	// mem://, s3://, gs://, azblob://), relative to the pipeline's base
	// directory. The key may be a glob; matching objects are read in key
	// order and must all have the first object's columns. Required.
	URL string `yaml:"url"`
	// BatchSize is the most rows per batch. Default 1024.
	BatchSize int `yaml:"batch_size"`
	// Columns, when not empty, projects the listed columns in the order
	// given; only their column chunks are read. With Flatten a name may be a
	// struct column ("address", meaning all its flattened fields) or one
	// flattened field ("address.city"). Empty means every column.
	Columns []string `yaml:"columns"`
	// Flatten turns nested columns into flat ones: struct fields become
	// "parent.child" columns (recursively) and list and map columns become
	// JSON text (string columns). Without it a nested column is an error
	// unless Columns leaves it out.
	Flatten bool `yaml:"flatten"`
}

// newOptions returns options with every default spelled out.
func newOptions() any {
	return &Options{BatchSize: DefaultBatchSize}
}

// Validate checks the options without I/O. It implements pipeline.Validator.
func (o *Options) Validate() error {
	_, err := o.resolve()
	return err
}

// config is Options checked and resolved.
type config struct {
	batchSize int
	columns   []string
	flatten   bool
}

func (o *Options) resolve() (*config, error) {
	if o == nil {
		return nil, errors.New("parquet: options are required (url is not set)")
	}
	var errs []string
	c := &config{batchSize: o.BatchSize, flatten: o.Flatten}
	if o.URL == "" {
		errs = append(errs, "url is required")
	}
	switch {
	case o.BatchSize == 0:
		c.batchSize = DefaultBatchSize
	case o.BatchSize < 0 || o.BatchSize > MaxBatchSize:
		errs = append(errs, fmt.Sprintf("batch_size %d: want a number from 1 to %d", o.BatchSize, MaxBatchSize))
	}
	seen := make(map[string]bool, len(o.Columns))
	for i, name := range o.Columns {
		switch {
		case name == "":
			errs = append(errs, fmt.Sprintf("columns[%d] is empty", i))
		case seen[name]:
			errs = append(errs, fmt.Sprintf("columns: %q is listed twice", name))
		}
		seen[name] = true
	}
	c.columns = append([]string(nil), o.Columns...)
	if len(errs) > 0 {
		return nil, errors.New("parquet: " + strings.Join(errs, "; "))
	}
	return c, nil
}
