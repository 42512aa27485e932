package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/cli"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// runEmulator implements `bulkflow emulator`: it serves the Salesforce
// OAuth + Bulk API 2.0 emulator (sinks/salesforce/salesforcetest) until
// ctx is cancelled. It prints the instance URL, the token URL and the
// credentials on stdout, and returns 0 after a clean shutdown, 1 if the
// server could not start or failed, 2 on a usage error.
func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, addr, code := parseEmulatorFlags(args, stderr)
	if opts == nil {
		return code
	}
	srv, err := salesforcetest.NewHandler(opts)
	if err != nil {
		fmt.Fprintf(stderr, "bulkflow emulator: %v\n", err)
		return 2
	}
	ln, err := srv.Listen(addr)
	if err != nil {
		srv.Close()
		fmt.Fprintf(stderr, "bulkflow emulator: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Salesforce Bulk API 2.0 emulator listening (Ctrl-C to stop)\n")
	fmt.Fprintf(stdout, "  instance URL:  %s\n", srv.URL)
	fmt.Fprintf(stdout, "  login URL:     %s\n", srv.LoginURL())
	fmt.Fprintf(stdout, "  token URL:     %s\n", srv.TokenURL())
	fmt.Fprintf(stdout, "  access token:  %s\n", srv.AccessToken())
	fmt.Fprintf(stdout, "  client id:     %s\n", srv.ClientID())
	fmt.Fprintf(stdout, "  client secret: %s\n", srv.ClientSecret())
	fmt.Fprintf(stdout, "  username:      %s\n", srv.Username())
	fmt.Fprintf(stdout, "  faults:        %s/__emulator/faults\n", srv.URL)
	start := time.Now()
	if err := srv.Serve(ctx, ln); err != nil {
		fmt.Fprintf(stderr, "bulkflow emulator: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "bulkflow emulator: stopped after %s\n", time.Since(start).Round(time.Second))
	return 0
}

// emulatorFileFlags are the flags of `bulkflow emulator` that are not
// emulator options as they are: the listen address and files to read.
type emulatorFileFlags struct {
	addr, objects, jwtCert string
	verbose                bool
}

// parseEmulatorFlags turns the flags of `bulkflow emulator` into the
// emulator's options and listen address. A nil *Options comes with the exit
// code to return (usage or the problem printed).
func parseEmulatorFlags(args []string, stderr io.Writer) (*salesforcetest.Options, string, int) {
	fs := flag.NewFlagSet("bulkflow emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bulkflow emulator [flags]\n\nServe a local Salesforce OAuth 2.0 + Bulk API 2.0 emulator until interrupted.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	opts := &salesforcetest.Options{}
	ff := registerEmulatorFlags(fs, opts)
	if err := cli.ParseFlags(fs, args); err != nil {
		return nil, "", flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bulkflow emulator: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return nil, "", exitUsage
	}
	if ff.verbose {
		opts.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	}
	if err := ff.load(opts); err != nil {
		fmt.Fprintf(stderr, "bulkflow emulator: %v\n", err)
		return nil, "", exitUsage
	}
	return opts, ff.addr, exitOK
}

// registerEmulatorFlags defines the flags of `bulkflow emulator` on fs:
// the emulator's options go straight into opts, the rest into the
// returned flags.
func registerEmulatorFlags(fs *flag.FlagSet, opts *salesforcetest.Options) *emulatorFileFlags {
	ff := &emulatorFileFlags{}
	fs.StringVar(&ff.addr, "addr", "127.0.0.1:8484", "listen `address` (loopback only unless --allow-non-loopback)")
	fs.BoolVar(&opts.AllowNonLoopback, "allow-non-loopback", false, "allow listening on non-loopback addresses")
	fs.StringVar(&ff.objects, "objects", "", "sObject describe JSON `file` replacing the built-in catalog (Account, Contact, Lead, Opportunity)")
	fs.StringVar(&opts.AccessToken, "token", "", "pre-issued access `token` (default: a generated 00D…!… session id)")
	fs.StringVar(&opts.ClientID, "client-id", "", "connected-app consumer key (default "+salesforcetest.DefaultClientID+")")
	fs.StringVar(&opts.ClientSecret, "client-secret", "", "connected-app consumer secret (default "+salesforcetest.DefaultClientSecret+")")
	fs.StringVar(&opts.Username, "username", "", "integration username, also the JWT sub (default "+salesforcetest.DefaultUsername+")")
	fs.StringVar(&opts.Password, "password", "", "password (+ security token) for the password grant (default \"password\")")
	fs.StringVar(&ff.jwtCert, "jwt-cert", "", "PEM `file` (certificate or public key) that verifies JWT bearer assertions")
	fs.Uint64Var(&opts.Seed, "seed", 1, "seed for rate-based faults")
	fs.IntVar(&opts.BatchSize, "batch-size", salesforcetest.DefaultBatchSize, "rows per internal batch")
	fs.Float64Var(&opts.ProcessingRate, "processing-rate", 0, "rows per second processed per job (0 = as fast as possible)")
	f := &opts.Faults
	fs.DurationVar(&f.ProcessingDelay, "processing-delay", 0, "time a closed job stays UploadComplete before processing")
	fs.Float64Var(&f.FailRate5xx, "fail-5xx-rate", 0, "fraction (0..1) of API calls answered 503")
	fs.Float64Var(&f.LockErrorRate, "lock-error-rate", 0, "fraction (0..1) of rows failed with UNABLE_TO_LOCK_ROW")
	fs.Float64Var(&f.DropConnectionRate, "drop-connection-rate", 0, "fraction (0..1) of API calls whose connection is dropped")
	fs.DurationVar(&f.TokenTTL, "token-ttl", 0, "access tokens expire this long after issue (0 = never)")
	fs.IntVar(&f.TokenMaxUses, "token-max-uses", 0, "access tokens expire after this many API calls (0 = never)")
	fs.Int64Var(&f.FailJobAfterRows, "fail-job-after-rows", 0, "fail each job after this many rows (0 = never)")
	fs.Int64Var(&opts.APIRequestLimit, "request-limit", 0, "daily API request allowance; later calls get 403 REQUEST_LIMIT_EXCEEDED (0 = 100000)")
	fs.IntVar(&f.RequestLimitNext, "request-limit-next", 0, "answer the next N API calls with 403 REQUEST_LIMIT_EXCEEDED")
	fs.BoolVar(&ff.verbose, "v", false, "log every request and job transition on stderr")
	return ff
}

// load reads the --objects catalog and the --jwt-cert PEM into opts.
func (ff *emulatorFileFlags) load(opts *salesforcetest.Options) error {
	if ff.objects != "" {
		objs, err := salesforcetest.LoadObjects(ff.objects)
		if err != nil {
			return fmt.Errorf("--objects: %w", err)
		}
		opts.Objects = objs
	}
	if ff.jwtCert != "" {
		pem, err := os.ReadFile(ff.jwtCert)
		if err != nil {
			return fmt.Errorf("--jwt-cert: %w", err)
		}
		opts.JWTCertificatePEM = pem
	}
	return nil
}
