package postgres

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DefaultBatchSize is the number of rows per batch when Options.BatchSize is
// zero.
const DefaultBatchSize = 2048

// MaxBatchSize is the largest Options.BatchSize accepted.
const MaxBatchSize = 1 << 20

// Options configures a PostgreSQL source. Set URL and either Query or Table.
type Options struct {
	// URL is a postgres:// (or postgresql://) connection URL. Put the
	// password in it through ${ENV} or ${file:...}, percent-encoded
	// (@ as %40); it is never logged.
	// Without sslmode, non-loopback hosts get sslmode=verify-full. Required.
	URL string `yaml:"url"`
	// Query is the SELECT to read. Exactly one of Query and Table is set.
	Query string `yaml:"query"`
	// Table is a table or view to read, optionally schema-qualified
	// ("sales.accounts"); Columns lists the columns to read (all when
	// empty).
	Table   string   `yaml:"table"`
	Columns []string `yaml:"columns"`
	// Key names a column whose value is added to every row's origin (and
	// orders a table: read), so dead letters point at a row a person can
	// find. Optional.
	Key string `yaml:"key"`
	// ShardKey is the column `bulkflow run --shard I/N` splits rows on, in
	// SQL. Required only when sharding.
	ShardKey string `yaml:"shard_key"`
	// BatchSize is the most rows per batch. Default 2048.
	BatchSize int `yaml:"batch_size"`
}

func newOptions() any { return &Options{BatchSize: DefaultBatchSize} }

// Validate checks the options without I/O. It implements pipeline.Validator.
// Its errors never quote the URL.
func (o *Options) Validate() error {
	_, err := o.resolve()
	return err
}

// config is Options checked and resolved.
type config struct {
	dsn       string // URL with sslmode defaulted
	hostPort  string // for error messages
	password  string // to mask in messages; "" when none
	query     string // the base SELECT
	origin    string // Origin.Object prefix: "postgres:TABLE" or "postgres:query-HASH"
	table     bool
	key       string
	shardKey  string
	batchSize int
}

func (o *Options) resolve() (*config, error) {
	if o == nil {
		return nil, errors.New("postgres: options are required (url is not set)")
	}
	var errs []string
	c := &config{batchSize: o.BatchSize, key: o.Key, shardKey: o.ShardKey}
	if o.URL == "" {
		errs = append(errs, "url is required (postgres://user:${PGPASSWORD}@host:5432/db)")
	} else if err := c.parseURL(o.URL); err != nil {
		errs = append(errs, err.Error())
	}
	q, t := strings.TrimSpace(o.Query), strings.TrimSpace(o.Table)
	switch {
	case q == "" && t == "":
		errs = append(errs, "set query (a SELECT) or table (with columns)")
	case q != "" && t != "":
		errs = append(errs, "set either query or table, not both")
	case q != "":
		if len(o.Columns) > 0 {
			errs = append(errs, "columns goes with table; with query, list the columns in the SELECT")
		}
		c.query = strings.TrimSpace(strings.TrimRight(q, "; \t\n"))
		c.origin = "postgres:query-" + queryHash(c.query)
	default:
		sel, err := tableSelect(t, o.Columns)
		if err != nil {
			errs = append(errs, err.Error())
		}
		c.query, c.table, c.origin = sel, true, "postgres:"+t
	}
	switch {
	case o.BatchSize == 0:
		c.batchSize = DefaultBatchSize
	case o.BatchSize < 0 || o.BatchSize > MaxBatchSize:
		errs = append(errs, fmt.Sprintf("batch_size %d: want a number from 1 to %d", o.BatchSize, MaxBatchSize))
	}
	if len(errs) > 0 {
		return nil, errors.New("postgres: " + strings.Join(errs, "; "))
	}
	return c, nil
}

// parseURL checks the URL and defaults sslmode. Its errors never hold the
// URL, which may hold a password.
func (c *config) parseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("url: want a postgres://user@host:port/database URL (the value is not shown: it may hold a password)")
	}
	if u.Host == "" {
		return errors.New("url: names no host (postgres://user@host:port/database)")
	}
	if p, ok := u.User.Password(); ok {
		c.password = p
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	c.hostPort = net.JoinHostPort(host, port)
	q := u.Query()
	if q.Get("sslmode") == "" && !loopback(host) {
		q.Set("sslmode", "verify-full")
		u.RawQuery = q.Encode()
	}
	c.dsn = u.String()
	return nil
}

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tableSelect returns SELECT cols FROM table, every name quoted.
func tableSelect(table string, cols []string) (string, error) {
	parts := strings.Split(table, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("table %q: want table or schema.table", table)
	}
	for _, p := range parts {
		if p == "" {
			return "", fmt.Errorf("table %q: empty name part", table)
		}
	}
	list := "*"
	if len(cols) > 0 {
		seen := map[string]bool{}
		q := make([]string, len(cols))
		for i, c := range cols {
			switch {
			case c == "":
				return "", fmt.Errorf("columns[%d] is empty", i)
			case seen[c]:
				return "", fmt.Errorf("columns: %q is listed twice", c)
			}
			seen[c] = true
			q[i] = quoteIdent(c)
		}
		list = strings.Join(q, ", ")
	}
	for i, p := range parts {
		parts[i] = quoteIdent(p)
	}
	return "SELECT " + list + " FROM " + strings.Join(parts, "."), nil
}
