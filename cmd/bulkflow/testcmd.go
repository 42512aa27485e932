package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/pipeline/pipetest"
)

const testUsage = `Usage: bulkflow test [FILE|DIR] [--json] [--junit FILE] [--set STAGE.KEY=VALUE ...]

Runs the test cases written beside pipeline files: NAME.test.yaml next to
NAME.yaml, or a tests: list in the pipeline file. Each case feeds input rows
(inline, or a small CSV file) in place of a source stage, runs the pipeline's
transforms (never a sink: nothing is sent or written), and compares the rows
and dead letters (code, field) that reach a stage with the expected ones:

  pipeline: quickstart.yaml
  tests:
    - name: a US account is mapped
      input:
        rows:
          - {account_id: A-1, company: " Acme ", country: us, status: active, is_active: "1"}
      stage: map                 # default: what the sink would receive
      expect:
        rows:
          - {External_Id__c: A-1, Name: Acme, Active__c: true}
        dead_letters: []         # e.g. [{row: 2, code: expr_error, field: Active__c}]

A difference names the row and field. With DIR (default: the current
directory) every test file in it runs.

Exit codes: 0 every case passed, 1 a case failed, 2 a test file or its
pipeline is invalid.

Flags:`

// runTest implements `bulkflow test`.
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the results as JSON (one object with every case) instead of text")
	junit := fs.String("junit", "", "also write the results as JUnit XML to this `FILE` (for CI)")
	var ov overrideFlags
	ov.register(fs, false)
	fs.Usage = func() {
		fmt.Fprintln(stderr, testUsage)
		fs.PrintDefaults()
	}
	var paths []string
	for {
		if err := cli.ParseFlags(fs, args); err != nil {
			return flagExit(err)
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		args = fs.Args()[1:]
	}
	path := "."
	switch len(paths) {
	case 0:
	case 1:
		path = paths[0]
	default:
		fmt.Fprintf(stderr, "bulkflow test: one FILE or DIR, not %d (%s)\n", len(paths), strings.Join(paths, " "))
		return exitUsage
	}
	files, err := pipetest.Find(path)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: %v\n", err)
		return exitUsage
	}
	opts := pipetest.Options{Load: ov.loader()}
	var results []pipetest.Result
	code := exitOK
	for _, f := range files {
		start := time.Now()
		rs, err := pipetest.RunFile(ctx, f, opts)
		if err != nil {
			cli.PrintError(stderr, err)
			code = exitUsage
			results = append(results, pipetest.Result{File: f, Name: "(test file)", Diffs: []string{err.Error()}, Seconds: time.Since(start).Seconds()})
			continue
		}
		for i := range rs {
			rs[i].Seconds = time.Since(start).Seconds() / float64(len(rs))
			if !rs[i].Passed && code == exitOK {
				code = exitFailed
			}
		}
		results = append(results, rs...)
	}
	if *asJSON {
		writeTestJSON(stdout, results, code)
	} else {
		writeTestText(stdout, results)
	}
	if *junit != "" {
		if err := writeJUnit(*junit, results); err != nil {
			fmt.Fprintf(stderr, "bulkflow: --junit: %v\n", err)
			return exitFailed
		}
	}
	return code
}

func writeTestText(w io.Writer, results []pipetest.Result) {
	passed := 0
	for _, r := range results {
		if r.Passed {
			passed++
			fmt.Fprintf(w, "PASS %s: %s\n", r.File, r.Name)
			continue
		}
		fmt.Fprintf(w, "FAIL %s: %s\n", r.File, r.Name)
		for _, d := range r.Diffs {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
	fmt.Fprintf(w, "%d of %d tests passed\n", passed, len(results))
}

func writeTestJSON(w io.Writer, results []pipetest.Result, code int) {
	passed := 0
	for _, r := range results {
		if r.Passed {
			passed++
		}
	}
	if results == nil {
		results = []pipetest.Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(struct {
		Passed   int               `json:"passed"`
		Failed   int               `json:"failed"`
		ExitCode int               `json:"exit_code"`
		Tests    []pipetest.Result `json:"tests"`
	}{passed, len(results) - passed, code, results})
}

// junitSuites is the JUnit XML shape CI systems read.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes results as JUnit XML, one suite per test file.
func writeJUnit(path string, results []pipetest.Result) error {
	var out junitSuites
	index := map[string]int{}
	for _, r := range results {
		i, ok := index[r.File]
		if !ok {
			i = len(out.Suites)
			index[r.File] = i
			out.Suites = append(out.Suites, junitSuite{Name: r.File})
		}
		s := &out.Suites[i]
		c := junitCase{Name: r.Name, Classname: r.File, Time: fmt.Sprintf("%.3f", r.Seconds)}
		if !r.Passed {
			s.Failures++
			text := ""
			for _, d := range r.Diffs {
				text += d + "\n"
			}
			c.Failure = &junitFailure{Message: fmt.Sprintf("%d difference(s)", len(r.Diffs)), Text: text}
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	for i := range out.Suites {
		var t float64
		for _, c := range out.Suites[i].Cases {
			var x float64
			fmt.Sscanf(c.Time, "%f", &x)
			t += x
		}
		out.Suites[i].Time = fmt.Sprintf("%.3f", t)
	}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, errors.Unwrap(err))
	}
	return nil
}
