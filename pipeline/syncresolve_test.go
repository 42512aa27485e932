package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/config"
	"github.com/bulkflow/bulkflow/pipeline/pipelinetest"
)

// missing is a key of a mirror's manifest that left the source, with its
// record id ("" when the manifest does not hold one).
type missing struct{ key, id string }

// mirrorSyncer is a Syncer whose run has no rows: its Diff passes every
// key of its manifest to del. It records the outcome of each.
type mirrorSyncer struct {
	keys     []missing
	mu       sync.Mutex
	outcomes map[string]error
}

func (s *mirrorSyncer) Add(pipeline.Row, pipeline.Origin) error { return nil }

func (s *mirrorSyncer) Diff(ctx context.Context, emit func(pipeline.SyncOp, pipeline.Row, pipeline.Origin) error,
	drop func(pipeline.Row, pipeline.Origin, error) error, del func(key, id string) error) error {
	for _, m := range s.keys {
		if err := del(m.key, m.id); err != nil {
			return err
		}
	}
	return nil
}

func (s *mirrorSyncer) Outcome(op pipeline.SyncOp, row pipeline.Row, key, id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.outcomes[key]; dup || op != pipeline.SyncMissing {
		panic(fmt.Sprintf("outcome %v for %q twice or not a delete", op, key))
	}
	s.outcomes[key] = err
}

func (s *mirrorSyncer) Finish(context.Context, bool) (any, error) { return nil, nil }
func (s *mirrorSyncer) Close() error                              { return nil }

// deleteSink is a sink that can delete (pipeline.Deleter): it records the
// ids of each Delete call; ids in fail fail.
type deleteSink struct {
	mu      sync.Mutex
	deletes [][]string
	fail    map[string]bool
}

func (s *deleteSink) Write(context.Context, *pipeline.Batch) error { return nil }
func (s *deleteSink) Close(context.Context) error                  { return nil }

func (s *deleteSink) Delete(ctx context.Context, ids []string) ([]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes = append(s.deletes, slices.Clone(ids))
	errs := make([]error, len(ids))
	for i, id := range ids {
		if s.fail[id] {
			errs[i] = errors.New("locked")
		}
	}
	return errs, nil
}

// deleted returns every id deleted, sorted.
func (s *deleteSink) deleted() []string {
	var out []string
	for _, d := range s.deletes {
		out = append(out, d...)
	}
	slices.Sort(out)
	return out
}

// resolveSink is a deleteSink that can look keys up (pipeline.KeyResolver)
// in records (key → ids), or fails with err.
type resolveSink struct {
	*deleteSink
	records map[string][]string
	err     error
	calls   [][]string // the keys of each ResolveKeys call
	fields  []string
}

func (s *resolveSink) ResolveKeys(ctx context.Context, field string, keys []string) ([][]string, error) {
	s.calls = append(s.calls, slices.Clone(keys))
	s.fields = append(s.fields, field)
	if s.err != nil {
		return nil, s.err
	}
	out := make([][]string, len(keys))
	for i, k := range keys {
		out[i] = s.records[k]
	}
	return out, nil
}

