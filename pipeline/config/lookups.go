package config

import (
	"github.com/goccy/go-yaml"

	"github.com/bulkflow/bulkflow/pipeline"
)

// connectionKeys are the option keys of a salesforce sink or source that
// make its connection (salesforcesink.Connection).
var connectionKeys = []string{"instance_url", "auth", "api_version", "response_compression"}

// fillLookupConnections gives every query lookup without a salesforce:
// block the connection of the pipeline's first salesforce sink or, when
// it has none, its first salesforce source: the Ids an update or delete
// pipeline resolves come from the org it writes to. A lookup left without
// one is refused when it is loaded, naming the table.
func fillLookupConnections(g *pipeline.Graph) {
	var conn map[string]any
	for _, kind := range []pipeline.Kind{pipeline.KindSink, pipeline.KindSource} {
		for _, st := range g.Stages {
			if conn == nil && st.Kind == kind && st.Type == "salesforce" && st.Options != nil {
				conn = connectionOf(st.Options)
			}
		}
	}
	if conn == nil {
		return
	}
	for name, spec := range g.Lookups {
		if spec.Query != "" && spec.Salesforce == nil {
			spec.Salesforce = conn
			g.Lookups[name] = spec
		}
	}
}

// connectionOf returns the connection keys of decoded stage options.
func connectionOf(opts any) map[string]any {
	b, err := yaml.Marshal(opts)
	if err != nil {
		return nil
	}
	var all map[string]any
	if yaml.Unmarshal(b, &all) != nil {
		return nil
	}
	conn := map[string]any{}
	for _, k := range connectionKeys {
		if v := dropEmpty(all[k]); v != nil {
			conn[k] = v
		}
	}
	if conn["instance_url"] == nil {
		return nil
	}
	return conn
}

// dropEmpty returns v without its empty strings (nil when nothing is
// left): the options' unset keys.
func dropEmpty(v any) any {
	switch v := v.(type) {
	case string:
		if v == "" {
			return nil
		}
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if x = dropEmpty(x); x != nil {
				out[k] = x
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}
