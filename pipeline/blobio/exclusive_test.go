package blobio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// TestCreateExclusive: of many concurrent creates of one object exactly one
// wins, the others get ErrExists, and the object holds the winner's data.
func TestCreateExclusive(t *testing.T) {
	for _, where := range []string{t.TempDir() + "/claims/", "mem://excl-test/claims/"} {
		t.Run(where[:3], func(t *testing.T) {
			prefix, err := blobio.Parse("", where)
			if err != nil {
				t.Fatal(err)
			}
			loc := blobio.Join(prefix, "00000000000000000001")
			var wins atomic.Int32
			var winner atomic.Value
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Go(func() {
					data := fmt.Sprintf("holder-%d", i)
					err := blobio.CreateExclusive(context.Background(), loc, []byte(data))
					switch {
					case err == nil:
						wins.Add(1)
						winner.Store(data)
					case !errors.Is(err, blobio.ErrExists):
						t.Errorf("create: %v", err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d creates won, want exactly 1", wins.Load())
			}
			r, err := blobio.NewReader(context.Background(), loc)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if string(got) != winner.Load().(string) {
				t.Errorf("object holds %q, winner wrote %q", got, winner.Load())
			}
			if err := blobio.Delete(context.Background(), loc); err != nil {
				t.Fatal(err)
			}
			if err := blobio.CreateExclusive(context.Background(), loc, []byte("again")); err != nil {
				t.Errorf("create after delete: %v", err)
			}
		})
	}
}
