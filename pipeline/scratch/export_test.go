package scratch

// ScratchLocks exposes haveLocks to the external tests.
const ScratchLocks = haveLocks
