package bench

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
)

// Median returns the Median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// MaxRSS returns the peak resident set size of a finished process in
// bytes, from the Maxrss field of its syscall.Rusage (KiB on Linux and
// the BSDs, bytes on macOS), or 0 where the platform has none. The field
// is read by reflection so that the file builds on every GOOS.
//
// On Linux Maxrss is not the child's own peak: exec folds the high-water
// mark of the address space it replaces into it, and os/exec starts the
// child with vfork sharing the parent's address space, so a child never
// reports less than the parent's peak. That is why the child reports its
// VmHWM (SelfPeakRSS) and Maxrss is only the fallback.
func MaxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	v := reflect.ValueOf(ps.SysUsage())
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("Maxrss")
	if !f.IsValid() || !f.CanInt() {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return f.Int()
	}
	return f.Int() * 1024
}

// SelfPeakRSS returns this process's peak resident set size in bytes
// (VmHWM of /proc/self/status), or 0 where it cannot be read.
func SelfPeakRSS() int64 { return selfStatus("VmHWM:") }

// StartCPUProfile starts profiling this process into file; stop ends it
// (and may be called more than once).
func StartCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", file, err)
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		f.Close()
	}), nil
}

// WriteAllocsProfile writes this process's allocation profile (every
// sampled allocation since it started, as runtime.MemProfileRate samples
// them) to file.
func WriteAllocsProfile(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	err = pprof.Lookup("allocs").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("allocation profile %s: %w", file, err)
	}
	return nil
}

// Baseline copies the CSV file in to out with encoding/csv and
// returns the number of records after the header.
func Baseline(in, out string) (int64, error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, IOBuffer))
	r.ReuseRecord = true
	o, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	bw := bufio.NewWriterSize(o, IOBuffer)
	w := csv.NewWriter(bw)
	var n int64 = -1 // the header
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		if err := w.Write(rec); err != nil {
			return 0, err
		}
		n++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return max(n, 0), o.Close()
}

// CopyExecutable copies the running executable into dir, writes the copy
// to disk and drops it from the page cache (dropPageCache), and returns
// the copy's path: the measured child processes run the copy.
//
// Why: a child's peak RSS counts the pages of the executable it maps, and
// how many a process maps depends on how the file came into the page
// cache. A binary just written (by `go build`, whose linker writes through
// mmap, or by write(2)) made every bench child 13-28 MiB larger than the
// same file read back from disk (the baseline child: 77 and 92 MiB against
// 63-65), until the kernel dropped those pages. The README's bench command
// builds the binary right before running it, so one invocation's RSS
// column, plan-parquet's 150 MiB target included, depended on how long ago
// the binary was built. io.Copy is not given the files themselves, which
// would let it use copy_file_range and share the original's pages.
func CopyExecutable(dir string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	src, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer src.Close()
	path := filepath.Join(dir, "bulkflow-bench")
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return "", err
	}
	_, err = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 1<<20))
	if err == nil {
		err = dropPageCache(dst)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr // a file still open for writing cannot be executed (ETXTBSY)
	}
	if err != nil {
		return "", fmt.Errorf("copy %s: %w", exe, err)
	}
	return path, nil
}
