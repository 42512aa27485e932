//go:build !unix

package flock

import "os"

// Supported says flock(2) is here.
const Supported = false

// Hold does nothing without flock(2).
func Hold(*os.File) {}

// Free reports false without flock(2): a live process's file cannot be
// told from a dead one's.
func Free(*os.File) bool { return false }
