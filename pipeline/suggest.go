package pipeline

import "strings"

// Closest returns the candidate closest to got by edit distance
// (case-insensitive), if it is close enough to be a likely typo; else "".
// Swapping two adjacent letters counts as one edit, so "stagse" suggests
// "stages", not "state".
func Closest(got string, candidates []string) string {
	best, bestD := "", 1<<30
	g := []rune(strings.ToLower(got))
	for _, c := range candidates {
		if d := osaDistance(g, []rune(strings.ToLower(c))); d < bestD {
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

// osaDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent runes, each one
// edit. Written here because the Levenshtein libraries (agnivade/levenshtein
// was used before) do not count transpositions, the most common typo in
// hand-written keys.
func osaDistance(a, b []rune) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
