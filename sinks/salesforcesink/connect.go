package salesforcesink

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// Connection is which org to reach and how to log in: the options every
// stage talking to Salesforce shares with the sink (instance_url, auth,
// api_version, response_compression). The salesforce source inlines it.
type Connection struct {
	InstanceURL         string      `yaml:"instance_url"`
	Auth                AuthOptions `yaml:"auth"`
	APIVersion          string      `yaml:"api_version"`
	ResponseCompression string      `yaml:"response_compression"`
}

// Connect opens a client for c the way the sink does: an instance_url of a
// registered opener ("emulator:") starts that instance, any other goes
// through NewAuth (a relative private_key_file is resolved against
// env.BaseDir). The returned close stops an opened instance; call it
// after the client's last use. Errors never carry secrets.
func Connect(ctx context.Context, env *pipeline.Env, c Connection, log *slog.Logger) (*salesforce.Client, func(), error) {
	copts := &salesforce.Options{APIVersion: c.APIVersion, Logger: log,
		ResponseCompression: salesforce.Compression(c.ResponseCompression)}
	if copts.APIVersion == "" {
		copts.APIVersion = DefaultAPIVersion
	}
	auth, inst, err := dial(ctx, env, c)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", c.InstanceURL, err)
	}
	done := func() {}
	if inst != nil {
		copts.HTTPClient = inst.HTTPClient
		if inst.Close != nil {
			done = inst.Close
		}
	}
	client, err := salesforce.NewClient(ctx, auth, copts)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("connect to %s: %w", c.InstanceURL, err)
	}
	return client, done, nil
}

// dial turns c into credentials: an instance_url of a registered opener
// ("emulator:") starts that instance (returned, to be closed by the
// caller) and uses its token; any other goes through NewAuth, with a
// relative private_key_file resolved against env.BaseDir. It is the one
// place the sink and Connect do this.
func dial(ctx context.Context, env *pipeline.Env, c Connection) (*salesforce.Auth, *Instance, error) {
	if _, _, ok := instanceOpener(c.InstanceURL); ok || c.InstanceURL == EmulatorURL {
		inst, err := openInstance(ctx, c.InstanceURL)
		if err != nil {
			return nil, nil, err
		}
		auth, err := salesforce.StaticToken(inst.URL, inst.AccessToken)
		if err != nil {
			if inst.Close != nil {
				inst.Close()
			}
			return nil, nil, err
		}
		return auth, inst, nil
	}
	a := c.Auth
	if a.PrivateKeyFile != "" && !filepath.IsAbs(a.PrivateKeyFile) && env != nil && env.BaseDir != "" {
		a.PrivateKeyFile = filepath.Join(env.BaseDir, a.PrivateKeyFile)
	}
	auth, err := NewAuth(ctx, a, c.InstanceURL, nil)
	return auth, nil, err
}
