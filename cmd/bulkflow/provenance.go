package main

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sinks/salesforcesink"
	"github.com/bulkflow/bulkflow/sources/csvsource"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// setProvenance records in the pipeline's Salesforce sinks what this
// attempt reads: the pipeline file and its digest and, when a sink keeps a
// ledger (so that a resume can compare), a fingerprint of every object the
// CSV and Parquet sources read. A resume that cuts other chunks than the
// first attempt then says which file or object changed.
func setProvenance(ctx context.Context, g *pipeline.Graph, env *pipeline.Env) {
	var sources map[string]string
	for _, s := range g.Stages {
		if o, ok := s.Options.(*salesforcesink.Options); ok && s.Kind == pipeline.KindSink && o.LedgerLocation() != "" {
			sources = sourceFingerprints(ctx, g, env)
			break
		}
	}
	salesforcesink.SetProvenance(g, sources)
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
			fp := fmt.Sprintf("size=%d", o.Size)
			if a, err := b.Attributes(ctx, o.Loc.Key); err == nil {
				fp += " mtime=" + a.ModTime.UTC().Format(time.RFC3339Nano)
				if a.ETag != "" {
					fp += " etag=" + a.ETag
				}
			}
			out[o.Loc.String()] = fp
		}
		closeFn()
	}
	return out
}
