package parquetsource_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/sources/parquetsource"
	"github.com/bulkflow/bulkflow/sources/sourcetest"
)

// TestCorrupt: truncated and non-Parquet objects are refused with an error
// naming the object, never a panic.
func TestCorrupt(t *testing.T) {
	ctx := context.Background()
	good := encodeFixture(t, sourcetest.Fixture{Name: "x", Header: []string{"a", "b"}, Rows: [][]string{{"1", "2"}, {"3", "4"}}})
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated", good[:len(good)/2]},
		{"footer only", good[len(good)-8:]},
		{"not parquet", []byte("id,name\n1,a\n")},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := "mem://parquet-corrupt/" + strings.ReplaceAll(tc.name, " ", "-") + ".parquet"
			write(ctx, t, url, tc.data)
			src, err := parquetsource.Open(ctx, nil, &parquetsource.Options{URL: url})
			if err == nil {
				_, err = src.Schema(ctx)
				defer src.Close()
			}
			if err == nil || !strings.Contains(err.Error(), url) {
				t.Errorf("error = %v, want one naming %s", err, url)
			}
		})
	}
}
