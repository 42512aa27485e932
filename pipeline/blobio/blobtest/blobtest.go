// Package blobtest gives tests fresh buckets on every storage kind bulkflow
// supports: file:// and mem:// always, and S3, GCS and Azure when their
// test servers run (versitygw, fake-gcs-server and Azurite on loopback,
// started by .ci/blobservers.sh). Source and sink conformance suites loop
// over Stores so every plugin × storage combination is exercised.
//
// Importing blobtest registers the cloud drivers (package clouddrivers), so
// a test that opens s3://, gs:// or azblob:// locations through it needs no
// import of its own.
//
// A cloud store whose server is not configured is skipped with a message
// naming the start command — except under CI=true, where the test fails:
// CI must never skip silently.
package blobtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	_ "github.com/bulkflow/bulkflow/pipeline/blobio/clouddrivers" // s3://, gs://, azblob:// for the cloud stores
)

// Environment variables through which tests find the cloud servers;
// .ci/blobservers.sh start writes them (and credentials) to an env file.
const (
	EnvS3    = "BULKFLOW_TEST_S3_ENDPOINT"  // e.g. http://127.0.0.1:7070 (versitygw)
	EnvGCS   = "BULKFLOW_TEST_GCS_HOST"     // e.g. 127.0.0.1:4443 (fake-gcs-server), no scheme
	EnvAzure = "BULKFLOW_TEST_AZURE_DOMAIN" // e.g. 127.0.0.1:10000 (Azurite)

	// StartHint says how to start the servers.
	StartHint = `start them with: .ci/blobservers.sh start && source "$(.ci/blobservers.sh env)"`
)

// Store is one storage kind under test.
type Store struct {
	// Name is "file", "mem", "S3", "GCS" or "Azure".
	Name string
	// Scheme is the URL scheme.
	Scheme string
	// Cloud reports whether the store is a server (needs Available).
	Cloud bool

	env    string
	setup  func(t testing.TB, v string) string
	create func(ctx context.Context, t testing.TB, b *blob.Bucket, name string)
}

// Bucket is a fresh, empty bucket: locations are Prefix + key + Query.
type Bucket struct {
	Prefix string // "s3://bulkflow-test-123/"
	Query  string // "?endpoint=...", or ""
}

// URL returns the location string of key in the bucket.
func (b Bucket) URL(key string) string { return b.Prefix + key + b.Query }

// Shown returns how bulkflow shows key's location to users (no query).
func (b Bucket) Shown(key string) string { return b.Prefix + key }

func setDefault(t testing.TB, k, v string) {
	if os.Getenv(k) == "" {
		t.Setenv(k, v)
	}
}

// Stores lists every storage kind: file, mem, S3, GCS, Azure.
var Stores = []Store{
	{Name: "file", Scheme: "file"},
	{Name: "mem", Scheme: "mem"},
	{
		Name: "S3", Scheme: "s3", Cloud: true, env: EnvS3,
		setup: func(t testing.TB, endpoint string) string {
			setDefault(t, "AWS_ACCESS_KEY_ID", "testkey")
			setDefault(t, "AWS_SECRET_ACCESS_KEY", "testsecret")
			setDefault(t, "AWS_EC2_METADATA_DISABLED", "true")
			return "?endpoint=" + url.QueryEscape(endpoint) + "&use_path_style=true&region=us-east-1"
		},
		create: func(ctx context.Context, t testing.TB, b *blob.Bucket, name string) {
			var c *s3.Client
			if !b.As(&c) {
				t.Fatalf("s3blob bucket does not expose *s3.Client")
			}
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
			var owned *s3types.BucketAlreadyOwnedByYou
			if err != nil && !errors.As(err, &owned) {
				t.Fatalf("create bucket %s: %v", name, err)
			}
		},
	},
	{
		Name: "GCS", Scheme: "gs", Cloud: true, env: EnvGCS,
		setup: func(t testing.TB, host string) string {
			t.Setenv("STORAGE_EMULATOR_HOST", host) // host:port; gocloud adds http://
			return ""
		},
		create: func(ctx context.Context, t testing.TB, b *blob.Bucket, name string) {
			var c *storage.Client
			if !b.As(&c) {
				t.Fatalf("gcsblob bucket does not expose *storage.Client")
			}
			if err := c.Bucket(name).Create(ctx, "test-project", nil); err != nil && !strings.Contains(err.Error(), "409") {
				t.Fatalf("create bucket %s: %v", name, err)
			}
		},
	},
	{
		Name: "Azure", Scheme: "azblob", Cloud: true, env: EnvAzure,
		setup: func(t testing.TB, domain string) string {
			// Azurite's well-known development account (public, documented).
			setDefault(t, "AZURE_STORAGE_ACCOUNT", "devstoreaccount1")
			setDefault(t, "AZURE_STORAGE_KEY", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
			return "?protocol=http&domain=" + url.QueryEscape(domain)
		},
		create: func(ctx context.Context, t testing.TB, b *blob.Bucket, name string) {
			var c *container.Client
			if !b.As(&c) {
				t.Fatalf("azureblob bucket does not expose *container.Client")
			}
			if _, err := c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
				t.Fatalf("create container %s: %v", name, err)
			}
		},
	},
}

// Available skips t when a cloud store's server is not configured, or
// fails it under CI=true. It returns the server's address value.
func (s Store) Available(t testing.TB) string {
	if !s.Cloud {
		return ""
	}
	v := os.Getenv(s.env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set and CI=true: the %s server must run in CI; %s", s.env, s.Name, StartHint)
		}
		t.Skipf("%s is not set; %s", s.env, StartHint)
	}
	return v
}

var seq atomic.Int64

// NewBucket returns a fresh, empty bucket on the store (skipping or failing
// t as Available does for a cloud store whose server is not running).
func (s Store) NewBucket(t testing.TB) Bucket {
	t.Helper()
	name := fmt.Sprintf("bulkflow-test-%d-%d", time.Now().UnixNano(), seq.Add(1))
	switch s.Scheme {
	case "file":
		return Bucket{Prefix: "file://" + t.TempDir() + "/"}
	case "mem":
		return Bucket{Prefix: "mem://" + name + "/"}
	}
	v := s.Available(t)
	query := s.setup(t, v)
	b := Bucket{Prefix: s.Scheme + "://" + name + "/", Query: query}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loc, err := blobio.Parse("", b.URL(""))
	if err != nil {
		t.Fatalf("parse %s: %v", b.URL(""), err)
	}
	bk, closeB, err := blobio.OpenBucket(ctx, loc)
	if err != nil {
		t.Fatalf("open %s: %v", s.Name, err)
	}
	defer closeB()
	s.create(ctx, t, bk, name)
	return b
}
