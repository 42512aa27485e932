package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

// TestLockRun takes a run's lock twice at once, on a local directory
// (flock) and on a blob store (the state store's lease): the second fails
// with errRunLocked naming the holder; after a release the lock is free,
// and another run id is never blocked.
func TestLockRun(t *testing.T) {
	for _, tc := range []struct{ name, loc, want string }{
		{"local flock", t.TempDir(), "run.lock"},
		{"blob lease", "mem://runlock-test/state/", "holds its lease"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			lost := func(err error) { t.Errorf("lease lost: %v", err) }
			release, err := lockRun(ctx, tc.loc, "p", "", "run-1", lost)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lockRun(ctx, tc.loc, "p", "", "run-1", lost); !errors.Is(err, errRunLocked) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("second lock: %v, want errRunLocked naming %q", err, tc.want)
			}
			other, err := lockRun(ctx, tc.loc, "p", "", "run-2", lost)
			if err != nil {
				t.Fatalf("another run id: %v", err)
			}
			other()
			release()
			again, err := lockRun(ctx, tc.loc, "p", "", "run-1", lost)
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			again()
		})
	}
	if release, err := lockRun(context.Background(), "", "p", "", "run-1", nil); err != nil {
		t.Fatalf("no place: %v", err)
	} else {
		release()
	}
}

// TestRunLedgerPlaces loads pipelines with real sinks and checks what the
// CLI finds through pipeline.RunLedger: the run lock is beside the first
// ledger that is on, else in the state store of a pipeline that keeps
// state, else nowhere (a csv sink keeps no run records); provenance goes
// to every sink that can keep a ledger, with source fingerprints only when
// a ledger is on.
func TestRunLedgerPlaces(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFiles(t, map[string]string{"in.csv": "Name,day\nA,2026-01-02\n"})
	const stateLoc = "state/"
	for _, tc := range []struct {
		name, source, sinks string
		// lock is the wanted runLockPlace, "loc|name|sub".
		lock string
		// ledgered is how many sinks get provenance; sources whether they
		// get source fingerprints.
		ledgered int
		sources  bool
	}{
		{name: "csv sink",
			source: `{type: csv, url: in.csv}`,
			sinks:  `{type: csv, url: out.csv}`,
			lock:   "||"},
		{name: "csv sink, incremental source",
			source: "{type: csv, url: in.csv, columns: {day: date}}\n    incremental: {cursor: day}",
			sinks:  `{type: csv, url: out.csv}`,
			lock:   stateLoc + "|p|run-locks"},
		{name: "salesforce sink, ledger on",
			source: `{type: csv, url: in.csv}`,
			sinks:  `{type: salesforce, object: Account, instance_url: "emulator:", ledger: led/}`,
			lock:   "led/|p|", ledgered: 1, sources: true},
		{name: "salesforce sink, ledger off, then a csv sink",
			source: `{type: csv, url: in.csv}`,
			sinks:  "{type: salesforce, object: Account, instance_url: \"emulator:\", ledger: \"off\"}\n  - name: copy\n    inputs: [read]\n    sink: {type: csv, url: out.csv}",
			lock:   "||", ledgered: 1},
		{name: "csv sink, then a salesforce sink whose ledger is on",
			source: `{type: csv, url: in.csv}`,
			sinks:  "{type: csv, url: out.csv}\n  - name: load\n    inputs: [read]\n    sink: {type: salesforce, object: Account, instance_url: \"emulator:\", ledger: led2/}",
			lock:   "led2/|p|", ledgered: 1, sources: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "p.yaml")
			y := "name: p\nstages:\n  - name: read\n    source: " + tc.source + "\n  - name: write\n    inputs: [read]\n    sink: " + tc.sinks + "\n"
			if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := config.LoadFile(file, pipeline.DefaultRegistry())
			if err != nil {
				t.Fatalf("%v\n%s", err, y)
			}
			loc, name, sub := runLockPlace(g, stateLoc, g.Name)
			if got := loc + "|" + name + "|" + sub; got != tc.lock {
				t.Errorf("runLockPlace = %q, want %q", got, tc.lock)
			}
			setProvenance(context.Background(), g, &pipeline.Env{BaseDir: dir})
			var ledgered int
			for _, s := range g.Stages {
				o, ok := s.Options.(*salesforcesink.Options)
				if !ok {
					continue
				}
				ledgered++
				if p := o.Provenance; p == nil || p.PipelineFile != g.File || p.PipelineDigest != g.FileHash || (len(p.Sources) == 1) != tc.sources {
					t.Errorf("sink %s: provenance %+v, want file %s, digest %s, source fingerprints %v", s.Name, p, g.File, g.FileHash, tc.sources)
				}
			}
			if ledgered != tc.ledgered {
				t.Errorf("%d sinks with provenance, want %d", ledgered, tc.ledgered)
			}
		})
	}
}

