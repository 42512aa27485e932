package salesforcesink

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// queryJobs returns the SOQL of srv's query jobs, oldest first.
func queryJobs(srv *salesforcetest.Server) []string {
	var out []string
	for _, j := range srv.Jobs() {
		if j.Query {
			out = append(out, j.SOQL)
		}
	}
	return out
}

// TestResolveKeys looks keys up in the emulator with ResolveKeys: keys
// found once, several times or not at all, a key with a quote and a
// backslash, keys that differ from the record's value only in case, more
// keys than one query holds, keys no query is needed for, field names
// that cannot be queried, and keys of a Number field (unquoted, matched as
// numbers).
func TestResolveKeys(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	ctx := context.Background()
	ids := seed(t, srv, 700, "R") // R0000000 .. R0000699, loaded through the sink
	add := func(fields map[string]string) string {
		t.Helper()
		fields["Name"] = "resolve"
		id, err := srv.AddRecord("Account", fields)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	quoted := add(map[string]string{"External_Id__c": `O'Brien\x`})
	mixed := add(map[string]string{"External_Id__c": "Mixed-Case"})
	an1a, an1b := add(map[string]string{"AccountNumber": "AN-1"}), add(map[string]string{"AccountNumber": "AN-1"})
	an2 := add(map[string]string{"AccountNumber": "an-2"})
	e4242, e7777 := add(map[string]string{"NumberOfEmployees": "4242"}), add(map[string]string{"NumberOfEmployees": "7777"}) // above the seeded records

	s := openAccounts(t, ctx, srv)

	// 701 keys: the 700 seeded and one that is not in the org.
	var many []string
	var manyWant [][]string
	for i := range 701 {
		k := fmt.Sprintf("R%07d", i)
		many = append(many, k)
		if id, ok := ids[k]; ok {
			manyWant = append(manyWant, []string{id})
		} else {
			manyWant = append(manyWant, nil)
		}
	}
	for _, tc := range []struct {
		name    string
		field   string
		keys    []string
		want    [][]string
		queries int    // query jobs run
		soql    string // in the query's text
		err     string // in the error; "" = none
	}{
		{name: "found", field: "External_Id__c", keys: []string{"R0000001", "R0000002"},
			want: [][]string{{ids["R0000001"]}, {ids["R0000002"]}}, queries: 1,
			soql: "SELECT Id, External_Id__c FROM Account WHERE External_Id__c IN ('R0000001', 'R0000002')"},
		{name: "not found", field: "External_Id__c", keys: []string{"NOPE", "R0000003"},
			want: [][]string{nil, {ids["R0000003"]}}, queries: 1},
		{name: "quote and backslash", field: "External_Id__c", keys: []string{`O'Brien\x`, `O'Brien`, `O\'Brien\x`},
			want: [][]string{{quoted}, nil, nil}, queries: 1, soql: `IN ('O\'Brien\\x', 'O\'Brien', 'O\\\'Brien\\x')`},
		{name: "case-insensitive", field: "external_id__c", keys: []string{"mixed-CASE", "r0000004"},
			want: [][]string{{mixed}, {ids["R0000004"]}}, queries: 1},
		{name: "exact case preferred", field: "AccountNumber", keys: []string{"AN-2", "an-2"},
			want: [][]string{nil, {an2}}, queries: 1},
		{name: "several records", field: "AccountNumber", keys: []string{"AN-1"},
			want: [][]string{{an1a, an1b}}, queries: 1},
		{name: "more keys than one query holds", field: "External_Id__c", keys: many,
			want: manyWant, queries: 3},
		{name: "nothing to look up", field: "External_Id__c", keys: []string{"", strings.Repeat("x", maxLiteralChars+1)},
			want: [][]string{nil, nil}},
		{name: "not an API name", field: "External_Id__c) OR (Name", keys: []string{"R0000001"},
			err: "not a field API name"},
		{name: "the record id", field: "Id", keys: []string{"R0000001"}, err: "nothing to look up"},
		{name: "unknown field", field: "Nope__c", keys: []string{"R0000001"}, queries: 0,
			err: "look Account records up by Nope__c"},
		// A Number field: unquoted, compared as numbers; a key that is not
		// a number is in no query (no record can hold it).
		{name: "number field", field: "NumberOfEmployees", keys: []string{"04242.00", "7777", "8888", "many"},
			want: [][]string{{e4242}, {e7777}, nil, nil}, queries: 1, soql: "WHERE NumberOfEmployees IN (4242, 7777, 8888)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(queryJobs(srv))
			got, err := s.ResolveKeys(ctx, tc.field, tc.keys)
			soqls := queryJobs(srv)[before:]
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ResolveKeys = %v, %v; want an error with %q", got, err, tc.err)
				}
				t.Logf("error: %v", err)
				if strings.Contains(err.Error(), srv.AccessToken()) {
					t.Errorf("the error shows the access token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d results for %d keys", len(got), len(tc.keys))
			}
			for i := range got {
				g, w := slices.Sorted(slices.Values(got[i])), slices.Sorted(slices.Values(tc.want[i]))
				if !slices.Equal(g, w) {
					t.Errorf("key %q: ids %v, want %v", tc.keys[i], g, w)
				}
			}
			if len(soqls) != tc.queries {
				t.Errorf("%d query jobs, want %d", len(soqls), tc.queries)
			}
			for _, q := range soqls {
				if len(q) > resolveMaxChars || strings.Count(q, "', '")+1 > resolveMaxKeys {
					t.Errorf("query of %d characters and %d keys: over the bounds", len(q), strings.Count(q, "', '")+1)
				}
			}
			if tc.soql != "" && (len(soqls) != 1 || !strings.Contains(soqls[0], tc.soql)) {
				t.Errorf("queries %q; want one with %q", soqls, tc.soql)
			}
		})
	}

	// With delete_jobs the query jobs are deleted once read.
	o2 := *s.opts
	o2.DeleteJobs = true
	s2, err := Open(ctx, nil, &o2, accountSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(ctx)
	before := len(queryJobs(srv))
	if got, err := s2.ResolveKeys(ctx, "External_Id__c", []string{"R0000005"}); err != nil || len(got) != 1 || !slices.Equal(got[0], []string{ids["R0000005"]}) {
		t.Fatalf("with delete_jobs: %v, %v", got, err)
	}
	if n := len(queryJobs(srv)); n != before {
		t.Errorf("with delete_jobs: %d query jobs left, want %d", n, before)
	}
}

// TestResolveQueriesBounds: long keys cut queries by length, short ones by
// count; every key is asked for once, in order.
func TestResolveQueriesBounds(t *testing.T) {
	for _, n := range []int{10, 250, 3000} { // key length
		var keys []string
		for i := range 1000 {
			keys = append(keys, fmt.Sprintf("%0*d", n, i))
		}
		qs := resolveQueries("Account", "External_Id__c", keys, false)
		next := 0
		for _, q := range qs {
			if len(q.soql) > resolveMaxChars || len(q.keys) > resolveMaxKeys || len(q.keys) == 0 {
				t.Errorf("key length %d: query of %d characters and %d keys", n, len(q.soql), len(q.keys))
			}
			for _, i := range q.keys {
				if i != next {
					t.Fatalf("key length %d: key %d asked for after key %d", n, i, next-1)
				}
				next++
			}
		}
		if next != len(keys) {
			t.Errorf("key length %d: %d of %d keys asked for", n, next, len(keys))
		}
	}
}
