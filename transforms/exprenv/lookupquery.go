package exprenv

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/bulkflow/bulkflow/pipeline"
)

// QueryLoader loads the table of a lookup declared with a query (a SOQL
// query for Salesforce): every record's key → value, refusing more than
// the spec's budget. env is the run's (BaseDir, Logger); name is the
// table's, for messages.
type QueryLoader func(ctx context.Context, env *pipeline.Env, name string, spec pipeline.LookupSpec) (map[string]string, error)

var (
	queryLoaderMu sync.RWMutex
	queryLoader   QueryLoader
)

// RegisterQueryLoader sets the loader of query lookups. Package
// salesforcesource registers it (it runs the query as a Bulk API 2.0
// query job); a program that does not import it refuses query lookups.
func RegisterQueryLoader(f QueryLoader) {
	queryLoaderMu.Lock()
	defer queryLoaderMu.Unlock()
	queryLoader = f
}

// runTables holds the query tables of one run (one *pipeline.Env), so that
// each query is fetched once per run however many stages use its table.
// The entry goes when the Env is collected.
type runTables struct {
	mu     sync.Mutex
	tables map[string]map[string]string
}

var byRun sync.Map // weak.Pointer[pipeline.Env] → *runTables

// queryTable returns the named query table of penv's run, loading it on
// first use. A failed load is not remembered: the next stage tries again.
func queryTable(penv *pipeline.Env, name string, spec pipeline.LookupSpec) (map[string]string, error) {
	queryLoaderMu.RLock()
	load := queryLoader
	queryLoaderMu.RUnlock()
	if load == nil {
		return nil, errors.New("a query lookup needs the salesforce source's loader: import " +
			"github.com/bulkflow/bulkflow/sources/salesforcesource (the bulkflow command does)")
	}
	if penv == nil {
		penv = &pipeline.Env{}
	}
	key := weak.Make(penv)
	v, loaded := byRun.LoadOrStore(key, &runTables{tables: map[string]map[string]string{}})
	if !loaded {
		runtime.AddCleanup(penv, func(k weak.Pointer[pipeline.Env]) { byRun.Delete(k) }, key)
	}
	rt := v.(*runTables)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if t, ok := rt.tables[name]; ok {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryLoadTimeout)
	defer cancel()
	t, err := load(ctx, penv, name, spec)
	if err != nil {
		return nil, err
	}
	rt.tables[name] = t
	return t, nil
}

// queryLoadTimeout bounds loading one query table: a query job on a large
// object can take minutes to run before its first page.
const queryLoadTimeout = 30 * time.Minute
