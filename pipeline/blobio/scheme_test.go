package blobio

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestUnknownScheme: a location whose scheme has no driver fails with an
// error that names the registered schemes and, for the cloud schemes, the
// package the application must import.
func TestUnknownScheme(t *testing.T) {
	tests := []struct {
		loc  string
		want []string
	}{
		{"s3://bkt/k.csv", []string{`scheme "s3"`, "registered: ", "file", "mem", "import _ \"github.com/bulkflow/bulkflow/pipeline/blobio/clouddrivers\""}},
		{"gs://bkt/k.csv", []string{`scheme "gs"`, "clouddrivers"}},
		{"azblob://ctr/k.csv", []string{`scheme "azblob"`, "clouddrivers"}},
		{"ftp://host/k.csv", []string{`scheme "ftp"`, "registered: ", "check the location's scheme"}},
	}
	for _, tc := range tests {
		t.Run(tc.loc, func(t *testing.T) {
			l, err := Parse("", tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			// This test binary links the cloud drivers (cloud_test.go imports
			// blobtest), so s3/gs/azblob are built as an application without
			// them would see them; ftp goes through OpenBucket for real.
			if l.Scheme == "ftp" {
				_, err = NewReader(context.Background(), l)
			} else {
				err = unknownScheme(l)
			}
			if !errors.Is(err, ErrUnknownScheme) {
				t.Fatalf("err = %v, want ErrUnknownScheme", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "clouddrivers") != (l.Scheme != "ftp") {
				t.Errorf("error %q: clouddrivers hint only for cloud schemes", err)
			}
		})
	}
}

// TestEngineLinksNoCloudSDK: the engine (package pipeline and this package)
// must not depend on the AWS, GCS or Azure SDKs; only applications that
// import clouddrivers do (issue 17: every plugin and test binary linked them).
func TestEngineLinksNoCloudSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool on PATH: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/bulkflow/bulkflow/pipeline", "github.com/bulkflow/bulkflow/pipeline/blobio").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, sdk := range []string{"github.com/aws/", "cloud.google.com/", "github.com/Azure/", "gocloud.dev/blob/s3blob", "gocloud.dev/blob/gcsblob", "gocloud.dev/blob/azureblob"} {
			if strings.HasPrefix(d, sdk) {
				t.Errorf("the engine depends on %s; cloud drivers belong in package clouddrivers", d)
			}
		}
	}
	if len(deps) > 400 {
		t.Errorf("the engine depends on %d packages, want ≤ 400", len(deps))
	}
}
