package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

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
	var (
		addr             = fs.String("addr", "127.0.0.1:8484", "listen `address` (loopback only unless --allow-non-loopback)")
		allowNonLoopback = fs.Bool("allow-non-loopback", false, "allow listening on non-loopback addresses")
		objectsFile      = fs.String("objects", "", "sObject describe JSON `file` replacing the built-in catalog (Account, Contact, Lead, Opportunity)")
		token            = fs.String("token", "", "pre-issued access `token` (default: a generated 00D…!… session id)")
		clientID         = fs.String("client-id", "", "connected-app consumer key (default "+salesforcetest.DefaultClientID+")")
		clientSecret     = fs.String("client-secret", "", "connected-app consumer secret (default "+salesforcetest.DefaultClientSecret+")")
		username         = fs.String("username", "", "integration username, also the JWT sub (default "+salesforcetest.DefaultUsername+")")
		password         = fs.String("password", "", "password (+ security token) for the password grant (default \"password\")")
		jwtCert          = fs.String("jwt-cert", "", "PEM `file` (certificate or public key) that verifies JWT bearer assertions")
		seed             = fs.Uint64("seed", 1, "seed for rate-based faults")
		batchSize        = fs.Int("batch-size", salesforcetest.DefaultBatchSize, "rows per internal batch")
		processingRate   = fs.Float64("processing-rate", 0, "rows per second processed per job (0 = as fast as possible)")
		processingDelay  = fs.Duration("processing-delay", 0, "time a closed job stays UploadComplete before processing")
		fail5xx          = fs.Float64("fail-5xx-rate", 0, "fraction (0..1) of API calls answered 503")
		lockRate         = fs.Float64("lock-error-rate", 0, "fraction (0..1) of rows failed with UNABLE_TO_LOCK_ROW")
		dropRate         = fs.Float64("drop-connection-rate", 0, "fraction (0..1) of API calls whose connection is dropped")
		tokenTTL         = fs.Duration("token-ttl", 0, "access tokens expire this long after issue (0 = never)")
		tokenUses        = fs.Int("token-max-uses", 0, "access tokens expire after this many API calls (0 = never)")
		failAfter        = fs.Int64("fail-job-after-rows", 0, "fail each job after this many rows (0 = never)")
		requestLimit     = fs.Int64("request-limit", 0, "daily API request allowance; later calls get 403 REQUEST_LIMIT_EXCEEDED (0 = 100000)")
		limitNext        = fs.Int("request-limit-next", 0, "answer the next N API calls with 403 REQUEST_LIMIT_EXCEEDED")
		verbose          = fs.Bool("v", false, "log every request and job transition on stderr")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", 0
		}
		return nil, "", 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bulkflow emulator: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return nil, "", 2
	}
	opts := &salesforcetest.Options{
		AccessToken:      *token,
		ClientID:         *clientID,
		ClientSecret:     *clientSecret,
		Username:         *username,
		Password:         *password,
		Seed:             *seed,
		BatchSize:        *batchSize,
		ProcessingRate:   *processingRate,
		APIRequestLimit:  *requestLimit,
		AllowNonLoopback: *allowNonLoopback,
		Faults: salesforcetest.Faults{
			FailRate5xx:        *fail5xx,
			RequestLimitNext:   *limitNext,
			TokenTTL:           *tokenTTL,
			TokenMaxUses:       *tokenUses,
			LockErrorRate:      *lockRate,
			ProcessingDelay:    *processingDelay,
			FailJobAfterRows:   *failAfter,
			DropConnectionRate: *dropRate,
		},
	}
	if *verbose {
		opts.Logf = func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	}
	if *objectsFile != "" {
		objs, err := salesforcetest.LoadObjects(*objectsFile)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow emulator: --objects: %v\n", err)
			return nil, "", 2
		}
		opts.Objects = objs
	}
	if *jwtCert != "" {
		pem, err := os.ReadFile(*jwtCert)
		if err != nil {
			fmt.Fprintf(stderr, "bulkflow emulator: --jwt-cert: %v\n", err)
			return nil, "", 2
		}
		opts.JWTCertificatePEM = pem
	}
	return opts, *addr, 0
}
