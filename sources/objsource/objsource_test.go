package objsource_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/objsource"
)

func objects(n int) []blobio.Object {
	objs := make([]blobio.Object, n)
	for i := range objs {
		objs[i] = blobio.Object{Loc: blobio.Location{Scheme: "mem", Key: fmt.Sprintf("o%04d", i)}}
	}
	return objs
}

// TestCheckAll: every object is checked when all pass; the first failure
// is returned, cancels the checks in flight (which here wait for that) and
// stops new ones from starting; a cancelled context stops the checks.
func TestCheckAll(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		bad     string // key of the object whose check fails; the others wait for cancellation
		cancel  bool
		wantErr string
		maxRuns int64 // checks started at most
	}{
		{name: "all pass", n: 1000, maxRuns: 1000},
		{name: "none", n: 0},
		{name: "one fails", n: 1000, bad: "o0003", wantErr: "o0003 is bad", maxRuns: objsource.CheckWorkers + 1},
		{name: "last fails", n: 10, bad: "o0009", wantErr: "o0009 is bad", maxRuns: 10},
		{name: "cancelled", n: 1000, cancel: true, wantErr: context.Canceled.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			var runs atomic.Int64
			loc := blobio.Location{Scheme: "mem", Key: "o*"}
			err := objsource.CheckAll(ctx, loc, objects(tc.n), func(ctx context.Context, obj blobio.Object, ra *blobio.ReaderAt) error {
				runs.Add(1)
				switch {
				case obj.Loc.Key == tc.bad:
					return errors.New(obj.Loc.Key + " is bad")
				case tc.bad != "":
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && runs.Load() != int64(tc.n) {
				t.Errorf("%d checks, want %d", runs.Load(), tc.n)
			}
			if runs.Load() > tc.maxRuns {
				t.Errorf("%d checks, want at most %d", runs.Load(), tc.maxRuns)
			}
		})
	}
}
