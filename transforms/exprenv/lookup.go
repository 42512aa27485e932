package exprenv

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// loadTimeout bounds loading one lookup table.
const loadTimeout = 2 * time.Minute

// lookups holds the pipeline's declared lookup tables and the ones loaded so
// far. Loading happens during Compile; the runtime reads the loaded tables
// through an atomic pointer to an immutable map.
type lookups struct {
	specs   map[string]pipeline.LookupSpec
	baseDir string
	penv    *pipeline.Env // the run's, for query tables (nil in some tests)

	mu     sync.Mutex // serialises load
	tables atomic.Pointer[map[string]map[string]string]
}

func newLookups(penv *pipeline.Env) *lookups {
	l := &lookups{penv: penv}
	if penv != nil {
		l.specs, l.baseDir = penv.Lookups, penv.BaseDir
	}
	l.tables.Store(&map[string]map[string]string{})
	return l
}

func (l *lookups) declared(name string) bool {
	_, ok := l.specs[name]
	return ok
}

func (l *lookups) names() []string {
	names := make([]string, 0, len(l.specs))
	for n := range l.specs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// unknown returns the message for a table name that is not declared.
func (l *lookups) unknown(name string) string {
	names := l.names()
	if len(names) == 0 {
		return fmt.Sprintf("unknown lookup table %q (the pipeline declares no lookups)", name)
	}
	msg := fmt.Sprintf("unknown lookup table %q", name)
	if s := pipeline.Closest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + " (declared: " + strings.Join(names, ", ") + ")"
}

// load loads the named tables (every declared table when all is set) that
// are not loaded yet.
func (l *lookups) load(names []string, all bool) error {
	if all {
		names = l.names()
	}
	if len(names) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.tables.Load()
	var next map[string]map[string]string
	for _, name := range names {
		if _, ok := old[name]; ok {
			continue
		}
		if _, ok := next[name]; ok {
			continue
		}
		var t map[string]string
		var err error
		if spec := l.specs[name]; spec.Query != "" {
			t, err = queryTable(l.penv, name, spec)
		} else {
			t, err = readTable(l.baseDir, spec)
		}
		if err != nil {
			return fmt.Errorf("lookup table %q: %w", name, err)
		}
		if next == nil {
			next = make(map[string]map[string]string, len(old)+len(names))
			for k, v := range old {
				next[k] = v
			}
		}
		next[name] = t
	}
	if next != nil {
		l.tables.Store(&next)
	}
	return nil
}

// get returns the value for key in the named table.
func (l *lookups) get(name, key string) (string, bool, error) {
	t, ok := (*l.tables.Load())[name]
	if !ok {
		if !l.declared(name) {
			return "", false, errors.New(l.unknown(name))
		}
		return "", false, fmt.Errorf("lookup table %q is not loaded", name)
	}
	v, ok := t[key]
	return v, ok, nil
}

// readTable reads a lookup CSV: a header row naming the key and value
// columns, then one record per key. A key listed twice with different values
// is an error.
func readTable(baseDir string, spec pipeline.LookupSpec) (map[string]string, error) {
	if spec.URL == "" || spec.Key == "" || spec.Value == "" {
		return nil, errors.New("url, key and value are required")
	}
	loc, err := blobio.Parse(baseDir, spec.URL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	rc, err := blobio.NewReader(ctx, loc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := csv.NewReader(rc)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, want a header row", loc)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	header = slices.Clone(header)
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	col := func(name string) (int, error) {
		if i := slices.Index(header, name); i >= 0 {
			return i, nil
		}
		msg := fmt.Sprintf("%s: no column %q", loc, name)
		if s := pipeline.Closest(name, header); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return 0, errors.New(msg)
	}
	ki, err := col(spec.Key)
	if err != nil {
		return nil, err
	}
	vi, err := col(spec.Value)
	if err != nil {
		return nil, err
	}
	t := make(map[string]string)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
		k, v := rec[ki], rec[vi]
		if old, dup := t[k]; dup && old != v {
			line, _ := cr.FieldPos(ki)
			return nil, fmt.Errorf("%s:%d: key %q appears twice with different values (%q, %q)", loc, line, k, old, v)
		}
		t[k] = v
	}
}
