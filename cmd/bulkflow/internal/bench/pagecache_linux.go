package bench

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropPageCache writes f's data to disk and asks the kernel to drop its
// pages from the page cache (posix_fadvise POSIX_FADV_DONTNEED), so that
// the next reader reads it from disk as any file not written just before.
func dropPageCache(f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
