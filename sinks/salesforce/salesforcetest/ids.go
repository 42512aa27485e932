package salesforcetest

import "strings"

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

// idSpace is the number of distinct generated ids of a key prefix: their
// counter is 10 base62 digits.
const idSpace = 839299365868340224 // 62^10

// idGen generates the ids of one key prefix: id is the 15-character id
// last made (prefix, "Hs", 10 base62 digits of the counter n), which the
// next id increments in place instead of formatting the counter anew.
//
// Records keep only their counter (8 bytes, no pointer): their ids are
// formatted when they are read, result files doing so with an idGen of
// their own, which sees the consecutive counters of a job's records.
type idGen struct {
	n  uint64 // the counter of id
	id [15]byte
}

// next advances g.id to the next counter value (modulo 62^10, as
// formatting the counter's 10 low base62 digits would).
func (g *idGen) next() {
	if g.n++; g.n == idSpace {
		g.n = 0
	}
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

// seek sets g to the id with key prefix prefix and counter n (n <
// idSpace): by one increment when n follows g's counter, else by
// formatting n.
func (g *idGen) seek(prefix string, n uint64) {
	if string(g.id[:3]) == prefix && g.n+1 == n {
		g.next()
		return
	}
	copy(g.id[:], prefix)
	g.id[3], g.id[4] = 'H', 's'
	g.n = n
	for i := 14; i >= 5; i-- {
		g.id[i] = base62[n%62]
		n /= 62
	}
}

// appendID appends the 18-character form of g.id to dst.
func (g *idGen) appendID(dst []byte) []byte {
	dst = append(dst, g.id[:]...)
	for chunk := 0; chunk < 3; chunk++ {
		n := 0
		for i := 0; i < 5; i++ {
			if c := g.id[chunk*5+i]; c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		dst = append(dst, suffixLetter[n])
	}
	return dst
}

// formatID returns the 18-character id with key prefix prefix and
// generated counter n.
func formatID(prefix string, n uint64) string {
	var g idGen
	g.seek(prefix, n)
	var b [18]byte
	return string(g.appendID(b[:0]))
}

// nextIDLocked advances the generator of prefix and returns it. s.mu must
// be held.
func (s *Server) nextIDLocked(prefix string) *idGen {
	g := s.lastIDGen
	if g == nil || s.lastIDPrefix != prefix {
		g = s.idGens[prefix]
		if g == nil {
			g = &idGen{}
			g.seek(prefix, 0)
			s.idGens[prefix] = g
		}
		s.lastIDPrefix, s.lastIDGen = prefix, g
	}
	g.next()
	return g
}

// newIDLocked returns a fresh 18-character id with the given 3-character
// key prefix. s.mu must be held.
func (s *Server) newIDLocked(prefix string) string {
	g := s.nextIDLocked(prefix)
	var b [18]byte
	return string(g.appendID(b[:0]))
}

// newCounterLocked returns the counter of a fresh id with the given
// 3-character key prefix, for a record (see idGen). s.mu must be held.
func (s *Server) newCounterLocked(prefix string) uint64 {
	return s.nextIDLocked(prefix).n
}
