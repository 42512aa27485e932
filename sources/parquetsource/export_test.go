package parquetsource

// SetFastPath turns the fast path on or off (for tests comparing it with
// pqarrow) and returns the previous setting.
func SetFastPath(on bool) bool {
	prev := !disableFast
	disableFast = !on
	return prev
}

// FastRowGroups returns how many row groups s read on the fast path.
func FastRowGroups(s *Source) int64 { return s.fastRGs }

// SetPageChecksums turns page checksum checks on or off (to measure their
// cost) for objects opened afterwards and returns the previous setting.
func SetPageChecksums(on bool) bool {
	prev := checkChecksums
	checkChecksums = on
	return prev
}
