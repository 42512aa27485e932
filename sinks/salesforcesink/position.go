package salesforcesink

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bulkflow/bulkflow/pipeline"
)

// Provenance is what the first attempt of a run read, recorded in the
// ledger so that a resume that finds other chunks can say what changed.
// The CLI fills it in (Options.Provenance) before the sink opens; every
// field is optional.
type Provenance struct {
	// PipelineFile is the pipeline file's path, used in resume hints.
	PipelineFile string `json:"pipeline_file,omitempty"`
	// PipelineDigest is the hex sha256 of the pipeline file's bytes.
	PipelineDigest string `json:"pipeline_digest,omitempty"`
	// Sources maps each source object's URL to its fingerprint (etag,
	// size and modification time, or generation).
	Sources map[string]string `json:"sources,omitempty"`
}

// ResumeMismatchError is returned by Write when a resumed run cuts a chunk
// that differs from the chunk an earlier attempt of the run recorded at
// the same position, while that chunk's job may have loaded its rows: the
// run stops before the chunk (or any later one) is uploaded. The CLI maps
// it to exit code 2.
type ResumeMismatchError struct {
	RunID  string
	Ledger string
	// Position is the chunk's place in the cut: the engine's batch number,
	// the lock-retry attempt and the chunk's number within the batch.
	Batch   int64
	Attempt int
	Chunk   int
	// Job is the earlier attempt's job and State the ledger state it got to.
	Job, State string
	// WasDigest/NowDigest and WasRows/NowRows describe the two chunks
	// (NowDigest is "" when this attempt cut no chunk at the position).
	WasDigest, NowDigest string
	WasRows, NowRows     int
	// WasFrom/NowFrom are the origins of each chunk's first row.
	WasFrom, NowFrom string
	// Changed lists what differs from the first attempt's Provenance;
	// empty when nothing recorded differs (or nothing was recorded).
	Changed []string
	// Known is true when the first attempt's Provenance was recorded and
	// compared.
	Known bool
}

// Error says which chunk differs, what likely changed and what to do.
func (e *ResumeMismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "salesforce sink: resume of run %s refused: chunk %d of batch %d (lock-retry attempt %d) differs from the earlier attempt's ",
		e.RunID, e.Chunk, e.Batch, e.Attempt)
	if e.NowDigest == "" {
		fmt.Fprintf(&b, "(this attempt cut no such chunk; the earlier one had %d rows from %s)", e.WasRows, orUnknown(e.WasFrom))
	} else {
		fmt.Fprintf(&b, "(%d rows from %s, sha256 %s; now %d rows from %s, sha256 %s)",
			e.WasRows, orUnknown(e.WasFrom), short(e.WasDigest), e.NowRows, orUnknown(e.NowFrom), short(e.NowDigest))
	}
	fmt.Fprintf(&b, ", and its job %s got to %q, so Salesforce may have loaded those rows: uploading the new chunk could load rows twice. Nothing was uploaded for it or for later chunks. ",
		e.Job, e.State)
	switch {
	case len(e.Changed) > 0:
		b.WriteString("What changed since the first attempt: " + strings.Join(e.Changed, "; ") + ". ")
	case e.Known:
		b.WriteString("The pipeline file and the source objects are unchanged, so the rows came out differently: " +
			"a non-deterministic function in a mapping (now(), random or uuid values) or unordered workers (ordered: false) feeding this sink. ")
	default:
		b.WriteString("Likely causes: a mapping edited since the first attempt, a non-deterministic function in a mapping (now(), random values), " +
			"unordered workers (ordered: false), or a source re-exported in another order. ")
	}
	fmt.Fprintf(&b, "Resume with the first attempt's pipeline file and input, or settle job %s (`bulkflow jobs show %s`) and start a new run. Ledger: %s",
		e.Job, e.Job, e.Ledger)
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown origin"
	}
	return s
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12] + "…"
	}
	return digest
}

// diff lists what differs between the first attempt's provenance and
// this one's.
func (p *Provenance) diff(now *Provenance) []string {
	var out []string
	if p.PipelineDigest != "" && now.PipelineDigest != "" && p.PipelineDigest != now.PipelineDigest {
		out = append(out, fmt.Sprintf("the pipeline file %s was edited (sha256 %s, now %s): a mapping or filter may produce other rows",
			now.PipelineFile, short(p.PipelineDigest), short(now.PipelineDigest)))
	}
	for _, u := range slices.Sorted(maps.Keys(p.Sources)) {
		was := p.Sources[u]
		is, ok := now.Sources[u]
		switch {
		case !ok && len(now.Sources) > 0:
			out = append(out, "source object "+u+" is gone")
		case ok && is != was:
			out = append(out, fmt.Sprintf("source object %s changed (re-exported?): %s, now %s", u, was, is))
		}
	}
	for _, u := range slices.Sorted(maps.Keys(now.Sources)) {
		if _, ok := p.Sources[u]; !ok && len(p.Sources) > 0 {
			out = append(out, "source object "+u+" is new")
		}
	}
	return out
}

