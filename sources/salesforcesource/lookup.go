package salesforcesource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
	"github.com/bulkflow/bulkflow/transforms/exprenv"
)

// DefaultLookupMaxEntries is the budget of a query lookup table when
// max_entries is 0: an entry of an 18-character Id keyed by a 21-character
// external id takes about 170 bytes of heap (TestLookupMemory), so the
// default budget is about 85 MiB.
const DefaultLookupMaxEntries = 500_000

func init() { exprenv.RegisterQueryLoader(LoadLookup) }

// LoadLookup loads a lookup table declared with query: (pipeline.LookupSpec)
// by running the SOQL as a Bulk API 2.0 query job through spec.Salesforce,
// the connection (the salesforce sink's keys; the config loader fills it
// from the pipeline's salesforce sink or source). Every record maps its
// key field's text to its value field's text; a record whose key is empty
// (null) is skipped, as no row can look it up; a key returned twice with
// different values is an error. A job returning more than spec.MaxEntries
// records (default DefaultLookupMaxEntries) is refused before its results
// are read past the first batch, naming the table and the count.
func LoadLookup(ctx context.Context, env *pipeline.Env, name string, spec pipeline.LookupSpec) (map[string]string, error) {
	max := spec.MaxEntries
	switch {
	case max < 0:
		return nil, fmt.Errorf("max_entries %d: must not be negative (0 means %d)", max, DefaultLookupMaxEntries)
	case max == 0:
		max = DefaultLookupMaxEntries
	}
	if spec.Salesforce == nil {
		return nil, errors.New("query needs a Salesforce connection: add salesforce: {instance_url: ..., auth: {...}} " +
			"to the lookup, or the pipeline's salesforce sink or source supplies its own")
	}
	conn, err := lookupConnection(spec.Salesforce)
	if err != nil {
		return nil, err
	}
	if conn.InstanceURL == salesforcesink.EmulatorURL {
		return nil, fmt.Errorf("instance_url %q starts an emulator of its own, holding none of the records the run "+
			"writes or reads: start `bulkflow emulator` and use its instance URL and token instead", conn.InstanceURL)
	}
	e := pipeline.Env{}
	if env != nil {
		e = *env
	}
	e.Shard = pipeline.Shard{} // the table is the whole query's, whatever the run's shard
	src, err := Open(ctx, &e, &Options{Connection: conn, Query: spec.Query, BatchSize: 5000})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	schema, err := src.Schema(ctx)
	if err != nil {
		return nil, err
	}
	col := func(what, field string) (int, error) {
		for i, n := range schema.Names() {
			if strings.EqualFold(n, field) {
				return i, nil
			}
		}
		msg := fmt.Sprintf("the query does not select the %s field %q (it selects %s)", what, field, strings.Join(schema.Names(), ", "))
		if s := pipeline.Closest(field, schema.Names()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return 0, errors.New(msg)
	}
	ki, err := col("key", spec.Key)
	if err != nil {
		return nil, err
	}
	vi, err := col("value", spec.Value)
	if err != nil {
		return nil, err
	}
	t := map[string]string{}
	var text pipeline.StringArena
	var nullKeys int64
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n := src.Total(); n > int64(max) {
			return nil, fmt.Errorf("the query returned %d records, more than the table's budget of %d (max_entries): "+
				"narrow it with WHERE (for example to the records the run's rows refer to), or raise max_entries "+
				"if the memory is there (about 170 bytes an entry)", n, max)
		}
		if d := b.Drops(); len(d) > 0 {
			return nil, fmt.Errorf("record %s: %w", d[0].Origin, d[0].Err)
		}
		for i := range b.Len() {
			row := b.Row(i)
			k := pipeline.Text(row[ki])
			if row[ki] == nil || k == "" {
				nullKeys++
				continue
			}
			v := pipeline.Text(row[vi])
			if old, dup := t[k]; dup {
				if old != v {
					return nil, fmt.Errorf("record %s: key %s %q appears twice with different values %s (%q, %q): "+
						"a lookup needs one value per key; filter the query so that the key is unique",
						b.Origin(i), spec.Key, k, spec.Value, old, v)
				}
				continue
			}
			if len(t) >= max {
				return nil, fmt.Errorf("the query returned more than %d records, the table's budget (max_entries): "+
					"narrow it with WHERE, or raise max_entries if the memory is there (about 170 bytes an entry)", max)
			}
			t[text.Copy(aliasBytes(k))] = text.Copy(aliasBytes(v))
		}
	}
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("lookup table loaded from Salesforce", "table", name, "entries", len(t), "null_keys", nullKeys, "job", src.JobID())
	return t, nil
}

// lookupConnection decodes a lookup's salesforce: block. Errors name keys,
// never values (auth holds secrets).
func lookupConnection(m map[string]any) (salesforcesink.Connection, error) {
	var c salesforcesink.Connection
	str := func(where, k string, v any) (string, error) {
		s, ok := v.(string)
		if !ok && v != nil {
			return "", fmt.Errorf("salesforce: %s%s must be a string", where, k)
		}
		return s, nil
	}
	top := map[string]*string{"instance_url": &c.InstanceURL, "api_version": &c.APIVersion, "response_compression": &c.ResponseCompression}
	a := &c.Auth
	auth := map[string]*string{"access_token": &a.AccessToken, "client_id": &a.ClientID, "client_secret": &a.ClientSecret,
		"username": &a.Username, "private_key_file": &a.PrivateKeyFile, "refresh_token": &a.RefreshToken,
		"login_url": &a.LoginURL, "audience": &a.Audience}
	for k, v := range m {
		if k == "auth" {
			am, ok := v.(map[string]any)
			if !ok {
				return c, errors.New("salesforce: auth must be a mapping (access_token, client_id, client_secret, ...)")
			}
			for ak, av := range am {
				p, known := auth[ak]
				if !known {
					return c, fmt.Errorf("salesforce: unknown auth key %q (known: %s)", ak, strings.Join(keysOf(auth), ", "))
				}
				var err error
				if *p, err = str("auth.", ak, av); err != nil {
					return c, err
				}
			}
			continue
		}
		p, known := top[k]
		if !known {
			return c, fmt.Errorf("salesforce: unknown key %q (known: auth, %s)", k, strings.Join(keysOf(top), ", "))
		}
		var err error
		if *p, err = str("", k, v); err != nil {
			return c, err
		}
	}
	if c.InstanceURL == "" {
		return c, errors.New("salesforce: instance_url is required")
	}
	return c, nil
}

func keysOf(m map[string]*string) []string { return slices.Sorted(maps.Keys(m)) }
