package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// planAccountsCSV is warehouse input with values that exercise the encoder:
// delimiters, quotes, embedded CRLF and LF, empty cells, floats, dates.
const planAccountsCSV = `id,name,notes,revenue,since
A-01,Acme,"plain",1000.5,2024-01-02
A-02,"Comma, Inc","has ""quotes""",,2024-02-03
A-03,Semi;colon,"line one
line two",12,
A-04,Pipe|Co,,0.25,2023-12-31
A-05,Tab	Co,"crlf` + "\r\n" + `inside",7,2020-02-29
A-06,Ümlaut GmbH,ünïcödé,1e6,2021-06-30
A-07,Seven,#N/A,,2022-01-01
A-08,Eight,"  spaced  ",8,2022-01-08
A-09,Nine,x,9,2022-01-09
A-10,Ten,y,10,2022-01-10
A-11,Eleven,z,11,2022-01-11
`

// writeFiles writes name → content under the current directory.
func writeFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sfPipeline returns a pipeline file reading data/accounts.csv into
// Account on srv, with extra sink option lines.
func sfPipeline(srv *salesforcetest.Server, name, sinkExtra string) string {
	return fmt.Sprintf(`name: %s
dead_letter: out/dead-letter/
stages:
  - name: read
    source:
      type: csv
      url: data/accounts.csv
      columns: {revenue: float, since: date}
  - name: map
    inputs: [read]
    map:
      External_Id__c: id
      Name: name
      Description: notes
      AnnualRevenue: revenue
      SLAExpirationDate__c: since
  - name: load
    inputs: [map]
    sink:
      type: salesforce
      object: Account
      instance_url: %q
      auth: {access_token: %q}
      concurrency: 1
      poll_initial: 5ms
      poll_max: 50ms
%s`, name, srv.URL, srv.AccessToken(), sinkExtra)
}

func readPlanReport(t *testing.T, path string) planReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pr planReport
	if err := json.Unmarshal(b, &pr); err != nil {
		t.Fatal(err)
	}
	return pr
}

// TestPlanMatchesSinkUploads plans a pipeline against an emulator (which
// must see no job), then runs it for real and checks that every job file
// of the plan is byte for byte what the sink uploaded, for several
// layouts and splits.
func TestPlanMatchesSinkUploads(t *testing.T) {
	cases := []struct {
		name, extra string
		jobs        int
		batch       int // the source's batch_size (0: its default)
	}{
		{"rows-lf-comma", "      max_job_rows: 3\n", 4, 0},
		{"bytes-crlf-semicolon", "      line_ending: CRLF\n      column_delimiter: SEMICOLON\n      max_job_bytes: 260\n", 0, 0},
		{"one-job-pipe", "      column_delimiter: PIPE\n", 1, 0},
		// The plan sink takes the source's batches as they come and
		// keeps its cut across them.
		{"rows-source-batches-of-2", "      max_job_rows: 3\n", 4, 2},
		{"bytes-source-batches-of-2", "      max_job_bytes: 260\n", 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			t.Chdir(t.TempDir())
			y := sfPipeline(srv, tc.name, tc.extra+"      api: bulk\n")
			if tc.batch > 0 {
				y = strings.Replace(y, "      url: data/accounts.csv\n", fmt.Sprintf("      url: data/accounts.csv\n      batch_size: %d\n", tc.batch), 1)
				if !strings.Contains(y, "batch_size") {
					t.Fatal("the pipeline has no source url line to add batch_size to")
				}
			}
			writeFiles(t, map[string]string{"data/accounts.csv": planAccountsCSV, "p.yaml": y})

			var stdout, stderr bytes.Buffer
			code := runPlan(context.Background(), []string{"p.yaml", "--out", "planned", "--report", "plan.json"}, &stdout, &stderr)
			if code != exitOK {
				t.Fatalf("plan exit %d\n%s\n%s", code, stdout.String(), stderr.String())
			}
			t.Logf("plan output:\n%s", stdout.String())
			if jobs := srv.Jobs(); len(jobs) != 0 {
				t.Fatalf("plan created %d jobs on the emulator", len(jobs))
			}
			if recs := srv.Records("Account"); len(recs) != 0 {
				t.Fatalf("plan stored %d records", len(recs))
			}
			if !strings.Contains(stdout.String(), "DailyApiRequests remaining") {
				t.Errorf("plan did not compare with /limits:\n%s", stdout.String())
			}
			pr := readPlanReport(t, "plan.json")
			if len(pr.Stages) != 1 || !pr.Limits.Checked || !pr.Limits.Enough {
				t.Fatalf("plan report stages/limits = %+v / %+v", pr.Stages, pr.Limits)
			}
			planned := pr.Stages[0].Jobs
			if tc.jobs > 0 && len(planned) != tc.jobs {
				t.Errorf("planned %d jobs, want %d", len(planned), tc.jobs)
			}
			if tc.jobs == 0 && len(planned) < 3 {
				t.Errorf("max_job_bytes should split into several jobs, got %d", len(planned))
			}
			if pr.APICalls.Total != 7*len(planned)+1 {
				t.Errorf("api calls = %+v for %d jobs", pr.APICalls, len(planned))
			}
			var rows int
			for i, j := range planned {
				want := filepath.Join("planned", "load", fmt.Sprintf("job-%04d.csv", i+1))
				if j.File != want {
					t.Errorf("job %d file %s, want %s", i, j.File, want)
				}
				st, err := os.Stat(j.File)
				if err != nil || st.Size() != j.Bytes {
					t.Errorf("job file %s: %v, size vs %d", j.File, err, j.Bytes)
				}
				rows += j.Rows
			}
			if rows != 11 || pr.Run.Counts.Loaded != 11 {
				t.Errorf("planned rows %d, loaded %d; want 11", rows, pr.Run.Counts.Loaded)
			}

			stdout.Reset()
			stderr.Reset()
			if code := runRun(context.Background(), []string{"p.yaml", "--progress", "none"}, &stdout, &stderr); code != exitOK {
				t.Fatalf("run exit %d\n%s", code, stderr.String())
			}
			jobs := srv.Jobs()
			if len(jobs) != len(planned) {
				t.Fatalf("the sink ran %d jobs, the plan has %d", len(jobs), len(planned))
			}
			for i, j := range jobs {
				got, err := os.ReadFile(planned[i].File)
				if err != nil {
					t.Fatal(err)
				}
				if up := srv.UploadedCSV(j.ID); !bytes.Equal(up, got) {
					t.Errorf("job %d: plan file differs from the upload\n--- plan\n%q\n--- uploaded\n%q", i+1, got, up)
				}
			}
		})
	}
}

