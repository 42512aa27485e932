package pipeline_test

import (
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
)

func TestBatchDerive(t *testing.T) {
	in1, _ := pipeline.NewSchema(pipeline.Field{Name: "a", Type: pipeline.TypeString})
	out1, _ := pipeline.NewSchema(pipeline.Field{Name: "b", Type: pipeline.TypeString})
	src := pipeline.NewBatch(in1, 8) // spare capacity: a shared slice must not be appended into
	for i := range 3 {
		src.Append(pipeline.Row{string(rune('x' + i))}, pipeline.Origin{Object: "o", Row: int64(i + 1)})
	}
	d := src.Derive(out1, []pipeline.Row{{"X"}, {"Y"}, {"Z"}})
	if d.Schema() != out1 || d.Len() != 3 || d.Row(2)[0] != "Z" || d.Origin(2).Row != 3 {
		t.Fatalf("derived batch: schema %v, %d rows, row 2 %v, origin %v", d.Schema(), d.Len(), d.Row(2), d.Origin(2))
	}
	d.Append(pipeline.Row{"W"}, pipeline.Origin{Object: "other", Row: 99})
	src.Append(pipeline.Row{"w"}, pipeline.Origin{Object: "o", Row: 4})
	if got := d.Origin(3); got.Object != "other" {
		t.Errorf("appending to the source changed the derived batch's origin: %v", got)
	}
	if got := src.Origin(3); got.Object != "o" {
		t.Errorf("appending to the derived batch changed the source's origin: %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Derive with the wrong number of rows did not panic")
		}
	}()
	src.Derive(out1, []pipeline.Row{{"only one"}})
}
