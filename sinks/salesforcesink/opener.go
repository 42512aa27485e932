package salesforcesink

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Instance is a Salesforce instance an InstanceOpener started for one
// sink: where it listens and how to reach it.
type Instance struct {
	// URL is the instance URL (http only on loopback).
	URL string
	// AccessToken authorizes API calls.
	AccessToken string
	// HTTPClient reaches URL; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Close stops the instance; the sink calls it once, at Close. May be nil.
	Close func()
}

// InstanceOpener starts an instance for an instance_url of its scheme.
type InstanceOpener func(ctx context.Context, instanceURL string) (*Instance, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]InstanceOpener{}
)

// RegisterInstanceOpener makes instance_url values "SCHEME:..." open an
// instance with open instead of naming a Salesforce org, like gocloud's
// URL openers: the application (cmd/bulkflow) and tests register the
// salesforcetest emulator for "emulator", so that the production sink does
// not link the emulator. It panics if scheme is registered twice.
func RegisterInstanceOpener(scheme string, open InstanceOpener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	scheme = strings.ToLower(scheme)
	if _, dup := openers[scheme]; dup {
		panic("salesforcesink: instance opener for " + scheme + " registered twice")
	}
	openers[scheme] = open
}

// instanceOpener returns the opener of instanceURL's scheme, when the URL
// is a bare "SCHEME:" or "SCHEME:opaque" value (not http/https).
func instanceOpener(instanceURL string) (InstanceOpener, string, bool) {
	scheme, _, ok := strings.Cut(instanceURL, ":")
	if !ok || strings.HasPrefix(instanceURL[len(scheme)+1:], "//") {
		return nil, "", false
	}
	scheme = strings.ToLower(scheme)
	openersMu.RLock()
	defer openersMu.RUnlock()
	o, ok := openers[scheme]
	return o, scheme, ok
}

// openInstance starts the instance for instanceURL's opener.
func openInstance(ctx context.Context, instanceURL string) (*Instance, error) {
	open, scheme, ok := instanceOpener(instanceURL)
	if !ok {
		openersMu.RLock()
		known := make([]string, 0, len(openers))
		for k := range openers {
			known = append(known, k+":")
		}
		openersMu.RUnlock()
		sort.Strings(known)
		return nil, fmt.Errorf("instance_url %q: no instance opener is registered for it (registered: %s); "+
			"cmd/bulkflow registers \"emulator:\"", instanceURL, strings.Join(known, ", "))
	}
	inst, err := open(ctx, instanceURL)
	if err != nil {
		return nil, fmt.Errorf("instance_url %q: open %s instance: %w", instanceURL, scheme, err)
	}
	return inst, nil
}
