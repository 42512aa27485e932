package cli

import (
	"fmt"
	"io"
	"strings"
)

// ValidRunID reports whether id can name a run (it becomes a path element
// of ledgers, dead letters, archives and state): 1 to 128 letters, digits,
// '.', '_' and '-', and neither "." nor "..". Served pipeline names follow
// the same rule.
func ValidRunID(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// PrintError writes err to w as "bulkflow: " lines, one per line of its
// text (a pipeline file's errors name a file:line each).
func PrintError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "bulkflow: %s\n", line)
	}
}
