package salesforcesink

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// BenchmarkPlanWrite encodes 10,000-row batches of Account rows (strings,
// floats, ints, dates, timestamps, booleans, nulls, quoted cells) into job
// files with a PlanSink.
//
//	go test -run '^$' -bench PlanWrite -benchmem ./sinks/salesforcesink/
func BenchmarkPlanWrite(b *testing.B) {
	const n = 10000
	rows := genAccounts(n, 0, "P")
	batch := pipeline.NewBatch(accountSchema, n)
	for _, r := range rows {
		batch.Append(r, pipeline.Origin{})
	}
	opts := NewOptions()
	opts.Object = "Account"
	opts.InstanceURL = EmulatorURL
	ctx := context.Background()
	p, err := OpenPlan(ctx, nil, opts, accountSchema, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// leadSchema and leadRows are the job rows of `bulkflow bench`'s plan-csv
// mapping (15 Lead fields: text, dates and timestamps already formatted
// by sfDate/sfDateTime, a boolean from sfBool, some empty revenues).
var leadSchema = pipeline.MustSchema(
	pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString}, pipeline.Field{Name: "FirstName", Type: pipeline.TypeString},
	pipeline.Field{Name: "LastName", Type: pipeline.TypeString}, pipeline.Field{Name: "Email", Type: pipeline.TypeString},
	pipeline.Field{Name: "Phone", Type: pipeline.TypeString}, pipeline.Field{Name: "Company", Type: pipeline.TypeString},
	pipeline.Field{Name: "City", Type: pipeline.TypeString}, pipeline.Field{Name: "AnnualRevenue", Type: pipeline.TypeString},
	pipeline.Field{Name: "Full_Name__c", Type: pipeline.TypeString}, pipeline.Field{Name: "Country", Type: pipeline.TypeString},
	pipeline.Field{Name: "Signup_Date__c", Type: pipeline.TypeAny}, pipeline.Field{Name: "Last_Activity__c", Type: pipeline.TypeAny},
	pipeline.Field{Name: "Active__c", Type: pipeline.TypeAny}, pipeline.Field{Name: "Tier__c", Type: pipeline.TypeString},
	pipeline.Field{Name: "Status", Type: pipeline.TypeString},
)

func leadRows(n int) []pipeline.Row {
	first := []string{"Barbara", "Radia", "Grace", "Edsger", "Ada", "Ken"}
	last := []string{"Ritchie", "Thompson", "Hopper", "Dijkstra", "Lovelace", "O'Neil"}
	cities := []string{"Stockholm", "Tokyo", "New York", "São Paulo", "Zürich"}
	rows := make([]pipeline.Row, n)
	for i := range rows {
		f, l := first[i%len(first)], last[i%len(last)]
		var revenue any = fmt.Sprintf("%d.%02d", i*37%2000000, i%100)
		if i%11 == 0 {
			revenue = nil
		}
		company := l + " GmbH"
		if i%5 == 0 {
			company = l + ", Inc" // quoted
		}
		rows[i] = pipeline.Row{fmt.Sprint(1000001 + i), f, l, fmt.Sprintf("%s.%s%d@example.com", f, l, i), fmt.Sprintf("+1-%03d-555-%04d", i%1000, i%10000),
			company, cities[i%len(cities)], revenue, f + " " + l, "SE", fmt.Sprintf("2017-06-%02d", 1+i%28),
			fmt.Sprintf("2013-09-01T02:%02d:03.000Z", i%60), i%3 == 0, "SMB", "Open - Not Contacted"}
	}
	return rows
}

// BenchmarkEncode measures the job CSV encoder per row (ns/op and
// allocs/op are per row) on bench's Lead rows and on the typed Account
// rows (floats, ints, dates, timestamps, quoted text); "leadplain" is the
// Lead rows without the commas that make a fifth of them quoted, as in
// bench's data. "plan" is the plan sink's appendRecordNext, "run" the
// sink's cells then recordNext (the cells are kept to match Salesforce's
// results).
//
//	go test -run '^$' -bench Encode -benchmem ./sinks/salesforcesink/
func BenchmarkEncode(b *testing.B) {
	for _, w := range []struct {
		name   string
		schema *pipeline.Schema
		rows   []pipeline.Row
	}{{"lead", leadSchema, leadRows(1000)}, {"leadplain", leadSchema, plainRows(leadRows(1000))}, {"account", accountSchema, genAccounts(1000, 0, "E")}} {
		e := newEncoder(w.schema, salesforce.DelimiterComma, salesforce.LineEndingLF)
		b.Run(w.name+"/plan", func(b *testing.B) {
			b.ReportAllocs()
			var dst []byte
			var err error
			i, backoff := 0, 0
			for b.Loop() {
				if dst, err = e.appendRecordNext(dst[:0], w.rows[i%len(w.rows)], &backoff); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(w.name+"/run", func(b *testing.B) {
			b.ReportAllocs()
			var dst []byte
			cells := make([]string, 0, w.schema.Len())
			var err error
			i, backoff := 0, 0
			for b.Loop() {
				if cells, err = e.cells(w.rows[i%len(w.rows)], cells); err != nil {
					b.Fatal(err)
				}
				dst = e.recordNext(dst[:0], cells, &backoff)
				i++
			}
		})
	}
}

// plainRows drops the commas of rows' strings (in place): rows that need
// no quotes.
func plainRows(rows []pipeline.Row) []pipeline.Row {
	for _, r := range rows {
		for i, v := range r {
			if s, ok := v.(string); ok {
				r[i] = strings.ReplaceAll(s, ",", "")
			}
		}
	}
	return rows
}
