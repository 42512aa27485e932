package main

import (
	"context"
	"slices"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/csvsource"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// setProvenance records in the pipeline's sinks that keep run ledgers
// (pipeline.RunLedger) what this attempt reads: the pipeline file and its
// digest and, when a sink's ledger is on (so that a resume can compare), a
// fingerprint of every object the CSV and Parquet sources read. A resume
// that cuts other chunks than the first attempt then says which file or
// object changed. Other sinks are told nothing.
func setProvenance(ctx context.Context, g *pipeline.Graph, env *pipeline.Env) {
	ledgers := runLedgers(g)
	var sources map[string]string
	if slices.ContainsFunc(ledgers, func(l pipeline.RunLedger) bool { return l.LedgerLocation() != "" }) {
		sources = sourceFingerprints(ctx, g, env)
	}
	for _, l := range ledgers {
		l.SetProvenance(g.File, g.FileHash, sources)
	}
}

// sourceFingerprints returns, for every object the pipeline's CSV and
// Parquet sources read, "size=N mtime=T[ etag=E]": one listing per source
// and one metadata read (a stat, or a HEAD on blob stores) per object. A
// source that cannot be listed is left out: it reports its own error when
// the run reads it.
func sourceFingerprints(ctx context.Context, g *pipeline.Graph, env *pipeline.Env) map[string]string {
	out := map[string]string{}
	for _, s := range g.Stages {
		var url string
		switch o := s.Options.(type) {
		case *csvsource.Options:
			url = o.URL
		case *parquetsource.Options:
			url = o.URL
		default:
			continue
		}
		loc, err := blobio.Parse(env.BaseDir, url)
		if err != nil {
			continue
		}
		objs, err := blobio.List(ctx, loc)
		if err != nil {
			continue
		}
		b, closeFn, err := blobio.OpenBucket(ctx, loc)
		if err != nil {
			continue
		}
		for _, o := range objs {
			a, err := b.Attributes(ctx, o.Loc.Key)
			if err != nil {
				a = nil
			}
			out[o.Loc.String()] = blobio.Fingerprint(o.Size, a)
		}
		closeFn()
	}
	return out
}
