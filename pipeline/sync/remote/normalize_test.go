package remote

import (
	"testing"
	"time"
)

func TestNormalizerValue(t *testing.T) {
	fields := []Field{
		{Name: "B", Type: "boolean"},
		{Name: "Cur", Type: "currency", Precision: 18, Scale: 2},
		{Name: "Dbl", Type: "double"}, // no precision: never rounded
		{Name: "N", Type: "int"},
		{Name: "D", Type: "date"},
		{Name: "DT", Type: "datetime"},
		{Name: "P", Type: "picklist"},
		{Name: "MP", Type: "multipicklist"},
		{Name: "R", Type: "reference"},
		{Name: "S", Type: "string"},
		{Name: "T", Type: "time"},
	}
	idx := map[string]int{}
	for i, f := range fields {
		idx[f.Name] = i
	}
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		field string
		in    any
		want  any
	}{
		{"B", true, "true"},
		{"B", "TRUE", "true"},
		{"B", "1", "true"},
		{"B", "false", "false"},
		{"B", nil, "false"},
		{"B", "", "false"},
		{"Cur", "12.50", "12.5"},
		{"Cur", "12.345", "12.35"},
		{"Cur", "-12.345", "-12.35"},
		{"Cur", 12.5, "12.5"},
		{"Cur", "1.25e1", "12.5"},
		{"Cur", "0012.50", "12.5"},
		{"Cur", "-0.00", "0"},
		{"Cur", "", nil},
		{"Cur", "#N/A", nil},
		{"Dbl", "3.14159265", "3.14159265"},
		{"Dbl", "100.000", "100"},
		{"N", int64(42), "42"},
		{"N", "42.0", "42"},
		{"D", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), "2024-03-01"},
		{"D", "2024-03-01", "2024-03-01"},
		{"DT", time.Date(2024, 3, 1, 10, 0, 0, 123456789, berlin), "2024-03-01T09:00:00.123Z"},
		{"DT", "2024-03-01T10:00:00.123456+01:00", "2024-03-01T09:00:00.123Z"},
		{"DT", "2024-03-01T09:00:00.123+0000", "2024-03-01T09:00:00.123Z"},
		{"DT", "2024-03-01T09:00:00Z", "2024-03-01T09:00:00.000Z"},
		{"DT", "2024-03-01", "2024-03-01T00:00:00.000Z"},
		{"P", "Customer - Direct", "customer - direct"},
		{"MP", "b;A; a;;c", "a;b;c"},
		{"MP", ";", nil},
		{"R", "001Hs00000000AbCDE", "001Hs00000000Ab"},
		{"R", "001Hs00000000Ab", "001Hs00000000Ab"},
		{"S", "line1\r\nline2\rline3", "line1\nline2\nline3"},
		{"S", "", nil},
		{"S", nil, nil},
		{"S", " Spaced ", " Spaced "},
		{"T", "10:15:30", "10:15:30.000Z"},
	}
	n := NewNormalizer(fields)
	for _, tt := range tests {
		if got := n.Value(idx[tt.field], tt.in); got != tt.want {
			t.Errorf("%s %#v: got %#v, want %#v", tt.field, tt.in, got, tt.want)
		}
		// Normalising twice changes nothing: a snapshot's values are
		// normalised again by the Differ's Canon.
		if got := n.Value(idx[tt.field], n.Value(idx[tt.field], tt.in)); got != tt.want {
			t.Errorf("%s %#v: normalised twice %#v, want %#v", tt.field, tt.in, got, tt.want)
		}
	}
}
