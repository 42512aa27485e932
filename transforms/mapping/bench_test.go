package mapping

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
)

// benchSchema is a typical warehouse extract.
var benchSchema = pipeline.MustSchema(
	pipeline.Field{Name: "account_id", Type: pipeline.TypeString},
	pipeline.Field{Name: "first_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "last_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "country", Type: pipeline.TypeString},
	pipeline.Field{Name: "signup", Type: pipeline.TypeString},
	pipeline.Field{Name: "active", Type: pipeline.TypeString},
	pipeline.Field{Name: "revenue", Type: pipeline.TypeFloat},
	pipeline.Field{Name: "notes", Type: pipeline.TypeString},
)

// benchFields is the 6-field mapping benchmarked, and hand-written in
// baselineRow.
var benchFields = []pipeline.ExprField{
	{Name: "External_Id__c", Expr: "account_id"},
	{Name: "Name", Expr: `first_name + " " + last_name`},
	{Name: "BillingCountry", Expr: "upper(country)"},
	{Name: "Signup_Date__c", Expr: `sfDate(signup, "02/01/2006")`},
	{Name: "Active__c", Expr: "sfBool(active)"},
	{Name: "Tier__c", Expr: `revenue > 1000000 ? "Enterprise" : "SMB"`},
}

func benchBatch(n int) *pipeline.Batch {
	b := pipeline.NewBatch(benchSchema, n)
	countries := []string{"fr", "de", "us", "gb"}
	for i := 0; i < n; i++ {
		b.Append(pipeline.Row{
			"A-" + strconv.Itoa(i), "Ada", "Lovelace", countries[i%4],
			strconv.Itoa(10+i%18) + "/0" + strconv.Itoa(1+i%9) + "/2024",
			[]string{"yes", "no", "1", "FALSE"}[i%4],
			float64(i * 1000), "n/a",
		}, pipeline.Origin{Object: "bench.csv", Line: int64(i + 2)})
	}
	return b
}

// baselineRow is benchFields written by hand in Go, with the same
// semantics (null in, null out; errors drop the row).
func baselineRow(row pipeline.Row, dst pipeline.Row) bool {
	dst[0] = row[0]
	dst[1] = row[1].(string) + " " + row[2].(string)
	dst[2] = strings.ToUpper(row[3].(string))
	t, err := time.Parse("02/01/2006", row[4].(string))
	if err != nil {
		return false
	}
	dst[3] = t.Format("2006-01-02")
	switch strings.ToLower(row[5].(string)) {
	case "true", "t", "yes", "y", "1":
		dst[4] = true
	case "false", "f", "no", "n", "0":
		dst[4] = false
	default:
		return false
	}
	if row[6].(float64) > 1000000 {
		dst[5] = "Enterprise"
	} else {
		dst[5] = "SMB"
	}
	return true
}

func BenchmarkMapping(b *testing.B) {
	const n = 1024
	in := benchBatch(n)
	b.Run("expr", func(b *testing.B) {
		tr, err := New(nil, &Options{Fields: benchFields})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Check(benchSchema); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			out, err := tr.Apply(ctx, in)
			if err != nil || out.Len() != n {
				b.Fatalf("Apply: %d rows, %v (drops %v)", out.Len(), err, out.Drops())
			}
		}
		reportRows(b, n)
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			ob := pipeline.NewBatch(benchSchema, n)
			slab := make([]any, n*6)
			for i := 0; i < n; i++ {
				dst := pipeline.Row(slab[i*6 : (i+1)*6 : (i+1)*6])
				if baselineRow(in.Row(i), dst) {
					ob.Append(dst, in.Origin(i))
				}
			}
			if ob.Len() != n {
				b.Fatal("baseline dropped rows")
			}
		}
		reportRows(b, n)
	})
}

// cliBenchSchema and cliBenchFields are the mapping of `bulkflow bench`
// (cmd/bulkflow/bench.go) on its CSV input: every column a string.
var cliBenchSchema = pipeline.MustSchema(
	pipeline.Field{Name: "id", Type: pipeline.TypeString},
	pipeline.Field{Name: "first_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "last_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "email", Type: pipeline.TypeString},
	pipeline.Field{Name: "country", Type: pipeline.TypeString},
	pipeline.Field{Name: "signup_date", Type: pipeline.TypeString},
	pipeline.Field{Name: "active", Type: pipeline.TypeString},
	pipeline.Field{Name: "notes", Type: pipeline.TypeString},
)