// TestPlanEmulatorAndDeadLetters plans a pipeline on "emulator:" (no
// limits check) where a transform fails rows: they go to the plan's own
// dead-letter folder, exit code 3, and a second plan replaces the first's
// job files.
func TestPlanEmulatorAndDeadLetters(t *testing.T) {
	t.Chdir(t.TempDir())
	p := `name: emu
dead_letter: out/dl/
stages:
  - name: read
    source: {type: csv, url: data/accounts.csv}
  - name: map
    inputs: [read]
    map:
      Name: name
      SLAExpirationDate__c: 'sfDate(name == "Nine" ? "bad" : "2024-01-01", "2006-01-02")'
  - name: load
    inputs: [map]
    sink: {type: salesforce, object: Account, api: bulk, instance_url: "emulator:", max_job_rows: 2}
`
	writeFiles(t, map[string]string{"data/accounts.csv": planAccountsCSV, "p.yaml": p})
	var stdout, stderr bytes.Buffer
	code := runPlan(context.Background(), []string{"p.yaml", "--out", "planned"}, &stdout, &stderr)
	if code != exitPartial {
		t.Fatalf("plan exit %d, want %d\n%s\n%s", code, exitPartial, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), `limits: instance_url is "emulator:"`) {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	files, _ := filepath.Glob("planned/load/job-*.csv")
	if len(files) != 5 {
		t.Errorf("job files %v, want 5 (10 rows by 2)", files)
	}
	if dls, _ := filepath.Glob("planned/dead-letter/*/map.csv"); len(dls) != 1 {
		t.Errorf("plan dead letters %v, want one map.csv under planned/dead-letter", dls)
	}
	if _, err := os.Stat("out/dl"); !os.IsNotExist(err) {
		t.Errorf("the plan wrote to the pipeline's dead_letter: %v", err)
	}
	// A re-plan with bigger jobs removes the old files.
	writeFiles(t, map[string]string{"p.yaml": strings.Replace(p, "max_job_rows: 2", "max_job_rows: 100", 1)})
	stdout.Reset()
	if code := runPlan(context.Background(), []string{"p.yaml", "--out", "planned"}, &stdout, &stderr); code != exitPartial {
		t.Fatalf("re-plan exit %d", code)
	}
	if files, _ := filepath.Glob("planned/load/job-*"); len(files) != 1 {
		t.Errorf("after re-plan job files %v, want 1", files)
	}
}

// TestPlanUsage covers the usage errors.
func TestPlanUsage(t *testing.T) {
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{"data/accounts.csv": planAccountsCSV, "csv.yaml": `name: c
stages:
  - name: read
    source: {type: csv, url: data/accounts.csv}
  - name: write
    inputs: [read]
    sink: {type: csv, url: out/x.csv}
`})
	var stdout, stderr bytes.Buffer
	if code := runPlan(context.Background(), nil, &stdout, &stderr); code != exitUsage {
		t.Errorf("no file: exit %d", code)
	}
	if code := runPlan(context.Background(), []string{"csv.yaml"}, &stdout, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "no salesforce sink") {
		t.Errorf("no salesforce sink: exit %d\n%s", code, stderr.String())
	}
}

