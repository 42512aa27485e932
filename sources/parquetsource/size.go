package parquetsource

import (
	"sync"
	"sync/atomic"

	"github.com/bulkflow/bulkflow/pipeline"
)

// rowCount tracks the rows a source reads, for pipeline.Sizer: the total
// from the objects' footers (read anyway: the first for the schema, the
// others by the check before any row moves) and the rows read or skipped
// so far.
type rowCount struct {
	mu    sync.Mutex
	byKey map[string]int64 // each object's footer row count
	total atomic.Int64
	done  atomic.Int64 // rows returned by Read, plus rows in row groups the cursor skipped
}

// footer records an object's row count (footers may be read twice: by the
// check and when the object is opened).
func (rc *rowCount) footer(key string, rows int64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.byKey == nil {
		rc.byKey = map[string]int64{}
	}
	if _, ok := rc.byKey[key]; !ok {
		rc.byKey[key] = rows
		rc.total.Add(rows)
	}
}

// InputSize returns the rows of the objects the source reads, from their
// footers, and how many were read (pipeline.Sizer). A sharded source
// reads some objects only, so it gives its objects' bytes instead (read
// to the end or not). Safe to call while the source reads.
func (s *Source) InputSize() pipeline.InputSize {
	if s.core.Sharded() {
		return s.core.InputSize()
	}
	total := s.rows.total.Load()
	return pipeline.InputSize{Done: min(s.rows.done.Load(), total), Total: total, Unit: "rows"}
}

var _ pipeline.Sizer = (*Source)(nil)
