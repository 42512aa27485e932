// Package flock tells a file a live process holds from one a dead
// process left: Hold takes a shared flock(2), which the kernel drops when
// the process exits, however it exits (SIGKILL, the OOM killer), and Free
// reports whether no process holds the file. Where flock(2) is missing
// (Supported is false), Hold does nothing and Free reports false: nothing
// is ever taken for a dead process's.
package flock
