package changes

import (
	"context"
	"fmt"
	"iter"
)

// Unsynced yields, in key order, the keys of m's unsynced entries: keys
// whose last change failed to load, which the next run sends again
// whatever the data. It reads the manifest once, streaming; a read error
// is yielded last. A nil Manifest yields nothing.
func (m *Manifest) Unsynced(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if m == nil {
			return
		}
		r, err := m.open(ctx)
		if err != nil {
			yield("", err)
			return
		}
		defer r.close()
		for i := 0; ; i++ {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					yield("", fmt.Errorf("changes: read manifest %s: %w", m.loc, err))
					return
				}
			}
			ok, err := r.next()
			if err != nil {
				yield("", err)
				return
			}
			if !ok {
				return
			}
			if r.hash == unsynced && !yield(string(r.key), nil) {
				return
			}
		}
	}
}
