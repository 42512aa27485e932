package bench

import (
	"strings"
	"testing"
)

func TestRowSet(t *testing.T) {
	fingerprint := func(t *testing.T, files ...string) RowSet {
		t.Helper()
		var s RowSet
		for i, f := range files {
			if err := s.Add("f"+string(rune('0'+i)), strings.NewReader(f)); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	base := fingerprint(t, "A,B\n1,x\n2,\"y,z\"\n3,\"multi\nline\"\n")
	if base.Rows != 3 {
		t.Fatalf("rows = %d, want 3", base.Rows)
	}
	tests := []struct {
		name  string
		files []string
		same  bool
	}{
		{"same records in another order and split", []string{"A,B\n3,\"multi\nline\"\n1,x\n", "A,B\n2,\"y,z\"\n"}, true},
		{"a changed value", []string{"A,B\n1,x\n2,\"y,z\"\n3,\"multi\nlinE\"\n"}, false},
		{"a record lost", []string{"A,B\n1,x\n2,\"y,z\"\n"}, false},
		{"a record duplicated", []string{"A,B\n1,x\n2,\"y,z\"\n3,\"multi\nline\"\n1,x\n"}, false},
		{"a field boundary moved", []string{"A,B\n1,x\n\"2,y\",z\n3,\"multi\nline\"\n"}, false},
		{"another header", []string{"A,C\n1,x\n2,\"y,z\"\n3,\"multi\nline\"\n"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fingerprint(t, tt.files...)
			if (got == base) != tt.same {
				t.Errorf("fingerprint %s vs %s: equal = %v, want %v", got, base, got == base, tt.same)
			}
		})
	}
	var s RowSet
	s.Add("a.csv", strings.NewReader("A,B\n1,2\n"))
	if err := s.Add("b.csv", strings.NewReader("A,C\n1,2\n")); err == nil || !strings.Contains(err.Error(), "b.csv") {
		t.Errorf("mixed headers: err = %v, want one naming b.csv", err)
	}
}
