package redis

import (
	"crypto/sha256"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/meshfast/meshfast/protocol/jsonx"
)

// canonicalHash returns a hash that two JSON values share exactly when
// jsonx.Equal says they are equal, so that the record script can decide
// "unchanged" inside Redis, in the same round trip as the write. It encodes
// the value canonically: object members sorted by unescaped key (the last
// of duplicate keys wins), numbers as the float64 JavaScript reads
// (1 == 1.0 == 1e0, -0 == 0, out of range == ±Inf), strings unescaped with
// lone surrogates kept apart from U+FFFD (WTF-8) and other bytes as they
// are. FuzzCanonicalHash checks the equivalence with jsonx.Equal.
//
// Empty input is null. Invalid input (jsonx.Valid: syntax and depth) is an
// error wrapping coord.ErrInvalidJSON.
func canonicalHash(v []byte) (string, error) {
	if len(v) == 0 {
		v = []byte("null")
	}
	if !jsonx.Valid(v) {
		_, err := jsonx.Equal(v, v) // the parse error, wrapping ErrInvalidJSON
		return "", err
	}
	p := canonParser{src: v}
	sum := sha256.Sum256(p.value(nil))
	return string(sum[:16]), nil
}

// nullHash is the canonical hash of null, which a missing record counts as.
var nullHash, _ = canonicalHash([]byte("null"))

// canonParser walks a validated JSON value. Every encoding starts with a
// type byte and gives lengths before variable parts, so no two values
// share one.
type canonParser struct {
	src []byte
	pos int
}

func (p *canonParser) skip() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *canonParser) value(dst []byte) []byte {
	p.skip()
	switch c := p.src[p.pos]; c {
	case '{':
		return p.object(dst)
	case '[':
		return p.array(dst)
	case '"':
		s := p.str(nil)
		dst = append(dst, 's')
		dst = strconv.AppendInt(dst, int64(len(s)), 10)
		dst = append(dst, ':')
		return append(dst, s...)
	case 't':
		p.pos += 4
		return append(dst, 't')
	case 'f':
		p.pos += 5
		return append(dst, 'f')
	case 'n':
		p.pos += 4
		return append(dst, 'z')
	default:
		start := p.pos
		for p.pos < len(p.src) && isNumByte(p.src[p.pos]) {
			p.pos++
		}
		// ParseFloat yields ±Inf (or 0) with ErrRange out of range, as
		// JSON.parse does.
		f, _ := strconv.ParseFloat(string(p.src[start:p.pos]), 64)
		if f == 0 {
			f = 0 // -0
		}
		dst = append(dst, 'n')
		dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
		return append(dst, ';')
	}
}

func isNumByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func (p *canonParser) array(dst []byte) []byte {
	p.pos++ // [
	var elems []byte
	n := 0
	p.skip()
	if p.src[p.pos] == ']' {
		p.pos++
		return append(dst, 'a', '0', ';')
	}
	for {
		elems = p.value(elems)
		n++
		p.skip()
		c := p.src[p.pos]
		p.pos++
		if c == ']' {
			break
		}
	}
	dst = append(dst, 'a')
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ';')
	return append(dst, elems...)
}

type canonMember struct {
	key string
	val []byte
}

func (p *canonParser) object(dst []byte) []byte {
	p.pos++ // {
	var ms []canonMember
	seen := make(map[string]int)
	p.skip()
	if p.src[p.pos] == '}' {
		p.pos++
		return append(dst, 'o', '0', ';')
	}
	for {
		p.skip()
		key := string(p.str(nil))
		p.skip()
		p.pos++ // :
		val := p.value(nil)
		if i, dup := seen[key]; dup {
			ms[i].val = val // JSON.parse: the last duplicate wins
		} else {
			seen[key] = len(ms)
			ms = append(ms, canonMember{key, val})
		}
		p.skip()
		c := p.src[p.pos]
		p.pos++
		if c == '}' {
			break
		}
	}
	slices.SortFunc(ms, func(a, b canonMember) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	dst = append(dst, 'o')
	dst = strconv.AppendInt(dst, int64(len(ms)), 10)
	dst = append(dst, ';')
	for _, m := range ms {
		dst = strconv.AppendInt(dst, int64(len(m.key)), 10)
		dst = append(dst, ':')
		dst = append(dst, m.key...)
		dst = append(dst, m.val...)
	}
	return dst
}

// str reads a string at p.pos and appends its unescaped content: a
// surrogate pair as the UTF-8 of its code point, a lone surrogate as its
// three WTF-8 bytes (JavaScript strings are UTF-16, so "\ud800" is not
// "\ufffd"), every other byte as it is.
func (p *canonParser) str(dst []byte) []byte {
	s := p.src
	i := p.pos + 1
	for {
		c := s[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return dst
		case c != '\\':
			dst = append(dst, c)
			i++
			continue
		}
		e := s[i+1]
		i += 2
		switch e {
		case 'u':
			u := hex4(s[i:])
			i += 4
			if u >= 0xD800 && u < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if lo := hex4(s[i+2:]); lo >= 0xDC00 && lo < 0xE000 {
					dst = utf8.AppendRune(dst, 0x10000+(u-0xD800)<<10+(lo-0xDC00))
					i += 6
					continue
				}
			}
			if u >= 0xD800 && u < 0xE000 {
				dst = append(dst, 0xE0|byte(u>>12), 0x80|byte(u>>6)&0x3F, 0x80|byte(u)&0x3F)
			} else {
				dst = utf8.AppendRune(dst, u)
			}
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
	}
}

// hex4 decodes four hex digits (validated input).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
