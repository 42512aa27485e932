package objsource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/objsource"
)

var errLinesClosed = errors.New("lines: source is closed")

// lineObject is one open object of lineSource: its lines.
type lineObject struct {
	name   string
	lines  []string
	closes *atomic.Int32
}

func (o *lineObject) Close() error { o.closes.Add(1); return nil }

// lineSource is a minimal source on a Core: every line of its objects is a
// row of one string column; its first object must start with "#".
type lineSource struct {
	core   *objsource.Core[*lineObject]
	schema *pipeline.Schema
	opens  atomic.Int32
	closes atomic.Int32
	failAt string // a line whose reading fails fill, after the rows before it
}

func newLineSource(t *testing.T, url string, shard pipeline.Shard) *lineSource {
	t.Helper()
	s := &lineSource{}
	var err error
	s.core, err = objsource.New(context.Background(), &pipeline.Env{Shard: shard}, url, objsource.Format[*lineObject]{
		Kind:   "lines",
		Closed: errLinesClosed,
		Load: func(ctx context.Context) error {
			first, err := s.core.OpenFirst()
			if err != nil {
				return err
			}
			if len(first.lines) == 0 || !strings.HasPrefix(first.lines[0], "#") {
				return fmt.Errorf("lines %s: no # header", first.name)
			}
			s.schema, err = pipeline.NewSchema(pipeline.Field{Name: "line", Type: pipeline.TypeString})
			return err
		},
		Check: func(ctx context.Context, obj blobio.Object, ra *blobio.ReaderAt) error {
			data := make([]byte, ra.Size())
			if _, err := ra.ReadAt(data, 0); err != nil {
				return err
			}
			if strings.Contains(string(data), "bad") {
				return fmt.Errorf("lines %s: bad object", obj.Loc)
			}
			return nil
		},
		Open: func(ctx context.Context, obj blobio.Object, idx int) (*lineObject, error) {
			r, err := blobio.NewReader(ctx, obj.Loc)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			data, err := io.ReadAll(r)
			if err != nil {
				return nil, err
			}
			s.opens.Add(1)
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			return &lineObject{name: obj.Loc.String(), lines: lines, closes: &s.closes}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fill returns up to two rows.
func (s *lineSource) fill(ctx context.Context) (*pipeline.Batch, error) {
	b := pipeline.NewBatch(s.schema, 2)
	for b.Len() < 2 {
		cur, ok, err := s.core.Next()
		if err != nil {
			return b, err
		}
		if !ok {
			break
		}
		if len(cur.lines) == 0 {
			if err := s.core.Finish(); err != nil {
				return b, err
			}
			continue
		}
		line := cur.lines[0]
		cur.lines = cur.lines[1:]
		if line == "#" {
			continue
		}
		if line == s.failAt {
			return b, fmt.Errorf("lines %s: cannot read %q", cur.name, line)
		}
		b.Append(pipeline.Row{line}, pipeline.Origin{Object: cur.name})
	}
	if b.Len() == 0 {
		return nil, io.EOF
	}
	return b, nil
}

// readLines reads s to its first error and returns the rows and the errors
// of that Read and the next one.
func readLines(s *lineSource) (rows []string, err, again error) {
	ctx := context.Background()
	for {
		b, err := s.core.Read(ctx, s.fill)
		if err != nil {
			_, again := s.core.Read(ctx, s.fill)
			return rows, err, again
		}
		for i := range b.Len() {
			rows = append(rows, b.Row(i)[0].(string))
		}
	}
}

var linePrefixes atomic.Int64

// TestCore: a Core lists the objects, checks all of them before any row,
// hands a source the objects its shard keeps in key order (closing the
// first object when it was opened for the schema only), keeps errors
// sticky, latches io.EOF, returns the source's ErrClosed after Close and
// closes every object it opened exactly once.
func TestCore(t *testing.T) {
	tests := []struct {
		name    string
		objects map[string]string
		shard   pipeline.Shard
		failAt  string
		want    string // rows, joined by " "
		wantErr string // the error that ends the read (io.EOF when empty)
	}{
		{name: "all objects in key order", objects: map[string]string{"b": "3\n4\n5\n", "a": "#\n1\n2\n", "c": "6\n"}, want: "1 2 3 4 5 6"},
		{name: "shard keeps the second", objects: map[string]string{"a": "#\n1\n", "b": "2\n", "c": "3\n"}, shard: pipeline.Shard{Index: 1, Count: 2}, want: "2"},
		{name: "shard keeps first and third", objects: map[string]string{"a": "#\n1\n", "b": "2\n", "c": "3\n"}, shard: pipeline.Shard{Index: 0, Count: 2}, want: "1 3"},
		{name: "check refuses before any row", objects: map[string]string{"a": "#\n1\n", "b": "2\n", "c": "3\nbad\n"}, wantErr: "/c: bad object"},
		{name: "load refuses", objects: map[string]string{"a": "1\n"}, wantErr: "no # header"},
		{name: "rows before an error are not lost", objects: map[string]string{"a": "#\n1\n", "b": "2\n3\n4\n"}, failAt: "3", want: "1 2", wantErr: `cannot read "3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("mem://objsource-core-%d/", linePrefixes.Add(1))
			for key, text := range tc.objects {
				loc, err := blobio.Parse("", prefix+key)
				if err != nil {
					t.Fatal(err)
				}
				if err := blobio.WriteAll(context.Background(), loc, []byte(text)); err != nil {
					t.Fatal(err)
				}
			}
			s := newLineSource(t, prefix+"*", tc.shard)
			s.failAt = tc.failAt
			rows, err, again := readLines(s)
			if got := strings.Join(rows, " "); got != tc.want {
				t.Errorf("rows = %q, want %q", got, tc.want)
			}
			switch {
			case tc.wantErr == "" && (err != io.EOF || again != io.EOF):
				t.Errorf("errors = %v, %v; want io.EOF twice", err, again)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || again == nil || again.Error() != err.Error()):
				t.Errorf("errors = %v, %v; want %q twice (sticky)", err, again, tc.wantErr)
			}
			for range 2 {
				if err := s.core.Close(); err != nil {
					t.Errorf("Close = %v", err)
				}
			}
			if o, c := s.opens.Load(), s.closes.Load(); o != c {
				t.Errorf("%d objects opened, %d closes", o, c)
			}
			if _, err := s.core.Read(context.Background(), s.fill); err != errLinesClosed {
				t.Errorf("Read after Close = %v, want %v", err, errLinesClosed)
			}
			if err := s.core.Load(context.Background()); err != errLinesClosed {
				t.Errorf("Load after Close = %v, want %v", err, errLinesClosed)
			}
			if err := s.core.CanProject(); err != errLinesClosed {
				t.Errorf("CanProject after Close = %v, want %v", err, errLinesClosed)
			}
		})
	}
}

// TestCoreCancel: a Read whose context is cancelled while it reads makes
// the source unusable: every later Read returns that context's error
// without reading; a Project after the first Read is refused.
func TestCoreCancel(t *testing.T) {
	prefix := fmt.Sprintf("mem://objsource-core-%d/", linePrefixes.Add(1))
	for key, text := range map[string]string{"a": "#\n1\n2\n3\n", "b": "4\n"} {
		loc, _ := blobio.Parse("", prefix+key)
		if err := blobio.WriteAll(context.Background(), loc, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	s := newLineSource(t, prefix+"*", pipeline.Shard{})
	defer s.core.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := s.core.Read(ctx, func(ctx context.Context) (*pipeline.Batch, error) {
		b, err := s.fill(ctx)
		cancel() // as if the run were stopped while this batch was read
		return b, err
	})
	if err != nil || b.Len() != 2 {
		t.Fatalf("Read = %v, %v; want the batch read before the cancellation", b, err)
	}
	if err := s.core.CanProject(); err == nil || !strings.Contains(err.Error(), "Project called after Read") {
		t.Errorf("CanProject after Read = %v", err)
	}
	for range 2 {
		_, err := s.core.Read(context.Background(), func(context.Context) (*pipeline.Batch, error) {
			t.Fatal("fill called after the cancellation")
			return nil, nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Read after the cancellation = %v, want context.Canceled", err)
		}
	}
}
