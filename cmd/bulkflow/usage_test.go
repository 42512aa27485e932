package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCommandLineHelp covers the entry points a new user types first:
// a mistyped command gets a suggestion, `help CMD` is `CMD --help`,
// `--version` is `version`.
func TestCommandLineHelp(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // substring expected on stdout
		stderr     string // substring expected on stderr
		notInError string
	}{
		{args: []string{"runn", "x.yaml"}, code: exitUsage, stderr: `unknown command "runn" (did you mean "run"?)`},
		{args: []string{"valdiate"}, code: exitUsage, stderr: `(did you mean "validate"?)`},
		{args: []string{"frobnicate"}, code: exitUsage, stderr: `unknown command "frobnicate"`, notInError: "did you mean"},
		{args: []string{"--version"}, code: exitOK, stdout: "bulkflow " + Version},
		{args: []string{"help"}, code: exitOK, stdout: "Commands:"},
		{args: []string{"help", "run"}, code: exitOK, stderr: "Usage: bulkflow run FILE"},
		{args: nil, code: exitUsage, stdout: "Commands:"},
	} {
		var stdout, stderr bytes.Buffer
		code := realMain(tc.args, &stdout, &stderr)
		name := strings.Join(tc.args, " ")
		if code != tc.code {
			t.Errorf("bulkflow %s: exit %d, want %d (stderr %q)", name, code, tc.code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("bulkflow %s: stdout %q does not contain %q", name, stdout.String(), tc.stdout)
		}
		if !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("bulkflow %s: stderr %q does not contain %q", name, stderr.String(), tc.stderr)
		}
		if tc.notInError != "" && strings.Contains(stderr.String(), tc.notInError) {
			t.Errorf("bulkflow %s: stderr %q contains %q", name, stderr.String(), tc.notInError)
		}
	}
}
