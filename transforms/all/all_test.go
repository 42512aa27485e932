package all

import (
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/transforms/filter"
	"github.com/bulkflow/bulkflow/transforms/mapping"
	"github.com/bulkflow/bulkflow/transforms/transformtest"
)

// harness is a transformtest.Harness from literal options.
type harness struct {
	opts any
	bad  []any
}

func (h harness) Options() any      { return h.opts }
func (h harness) BadOptions() []any { return h.bad }

// harnesses holds one harness per registered transform type. Each options
// value keeps, filters and dead-letters (expr_error, also for integer
// overflow and division by zero) some of transformtest.Rows.
var harnesses = map[string]transformtest.Harness{
	"map": harness{
		opts: &mapping.Options{Fields: []pipeline.ExprField{
			{Name: "Id", Expr: "id"},
			{Name: "Label", Expr: `trim(name) + "/" + note`},
			{Name: "Double", Expr: "id * 2"},
			{Name: "Share", Expr: "amount / id"},
			{Name: "Day", Expr: `sfDate(day, "2006-01-02")`},
			{Name: "Active", Expr: "active"},
		}},
		bad: []any{
			&mapping.Options{},
			&mapping.Options{Fields: []pipeline.ExprField{{Expr: "id"}}},
			&mapping.Options{Fields: []pipeline.ExprField{{Name: "Id"}}},
			&mapping.Options{Fields: []pipeline.ExprField{{Name: "Id", Expr: "id"}, {Name: "Id", Expr: "id + 1"}}},
		},
	},
	"filter": harness{
		opts: &filter.Options{Expr: pipeline.ExprField{Expr: "100 / id > 1 && amount > 0"}},
		bad:  []any{&filter.Options{}},
	},
}

// TestConformance runs transformtest on every transform this package
// registers; a registered transform without a harness fails.
func TestConformance(t *testing.T) {
	reg := pipeline.DefaultRegistry()
	names := reg.Names(pipeline.KindTransform)
	for _, name := range names {
		h, ok := harnesses[name]
		if !ok {
			t.Errorf("transform %q is registered but has no transformtest harness here", name)
			continue
		}
		t.Run(name, func(t *testing.T) { transformtest.RunConformance(t, reg, name, h) })
	}
	for name := range harnesses {
		if _, err := reg.Spec(pipeline.KindTransform, name); err != nil {
			t.Errorf("harness for %q, which is not registered: %v", name, err)
		}
	}
}
