//go:build !linux

package bench

import "os"

// dropPageCache writes f's data to disk; dropping its cached pages is
// done only on Linux, where the page cache's state was measured to change
// a child's RSS (see CopyExecutable).
func dropPageCache(f *os.File) error { return f.Sync() }