// TestPlanIncremental: plan reads from an incremental source's watermark
// without moving it: a plan after a run plans only the newer rows, and
// so does the run after the plan.
func TestPlanIncremental(t *testing.T) {
	t.Chdir(t.TempDir())
	p := `name: inc
dead_letter: out/dl/
state: state/
stages:
  - name: read
    source: {type: csv, url: data/accounts.csv, columns: {day: date}}
    incremental: {cursor: day}
  - name: map
    inputs: [read]
    map: {Name: name}
  - name: load
    inputs: [map]
    sink: {type: salesforce, object: Account, instance_url: "emulator:"}
`
	writeFiles(t, map[string]string{"p.yaml": p, "data/accounts.csv": "name,day\nA,2024-01-01\nB,2024-01-02\n"})
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 2 {
		t.Fatalf("run 1: exit %d counts %+v", code, rep.Counts)
	}
	watermark := "state/inc/docs/watermark.read.json"
	before, err := os.ReadFile(watermark)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, map[string]string{"data/accounts.csv": "name,day\nA,2024-01-01\nB,2024-01-02\nC,2024-01-03\n"})
	for range 2 {
		var stdout, stderr bytes.Buffer
		code := runPlan(context.Background(), []string{"p.yaml", "--out", "planned"}, &stdout, &stderr)
		if out := stdout.String() + stderr.String(); code != exitOK || !strings.Contains(out, "read 3, planned 1, filtered 2") {
			t.Fatalf("plan: exit %d\n%s", code, out)
		}
	}
	if after, _ := os.ReadFile(watermark); !bytes.Equal(before, after) {
		t.Errorf("plan moved the watermark: %s -> %s", before, after)
	}
	if code, rep := runReport(t, "p.yaml"); code != exitOK || rep.Counts.Loaded != 1 {
		t.Errorf("run 2: exit %d counts %+v", code, rep.Counts)
	}
}

// fakePlanner is sink options that can be planned, under any type name.
type fakePlanner struct{ object string }

func (f *fakePlanner) PlanTarget() pipeline.PlanTarget {
	return pipeline.PlanTarget{Object: f.object, Operation: "insert", Instance: "http://127.0.0.1:1"}
}

func (f *fakePlanner) OpenPlan(context.Context, *pipeline.Env, *pipeline.Schema, string) (pipeline.PlanSink, error) {
	return nil, fmt.Errorf("fakePlanner %s: not opened in this test", f.object)
}

// TestPlanStagesByCapability: plan swaps the sinks whose options are a
// pipeline.Planner, whatever their type name, counts the others (unless
// --write-files), and without a Planner names the registry's plannable
// sink types.
func TestPlanStagesByCapability(t *testing.T) {
	graph := func(sinkOpts ...any) *pipeline.Graph {
		g := &pipeline.Graph{Stages: []pipeline.StageSpec{{Name: "read", Kind: pipeline.KindSource, Type: "csv"}}}
		for i, o := range sinkOpts {
			g.Stages = append(g.Stages, pipeline.StageSpec{Name: fmt.Sprintf("s%d", i), Kind: pipeline.KindSink,
				Type: fmt.Sprintf("type%d", i), Options: o, Inputs: []string{"read"}})
		}
		return g
	}
	reg := &pipeline.Registry{}
	reg.RegisterSink("warehouse", pipeline.Spec{NewOptions: func() any { return &fakePlanner{} }},
		func(context.Context, *pipeline.Env, any, *pipeline.Schema) (pipeline.Sink, error) { return nil, nil })
	reg.RegisterSink("file", pipeline.Spec{NewOptions: func() any { return &struct{}{} }},
		func(context.Context, *pipeline.Env, any, *pipeline.Schema) (pipeline.Sink, error) { return nil, nil })
	for _, tc := range []struct {
		name       string
		opts       []any
		writeFiles bool
		wantTypes  []string // sink stage types after the swap
		wantObjs   []string // planned stages' objects
		wantErr    string
	}{
		{"planner and file", []any{&fakePlanner{"Account"}, &struct{}{}}, false, []string{planSinkType, planDiscardType}, []string{"Account"}, ""},
		{"write files", []any{&struct{}{}, &fakePlanner{"Contact"}}, true, []string{"type0", planSinkType}, []string{"Contact"}, ""},
		{"two planners", []any{&fakePlanner{"A"}, &fakePlanner{"B"}}, false, []string{planSinkType, planSinkType}, []string{"A", "B"}, ""},
		{"no planner", []any{&struct{}{}}, false, nil, nil, "the pipeline has no warehouse sink: nothing to plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := graph(tc.opts...)
			stages, discarded, err := planStages(g, reg, "out", tc.writeFiles)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var types, objs []string
			for _, st := range g.Stages[1:] {
				types = append(types, st.Type)
				if po, ok := st.Options.(*planStageOptions); ok && po.Dir != filepath.Join("out", st.Name) {
					t.Errorf("stage %s: dir %s", st.Name, po.Dir)
				}
			}
			for _, ps := range stages {
				objs = append(objs, ps.Object)
				if ps.Operation != "insert" {
					t.Errorf("stage %s: operation %q", ps.Stage, ps.Operation)
				}
			}
			if fmt.Sprint(types) != fmt.Sprint(tc.wantTypes) || fmt.Sprint(objs) != fmt.Sprint(tc.wantObjs) {
				t.Errorf("types %v objects %v, want %v %v", types, objs, tc.wantTypes, tc.wantObjs)
			}
			if len(discarded) != strings.Count(fmt.Sprint(types), planDiscardType) {
				t.Errorf("discarded %v for types %v", discarded, types)
			}
		})
	}
}

