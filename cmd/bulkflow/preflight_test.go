package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/obs"
	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// runPreflight prepares file like `bulkflow validate` and runs preflight
// on it, returning its exit code and messages.
func runPreflight(t *testing.T, file string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	plan, g, env, code := prepare(ctx, file, &stderr)
	if code != exitOK {
		t.Fatalf("prepare %s: exit %d\n%s", file, code, stderr.String())
	}
	defer plan.Close()
	err := preflight(ctx, g, plan, env, &stderr)
	return preflightExit(err), stderr.String()
}

const contactsCSV = "id,first,last,email\nC-1,Ada,Lovelace,ada@example.com\n"

// contactPipeline maps contacts.csv to Contact with the given map lines
// and sink lines.
func contactPipeline(mapLines, sinkLines string) string {
	return `name: pre
stages:
  - name: read
    source: {type: csv, url: data/contacts.csv}
  - name: map
    inputs: [read]
    map:
` + mapLines + `
  - name: load
    inputs: [map]
    sink:
      type: salesforce
` + sinkLines
}

// TestPreflightFindings reports an unknown field and a missing required
// field against the in-process emulator, each on its own line naming the
// sink stage's file:line:col and the field; exit code 2.
func TestPreflightFindings(t *testing.T) {
	t.Chdir(t.TempDir())
	writeFiles(t, map[string]string{
		"data/contacts.csv": contactsCSV,
		"p.yaml": contactPipeline("      FirstName: first\n      Emial__c: email\n",
			"      object: Contact\n      instance_url: \"emulator:\"\n"),
	})
	code, out := runPreflight(t, "p.yaml")
	if code != exitUsage {
		t.Errorf("exit %d, want 2\n%s", code, out)
	}
	for _, want := range []string{
		`bulkflow: p.yaml:11:5: stage "load": pre-flight: column Emial__c: Contact has no such field`,
		`bulkflow: p.yaml:11:5: stage "load": pre-flight: Contact requires LastName on insert; no column provides it`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing line %q in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("%d lines, want 2:\n%s", n, out)
	}
}

// TestPreflightRemote checks a sink on a running emulator by URL: a clean
// pipeline passes, an unknown object and an upsert on a field that is not
// an External ID are reported, and an unreachable org is exit code 1.
func TestPreflightRemote(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	t.Chdir(t.TempDir())
	conn := fmt.Sprintf("      instance_url: %q\n      auth: {access_token: %q}\n", srv.URL, srv.AccessToken())
	writeFiles(t, map[string]string{
		"data/contacts.csv": contactsCSV,
		"ok.yaml": contactPipeline("      FirstName: first\n      LastName: last\n      Email: email\n      External_Id__c: id\n",
			"      object: Contact\n      operation: upsert\n      external_id_field: External_Id__c\n"+conn),
		"object.yaml": contactPipeline("      LastName: last\n", "      object: Contatc\n"+conn),
		"extid.yaml": contactPipeline("      LastName: last\n      Email: email\n",
			"      object: Contact\n      operation: upsert\n      external_id_field: Email\n"+conn),
		// An Id column on insert.
		"types.yaml": contactPipeline("      LastName: last\n      Id: id\n", "      object: Contact\n"+conn),
		"down.yaml": contactPipeline("      LastName: last\n",
			"      object: Contact\n      instance_url: \"http://127.0.0.1:1\"\n      auth: {access_token: x}\n"),
	})
	if code, out := runPreflight(t, "ok.yaml"); code != exitOK || out != "" {
		t.Errorf("ok.yaml: exit %d\n%s", code, out)
	}
	if code, out := runPreflight(t, "object.yaml"); code != exitUsage || !strings.Contains(out, `p`+`re-flight: object Contatc: the org has no such object (did you mean Contact?)`) {
		t.Errorf("object.yaml: exit %d\n%s", code, out)
	}
	if code, out := runPreflight(t, "extid.yaml"); code != exitUsage ||
		!strings.Contains(out, "extid.yaml:11:5: stage \"load\": pre-flight: external_id_field Email is not an External ID field of Contact") {
		t.Errorf("extid.yaml: exit %d\n%s", code, out)
	}
	if code, out := runPreflight(t, "types.yaml"); code != exitUsage ||
		!strings.Contains(out, "types.yaml:11:5: stage \"load\": pre-flight: column Id: insert creates records") {
		t.Errorf("types.yaml: exit %d\n%s", code, out)
	}
	if code, out := runPreflight(t, "down.yaml"); code != exitFailed || !strings.Contains(out, "down.yaml:10:5") {
		t.Errorf("down.yaml: exit %d\n%s", code, out)
	}
	if len(srv.Jobs()) != 0 {
		t.Error("pre-flight created jobs")
	}
}

