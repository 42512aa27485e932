package main

import (
	"flag"
	"fmt"
	"net/url"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
)

// overrideFlags are --set and --instance-url, shared by run, validate,
// plan and test: they change a pipeline's options without editing it.
type overrideFlags struct {
	set         []config.Override
	instanceURL string
}

// register adds --set (and, when instance is true, --instance-url) to fs.
func (o *overrideFlags) register(fs *flag.FlagSet, instance bool) {
	fs.Func("set", "override one option: `STAGE.KEY=VALUE` (repeatable), typed and checked like the same key in the file,\ne.g. --set load.concurrency=2, --set load.auth.login_url=https://acme.my.salesforce.com, --set map.Name='upper(company)'", func(s string) error {
		ov, err := config.ParseOverride(s)
		if err != nil {
			return err
		}
		o.set = append(o.set, ov)
		return nil
	})
	if instance {
		fs.Func("instance-url", "point every salesforce sink at this `URL` (an org, or a running bulkflow emulator); shorthand for --set STAGE.instance_url=URL", func(s string) error {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("%q is not an http(s) URL such as https://acme.my.salesforce.com or http://127.0.0.1:8484", s)
			}
			o.instanceURL = s
			return nil
		})
	}
}

// options returns the config options of the flags.
func (o *overrideFlags) options() config.Options {
	return config.Options{Set: o.set, InstanceURL: o.instanceURL}
}

// loader returns a pipeline loader that applies the flags.
func (o *overrideFlags) loader() func(string, *pipeline.Registry) (*pipeline.Graph, error) {
	return func(path string, reg *pipeline.Registry) (*pipeline.Graph, error) {
		return config.LoadFileWith(path, reg, o.options())
	}
}
