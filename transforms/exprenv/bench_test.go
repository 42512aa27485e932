package exprenv

import (
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

// BenchmarkRun measures Bind and Run of one program on one row, through
// its fast path and through the VM.
func BenchmarkRun(b *testing.B) {
	exprs := []string{
		`first_name`,
		`first_name + " " + s`,
		`upper(s)`,
		`sfDate(dec, "2006-01-02")`,
		`sfDate(s, "02/01/2006")`,
		`sfBool(a)`,
		`s == nil || s == "" ? "Warm" : "Hot"`,
		`f > 1000000 ? "Enterprise" : "SMB"`,
		`n * 2 + 1`,
		`f / n`,
	}
	r := row(map[string]any{"s": "fr", "first_name": "Ada", "dec": "2024-03-05", "f": 1.5, "a": "yes", "n": int64(21)})
	for _, src := range exprs {
		for _, mode := range []string{"fast", "vm"} {
			b.Run(mode+"/"+src, func(b *testing.B) {
				forceVM = mode == "vm"
				e := New(testSchema, testEnv)
				p, err := e.Compile(src)
				forceVM = false
				if err != nil {
					b.Fatal(err)
				}
				r := r
				if src == `sfDate(s, "02/01/2006")` {
					r = append(pipeline.Row(nil), r...)
					r[testSchema.Index("s")] = "05/03/2024"
				}
				run := e.Runner()
				defer run.Release()
				b.ReportAllocs()
				for b.Loop() {
					run.Bind(r)
					if _, err := run.Run(p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
