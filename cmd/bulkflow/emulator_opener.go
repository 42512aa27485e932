package main

import (
	"context"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
)

// instance_url "emulator:" runs an in-process salesforcetest emulator for
// the sink (closed with it): the application links the emulator, the sink
// does not.
func init() {
	salesforcesink.RegisterInstanceOpener("emulator", func(ctx context.Context, _ string) (*salesforcesink.Instance, error) {
		srv := salesforcetest.NewServer(nil)
		return &salesforcesink.Instance{URL: srv.URL, AccessToken: srv.AccessToken(), HTTPClient: srv.Client(), Close: srv.Close}, nil
	})
}