// TestResumeWithoutLedger: a csv sink keeps no run records (it is no
// pipeline.RunLedger), so --resume knows a run of it only by its dead
// letters, report or run history, and takes no ledger lock: an id none of
// them holds, such as a clean run's, is refused (exit 2, nothing written)
// without looking for a ledger; a run that dead-lettered rows is known by
// its manifest and resumes, writing its rows again.
func TestResumeWithoutLedger(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	writeFiles(t, map[string]string{
		"in.csv": "Name,n\nA,1\nB,2\nC,3\n",
		"p.yaml": "name: nol\ndead_letter: dl/\nstages:\n  - name: read\n    source: {type: csv, url: in.csv, columns: {n: int}}\n" +
			"  - name: write\n    inputs: [read]\n    sink: {type: csv, url: out.csv}\n",
	})
	g, err := config.LoadFile("p.yaml", pipeline.DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if loc, _, _ := runLockPlace(g, "state/", g.Name); loc != "" {
		t.Fatalf("a csv sink without state is locked in %q", loc)
	}
	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := runRun(context.Background(), append([]string{"p.yaml", "--progress", "none"}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	runID := func(report string) string {
		var rep resumeReport
		if err := json.Unmarshal(must(os.ReadFile(report)), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.RunID
	}
	refused := func(id string) {
		t.Helper()
		os.Remove("out.csv")
		code, out := run("--resume", id)
		if code != exitUsage || !strings.Contains(out, "no record of that run") || strings.Contains(out, "ledger ") {
			t.Fatalf("--resume %s: exit %d, want 2 refusing it without a ledger to look in\n%s", id, code, out)
		}
		if _, err := os.Stat("out.csv"); !os.IsNotExist(err) {
			t.Fatalf("a refused resume wrote out.csv (%v)", err)
		}
	}
	refused("20260101T120000Z-1a2b3c4d")
	if code, out := run("--report", "clean.json"); code != exitOK {
		t.Fatalf("clean run: exit %d\n%s", code, out)
	}
	refused(runID("clean.json"))
	// A row the source cannot type is dead-lettered: the run's manifest
	// is a record of it.
	writeFiles(t, map[string]string{"in.csv": "Name,n\nA,1\nB,x\nC,3\n"})
	code, out := run("--report", "partial.json")
	if code == exitOK {
		t.Fatalf("run with a bad row: exit 0\n%s", out)
	}
	id := runID("partial.json")
	os.Remove("out.csv")
	if code, out := run("--resume", id); strings.Contains(out, "no record of that run") || code == exitUsage {
		t.Fatalf("--resume %s of a run with dead letters: exit %d\n%s", id, code, out)
	}
	if data, err := os.ReadFile("out.csv"); err != nil || string(data) != "Name,n\nA,1\nC,3\n" {
		t.Errorf("the resume wrote %q (%v), want every good row again", data, err)
	}
}