var cliBenchFields = []pipeline.ExprField{
	{Name: "External_Id__c", Expr: "id"},
	{Name: "Name", Expr: `first_name + " " + last_name`},
	{Name: "BillingCountry", Expr: "upper(country)"},
	{Name: "SLAExpirationDate__c", Expr: `sfDate(signup_date, "2006-01-02")`},
	{Name: "Active__c", Expr: "sfBool(active)"},
	{Name: "Rating", Expr: `notes == nil || notes == "" ? "Warm" : "Hot"`},
}

// BenchmarkMappingCLI is the map stage of `bulkflow bench` on 1024 rows
// like its generated CSV.
func BenchmarkMappingCLI(b *testing.B) {
	const n = 1024
	in := pipeline.NewBatch(cliBenchSchema, n)
	firsts := []string{"Ada", "Grace", "Alan", "Edsger"}
	lasts := []string{"Lovelace", "Hopper", "Turing", "Dijkstra"}
	countries := []string{"us", "de", "gb", "fr", "jp", "se"}
	for i := 0; i < n; i++ {
		notes := ""
		if i%7 == 0 {
			notes = "prefers email"
		}
		in.Append(pipeline.Row{
			strconv.Itoa(100000 + i), firsts[i%4], lasts[(i/4)%4], "x@example.com", countries[i%6],
			"20" + strconv.Itoa(10+i%15) + "-0" + strconv.Itoa(1+i%9) + "-1" + strconv.Itoa(i%9),
			[]string{"true", "false"}[i%2], notes,
		}, pipeline.Origin{Object: "accounts.csv", Line: int64(i + 2)})
	}
	tr, err := New(nil, &Options{Fields: cliBenchFields})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.Check(cliBenchSchema); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := tr.Apply(ctx, in)
		if err != nil || out.Len() != n {
			b.Fatalf("Apply: %d rows, %v (drops %v)", out.Len(), err, out.Drops())
		}
	}
	reportRows(b, n)
}

