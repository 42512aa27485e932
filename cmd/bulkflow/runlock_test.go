package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestLockRun takes a run's lock twice at once, on a local directory
// (flock) and on a blob store (the state store's lease): the second fails
// with errRunLocked naming the holder; after a release the lock is free,
// and another run id is never blocked.
func TestLockRun(t *testing.T) {
	for _, tc := range []struct{ name, loc, want string }{
		{"local flock", t.TempDir(), "run.lock"},
		{"blob lease", "mem://runlock-test/state/", "holds its lease"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			lost := func(err error) { t.Errorf("lease lost: %v", err) }
			release, err := lockRun(ctx, tc.loc, "p", "", "run-1", lost)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lockRun(ctx, tc.loc, "p", "", "run-1", lost); !errors.Is(err, errRunLocked) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("second lock: %v, want errRunLocked naming %q", err, tc.want)
			}
			other, err := lockRun(ctx, tc.loc, "p", "", "run-2", lost)
			if err != nil {
				t.Fatalf("another run id: %v", err)
			}
			other()
			release()
			again, err := lockRun(ctx, tc.loc, "p", "", "run-1", lost)
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			again()
		})
	}
	if release, err := lockRun(context.Background(), "", "p", "", "run-1", nil); err != nil {
		t.Fatalf("no place: %v", err)
	} else {
		release()
	}
}
