package csvsource_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/bulkflow/bulkflow/pipeline/blobio"
	"github.com/bulkflow/bulkflow/sources/csvsource"
)

// Example reads a CSV object from an in-process mem:// bucket, with typed
// columns and a bad record that is dead-lettered rather than failing the
// read.
func Example() {
	ctx := context.Background()
	loc, _ := blobio.Parse("", "mem://example/accounts.csv")
	data := "Id,Name,Employees\n" +
		"1,\"Acme, Inc.\",120\n" +
		"2,Globex,many\n" +
		"3,\"Initech\r\nLabs\",\n"
	if err := blobio.WriteAll(ctx, loc, []byte(data)); err != nil {
		log.Fatal(err)
	}

	src, err := csvsource.Open(ctx, nil, &csvsource.Options{
		URL:     "mem://example/*.csv",
		Columns: csvsource.Columns{{Name: "Employees", Type: "int"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()

	schema, err := src.Schema(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schema:", schema)
	for {
		b, err := src.Read(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		for i := range b.Len() {
			fmt.Printf("%v %#v\n", b.Origin(i), []any(b.Row(i)))
		}
		for _, d := range b.Drops() {
			fmt.Println("dead letter:", d.Err)
		}
	}
	// Output:
	// schema: Id:string, Name:string, Employees:int
	// mem://example/accounts.csv:2 []interface {}{"1", "Acme, Inc.", 120}
	// mem://example/accounts.csv:4 []interface {}{"3", "Initech\r\nLabs", interface {}(nil)}
	// dead letter: mem://example/accounts.csv:3: field Employees: "many" is not an int
}
