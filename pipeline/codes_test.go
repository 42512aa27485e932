package pipeline

import (
	"slices"
	"testing"
)

func TestRecoveryOf(t *testing.T) {
	for _, tc := range []struct {
		code      string
		want      Recovery
		retryable bool
	}{
		{CodeJobIncomplete, RecoveryResume, false},
		{CodeResultMismatch, RecoveryInspect, false},
		{CodeCancelled, RecoveryRetry, true},
		{CodeConnectionRefused, RecoveryRetry, true},
		{"REQUEST_LIMIT_EXCEEDED", RecoveryRetry, true},
		{"UNABLE_TO_LOCK_ROW", RecoveryRetry, true},
		{"REQUIRED_FIELD_MISSING", RecoveryFix, false}, // not in the table
		{"bad_value", RecoveryFix, false},
		{"", RecoveryFix, false},
	} {
		if got := RecoveryOf(tc.code); got != tc.want {
			t.Errorf("RecoveryOf(%q) = %v, want %v", tc.code, got, tc.want)
		}
		if got := RetryableCode(tc.code); got != tc.retryable {
			t.Errorf("RetryableCode(%q) = %v, want %v", tc.code, got, tc.retryable)
		}
	}
}

func TestCodesTable(t *testing.T) {
	codes := Codes()
	if !slices.IsSortedFunc(codes, func(a, b CodeInfo) int {
		if a.Code < b.Code {
			return -1
		}
		return 1
	}) {
		t.Error("Codes() is not sorted")
	}
	for _, c := range codes {
		if c.Doc == "" || c.Recovery.String() == "unknown" {
			t.Errorf("code %q: doc %q, recovery %v", c.Code, c.Doc, c.Recovery)
		}
		if got, ok := LookupCode(c.Code); !ok || got != c {
			t.Errorf("LookupCode(%q) = %v, %v", c.Code, got, ok)
		}
	}
	before := codes[0]
	codes[0].Recovery = before.Recovery + 1 // a copy: the table is unchanged
	if got := Codes()[0]; got != before {
		t.Errorf("Codes returned the table itself: %v, want %v", got, before)
	}
}
