package scratch

import "github.com/bulkflow/bulkflow/pipeline/internal/flock"

// ScratchLocks says RemoveStale can tell a dead process's folder (flock).
const ScratchLocks = flock.Supported
