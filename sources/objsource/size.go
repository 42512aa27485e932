package objsource

import (
	"io"
	"sync/atomic"

	"github.com/bulkflow/bulkflow/pipeline"
)

// sizes tracks the bytes a source reads, for pipeline.Sizer. Its fields
// are atomics: InputSize is called from the engine's progress goroutine
// while the source reads.
type sizes struct {
	total    atomic.Int64 // bytes of the objects this shard reads (set by load)
	finished atomic.Int64 // bytes of the objects read to the end
	cur      atomic.Int64 // bytes read of the current object (CountRead)
}

// setTotal sums the sizes of the objects the shard keeps.
func (c *Core[O]) setTotal() {
	var n int64
	for i, o := range c.objects {
		if c.shard.Keep(i) {
			n += o.Size
		}
	}
	c.size.total.Store(n)
}

// finished moves the bytes of the object at idx, read to the end, to the
// finished total.
func (c *Core[O]) finished(idx int) {
	if idx < len(c.objects) && c.shard.Keep(idx) {
		c.size.finished.Add(c.objects[idx].Size)
	}
	c.size.cur.Store(0)
}

// CountRead wraps r, the raw (still compressed) bytes of the object being
// read, so that InputSize counts what was read of it.
func (c *Core[O]) CountRead(r io.Reader) io.Reader { return &countingReader{r: r, n: &c.size.cur} }

// InputSize returns the bytes of the objects this shard reads and how many
// of them were read (pipeline.Sizer): whole objects read to the end, plus
// what CountRead counted of the current one. Total is 0 before the listing
// or when the objects' sizes are not known. It is safe to call while the
// source reads.
func (c *Core[O]) InputSize() pipeline.InputSize {
	total := c.size.total.Load()
	done := c.size.finished.Load() + c.size.cur.Load()
	return pipeline.InputSize{Done: min(done, total), Total: total, Unit: "bytes"}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n.Add(int64(n))
	return n, err
}