// TestPreflightExamplePipelines checks that every example pipeline passes
// the pre-flight, so wiring it into `bulkflow validate` keeps
// TestPipelinesValidate green.
func TestPreflightExamplePipelines(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "pipelines/*.yaml"))
	files = slices.DeleteFunc(files, config.IsTestFile) // bulkflow test files
	t.Chdir(root)
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if !pgExampleEnv(t, rel) {
			continue
		}
		if code, out := runPreflight(t, rel); code != exitOK {
			t.Errorf("%s: exit %d\n%s", rel, code, out)
		}
	}
}

// fakePreflighter is sink options that can pre-flight, under any type
// name: mode "problems" finds two, "down" cannot reach the destination.
type fakePreflighter struct {
	Mode string `yaml:"mode"`
}

func (f *fakePreflighter) Preflight(ctx context.Context, env *pipeline.Env, in *pipeline.Schema) error {
	switch f.Mode {
	case "problems":
		return &pipeline.PreflightError{Sink: "fake sink", Target: "insert Thing", Problems: []string{"column first: bad", "column last: worse"}}
	case "down":
		return errors.New("the destination did not answer")
	}
	if in == nil || in.Index("first") < 0 {
		return fmt.Errorf("pre-flight got schema %v, want the sink's input", in)
	}
	return nil
}

// TestPreflightByCapability: pre-flight runs for every sink whose options
// are a pipeline.Preflighter, whatever the type name, with the sink's
// input schema; problems are reported per line at the stage (exit 2), an
// unreachable destination exits 1, and other sinks are not checked.
func TestPreflightByCapability(t *testing.T) {
	reg := pipeline.DefaultRegistry().Clone()
	reg.RegisterSink("checked", pipeline.Spec{NewOptions: func() any { return &fakePreflighter{} }},
		pipeline.TypedSink("checked", func(context.Context, *pipeline.Env, *fakePreflighter, *pipeline.Schema) (*discardSink, error) {
			return &discardSink{}, nil
		}))
	for _, tc := range []struct {
		mode     string
		wantCode int
		want     []string // stderr lines
	}{
		{"", exitOK, nil},
		{"problems", exitUsage, []string{
			`bulkflow: p.yaml:5:5: stage "load": pre-flight: column first: bad`,
			`bulkflow: p.yaml:5:5: stage "load": pre-flight: column last: worse`}},
		{"down", exitFailed, []string{`bulkflow: p.yaml:5:5: stage "load": pre-flight: the destination did not answer`}},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			t.Chdir(t.TempDir())
			writeFiles(t, map[string]string{"data/contacts.csv": contactsCSV, "p.yaml": `name: pre
stages:
  - name: read
    source: {type: csv, url: data/contacts.csv}
  - name: load
    inputs: [read]
    sink:
      type: checked
      mode: "` + tc.mode + `"
  - name: copy
    inputs: [read]
    sink: {type: csv, url: out/copy.csv}
`})
			ctx := context.Background()
			g, err := config.LoadFile("p.yaml", reg)
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			env := newEnv(g, obs.LogOptions{}, &stderr)
			plan, err := pipeline.Prepare(ctx, reg, g, env)
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close()
			code := preflightExit(preflight(ctx, g, plan, env, &stderr))
			var got []string
			if s := strings.TrimSpace(stderr.String()); s != "" {
				got = strings.Split(s, "\n")
			}
			if code != tc.wantCode || !slices.Equal(got, tc.want) {
				t.Errorf("exit %d, stderr\n%s\nwant exit %d, %q", code, stderr.String(), tc.wantCode, tc.want)
			}
		})
	}
}