func reportRows(b *testing.B, n int) {
	s := b.Elapsed().Seconds()
	if s > 0 {
		b.ReportMetric(float64(b.N*n)/s, "rows/s")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}

// leadBenchSchema and leadBenchFields are the realistic 15-field Lead
// mapping of `bulkflow bench` (benchMapping in cmd/bulkflow/bench.go) on
// its CSV input: 14 text columns as a warehouse export writes them.
var leadBenchSchema = pipeline.MustSchema(
	pipeline.Field{Name: "id", Type: pipeline.TypeString},
	pipeline.Field{Name: "first_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "last_name", Type: pipeline.TypeString},
	pipeline.Field{Name: "email", Type: pipeline.TypeString},
	pipeline.Field{Name: "phone", Type: pipeline.TypeString},
	pipeline.Field{Name: "company", Type: pipeline.TypeString},
	pipeline.Field{Name: "street", Type: pipeline.TypeString},
	pipeline.Field{Name: "city", Type: pipeline.TypeString},
	pipeline.Field{Name: "country", Type: pipeline.TypeString},
	pipeline.Field{Name: "revenue", Type: pipeline.TypeString},
	pipeline.Field{Name: "signup_date", Type: pipeline.TypeString},
	pipeline.Field{Name: "updated_at", Type: pipeline.TypeString},
	pipeline.Field{Name: "active", Type: pipeline.TypeString},
	pipeline.Field{Name: "notes", Type: pipeline.TypeString},
)

var leadBenchFields = []pipeline.ExprField{
	{Name: "External_Id__c", Expr: "id"},
	{Name: "FirstName", Expr: "first_name"},
	{Name: "LastName", Expr: "last_name"},
	{Name: "Email", Expr: "email"},
	{Name: "Phone", Expr: "phone"},
	{Name: "Company", Expr: "company"},
	{Name: "City", Expr: "city"},
	{Name: "AnnualRevenue", Expr: "revenue"},
	{Name: "Full_Name__c", Expr: `first_name + " " + last_name`},
	{Name: "Country", Expr: "upper(country)"},
	{Name: "Signup_Date__c", Expr: `sfDate(signup_date, "01/02/2006")`},
	{Name: "Last_Activity__c", Expr: `sfDateTime(updated_at, "01/02/2006 15:04:05", "UTC")`},
	{Name: "Active__c", Expr: "sfBool(active)"},
	{Name: "Tier__c", Expr: `revenue != nil && revenue != "" && float(revenue) >= 1000000 ? "Enterprise" : "SMB"`},
	{Name: "Status", Expr: `"Open - Not Contacted"`},
}

// leadBenchBatch returns n rows shaped like the bench's generated CSV
// (cmd/bulkflow/internal/bench/data.go): the same value lists, MM/DD/YYYY
// dates and datetimes, Y/N flags, revenue as decimal text from $10k to
// $100M, 5 % empty phones, 4.5 % malformed emails, a quarter with notes.
// Each value is its own string, as a CSV reader makes them.
func leadBenchBatch(n int) *pipeline.Batch {
	var (
		firsts    = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Dennis", "Margaret", "Linus", "Frances", "John", "Radia"}
		lasts     = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Ritchie", "Hamilton", "Torvalds", "Allen", "McCarthy", "Perlman"}
		cities    = []string{"Springfield", "Berlin", "London", "Paris", "Tokyo", "Stockholm", "Austin", "Lyon", "Osaka", "Malmo"}
		countries = []string{"us", "de", "gb", "fr", "jp", "se", "ca", "au"}
		suffixes  = []string{"Inc", "GmbH", "Ltd", "SA", "KK", "AB"}
		notes     = []string{"prefers email", "renewal due, call in Q3", "VIP; key account", "asked for a discount"}
		pow10     = []int64{1e6, 1e7, 1e8, 1e9, 1e10}
	)
	r := rand.New(rand.NewPCG(20260101, 42))
	base := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	b := pipeline.NewBatch(leadBenchSchema, n)
	clone := func(s string) string { return string([]byte(s)) }
	for i := range n {
		id := int64(1_000_001 + i)
		fn, ln := firsts[r.IntN(len(firsts))], lasts[r.IntN(len(lasts))]
		email := strings.ToLower(fn+"."+ln) + strconv.FormatInt(id, 10) + "@example.com"
		if r.IntN(1000) < 45 {
			email = strings.Replace(email, "@", " at ", 1)
		}
		phone := ""
		if r.IntN(20) > 0 {
			phone = fmt.Sprintf("+1-%03d-555-%04d", 200+r.IntN(800), r.IntN(10000))
		}
		cents := r.Int64N(pow10[r.IntN(len(pow10))])
		note := ""
		if x := r.IntN(100); x < 25 {
			note = notes[r.IntN(len(notes))]
		}
		active := "N"
		if r.IntN(3) > 0 {
			active = "Y"
		}
		b.Append(pipeline.Row{
			strconv.FormatInt(id, 10), clone(fn), clone(ln), email, phone,
			ln + " " + suffixes[r.IntN(len(suffixes))], strconv.Itoa(1+r.IntN(9999)) + " Main St",
			clone(cities[r.IntN(len(cities))]), clone(countries[r.IntN(len(countries))]),
			fmt.Sprintf("%d.%02d", cents/100, cents%100),
			base.AddDate(0, 0, r.IntN(5800)).Format("01/02/2006"),
			base.Add(time.Duration(r.Int64N(16*365*24*3600)) * time.Second).Format("01/02/2006 15:04:05"),
			active, note,
		}, pipeline.Origin{Object: "accounts.csv", Line: int64(i + 2)})
	}
	return b
}

// BenchmarkMappingLead is the map stage of `bulkflow bench`'s plan-csv
// (the 15-field Lead mapping) on batches of 1024 rows like its CSV.
func BenchmarkMappingLead(b *testing.B) {
	const n = 1024
	in := leadBenchBatch(n)
	tr, err := New(nil, &Options{Fields: leadBenchFields})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.Check(leadBenchSchema); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := tr.Apply(ctx, in)
		if err != nil || out.Len() != n {
			b.Fatalf("Apply: %d rows, %v (drops %v)", out.Len(), err, out.Drops())
		}
	}
	reportRows(b, n)
	b.ReportMetric(float64(testing.AllocsPerRun(3, func() { tr.Apply(ctx, in) }))/n, "allocs/row")
}
