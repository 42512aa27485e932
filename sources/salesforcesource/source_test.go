package salesforcesource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/bulkflow/bulkflow/sources/salesforcesource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

func mustAdd(t *testing.T, srv *salesforcetest.Server, object string, rec map[string]string) string {
	t.Helper()
	id, err := srv.AddRecord(object, rec)
	if err != nil {
		t.Fatalf("AddRecord: %v", err)
	}
	return id
}

func readRows(t *testing.T, src pipeline.Source) ([]pipeline.Row, []pipeline.Origin) {
	t.Helper()
	var rows []pipeline.Row
	var origins []pipeline.Origin
	for _, b := range sourcetest.ReadAll(context.Background(), t, src) {
		for _, d := range b.Drops() {
			t.Errorf("drop at %v: %v", d.Origin, d.Err)
		}
		for i := range b.Len() {
			rows = append(rows, b.Row(i))
			origins = append(origins, b.Origin(i))
		}
	}
	return rows, origins
}

// TestTypedColumns reads every describe type the source maps, with the
// values Salesforce writes, nulls included, and a relationship field.
func TestTypedColumns(t *testing.T) {
	srv := startEmulator(t)
	parent := mustAdd(t, srv, "Account", map[string]string{"Name": "Parent Co"})
	id1 := mustAdd(t, srv, "Account", map[string]string{"Name": "Acme", "AnnualRevenue": "1250000.50", "NumberOfEmployees": "42",
		"SLAExpirationDate__c": "2026-03-01", "Last_Sync__c": "2026-01-02T03:04:05.000Z", "Active__c": "true", "ParentId": parent, "Industry": "Energy"})
	id2 := mustAdd(t, srv, "Account", map[string]string{"Name": "Blank", "Active__c": "false"})
	src, err := salesforcesource.Open(context.Background(), nil, options(srv,
		"SELECT Id, Name, AnnualRevenue, NumberOfEmployees, SLAExpirationDate__c, Last_Sync__c, Active__c, Industry, Parent.Name FROM Account WHERE Name != 'Parent Co'"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sch, err := src.Schema(context.Background())
	if err != nil {
		t.Fatalf("Schema: %v", err)
	}
	wantTypes := []pipeline.Type{pipeline.TypeString, pipeline.TypeString, pipeline.TypeDecimal, pipeline.TypeInt, pipeline.TypeDate,
		pipeline.TypeTimestamp, pipeline.TypeBool, pipeline.TypeString, pipeline.TypeString}
	for i, w := range wantTypes {
		if f := sch.Field(i); f.Type != w {
			t.Errorf("column %s: type %s, want %s", f.Name, f.Type, w)
		}
	}
	rows, origins := readRows(t, src)
	want := []pipeline.Row{
		{id1, "Acme", "1250000.50", int64(42), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), true, "Energy", "Parent Co"},
		{id2, "Blank", nil, nil, nil, nil, false, "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("read %d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		for j := range want[i] {
			g, w := rows[i][j], want[i][j]
			if gt, ok := g.(time.Time); ok {
				if wt, ok := w.(time.Time); !ok || !gt.Equal(wt) {
					t.Errorf("row %d %s = %v, want %v", i, sch.Field(j).Name, g, w)
				}
				continue
			}
			if g != w {
				t.Errorf("row %d %s = %#v, want %#v", i, sch.Field(j).Name, g, w)
			}
		}
		wo := pipeline.Origin{Object: "salesforce:" + src.JobID(), Row: int64(i + 1)}
		if origins[i] != wo {
			t.Errorf("row %d origin %v, want %v", i, origins[i], wo)
		}
	}
	if got := origins[0].String(); !strings.HasPrefix(got, "salesforce:750") || !strings.HasSuffix(got, "#row=1") {
		t.Errorf("origin prints %q, want salesforce:<job id>#row=1", got)
	}
}

// TestOptionErrors checks what Open and Schema refuse, and that each
// message says what to do.
func TestOptionErrors(t *testing.T) {
	srv := startEmulator(t, salesforcetest.ObjectDescribe{Name: "Site__c", KeyPrefix: "a02", Fields: []salesforcetest.FieldDescribe{
		{Name: "Id", Type: "id"}, {Name: "Name", Type: "string", Length: 80},
		{Name: "ShippingAddress", Type: "address"}, {Name: "Spot__c", Type: "location"},
	}})
	tests := []struct {
		name   string
		opts   func(o *salesforcesource.Options)
		env    *pipeline.Env
		want   string
		atOpen bool
	}{
		{"no query", func(o *salesforcesource.Options) { o.Query = "" }, nil, "set query (a SOQL SELECT) or object with fields", true},
		{"object without fields", func(o *salesforcesource.Options) { o.Query, o.Object = "", "Account" }, nil, "object Account needs fields", true},
		{"both", func(o *salesforcesource.Options) { o.Object = "Account" }, nil, "not both", true},
		{"aggregate", func(o *salesforcesource.Options) { o.Query = "SELECT COUNT() FROM Account" }, nil, "functions, aggregates and subqueries are not supported", true},
		{"shard", func(o *salesforcesource.Options) {}, &pipeline.Env{Shard: pipeline.Shard{Index: 0, Count: 2}}, "--shard 0/2 is not supported", true},
		{"address", func(o *salesforcesource.Options) { o.Query = "SELECT Name, ShippingAddress FROM Site__c" }, nil,
			"Site__c.ShippingAddress is a compound address field, which a Bulk API query cannot select: select its components instead (ShippingStreet, ShippingCity", false},
		{"location", func(o *salesforcesource.Options) { o.Query = "SELECT Spot__c FROM Site__c" }, nil, "select its components instead (Spot__Latitude__s, Spot__Longitude__s)", false},
		{"unknown field", func(o *salesforcesource.Options) { o.Query = "SELECT Nope__c FROM Account" }, nil, `Account has no field "Nope__c"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := options(srv, "SELECT Id FROM Account")
			tc.opts(o)
			src, err := salesforcesource.Open(context.Background(), tc.env, o)
			if err == nil {
				if tc.atOpen {
					t.Fatalf("Open succeeded, want an error containing %q", tc.want)
				}
				defer src.Close()
				_, err = src.Schema(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestObjectFieldsAndCursor builds the query from object + fields, and
// ANDs a pushed cursor into an existing WHERE: only newer rows come back.
func TestObjectFieldsAndCursor(t *testing.T) {
	srv := startEmulator(t)
	for i, ts := range []string{"2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"} {
		mustAdd(t, srv, "Account", map[string]string{"Name": "A" + string(rune('0'+i)), "Last_Sync__c": ts, "Rating": "Hot"})
	}
	mustAdd(t, srv, "Account", map[string]string{"Name": "Cold one", "Last_Sync__c": "2026-03-01T00:00:00.000Z", "Rating": "Cold"})
	mustAdd(t, srv, "Account", map[string]string{"Name": "No sync", "Rating": "Hot"})
	o := options(srv, "SELECT Name, Last_Sync__c FROM Account WHERE Rating = 'Hot' ORDER BY Name")
	src, err := salesforcesource.Open(context.Background(), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Schema(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := src.JobID()
	src.PushCursor("Last_Sync__c", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC))
	want := "SELECT Name, Last_Sync__c FROM Account WHERE (Rating = 'Hot') AND (Last_Sync__c > 2026-01-15T00:00:00.000Z OR Last_Sync__c = null) ORDER BY Name"
	if q := src.Query(); q != want {
		t.Errorf("query = %q\nwant    %q", q, want)
	}
	rows, _ := readRows(t, src)
	var names []string
	for _, r := range rows {
		names = append(names, r[0].(string))
	}
	if got := strings.Join(names, ","); got != "A1,A2,No sync" {
		t.Errorf("names = %s, want A1,A2,No sync", got)
	}
	if j, _ := srv.Job(first); j.State != "Aborted" && j.State != "JobComplete" {
		t.Errorf("the job made before the cursor was pushed is %s, want Aborted (or JobComplete if it finished first)", j.State)
	}

	// object + fields.
	o = options(srv, "")
	o.Object, o.Fields = "Account", []string{"Name"}
	src2, err := salesforcesource.Open(context.Background(), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	rows, _ = readRows(t, src2)
	if len(rows) != 5 || src2.Query() != "SELECT Name FROM Account" {
		t.Errorf("object+fields read %d rows with %q, want 5 with SELECT Name FROM Account", len(rows), src2.Query())
	}
}

// TestCancelAbortsJob: a Read cancelled while the job runs aborts it.
func TestCancelAbortsJob(t *testing.T) {
	srv := startEmulator(t)
	mustAdd(t, srv, "Account", map[string]string{"Name": "A"})
	if err := srv.SetFaults(salesforcetest.Faults{ProcessingDelay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	src, err := salesforcesource.Open(context.Background(), nil, options(srv, "SELECT Name FROM Account"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want the deadline", err)
	}
	if j, _ := srv.Job(src.JobID()); j.State != "Aborted" {
		t.Errorf("job state after the cancelled read = %s, want Aborted", j.State)
	}
	if _, err := src.Read(context.Background()); err == nil || err == io.EOF {
		t.Errorf("Read after a cancelled read = %v, want the error again", err)
	}
}

// TestFailedJob: a query job that ends Failed (the emulator fails it after
// 2 records) fails the read naming the job and the query, on every Read.
func TestFailedJob(t *testing.T) {
	srv := startEmulator(t)
	for _, n := range []string{"A", "B", "C"} {
		mustAdd(t, srv, "Account", map[string]string{"Name": n})
	}
	if err := srv.SetFaults(salesforcetest.Faults{FailJobAfterRows: 2}); err != nil {
		t.Fatal(err)
	}
	src, err := salesforcesource.Open(context.Background(), nil, options(srv, "SELECT Name FROM Account"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for range 2 {
		_, err := src.Read(context.Background())
		if err == nil || !strings.Contains(err.Error(), "query job "+src.JobID()) || !strings.Contains(err.Error(), "SELECT Name FROM Account") ||
			!strings.Contains(strings.ToLower(err.Error()), "failed") {
			t.Errorf("Read = %v, want the failed job named with its query", err)
		}
	}
	if j, _ := srv.Job(src.JobID()); j.State != "Failed" || j.ErrorMessage != "" {
		t.Errorf("job %s, errorMessage %q; want Failed without a message", j.State, j.ErrorMessage)
	}
}

// TestBadValueRaw: a dead-lettered record's Raw is its CSV line as
// Salesforce sent it, quotes and commas escaped, and the error names the
// field and the job.
func TestBadValueRaw(t *testing.T) {
	srv := startEmulator(t)
	mustAdd(t, srv, "Account", map[string]string{"Name": `Acme, "the" company`, "NumberOfEmployees": "lots"})
	src, err := salesforcesource.Open(context.Background(), nil, options(srv, "SELECT Name, NumberOfEmployees FROM Account"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var drops []pipeline.Drop
	for _, b := range sourcetest.ReadAll(context.Background(), t, src) {
		drops = append(drops, b.Drops()...)
	}
	if len(drops) != 1 {
		t.Fatalf("%d drops, want 1", len(drops))
	}
	d := drops[0]
	if d.Raw != `"Acme, ""the"" company",lots` {
		t.Errorf("Raw = %s", d.Raw)
	}
	var re *pipeline.RowError
	if !errors.As(d.Err, &re) || re.Code != salesforcesource.CodeBadValue || re.Field != "NumberOfEmployees" || re.Ref != src.JobID() ||
		!strings.Contains(re.Error(), `"lots" is not an integer`) {
		t.Errorf("error = %#v (%v)", d.Err, d.Err)
	}
}

// TestPrefetch: while a results page is read the next one is requested
// (so each page's request is made before the previous page is read out);
// the rows come out whole and in order, and a Close in the middle stops
// the request in flight and leaves no goroutine behind.
func TestPrefetch(t *testing.T) {
	srv := startEmulator(t)
	for i := range 1000 {
		mustAdd(t, srv, "Account", map[string]string{"Name": fmt.Sprintf("A%04d", i)})
	}
	read := func(stopAfter int) (names []string) {
		o := options(srv, "SELECT Name FROM Account")
		o.MaxRecords, o.BatchSize = 100, 30
		src, err := salesforcesource.Open(context.Background(), nil, o)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		for stopAfter < 0 || len(names) < stopAfter {
			b, err := src.Read(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range b.Len() {
				names = append(names, b.Row(i)[0].(string))
			}
		}
		return names
	}
	// A goroutine of fetchAhead still running (it may take a moment to
	// return after it signalled its end).
	prefetching := func() bool {
		for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
			buf := make([]byte, 1<<20)
			if !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "fetchAhead") || time.Now().After(deadline) {
				return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "fetchAhead")
			}
		}
	}
	// After the first batch, the second page is requested without any
	// further Read.
	results := func() int { return srv.Requests()["GET /services/data/vXX.X/jobs/query/{id}/results"] }
	o := options(srv, "SELECT Name FROM Account")
	o.MaxRecords, o.BatchSize = 100, 30
	src, err := salesforcesource.Open(context.Background(), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); results() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := results(); n != 2 {
		t.Errorf("%d results requests while the first page is read, want 2 (the next one ahead)", n)
	}
	src.Close()
	names := read(-1)
	if len(names) != 1000 || names[0] != "A0000" || names[999] != "A0999" || !slices.IsSorted(names) {
		t.Fatalf("read %d names (%v ... %v), want A0000..A0999 in order", len(names), names[:1], names[len(names)-1:])
	}
	if n := results(); n != 12 {
		t.Errorf("%d results requests, want 12 (2 before, then one per page, none wasted)", n)
	}
	if prefetching() {
		t.Error("a prefetch goroutine outlived the source read to the end")
	}
	if got := read(250); len(got) < 250 {
		t.Fatalf("read %d, want 250", len(got))
	}
	// 3 pages read and the 4th requested ahead, unless Close stopped that
	// request before it reached the server.
	if n := results(); n != 15 && n != 16 {
		t.Errorf("%d results requests in all, want 15 or 16", n)
	}
	if prefetching() {
		t.Error("a prefetch goroutine outlived Close")
	}
}
