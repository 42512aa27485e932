package pipeline

import (
	"strings"
	"testing"
	"time"
)

// TestLookback: parseLookback's forms per cursor type, and the bound
// lookbackFrom puts below a watermark.
func TestLookback(t *testing.T) {
	ts := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		typ      Type
		lookback string
		after    any
		want     any    // the bound
		err      string // or the error
	}{
		{"timestamp minutes", TypeTimestamp, "15m", ts, ts.Add(-15 * time.Minute), ""},
		{"timestamp days", TypeTimestamp, "3d", ts, ts.Add(-72 * time.Hour), ""},
		{"date, part of a day rounds down", TypeDate, "36h", day, day.Add(-48 * time.Hour), ""},
		{"date days", TypeDate, "1d", day, day.Add(-24 * time.Hour), ""},
		{"int", TypeInt, "1000", int64(5000), int64(4000), ""},
		{"int at its floor", TypeInt, "10", int64(-9223372036854775800), int64(-9223372036854775808), ""},
		{"float", TypeFloat, "0.5", 2.0, 1.5, ""},
		{"not a duration", TypeTimestamp, "15", nil, nil, `lookback "15" is not a positive duration`},
		{"negative duration", TypeTimestamp, "-5m", nil, nil, "not a positive duration"},
		{"zero", TypeInt, "0", nil, nil, "not a positive whole number"},
		{"fraction for an int", TypeInt, "1.5", nil, nil, "not a positive whole number"},
		{"infinite float", TypeFloat, "+Inf", nil, nil, "not a positive number"},
		{"string cursor", TypeString, "10", nil, nil, "lookback needs an int, float, date or timestamp cursor, and this one is a string"},
		{"decimal cursor", TypeDecimal, "10", nil, nil, "and this one is a decimal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			back, err := parseLookback(tc.typ, tc.lookback)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseLookback(%s, %q) error %v, want %q", tc.typ, tc.lookback, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := lookbackFrom(tc.typ, tc.after, back)
			if compareCursor(tc.typ, got, tc.want) != 0 {
				t.Errorf("lookbackFrom(%v, %q) = %v, want %v", tc.after, tc.lookback, got, tc.want)
			}
		})
	}
}
