package salesforcetest

import (
	"strings"
	"unsafe"
)

const (
	base62       = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	suffixLetter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
)

// idSuffix returns the 3-character case-safety suffix of a 15-character
// Salesforce id (contract §0).
func idSuffix(id15 string) string {
	var b [3]byte
	for chunk := 0; chunk < 3; chunk++ {
		n := 0
		for i := 0; i < 5; i++ {
			c := id15[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		b[chunk] = suffixLetter[n]
	}
	return string(b[:])
}

// To18 converts a 15-character Salesforce id into its 18-character form.
// An 18-character id is returned unchanged; anything else is returned as is.
func To18(id string) string {
	if len(id) != 15 {
		return id
	}
	return id + idSuffix(id)
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// normalizeID returns the canonical 15-character form of a 15- or
// 18-character id and whether the id is well formed (alphanumeric, and for
// 18 characters a matching case-insensitive suffix).
func normalizeID(id string) (string, bool) {
	switch len(id) {
	case 15:
		return id, isAlnum(id)
	case 18:
		if !isAlnum(id) {
			return "", false
		}
		if !strings.EqualFold(idSuffix(id[:15]), id[15:]) {
			return "", false
		}
		return id[:15], true
	}
	return "", false
}

// idGen generates the ids of one key prefix: id is the 15-character id
// last made (prefix, "Hs", 10 base62 digits of the counter), which the
// next id increments in place instead of formatting the counter anew.
type idGen struct {
	id [15]byte
}

// next advances g.id to the next counter value (modulo 62^10, as
// formatting the counter's 10 low base62 digits would).
func (g *idGen) next() {
	for i := 14; i >= 5; i-- {
		switch c := g.id[i]; c {
		case '9':
			g.id[i] = 'A'
		case 'Z':
			g.id[i] = 'a'
		case 'z':
			g.id[i] = '0'
			continue // carry
		default:
			g.id[i] = c + 1
		}
		return
	}
}

// newIDLocked returns a fresh 18-character id with the given 3-character key
// prefix. s.mu must be held.
func (s *Server) newIDLocked(prefix string) string {
	g := s.lastIDGen
	if g == nil || s.lastIDPrefix != prefix {
		g = s.idGens[prefix]
		if g == nil {
			g = &idGen{}
			copy(g.id[:], prefix)
			g.id[3], g.id[4] = 'H', 's'
			for i := 5; i < 15; i++ {
				g.id[i] = '0'
			}
			s.idGens[prefix] = g
		}
		s.lastIDPrefix, s.lastIDGen = prefix, g
	}
	g.next()
	// Ids are carved from a shared slab (one allocation per 1024 ids, not
	// one per record); a slab is never written after its ids are made.
	if cap(s.idSlab)-len(s.idSlab) < 18 {
		s.idSlab = make([]byte, 0, 18*1024)
	}
	l := len(s.idSlab)
	s.idSlab = s.idSlab[:l+18]
	b := s.idSlab[l : l+18]
	copy(b, g.id[:])
	for chunk := 0; chunk < 3; chunk++ {
		n := 0
		for i := 0; i < 5; i++ {
			if c := b[chunk*5+i]; c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		b[15+chunk] = suffixLetter[n]
	}
	return unsafe.String(&b[0], 18)
}
