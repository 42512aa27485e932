package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	_ "github.com/bulkflow/bulkflow/sinks/filesink"
	_ "github.com/bulkflow/bulkflow/sinks/salesforcesink"
	_ "github.com/bulkflow/bulkflow/sources/csvsource"
)

// TestQueryLookups: a lookup has url or query (not both, not neither); a
// query lookup without a salesforce: block takes the connection keys of
// the pipeline's first salesforce sink, one with a block keeps it, and in
// a pipeline without a salesforce stage it stays without one.
func TestQueryLookups(t *testing.T) {
	const sfSink = "  - name: w\n    inputs: [r]\n    sink: {type: salesforce, object: Account, operation: update, " +
		"instance_url: https://acme.my.salesforce.com, api_version: \"61.0\", auth: {client_id: cid, client_secret: sec, login_url: https://acme.my.salesforce.com}, max_job_rows: 5}\n"
	const csvSink = "  - name: w\n    inputs: [r]\n    sink: {type: csv, url: out.csv}\n"
	load := func(lookups, sink string) (*pipeline.Graph, error) {
		y := "name: t\nlookups:\n" + lookups + "stages:\n  - name: r\n    source: {type: csv, url: in.csv}\n" + sink
		return config.Load("p.yaml", []byte(y), pipeline.DefaultRegistry(), nil)
	}
	sinkConn := map[string]any{"instance_url": "https://acme.my.salesforce.com", "api_version": "61.0",
		"auth": map[string]any{"client_id": "cid", "client_secret": "sec", "login_url": "https://acme.my.salesforce.com"}}
	tests := []struct {
		name, lookups, sink string
		want                map[string]any // the ids table's Salesforce
		err                 string
	}{
		{"from the sink", "  ids: {query: \"SELECT Id, Ext__c FROM Account\", key: Ext__c, value: Id}\n", sfSink, sinkConn, ""},
		{"own block", "  ids: {query: SELECT Id FROM Account, key: Id, value: Id, salesforce: {instance_url: https://other.my.salesforce.com}}\n",
			sfSink, map[string]any{"instance_url": "https://other.my.salesforce.com"}, ""},
		{"no salesforce stage", "  ids: {query: SELECT Id FROM Account, key: Id, value: Id}\n", csvSink, nil, ""},
		{"both", "  ids: {url: a.csv, query: SELECT Id FROM Account, key: Id, value: Id}\n", csvSink, nil,
			`p.yaml:3:3: lookup "ids" needs key, value and one of url or query`},
		{"neither", "  ids: {key: Id, value: Id}\n", csvSink, nil, `p.yaml:3:3: lookup "ids" needs key, value and one of url or query`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := load(tc.lookups, tc.sink)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Lookups["ids"].Salesforce; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("salesforce = %#v, want %#v", got, tc.want)
			}
		})
	}
}
