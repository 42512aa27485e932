package salesforcesource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio/blobtest"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
	_ "github.com/bulkflow/bulkflow/sinks/filesink"
	_ "github.com/bulkflow/bulkflow/sinks/parquetsink"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// exportFields are the Account fields the export tests select.
var exportFields = []string{"Id", "Name", "NumberOfEmployees", "AnnualRevenue", "Description", "SystemModstamp"}

// stampBase is the SystemModstamp of account 0; account i's is i ms later.
var stampBase = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// accountFields returns the fields of account i: commas, quotes, line
// breaks and non-ASCII text in Name and Description, nulls in every
// nullable column, decimals at scale 2.
func accountFields(i int) map[string]string {
	rec := map[string]string{"Name": fmt.Sprintf("Account %07d, Ltd", i),
		"SystemModstamp": stampBase.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")}
	if i%11 != 0 {
		rec["NumberOfEmployees"] = fmt.Sprint(i % 5000)
	}
	if i%13 != 0 {
		rec["AnnualRevenue"] = fmt.Sprintf("%d.%02d", i, i%100)
	}
	switch i % 7 {
	case 0:
		rec["Description"] = fmt.Sprintf("line 1 of %d\nline 2 with \"quotes\", commas", i)
	case 1:
		rec["Description"] = "Société Générale — ünïcode ✓"
	case 2, 3, 4:
		rec["Description"] = "a typical description of some forty bytes"
	}
	return rec
}

// addAccounts stores accounts from..to-1 in srv.
func addAccounts(tb testing.TB, srv *salesforcetest.Server, from, to int) {
	tb.Helper()
	for i := from; i < to; i++ {
		if _, err := srv.AddRecord("Account", accountFields(i)); err != nil {
			tb.Fatal(err)
		}
	}
}

// exportParquetYAML reads exportFields of every Account into one Parquet
// object. Row groups of 4 MiB keep the sink's share of memory the same at
// 100,000 and 1,000,000 records (both fill several).
const exportParquetYAML = `name: sf-export-parquet
stages:
  - name: read
    source:
      type: salesforce
      instance_url: %s
      auth: {access_token: %q}
      object: Account
      fields: [%s]
      max_records: %d
      poll_initial: 5ms
      poll_max: 50ms
  - name: write
    inputs: [read]
    sink: %s
`

// parquetSink writes the export to url as Parquet.
func parquetSink(url string) string {
	return fmt.Sprintf(`{type: parquet, url: %q, decimals: {AnnualRevenue: "18,2"}, row_group_bytes: 4194304}`, url)
}

// exportParquet runs the export pipeline from instanceURL to url and
// returns the number of rows loaded.
func exportParquet(ctx context.Context, instanceURL, token, url string, maxRecords int) (int64, error) {
	return export(ctx, instanceURL, token, parquetSink(url), maxRecords)
}

// export runs the export pipeline from instanceURL into sink (a flow
// mapping) and returns the number of rows loaded.
func export(ctx context.Context, instanceURL, token, sink string, maxRecords int) (int64, error) {
	y := fmt.Sprintf(exportParquetYAML, instanceURL, token, strings.Join(exportFields, ", "), maxRecords, sink)
	g, err := config.Load("sf-export-parquet.yaml", []byte(y), pipeline.DefaultRegistry(), nil)
	if err != nil {
		return 0, fmt.Errorf("load: %w", err)
	}
	plan, err := pipeline.Prepare(ctx, pipeline.DefaultRegistry(), g, &pipeline.Env{RunID: "r1", Pipeline: g.Name})
	if err != nil {
		return 0, fmt.Errorf("prepare: %w", err)
	}
	c := pipelinetest.NewCollector()
	rep, err := plan.Run(ctx, &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener()})
	if err != nil {
		return 0, fmt.Errorf("run: %w (%v)", err, rep.Errors)
	}
	if !rep.Counts.Balanced() || rep.Counts.DeadLettered != 0 || len(c.DeadLetters) != 0 {
		return 0, fmt.Errorf("counts %+v, dead letters %v", rep.Counts, c.DeadLetters)
	}
	return rep.Counts.Loaded, nil
}

