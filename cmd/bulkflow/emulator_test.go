package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestParseEmulatorFlags: every flag of `bulkflow emulator` lands in its
// emulator option (or the address), the defaults are the emulator's, and
// bad arguments and unreadable files are usage errors.
func TestParseEmulatorFlags(t *testing.T) {
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(pemFile, []byte("-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	all := []string{"--addr", "127.0.0.1:9", "--allow-non-loopback", "--token", "tok", "--client-id", "cid",
		"--client-secret", "cs", "--username", "u@x", "--password", "pw", "--jwt-cert", pemFile, "--seed", "7",
		"--batch-size", "11", "--processing-rate", "2.5", "--processing-delay", "3s", "--fail-5xx-rate", "0.1",
		"--lock-error-rate", "0.2", "--drop-connection-rate", "0.3", "--token-ttl", "4m", "--token-max-uses", "5",
		"--fail-job-after-rows", "6", "--request-limit", "1000", "--request-limit-next", "8"}
	wantAll := &salesforcetest.Options{AccessToken: "tok", ClientID: "cid", ClientSecret: "cs", Username: "u@x",
		Password: "pw", Seed: 7, BatchSize: 11, ProcessingRate: 2.5, APIRequestLimit: 1000, AllowNonLoopback: true,
		JWTCertificatePEM: []byte("-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n"),
		Faults: salesforcetest.Faults{FailRate5xx: 0.1, RequestLimitNext: 8, TokenTTL: 4 * time.Minute, TokenMaxUses: 5,
			LockErrorRate: 0.2, ProcessingDelay: 3 * time.Second, FailJobAfterRows: 6, DropConnectionRate: 0.3}}
	for _, tc := range []struct {
		name     string
		args     []string
		want     *salesforcetest.Options // nil: no options, code returned
		wantAddr string
		wantCode int
		wantErr  string
	}{
		{"defaults", nil, &salesforcetest.Options{Seed: 1, BatchSize: salesforcetest.DefaultBatchSize}, "127.0.0.1:8484", exitOK, ""},
		{"every flag", all, wantAll, "127.0.0.1:9", exitOK, ""},
		{"help", []string{"-h"}, nil, "", exitOK, "Usage: bulkflow emulator"},
		{"unknown flag", []string{"--nope"}, nil, "", exitUsage, "unknown flag --nope"},
		{"argument", []string{"extra"}, nil, "", exitUsage, `unexpected argument "extra"`},
		{"missing objects file", []string{"--objects", filepath.Join(dir, "none.json")}, nil, "", exitUsage, "bulkflow emulator: --objects:"},
		{"missing cert", []string{"--jwt-cert", filepath.Join(dir, "none.pem")}, nil, "", exitUsage, "bulkflow emulator: --jwt-cert:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			opts, addr, code := parseEmulatorFlags(tc.args, &stderr)
			if tc.want == nil {
				if opts != nil || code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("opts %v, code %d, stderr %q; want none, %d, %q", opts, code, stderr.String(), tc.wantCode, tc.wantErr)
				}
				return
			}
			if opts == nil || code != exitOK || addr != tc.wantAddr {
				t.Fatalf("opts %v addr %q code %d: %s", opts, addr, code, stderr.String())
			}
			if !reflect.DeepEqual(opts, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", opts, tc.want)
			}
		})
	}
	var stderr bytes.Buffer
	opts, _, _ := parseEmulatorFlags([]string{"-v"}, &stderr)
	if opts == nil || opts.Logf == nil {
		t.Fatal("-v: no Logf")
	}
	opts.Logf("job %s", "J1")
	if stderr.String() != "job J1\n" {
		t.Errorf("-v logs %q", stderr.String())
	}
}
