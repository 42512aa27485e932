package main

import (
	"runtime/debug"
	"testing"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

func TestBuildVersion(t *testing.T) {
	info := func(v string, ok bool) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			if !ok {
				return nil, false
			}
			return &debug.BuildInfo{Main: debug.Module{Path: "github.com/bulkflow/bulkflow", Version: v}}, true
		}
	}
	for _, tc := range []struct {
		name, linker string
		read         func() (*debug.BuildInfo, bool)
		want         string
	}{
		{"ldflags win", "v1.4.0", info("v1.3.0", true), "v1.4.0"},
		{"go install @version", "dev", info("v1.3.0", true), "v1.3.0"},
		{"pseudo-version", "dev", info("v0.0.0-20261205080000-abcdef123456", true), "v0.0.0-20261205080000-abcdef123456"},
		{"local build", "dev", info("(devel)", true), "dev"},
		{"no build info", "dev", info("", false), "dev"},
	} {
		if got := buildVersion(tc.linker, tc.read); got != tc.want {
			t.Errorf("%s: buildVersion(%q) = %q, want %q", tc.name, tc.linker, got, tc.want)
		}
	}
	// The client sends the same version the binary reports.
	if salesforce.Version != Version {
		t.Errorf("salesforce.Version = %q, main.Version = %q: the client would send another version than `bulkflow version` prints", salesforce.Version, Version)
	}
}
