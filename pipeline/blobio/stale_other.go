//go:build !unix

package blobio

import "os"

// haveTempLocks: without flock(2), a writer's temporary file cannot be
// told from a dead writer's, so none is removed.
const haveTempLocks = false

func lockTemp(*os.File) {}

func tryLockTemp(*os.File) bool { return false }
