package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantErr  string // "" = parses
		wantHint string
	}{
		{[]string{"--report", "r.json", "file.yaml"}, "", ""},
		{[]string{"file.yaml", "--offline"}, "", ""},
		{[]string{"--reprot", "r.json"}, "unknown flag --reprot", "did you mean --report?"},
		{[]string{"-ofline"}, "unknown flag --ofline", "did you mean --offline?"},
		{[]string{"--report=x", "--zzzzzz"}, "unknown flag --zzzzzz", ""},
		// A flag's value is not a flag, even when it starts with a dash.
		{[]string{"--report", "--not-a-flag", "file.yaml"}, "", ""},
		{[]string{"--", "--reprot"}, "", ""},
		{[]string{"--offline", "--reprot"}, "unknown flag --reprot", "did you mean --report?"},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		fs.String("report", "", "")
		fs.Bool("offline", false, "")
		err := ParseFlags(fs, tc.args)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.wantHint) || !strings.Contains(err.Error(), "bulkflow help run") {
			t.Errorf("%q: err %v, want %q with %q", tc.args, err, tc.wantErr, tc.wantHint)
		}
		if !strings.Contains(out.String(), tc.wantErr) {
			t.Errorf("%q: printed %q", tc.args, out.String())
		}
	}
}
