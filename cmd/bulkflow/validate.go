package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// runValidate implements `bulkflow validate`.
func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	offline := fs.Bool("offline", false, "skip the pre-flight of salesforce sinks against the org's describe metadata")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: bulkflow validate FILE [--offline]\n\nDecodes the pipeline file strictly, opens each source to read its real header,\ncompiles every expression against it and checks the stage graph. Then, unless\n--offline, checks every salesforce sink that has an instance_url (\"emulator:\"\nincluded) against the object's describe: mapped fields exist and are writable\nfor the operation, required fields are present on insert, the external id and\nrelationship columns are valid (GET requests only). No row moves.")
		fs.PrintDefaults()
	}
	file, err := parseInterspersed(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if file == "" {
		fs.Usage()
		return exitUsage
	}
	plan, g, env, code := prepare(ctx, file, stderr)
	if code != exitOK {
		return code
	}
	defer plan.Close()
	if !*offline {
		if code := preflightExit(preflight(ctx, g, plan, env, stderr)); code != exitOK {
			return code
		}
	}
	schemas := plan.Schemas()
	fmt.Fprintf(stdout, "%s: pipeline %q is valid\n", file, g.Name)
	for _, s := range g.Stages {
		fmt.Fprintf(stdout, "  %-10s %-9s %-10s -> %s\n", s.Name, s.Kind, s.Type, schemas[s.Name])
	}
	return exitOK
}
