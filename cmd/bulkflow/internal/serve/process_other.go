//go:build !unix

package serve

// processGone cannot tell on this system: a dead holder's lease expires
// as usual.
func processGone(pid int) bool { return false }
