package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
)

// Run is the serve command once its flags are parsed: it checks the
// exposure (loopback, or tokens and TLS), starts the server on addr,
// prints "bulkflow: serving N pipeline(s) on URL" to stdout, and runs
// until ctx is cancelled (SIGTERM); the status page and /metrics stay up
// while running pipelines drain (o.Grace). It returns the exit code.
func Run(ctx context.Context, o Options, addr string, stdout, stderr io.Writer) int {
	if err := checkExposure(addr, o, o.TokenFile != "" || o.TokenEnv != ""); err != nil {
		fmt.Fprintf(stderr, "bulkflow: serve: %v\n", err)
		return cli.ExitUsage
	}
	tlsConf, err := loadTLS(o)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: serve: %v\n", err)
		return cli.ExitUsage
	}
	s, err := New(ctx, o, stderr)
	if err != nil {
		cli.PrintError(stderr, fmt.Errorf("serve: refusing to start:\n%w", err))
		return cli.ExitUsage
	}
	if !s.auth.enabled() {
		s.log.Warn("serve: no tokens configured: anyone who can reach " + addr + " on this machine can view runs, download dead letters and trigger runs; give --token-file or --token-env")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow: serve: %v\n", err)
		return cli.ExitFailed
	}
	scheme := "http"
	if tlsConf != nil {
		ln, scheme = tls.NewListener(ln, tlsConf), "https"
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }() // ends with hs.Shutdown below
	fmt.Fprintf(stdout, "bulkflow: serving %d pipeline(s) on %s://%s\n", len(s.names), scheme, ln.Addr())
	s.Start()
	code := cli.ExitOK
	select {
	case <-ctx.Done():
		s.log.Info("shutting down")
	case err := <-served:
		s.log.Error("http server stopped", "err", err)
		code = cli.ExitFailed
	}
	// The status page and /metrics stay up while runs drain.
	s.Shutdown(o.Grace)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	return code
}

// loadTLS returns the TLS configuration of --tls-cert/--tls-key, nil
// without them.
func loadTLS(o Options) (*tls.Config, error) {
	if o.TLSCert == "" || o.TLSKey == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %v", o.TLSCert, o.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
