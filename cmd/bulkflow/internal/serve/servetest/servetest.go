// Package servetest holds the fixtures of the serve tests, shared by
// package serve's own tests and cmd/bulkflow's tests of the serve command:
// a pipeline directory, test tokens and a self-signed certificate on
// loopback.
package servetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Never is a valid schedule that never fires (February 30th), so tests
// trigger runs themselves.
const Never = "0 0 30 2 *"

// Tokens of the auth tests: long enough to be accepted, distinct enough
// to be grepped for in logs.
const (
	ReadToken  = "read-token-7f3a9c2e5b1d4f60"
	RunToken   = "run-token-0c8e2a4f6b9d1e37"
	WrongToken = "wrong-token-55aa33cc11ee99"
)

// SafeBuffer is a bytes.Buffer safe for concurrent writes and reads.
type SafeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SafeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *SafeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Fixture writes DIR with the "people" pipeline (CSV in -> filter -> map
// -> CSV out; 3 rows: 2 loaded, 1 filtered) under a temporary root, and
// returns DIR and a state directory beside it. sched is the YAML value of
// its schedule: line ("" = Never in Europe/Berlin; "-" = no schedule).
func Fixture(t testing.TB, sched string) (dir, stateDir string) {
	t.Helper()
	root := t.TempDir()
	dir = filepath.Join(root, "pipelines")
	stateDir = filepath.Join(root, "state") + "/"
	data := filepath.ToSlash(filepath.Join(root, "data"))
	for _, d := range []string{dir, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	WriteFile(t, filepath.Join(data, "people.csv"), "id,name,status\n1,ada,active\n2,bob,deleted\n3,cy,active\n")
	if sched == "" {
		sched = `{cron: "` + Never + `", timezone: Europe/Berlin}`
	}
	schedLine := "schedule: " + sched + "\n"
	if sched == "-" {
		schedLine = ""
	}
	WriteFile(t, filepath.Join(dir, "people.yaml"), `name: people
`+schedLine+`dead_letter: `+data+`/dead-letter/
stages:
  - name: read
    source: {type: csv, url: `+data+`/people.csv}
  - name: live
    inputs: [read]
    filter: 'status != "deleted"'
  - name: map
    inputs: [live]
    map:
      Id: id
      Name: upper(name)
  - name: write
    inputs: [map]
    sink: {type: csv, url: `+data+`/out/people.csv}
`)
	return dir, stateDir
}

// WriteFile writes content to path or fails the test.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteTokenFile writes ReadToken and RunToken as a --token-file.
func WriteTokenFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	content := "# role token\nread " + ReadToken + "\n\nrun  " + RunToken + "\n"
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Do sends a request with http.DefaultClient and returns the status and
// body.
func Do(t testing.TB, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// AuthDo sends a request with c and an optional bearer token; the body is
// closed.
func AuthDo(t testing.TB, c *http.Client, method, u, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// SelfSignedCert writes a certificate for 127.0.0.1 and its key as PEM
// files and returns their paths and a pool trusting the certificate.
func SelfSignedCert(t testing.TB) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulkflow serve test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// MkdirAll creates dir and its parents or fails the test.
func MkdirAll(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
