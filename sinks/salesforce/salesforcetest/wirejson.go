package salesforcetest

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// The emulator writes its JSON responses with a small ordered encoder so
// that field order and number formatting (apiVersion "62.0") follow the
// contract byte for byte. Compact output matches Salesforce's default;
// pretty output (X-PrettyPrint: 1) follows Jackson's DefaultPrettyPrinter:
// objects are indented by two spaces per nesting level, keys are written as
// `"key" : value`, arrays stay on one line as `[ a, b ]`.

// kv is one member of an ordered JSON object.
type kv struct {
	k string
	v any
}

// obj is an ordered JSON object.
type obj []kv

// rawNum is a JSON number written verbatim (for example "62.0").
type rawNum string

// rawJSON is pre-encoded JSON written verbatim.
type rawJSON []byte

func encodeJSON(v any, pretty bool) []byte {
	var b bytes.Buffer
	writeJSON(&b, v, pretty, 0)
	return b.Bytes()
}

func writeJSON(b *bytes.Buffer, v any, pretty bool, depth int) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeJSONString(b, x)
	case rawNum:
		b.WriteString(string(x))
	case rawJSON:
		b.Write(x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		writeJSON(b, a, pretty, depth)
	case []obj:
		a := make([]any, len(x))
		for i, o := range x {
			a[i] = o
		}
		writeJSON(b, a, pretty, depth)
	case []any:
		if len(x) == 0 {
			if pretty {
				b.WriteString("[ ]")
			} else {
				b.WriteString("[]")
			}
			return
		}
		b.WriteByte('[')
		if pretty {
			b.WriteByte(' ')
		}
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
				if pretty {
					b.WriteByte(' ')
				}
			}
			writeJSON(b, e, pretty, depth)
		}
		if pretty {
			b.WriteByte(' ')
		}
		b.WriteByte(']')
	case obj:
		if len(x) == 0 {
			if pretty {
				b.WriteString("{ }")
			} else {
				b.WriteString("{}")
			}
			return
		}
		b.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if pretty {
				b.WriteByte('\n')
				indent(b, depth+1)
			}
			writeJSONString(b, m.k)
			if pretty {
				b.WriteString(" : ")
			} else {
				b.WriteByte(':')
			}
			writeJSON(b, m.v, pretty, depth+1)
		}
		if pretty {
			b.WriteByte('\n')
			indent(b, depth)
		}
		b.WriteByte('}')
	default:
		panic("salesforcetest: unsupported JSON value")
	}
}

func indent(b *bytes.Buffer, depth int) {
	for i := 0; i < depth; i++ {
		b.WriteString("  ")
	}
}

const hexDigits = "0123456789abcdef"

func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				b.WriteString(`\"`)
			case c == '\\':
				b.WriteString(`\\`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\ufffd`)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
