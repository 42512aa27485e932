package parquetsource_test

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/parquetsource"
)

// Example writes a small Parquet object to an in-process bucket and reads
// it back with a column projection.
func Example() {
	ctx := context.Background()

	// A file with three columns, written with Arrow.
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "Id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "Name", Type: arrow.BinaryTypes.String},
		{Name: "Secret", Type: arrow.BinaryTypes.String},
	}, nil)
	rec, _, _ := array.RecordFromJSON(memory.DefaultAllocator, sc, bytes.NewReader([]byte(
		`[{"Id": 1, "Name": "Acme", "Secret": "x"}, {"Id": 2, "Name": "Globex", "Secret": "y"}]`)))
	defer rec.Release()
	var buf bytes.Buffer
	w, _ := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	w.Write(rec)
	w.Close()
	loc, _ := blobio.Parse("", "mem://example/accounts/part-0.parquet")
	if err := blobio.WriteAll(ctx, loc, buf.Bytes()); err != nil {
		fmt.Println(err)
		return
	}

	src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{
		URL:     "mem://example/accounts/part-*.parquet",
		Columns: []string{"Name", "Id"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	sch, err := src.Schema(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sch)
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		for i := range b.Len() {
			fmt.Println(b.Origin(i), b.Row(i))
		}
	}
	// Output:
	// Name:string, Id:int
	// mem://example/accounts/part-0.parquet#row=1 [Acme 1]
	// mem://example/accounts/part-0.parquet#row=2 [Globex 2]
}
