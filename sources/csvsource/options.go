package csvsource

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Values of Options.OnError.
const (
	OnErrorDeadLetter = "dead_letter" // drop bad records with a *pipeline.RowError and keep reading
	OnErrorFail       = "fail"        // Read returns the *pipeline.RowError of the first bad record
)

// DefaultBatchSize is the number of rows per batch when Options.BatchSize is
// zero.
const DefaultBatchSize = 1024

// Options configures a CSV source. The zero value of every field except URL
// means its default, so Go users may set only what they need.
type Options struct {
	// URL is the object(s) to read: a local path or a blob URL (file://,
	// mem://, s3://, ...), relative to the pipeline's base directory. The key
	// may be a glob; matching objects are read in key order. Required.
	URL string `yaml:"url"`
	// Delimiter is the field separator: one ASCII character, or `\t` / "tab"
	// for a tab. Default ",".
	Delimiter string `yaml:"delimiter"`
	// Quote is the quote character: one ASCII character. Default `"`.
	Quote string `yaml:"quote"`
	// Header says whether the first record of every object names the
	// columns. Nil means true. When false, Columns must list every column in
	// order.
	Header *bool `yaml:"header"`
	// Columns declares column types (names as in the header). Undeclared
	// columns are strings. With header false it names every column in order.
	Columns Columns `yaml:"columns"`
	// OnError is what happens to a bad record: "dead_letter" (default) or
	// "fail".
	OnError string `yaml:"on_error"`
	// BatchSize is the most rows per batch. Default 1024.
	BatchSize int `yaml:"batch_size"`
	// NullValues are cell texts read as null in every column. Default none:
	// an empty cell of a string column stays the empty string (an empty cell
	// of a typed column is always null).
	NullValues []string `yaml:"null_values"`
}

// Column declares the type of one column.
type Column struct {
	Name string `yaml:"name"`
	// Type is a pipeline type name ("string", "int", "float", "bool",
	// "date", "timestamp", "decimal").
	Type string `yaml:"type"`
}

// Columns is an ordered list of column declarations. In YAML it is written
// either as a mapping of name to type, kept in the order written
//
//	columns: {id: int, amount: decimal}
//
// or as a list of {name, type} mappings.
type Columns []Column

// UnmarshalYAML decodes a mapping of name → type, or a list of
// {name, type}, keeping the order written.
func (c *Columns) UnmarshalYAML(b []byte) error {
	var v any
	if err := yaml.UnmarshalWithOptions(b, &v, yaml.UseOrderedMap()); err != nil {
		return err
	}
	var out Columns
	switch v := v.(type) {
	case nil:
	case yaml.MapSlice:
		for _, it := range v {
			name, ok1 := it.Key.(string)
			typ, ok2 := it.Value.(string)
			if !ok1 || !ok2 {
				return fmt.Errorf("columns: want name: type, got %v: %v", it.Key, it.Value)
			}
			out = append(out, Column{Name: name, Type: typ})
		}
	case []any:
		var list []Column
		if err := yaml.UnmarshalWithOptions(b, &list, yaml.Strict()); err != nil {
			return fmt.Errorf("columns: want a list of {name, type}: %w", err)
		}
		out = list
	default:
		return fmt.Errorf("columns: want a mapping of name to type or a list of {name, type}, got %T", v)
	}
	*c = out
	return nil
}

// newOptions returns options with every default spelled out.
func newOptions() any {
	header := true
	return &Options{
		Delimiter: ",",
		Quote:     `"`,
		Header:    &header,
		OnError:   OnErrorDeadLetter,
		BatchSize: DefaultBatchSize,
	}
}

// config is Options checked and resolved.
type config struct {
	comma, quote byte
	header       bool
	types        map[string]pipeline.Type
	order        []pipeline.Field // Columns in order, typed
	fail         bool
	batchSize    int
	nulls        map[string]bool
}

// oneByte parses a one-character option.
func oneByte(name, v, def string) (byte, error) {
	switch v {
	case "":
		v = def
	case `\t`, "tab", "TAB":
		v = "\t"
	}
	if len(v) != 1 || v[0] >= 0x80 {
		return 0, fmt.Errorf("%s %q: want one ASCII character", name, v)
	}
	if v[0] == '\r' || v[0] == '\n' {
		return 0, fmt.Errorf("%s may not be a line break", name)
	}
	return v[0], nil
}

// Validate checks the options without I/O. It implements pipeline.Validator.
func (o *Options) Validate() error {
	_, err := o.resolve()
	return err
}

func (o *Options) resolve() (*config, error) {
	if o == nil {
		return nil, errors.New("csv: options are required (url is not set)")
	}
	var errs []error
	c := &config{header: o.Header == nil || *o.Header, batchSize: o.BatchSize}
	if o.URL == "" {
		errs = append(errs, errors.New("url is required"))
	}
	var err error
	if c.comma, err = oneByte("delimiter", o.Delimiter, ","); err != nil {
		errs = append(errs, err)
	}
	if c.quote, err = oneByte("quote", o.Quote, `"`); err != nil {
		errs = append(errs, err)
	}
	if c.comma != 0 && c.comma == c.quote {
		errs = append(errs, fmt.Errorf("delimiter and quote are both %q", c.comma))
	}
	switch o.OnError {
	case "", OnErrorDeadLetter:
	case OnErrorFail:
		c.fail = true
	default:
		errs = append(errs, fmt.Errorf("on_error %q: want %q or %q", o.OnError, OnErrorDeadLetter, OnErrorFail))
	}
	switch {
	case o.BatchSize == 0:
		c.batchSize = DefaultBatchSize
	case o.BatchSize < 0:
		errs = append(errs, fmt.Errorf("batch_size %d: want a positive number", o.BatchSize))
	}
	if !c.header && len(o.Columns) == 0 {
		errs = append(errs, errors.New("header is false: columns must name every column in order"))
	}
	c.types = make(map[string]pipeline.Type, len(o.Columns))
	for i, col := range o.Columns {
		if col.Name == "" {
			errs = append(errs, fmt.Errorf("columns[%d]: empty name", i))
			continue
		}
		if _, dup := c.types[col.Name]; dup {
			errs = append(errs, fmt.Errorf("columns: %q declared twice", col.Name))
			continue
		}
		t := pipeline.TypeString
		if col.Type != "" {
			if t, err = pipeline.ParseType(col.Type); err != nil {
				errs = append(errs, fmt.Errorf("columns: %q: %w", col.Name, err))
				continue
			}
			if t == pipeline.TypeAny {
				errs = append(errs, fmt.Errorf("columns: %q: type any is not allowed for a CSV column", col.Name))
				continue
			}
		}
		c.types[col.Name] = t
		c.order = append(c.order, pipeline.Field{Name: col.Name, Type: t})
	}
	if len(o.NullValues) > 0 {
		c.nulls = make(map[string]bool, len(o.NullValues))
		for _, v := range o.NullValues {
			c.nulls[v] = true
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, errors.New("csv: " + strings.Join(msgs, "; "))
	}
	return c, nil
}

// Interface guard: *Options checks itself for the config loader.
var _ pipeline.Validator = (*Options)(nil)
