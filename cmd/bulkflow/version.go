package main

import (
	"runtime/debug"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// Version is the bulkflow version, set at build time with
// -ldflags "-X main.Version=v1.2.3". Left at "dev", the module version
// that `go install github.com/bulkflow/bulkflow/cmd/bulkflow@v1.2.3`
// records in the binary is used instead (see init).
var Version = "dev"

// init makes Version the release version when the build recorded one, and
// hands it to the Salesforce client, which sends it to Salesforce as
// Sforce-Call-Options: client=bulkflow/<Version>.
func init() {
	Version = buildVersion(Version, debug.ReadBuildInfo)
	salesforce.Version = Version
}

// buildVersion returns v when the linker set it, else the main module's
// version from the build info when it is a release or pseudo-version, else v.
func buildVersion(v string, read func() (*debug.BuildInfo, bool)) string {
	if v != "dev" {
		return v
	}
	if bi, ok := read(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return v
}
