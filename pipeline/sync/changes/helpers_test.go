package changes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

var testSchema = pipeline.MustSchema(
	pipeline.Field{Name: "External_Id__c", Type: pipeline.TypeString},
	pipeline.Field{Name: "Name", Type: pipeline.TypeString},
	pipeline.Field{Name: "Amount", Type: pipeline.TypeInt},
)

var memSeq atomic.Int64

// memLoc returns a fresh mem:// location.
func memLoc(t testing.TB) blobio.Location {
	t.Helper()
	l, err := blobio.Parse("", fmt.Sprintf("mem://changes-test-%d/sync/manifest.bfm", memSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// event is one callback of Diff, with the row as text.
type event struct {
	Op    Op
	Key   string
	Row   string
	Line  int64
	OldID string
	Dup   bool
}

func (e event) String() string {
	d := ""
	if e.Dup {
		d = " dup"
	}
	return fmt.Sprintf("%v%s %q row=%q line=%d old=%q", e.Op, d, e.Key, e.Row, e.Line, e.OldID)
}

func rowText(r pipeline.Row) string {
	if r == nil {
		return "<nil>"
	}
	parts := make([]string, len(r))
	for i, v := range r {
		if v == nil {
			parts[i] = "<null>"
		} else {
			parts[i] = pipeline.Text(v)
		}
	}
	return strings.Join(parts, "|")
}

// diff runs Diff and returns every callback as an event.
func diff(t testing.TB, d *Differ, old *Manifest) ([]event, Counts) {
	t.Helper()
	var evs []event
	c, err := d.Diff(context.Background(), old,
		func(op Op, key string, row pipeline.Row, o pipeline.Origin, oldID string) error {
			evs = append(evs, event{Op: op, Key: key, Row: rowText(row), Line: o.Line, OldID: oldID})
			return nil
		},
		func(key string, row pipeline.Row, o pipeline.Origin) error {
			evs = append(evs, event{Key: key, Row: rowText(row), Line: o.Line, Dup: true})
			return nil
		})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return evs, c
}

// commit commits to loc and reopens the result.
func commit(t testing.TB, d *Differ, old *Manifest, loc blobio.Location, keepMissing bool) *Manifest {
	t.Helper()
	ctx := context.Background()
	w, err := blobio.NewWriter(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Commit(ctx, old, w, keepMissing)
	if err != nil {
		w.Abort()
		w.Close()
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := OpenManifest(ctx, loc)
	if err != nil {
		t.Fatalf("OpenManifest after Commit: %v", err)
	}
	if m.Len() != n {
		t.Fatalf("Commit wrote %d entries, manifest has %d", n, m.Len())
	}
	return m
}

// entry is one manifest record.
type entry struct {
	Key  string
	Hash uint64
	ID   string
}

func entries(t testing.TB, m *Manifest) []entry {
	t.Helper()
	if m == nil {
		return nil
	}
	r, err := m.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	var out []entry
	for {
		ok, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, entry{string(r.key), r.hash, string(r.id)})
	}
}

func newDiffer(t testing.TB, memLimit int) *Differ {
	t.Helper()
	d, err := NewDiffer(testSchema, "External_Id__c", Options{Dir: t.TempDir(), MemLimit: memLimit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// add adds rows given as "key,name,amount" ("" key = null).
func add(t testing.TB, d *Differ, rows ...string) {
	t.Helper()
	for i, s := range rows {
		f := strings.Split(s, ",")
		var amount int64
		fmt.Sscan(f[2], &amount)
		if err := d.Add(pipeline.Row{f[0], f[1], amount}, pipeline.Origin{Object: "in.csv", Line: int64(i + 2), Row: int64(i + 1)}); err != nil {
			t.Fatalf("Add(%q): %v", s, err)
		}
	}
}

func isRowError(err error, code string) bool {
	var re *pipeline.RowError
	return errors.As(err, &re) && re.Code == code
}
