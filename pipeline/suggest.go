package pipeline

import (
	"strings"

	"github.com/agnivade/levenshtein"
)

// Closest returns the candidate closest to got by edit distance
// (case-insensitive), if it is close enough to be a likely typo; else "".
func Closest(got string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := levenshtein.ComputeDistance(strings.ToLower(got), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := len(got) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}
