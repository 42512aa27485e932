package all_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	_ "github.com/bulkflow/bulkflow/sinks/all"
)

// TestSinksRefuseForeignOptions opens every sink bulkflow ships with
// options of another type (a registry or caller bug): each must return an
// error naming the type it wanted, never panic and never open.
func TestSinksRefuseForeignOptions(t *testing.T) {
	reg := pipeline.DefaultRegistry()
	names := reg.Names(pipeline.KindSink)
	for _, want := range []string{"csv", "jsonl", "parquet", "salesforce"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Fatalf("sink %q is not registered (have %v)", want, names)
		}
	}
	in := pipeline.MustSchema(pipeline.Field{Name: "Name", Type: pipeline.TypeString})
	env := &pipeline.Env{BaseDir: t.TempDir()}
	for _, name := range names {
		for _, tc := range []struct {
			label string
			opts  any
		}{{"foreign", &struct{ URL string }{URL: "out.csv"}}, {"nil", nil}} {
			t.Run(name+"/"+tc.label, func(t *testing.T) {
				var sk pipeline.Sink
				var err error
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("OpenSink panicked: %v", p)
						}
					}()
					sk, err = reg.OpenSink(context.Background(), env, name, tc.opts, in)
				}()
				if err == nil || !strings.Contains(err.Error(), "options are") || sk != nil {
					if sk != nil {
						sk.Close(context.Background())
					}
					t.Fatalf("sink %v, err %v; want no sink and an error naming the options type", sk, err)
				}
			})
		}
	}
}