// chunkKey is the ledger key of a chunk: its position in the deterministic
// cut of the sink's input (the engine's batch number, the lock-retry
// attempt, the chunk's number within them).
func chunkKey(batch int64, attempt, chunk int) string {
	return "b" + strconv.FormatInt(batch, 10) + ".a" + strconv.Itoa(attempt) + ".c" + strconv.Itoa(chunk)
}

// parseChunkKey returns the parts of a chunkKey (ok false for other keys:
// the run record, the digest keys of older ledgers, re-drive chunks).
func parseChunkKey(key string) (batch int64, attempt, chunk int, ok bool) {
	b, rest, ok1 := strings.Cut(strings.TrimPrefix(key, "b"), ".a")
	a, c, ok2 := strings.Cut(rest, ".c")
	if !strings.HasPrefix(key, "b") || !ok1 || !ok2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	batch, err1 = strconv.ParseInt(b, 10, 64)
	attempt, err2 = strconv.Atoi(a)
	chunk, err3 = strconv.Atoi(c)
	return batch, attempt, chunk, err1 == nil && err2 == nil && err3 == nil
}

// reachedUpload reports whether a chunk in ledger state st may have a job
// holding its rows.
func reachedUpload(st string) bool {
	switch st {
	case stUploading, stUploaded, stClosed, stFinished, stRESTSending, stRESTDone:
		return true
	}
	return false
}

// resumeGate holds back new uploads of a resumed run until every earlier
// batch that the earlier attempt sent has been cut again and found
// identical: a chunk that differs stops the run (ResumeMismatchError)
// before any row of it, or of a later chunk, is uploaded in a new job.
type resumeGate struct {
	maxBatch int64 // highest batch number with a chunk that reached uploading; -1: none

	mu       sync.Mutex
	verified map[int64]chan struct{} // closed once the batch's first-attempt chunks were all checked
	broken   chan struct{}           // closed when a mismatch stopped the run
	err      error
}

func newResumeGate(prior map[string]ledgerRecord) *resumeGate {
	g := &resumeGate{maxBatch: -1, verified: map[int64]chan struct{}{}, broken: make(chan struct{})}
	for k, r := range prior {
		if b, _, _, ok := parseChunkKey(k); ok && reachedUpload(r.State) && b > g.maxBatch {
			g.maxBatch = b
		}
	}
	return g
}

func (g *resumeGate) ch(batch int64) chan struct{} {
	c, ok := g.verified[batch]
	if !ok {
		c = make(chan struct{})
		g.verified[batch] = c
	}
	return c
}

// done marks batch as verified (idempotent).
func (g *resumeGate) done(batch int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.ch(batch)
	select {
	case <-c:
	default:
		close(c)
	}
}

// fail stops every waiter with err (the first one wins).
func (g *resumeGate) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
		close(g.broken)
	}
}

// wait blocks until every batch before batch (up to the last batch the
// earlier attempt uploaded) is verified. Batches are handed to Write in
// order, so the batches waited for have Writes of their own running or
// done: this cannot deadlock.
func (g *resumeGate) wait(ctx context.Context, batch int64) error {
	for a := range min(batch, g.maxBatch+1) {
		g.mu.Lock()
		c, err := g.ch(a), g.err
		g.mu.Unlock()
		if err != nil {
			return err
		}
		select {
		case <-c:
		case <-g.broken:
			g.mu.Lock()
			err := g.err
			g.mu.Unlock()
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// SetProvenance records in the options of every Salesforce sink stage of g
// what this attempt reads: g's file and digest, and sources (object URL →
// fingerprint; may be nil). The CLI calls it before the sinks open; the
// ledger keeps the first attempt's, so that a refused resume says what
// changed.
func SetProvenance(g *pipeline.Graph, sources map[string]string) {
	for i := range g.Stages {
		if o, ok := g.Stages[i].Options.(*Options); ok {
			o.Provenance = &Provenance{PipelineFile: g.File, PipelineDigest: g.FileHash, Sources: sources}
		}
	}
}
