package config

import (
	"bytes"
	"fmt"

	"github.com/bulkflow/bulkflow/pipeline"
)

// checkDepth refuses data that nests more than max levels, before the YAML
// parser sees it (its cost grows steeply with depth: 100,000 nested [ took
// over a minute). It is a single pass over the bytes that counts, on each
// line, the open block levels (by indentation), the list dashes that start
// the line and the open flow brackets ([ and {, outside quotes and
// comments). The count can only overestimate (a bracket in a plain scalar
// counts), which matters only near the limit, far above any real pipeline.
func checkDepth(name string, data []byte, max int) error {
	var (
		stack       []int // indentation of the open block levels
		flow        int   // open [ and {
		blockScalar = -1  // indentation of a | or > scalar's key: deeper lines are text
	)
	for line := 1; len(data) > 0; line++ {
		ln := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			ln, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		indent := 0
		for indent < len(ln) && ln[indent] == ' ' {
			indent++
		}
		rest := ln[indent:]
		if len(bytes.TrimSpace(rest)) == 0 {
			continue
		}
		if blockScalar >= 0 {
			if indent > blockScalar {
				continue
			}
			blockScalar = -1
		}
		col := indent
		dashes := 0
		if flow == 0 {
			if rest[0] == '#' {
				continue
			}
			for len(stack) > 0 && stack[len(stack)-1] >= indent {
				stack = stack[:len(stack)-1]
			}
			stack = append(stack, indent)
			for len(rest) > 0 && rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ') {
				dashes++
				rest, col = rest[1:], col+1
				for len(rest) > 0 && rest[0] == ' ' {
					rest, col = rest[1:], col+1
				}
			}
		}
		depth := func() int { return len(stack) + dashes + flow }
		if depth() > max {
			return depthErr(name, line, col+1, max)
		}
		var quote byte
		prev := byte(' ')
		end := len(rest) // where a comment starts
	scan:
		for i := 0; i < len(rest); i++ {
			c := rest[i]
			switch {
			case quote == '\'':
				if c == '\'' {
					if i+1 < len(rest) && rest[i+1] == '\'' {
						i++
					} else {
						quote = 0
					}
				}
			case quote == '"':
				if c == '\\' {
					i++
				} else if c == '"' {
					quote = 0
				}
			case c == '#' && (prev == ' ' || prev == '\t'):
				end = i
				break scan
			case (c == '\'' || c == '"') && bytes.IndexByte([]byte(" \t[{,:"), prev) >= 0:
				quote = c
			case c == '[' || c == '{':
				flow++
				if depth() > max {
					return depthErr(name, line, col+i+1, max)
				}
			case c == ']' || c == '}':
				if flow > 0 {
					flow--
				}
			}
			prev = c
		}
		if flow == 0 && quote == 0 && isBlockScalarHeader(bytes.TrimRight(rest[:end], " \t\r")) {
			blockScalar = indent
		}
	}
	return nil
}

// isBlockScalarHeader reports whether a line ends with a block scalar
// indicator (| or >, with optional chomping and indentation indicators).
func isBlockScalarHeader(b []byte) bool {
	i := len(b)
	for i > 0 && (b[i-1] == '+' || b[i-1] == '-' || b[i-1] >= '0' && b[i-1] <= '9') {
		i--
	}
	if i == 0 || b[i-1] != '|' && b[i-1] != '>' {
		return false
	}
	return i == 1 || b[i-2] == ' '
}

func depthErr(name string, line, col, max int) error {
	return &pipeline.ConfigError{Pos: pipeline.Position{File: name, Line: line, Col: col}, Msg: fmt.Sprintf(
		"the pipeline file nests deeper than %d levels here (indentation, list dashes and [ { brackets counted together); real pipelines need fewer than 10: check for unclosed brackets, or that this is the right file", max)}
}
