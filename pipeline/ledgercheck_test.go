package pipeline_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

// ledgerOpts are the options of a sink that keeps a run ledger at loc.
type ledgerOpts struct{ loc string }

func (o ledgerOpts) LedgerLocation() string                                    { return o.loc }
func (o ledgerOpts) LedgerFolder(name string) string                           { return name }
func (o ledgerOpts) LedgerHasRun(context.Context, string, string, string) bool { return false }
func (o ledgerOpts) SetProvenance(string, string, map[string]string)           {}

// TestCheckSharedLedger: two sinks whose ledgers are one location (however
// it is spelt) are refused, naming both; distinct locations, a sink with
// its ledger off and a sink without one are fine.
func TestCheckSharedLedger(t *testing.T) {
	base := t.TempDir()
	for _, tc := range []struct {
		name string
		a, b any
		bad  bool
	}{
		{"same", ledgerOpts{"ledger/"}, ledgerOpts{"ledger"}, true},
		{"relative and absolute", ledgerOpts{"ledger/"}, ledgerOpts{filepath.Join(base, "ledger")}, true},
		{"dot segments", ledgerOpts{"./x/../ledger/"}, ledgerOpts{"ledger"}, true},
		{"same blob prefix", ledgerOpts{"s3://b/ledger/"}, ledgerOpts{"s3://b/ledger"}, true},
		{"distinct", ledgerOpts{"ledger/a/"}, ledgerOpts{"ledger/b/"}, false},
		{"one off", ledgerOpts{"ledger/"}, ledgerOpts{""}, false},
		{"one without a ledger", ledgerOpts{"ledger/"}, struct{}{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &pipeline.Graph{Name: "p", BaseDir: base, Stages: []pipeline.StageSpec{
				{Name: "read", Kind: pipeline.KindSource, Type: "csv"},
				{Name: "a", Kind: pipeline.KindSink, Type: "salesforce", Inputs: []string{"read"}, Options: tc.a},
				{Name: "b", Kind: pipeline.KindSink, Type: "salesforce", Inputs: []string{"read"}, Options: tc.b},
			}}
			err := g.Check()
			if got := err != nil && strings.Contains(err.Error(), `stage "b": keeps its run ledger where sink stage "a" does`); got != tc.bad {
				t.Errorf("Check() = %v; want refused %v", err, tc.bad)
			}
		})
	}
}
