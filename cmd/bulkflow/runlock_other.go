//go:build !unix

package main

import "errors"

// flockRun is not used where flock(2) does not exist: lockRun takes the
// state store's lease instead.
func flockRun(name, holder, runID string) (func(), error) {
	return nil, errors.New("run lock: flock(2) is not available on this system")
}

// haveFlock: without flock(2), local state directories use the lease too.
const haveFlock = false