// runMirror runs a pipeline whose sink stage "load" is sink, with
// sync: {key: name, delete_missing: true} and a syncer whose
// manifest holds keys, none of them in the run.
func runMirror(t *testing.T, sink pipeline.Sink, keys []missing) (*pipeline.Report, *mirrorSyncer) {
	t.Helper()
	var reg pipeline.Registry
	c := pipelinetest.NewCollector()
	pipelinetest.Register(&reg, c)
	reg.RegisterSink("mirror", pipeline.Spec{Summary: "test mirror"},
		func(ctx context.Context, env *pipeline.Env, opts any, in *pipeline.Schema) (pipeline.Sink, error) {
			return sink, nil
		})
	y := `name: resolve
dead_letter: mem://resolve/
stages:
  - {name: read, source: {type: rows, rows: 0}}
  - name: load
    inputs: [read]
    sink: {type: mirror}
    sync: {mode: changed, key: name, delete_missing: true, max_deletes: "100%"}
`
	g, err := config.Load("t.yaml", []byte(y), &reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Prepare(context.Background(), &reg, g, &pipeline.Env{RunID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	sy := &mirrorSyncer{keys: keys, outcomes: map[string]error{}}
	rep, err := plan.Run(context.Background(), &pipeline.RunOptions{DeadLetters: c.DeadLetterOpener(),
		Syncers: func(context.Context, *pipeline.StageSpec, *pipeline.Schema) (pipeline.Syncer, error) { return sy, nil }})
	if err != nil && rep.Status != pipeline.StatusPartial {
		t.Fatalf("run: %v", err)
	}
	if len(sy.outcomes) != len(keys) {
		t.Errorf("%d outcomes for %d missing keys", len(sy.outcomes), len(keys))
	}
	return rep, sy
}

// TestSyncResolvesKeysWithoutID: a mirror's missing key whose record id is
// not known is looked up by the sync key (pipeline.KeyResolver) and
// deleted when one record holds it, counted deleted when none does, and
// failed (the run partial) when several do, when the lookup fails, or when
// the sink cannot look keys up.
func TestSyncResolvesKeysWithoutID(t *testing.T) {
	keys := []missing{{"K1", "001A"}, {"K2", ""}, {"K3", ""}, {"K4", ""}, {"K5", ""}}
	records := map[string][]string{"K2": {"001B"}, "K4": {"001C", "001D"}, "K5": {"001E"}}
	for _, tc := range []struct {
		name    string
		sink    func(d *deleteSink) pipeline.Sink
		deleted []string
		ok      []string          // keys reported deleted
		errs    map[string]string // key → in its error
	}{
		{name: "resolved",
			sink:    func(d *deleteSink) pipeline.Sink { return &resolveSink{deleteSink: d, records: records} },
			deleted: []string{"001A", "001B", "001E"}, ok: []string{"K1", "K2", "K3", "K5"},
			errs: map[string]string{"K4": `2 records of the destination of stage "load" have name="K4"; bulkflow loaded at most one of them`}},
		{name: "lookup fails",
			sink: func(d *deleteSink) pipeline.Sink {
				return &resolveSink{deleteSink: d, records: records, err: errors.New("query job 750x failed")}
			},
			deleted: []string{"001A"}, ok: []string{"K1"},
			errs: map[string]string{"K2": "no record id is known for name=\"K2\"", "K3": "query job 750x failed",
				"K4": "query job 750x failed", "K5": "the next run tries again"}},
		{name: "sink cannot look up",
			sink:    func(d *deleteSink) pipeline.Sink { return d },
			deleted: []string{"001A"}, ok: []string{"K1"},
			errs: map[string]string{"K2": `sink "mirror" cannot look records up`, "K3": "no record id is known", "K4": "no record id is known",
				"K5": "no record id is known"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &deleteSink{}
			sink := tc.sink(d)
			rep, sy := runMirror(t, sink, keys)
			if got := d.deleted(); !slices.Equal(got, tc.deleted) {
				t.Errorf("deleted %v, want %v", got, tc.deleted)
			}
			if len(d.deletes) != 1 {
				t.Errorf("%d Delete calls, want 1 (ids and resolved keys together)", len(d.deletes))
			}
			for _, k := range tc.ok {
				if err := sy.outcomes[k]; err != nil {
					t.Errorf("%s: %v, want deleted", k, err)
				}
			}
			for k, want := range tc.errs {
				if err := sy.outcomes[k]; err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %v, want an error with %q", k, err, want)
				}
			}
			if rep.Status != pipeline.StatusPartial || rep.SyncDeletesFailed["load"] != int64(len(tc.errs)) {
				t.Errorf("status %s, deletes failed %v; want partial, %d", rep.Status, rep.SyncDeletesFailed, len(tc.errs))
			}
			if rs, ok := sink.(*resolveSink); ok {
				if len(rs.calls) != 1 || !slices.Equal(rs.calls[0], []string{"K2", "K3", "K4", "K5"}) || rs.fields[0] != "name" {
					t.Errorf("ResolveKeys calls %v by %v; want one for K2-K5 by name", rs.calls, rs.fields)
				}
			}
		})
	}
	t.Run("none left", func(t *testing.T) { // every key deleted or not found: succeeded
		d := &deleteSink{}
		rep, sy := runMirror(t, &resolveSink{deleteSink: d, records: records}, []missing{{"K1", "001A"}, {"K2", ""}, {"K3", ""}})
		if rep.Status != pipeline.StatusSucceeded || rep.SyncDeletesFailed != nil || slices.ContainsFunc(slices.Collect(maps.Values(sy.outcomes)), func(e error) bool { return e != nil }) {
			t.Errorf("status %s, deletes failed %v, outcomes %v", rep.Status, rep.SyncDeletesFailed, sy.outcomes)
		}
		if got := d.deleted(); !slices.Equal(got, []string{"001A", "001B"}) {
			t.Errorf("deleted %v", got)
		}
	})
}

// TestSyncResolvesKeysInBatches: keys without an id are looked up, and
// their records deleted, in batches of at most SyncBatchRows, beside the
// keys whose id is known.
func TestSyncResolvesKeysInBatches(t *testing.T) {
	n := 2*pipeline.SyncBatchRows + 5
	var keys []missing
	records := map[string][]string{}
	for i := range n {
		k := fmt.Sprintf("K%06d", i)
		switch {
		case i%3 == 0:
			keys = append(keys, missing{k, "ID" + k})
		case i%7 == 0: // not in the destination
			keys = append(keys, missing{k, ""})
		default:
			keys = append(keys, missing{k, ""})
			records[k] = []string{"ID" + k}
		}
	}
	d := &deleteSink{fail: map[string]bool{"IDK000001": true}}
	rs := &resolveSink{deleteSink: d, records: records}
	rep, sy := runMirror(t, rs, keys)
	if len(rs.calls) < 2 {
		t.Errorf("%d ResolveKeys calls, want a full batch and the rest", len(rs.calls))
	}
	for _, c := range rs.calls {
		if len(c) > pipeline.SyncBatchRows {
			t.Errorf("ResolveKeys of %d keys", len(c))
		}
	}
	for _, ids := range d.deletes {
		if len(ids) > pipeline.SyncBatchRows {
			t.Errorf("Delete of %d ids", len(ids))
		}
	}
	var want []string
	for _, m := range keys {
		if m.id != "" || records[m.key] != nil {
			want = append(want, "ID"+m.key)
		}
	}
	if got := d.deleted(); !slices.Equal(got, want) {
		t.Errorf("deleted %d ids, want %d", len(got), len(want))
	}
	for _, m := range keys {
		if err := sy.outcomes[m.key]; (err != nil) != (m.key == "K000001") {
			t.Errorf("%s: %v", m.key, err)
		}
	}
	if rep.Status != pipeline.StatusPartial || rep.SyncDeletesFailed["load"] != 1 {
		t.Errorf("status %s, deletes failed %v; want partial, 1", rep.Status, rep.SyncDeletesFailed)
	}
}