// checkParquet reads the Parquet object at url and compares it, row for
// row and value for value, with the emulator's Accounts (in insertion
// order, which a query without ORDER BY returns).
func checkParquet(t *testing.T, srv *salesforcetest.Server, url string) {
	t.Helper()
	ctx := context.Background()
	want := srv.Records("Account")
	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: url, BatchSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	schema, err := src.Schema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(schema.Names(), ","); got != strings.Join(exportFields, ",") {
		t.Fatalf("parquet columns %s, want %s", got, strings.Join(exportFields, ","))
	}
	n, bad := 0, 0
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for r := range b.Len() {
			if n >= len(want) {
				t.Fatalf("the file has more than the emulator's %d records", len(want))
			}
			if d := diffAccount(b.Row(r), want[n]); d != "" && bad < 10 {
				bad++
				t.Errorf("record %d: %s", n, d)
			}
			n++
		}
	}
	if n != len(want) {
		t.Fatalf("the file has %d records, the emulator %d", n, len(want))
	}
}

// diffAccount compares one read-back row with the emulator's record.
func diffAccount(row pipeline.Row, w map[string]string) string {
	var d []string
	str := func(i int, f string) {
		if got, _ := row[i].(string); got != w[f] || row[i] == nil {
			d = append(d, fmt.Sprintf("%s %#v, emulator %q", f, row[i], w[f]))
		}
	}
	str(0, "Id")
	str(1, "Name")
	str(4, "Description") // an empty cell is "" in a string column
	if got, ok := row[2].(int64); w["NumberOfEmployees"] == "" && row[2] != nil || w["NumberOfEmployees"] != "" && (!ok || fmt.Sprint(got) != w["NumberOfEmployees"]) {
		d = append(d, fmt.Sprintf("NumberOfEmployees %#v, emulator %q", row[2], w["NumberOfEmployees"]))
	}
	if got, ok := row[3].(string); w["AnnualRevenue"] == "" && row[3] != nil || w["AnnualRevenue"] != "" && (!ok || got != w["AnnualRevenue"]) {
		d = append(d, fmt.Sprintf("AnnualRevenue %#v, emulator %q", row[3], w["AnnualRevenue"]))
	}
	var i int
	fmt.Sscanf(strings.TrimPrefix(w["Name"], "Account "), "%d", &i)
	stamp := stampBase.Add(time.Duration(i) * time.Millisecond)
	if got, ok := row[5].(time.Time); !ok || !got.Equal(stamp) {
		d = append(d, fmt.Sprintf("SystemModstamp %#v, stored %s", row[5], stamp.Format(time.RFC3339Nano)))
	}
	return strings.Join(d, "; ")
}

// TestExportParquet exports 20,000 emulator Accounts (pages of 3,000)
// through the engine into a Parquet object, on a local path and on the S3
// test server, and reads the object back equal to the emulator's records.
// TestExportLarge (export_large_test.go) is the 1,000,000-record version.
func TestExportParquet(t *testing.T) {
	srv := startEmulatorOpts(t, &salesforcetest.Options{})
	addAccounts(t, srv, 0, 20_000)
	for _, st := range blobtest.Stores {
		if st.Name != "file" && st.Name != "S3" {
			continue
		}
		t.Run(st.Name, func(t *testing.T) {
			url := st.NewBucket(t).URL("accounts.parquet")
			n, err := exportParquet(context.Background(), srv.URL, srv.AccessToken(), url, 3000)
			if err != nil {
				t.Fatal(err)
			}
			if n != 20_000 {
				t.Fatalf("loaded %d rows, want 20000", n)
			}
			checkParquet(t, srv, url)
		})
	}
}