// TestPlanShowsPath: the plan says which path each Salesforce sink would
// take and what it costs: api auto plans a small input as REST requests
// (one call each), a larger one (above rest_max_rows) as Bulk jobs.
func TestPlanShowsPath(t *testing.T) {
	t.Chdir(t.TempDir())
	const p = `name: path
stages:
  - name: read
    source: {type: csv, url: data/accounts.csv}
  - name: map
    inputs: [read]
    map: {Name: name}
  - name: load
    inputs: [map]
    sink: {type: salesforce, object: Account, instance_url: "emulator:"%s}
`
	for _, tc := range []struct {
		extra, file, stdout, stderr string
	}{
		{"", "planned/load/rest-0001.json", "  1 REST collections requests x 1 = 1\n  auth: 1 token request(s), one per sink\n  total: at least 2\n",
			"  load: REST collections (api auto: at most rest_max_rows 2000 rows): 1 requests (11 records), 2 API calls\n"},
		{", rest_max_rows: 5", "planned/load/job-0001.csv", "  1 jobs x (create 1 + upload 1 + close 1 + poll >=1 + results 3) = 7\n  auth: 1 token request(s), one per sink\n  total: at least 8\n",
			"  load: Bulk API 2.0 (api auto: more than rest_max_rows 5 rows): 1 jobs (11 rows), at least 8 API calls\n"},
	} {
		writeFiles(t, map[string]string{"data/accounts.csv": planAccountsCSV, "p.yaml": fmt.Sprintf(p, tc.extra)})
		var stdout, stderr bytes.Buffer
		if code := runPlan(context.Background(), []string{"p.yaml", "--out", "planned"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("plan%s: exit %d\n%s\n%s", tc.extra, code, stdout.String(), stderr.String())
		}
		if _, err := os.Stat(tc.file); err != nil || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("plan%s: %v\nstdout:\n%s\nstderr:\n%s\nwant in stdout:\n%s\nwant in stderr:\n%s", tc.extra, err, stdout.String(), stderr.String(), tc.stdout, tc.stderr)
		}
	}
}

// --json (and --report -) put the plan report, and nothing else, on
// stdout; the human-readable plan goes to stderr.
func TestPlanJSON(t *testing.T) {
	t.Chdir(t.TempDir())
	p := `name: emu
dead_letter: out/dl/
stages:
  - name: read
    source: {type: csv, url: data/accounts.csv}
  - name: map
    inputs: [read]
    map: {Name: name}
  - name: load
    inputs: [map]
    sink: {type: salesforce, object: Account, api: bulk, instance_url: "emulator:", max_job_rows: 4}
`
	writeFiles(t, map[string]string{"data/accounts.csv": planAccountsCSV, "p.yaml": p})
	for _, flagArgs := range [][]string{{"--json"}, {"--report", "-"}} {
		var stdout, stderr bytes.Buffer
		code := runPlan(context.Background(), append([]string{"p.yaml", "--out", "planned"}, flagArgs...), &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s", flagArgs, code, stderr.String())
		}
		var pr planReport
		if err := json.Unmarshal(stdout.Bytes(), &pr); err != nil {
			t.Fatalf("%v: stdout is not the JSON plan report: %v\n%s", flagArgs, err, stdout.String())
		}
		if pr.Pipeline != "emu" || pr.Run == nil || pr.Run.Counts.Read != 11 || pr.Run.Counts.Loaded != 11 || len(pr.Stages) != 1 {
			t.Errorf("%v: report %+v", flagArgs, pr)
		}
		if !strings.Contains(stderr.String(), "Nothing was sent to Salesforce") {
			t.Errorf("%v: the human-readable plan is not on stderr:\n%s", flagArgs, stderr.String())
		}
	}
}
