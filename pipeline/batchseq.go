package pipeline

import "context"

// batchSeqKey is the context key of a sink batch's sequence number.
type batchSeqKey struct{}

// WithBatchSeq returns ctx carrying seq, the position of the batch a sink's
// Write receives among the batches the engine cut for that sink (0, 1, 2,
// ... in cut order). The engine sets it on the context of every Write.
func WithBatchSeq(ctx context.Context, seq int64) context.Context {
	return context.WithValue(ctx, batchSeqKey{}, seq)
}

// BatchSeq returns the sequence number WithBatchSeq put in ctx. Writes run
// concurrently (BatchPolicy.MaxInFlight) and may start in any order; the
// sequence number is the batch's place in the deterministic cut of the
// sink's input (batches of BatchPolicy.MaxRows rows in input order), so a
// second run over the same input gives every batch the same number. A sink
// that records what it sent per batch (the Salesforce sink's ledger) keys
// its records by it.
func BatchSeq(ctx context.Context) (int64, bool) {
	n, ok := ctx.Value(batchSeqKey{}).(int64)
	return n, ok
}
