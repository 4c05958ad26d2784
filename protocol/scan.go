package protocol

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting of arrays and objects. It equals encoding/json's
// limit so that the two agree on what is valid; V8's JSON.parse has no fixed
// limit, but no Mesh client nests anywhere near this deep.
const maxDepth = 10000

// The scanner below is a single-pass validating skipper for RFC 8259 JSON.
// It exists because sonic.Valid is not a validator in the JSON.parse sense:
// it accepts raw control characters inside strings and unknown escapes such
// as "\x", both of which make a Mesh server drop the frame. Scanning is
// byte-oriented with an 8-byte SWAR fast path for string bodies, which is
// where almost all payload bytes live. It never allocates unless a document
// nests deeper than 64 levels.

// strPlain[c] is true for bytes that may appear unescaped in a JSON string
// and need no further attention: everything but '"', '\\' and controls.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// swarSpecial marks the bytes of x that are '"', '\\' or below 0x20 with
// their high bit. Borrows of the subtraction only travel upwards, so the
// lowest marked byte is always a real one (higher marks may be spurious):
// the index of the first special byte is TrailingZeros64(mask)/8.
func swarSpecial(x uint64) uint64 {
	q := x ^ (swarLo * '"')
	b := x ^ (swarLo * '\\')
	return ((q-swarLo)&^q | (b-swarLo)&^b | (x-swarLo*0x20)&^x) & swarHi
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func isDigit(c byte) bool { return c-'0' < 10 }

func isHex(c byte) bool {
	return c-'0' < 10 || (c|0x20)-'a' < 6
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// scanString expects d[i] == '"' and returns the index just past the closing
// quote, whether the body contains escapes, or -1 if the string is malformed.
func scanString(d []byte, i int) (end int, escaped bool) {
	i++
	n := len(d)
	for {
		for i+8 <= n {
			if m := swarSpecial(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
			i += 8
		}
		for i < n && strPlain[d[i]] {
			i++
		}
	special:
		if i >= n {
			return -1, escaped
		}
		switch d[i] {
		case '"':
			return i + 1, escaped
		case '\\':
			escaped = true
			if i+1 >= n {
				return -1, escaped
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > n || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return -1, escaped
				}
				i += 6
			default:
				return -1, escaped
			}
		default: // a raw control character
			return -1, escaped
		}
	}
}

// scanNumber expects d[i] to start a number and returns the index past it,
// or -1. Leading zeros, a bare '.', and an empty exponent are rejected.
func scanNumber(d []byte, i int) int {
	n := len(d)
	if d[i] == '-' {
		i++
		if i >= n {
			return -1
		}
	}
	switch {
	case d[i] == '0':
		i++
	case d[i]-'1' < 9:
		i++
		for i < n && isDigit(d[i]) {
			i++
		}
	default:
		return -1
	}
	if i < n && d[i] == '.' {
		i++
		if i >= n || !isDigit(d[i]) {
			return -1
		}
		for i < n && isDigit(d[i]) {
			i++
		}
	}
	if i < n && (d[i]|0x20) == 'e' {
		i++
		if i < n && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= n || !isDigit(d[i]) {
			return -1
		}
		for i < n && isDigit(d[i]) {
			i++
		}
	}
	return i
}

func scanLiteral(d []byte, i int, lit string) int {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanKey expects d[i] to start an object key; it returns the index just past
// the ':' that follows it, or -1.
func scanKey(d []byte, i int) int {
	if i >= len(d) || d[i] != '"' {
		return -1
	}
	i, _ = scanString(d, i)
	if i < 0 {
		return -1
	}
	i = skipSpace(d, i)
	if i >= len(d) || d[i] != ':' {
		return -1
	}
	return i + 1
}

// kindStack remembers, per open container, whether it is an object. The
// first 64 levels live in a register; deeper ones spill to a slice.
type kindStack struct {
	low  uint64
	deep []uint64
}

func (s *kindStack) set(depth int, obj bool) {
	var w *uint64
	if depth < 64 {
		w = &s.low
	} else {
		k := (depth - 64) >> 6
		for len(s.deep) <= k {
			s.deep = append(s.deep, 0)
		}
		w = &s.deep[k]
	}
	bit := uint64(1) << (depth & 63)
	if obj {
		*w |= bit
	} else {
		*w &^= bit
	}
}

func (s *kindStack) isObj(depth int) bool {
	if depth < 64 {
		return s.low&(1<<depth) != 0
	}
	return s.deep[(depth-64)>>6]&(1<<(depth&63)) != 0
}

// skipValue validates one JSON value that starts at d[i] (leading whitespace
// allowed) and returns the index just past it, or -1 if it is malformed or
// nests deeper than maxDepth.
func skipValue(d []byte, i int) int { return skipNested(d, i, 0) }

// skipNested is skipValue for a value already inside outer containers,
// which count toward maxDepth.
func skipNested(d []byte, i int, outer int) int {
	n := len(d)
	limit := maxDepth - outer
	var stack kindStack
	depth := 0
	for {
		i = skipSpace(d, i)
		if i >= n {
			return -1
		}
		switch c := d[i]; c {
		case '{':
			// Even an empty container counts toward the depth limit.
			if depth >= limit {
				return -1
			}
			i = skipSpace(d, i+1)
			if i < n && d[i] == '}' {
				i++
				break
			}
			stack.set(depth, true)
			depth++
			if i = scanKey(d, i); i < 0 {
				return -1
			}
			continue
		case '[':
			if depth >= limit {
				return -1
			}
			i = skipSpace(d, i+1)
			if i < n && d[i] == ']' {
				i++
				break
			}
			stack.set(depth, false)
			depth++
			continue
		case '"':
			if i, _ = scanString(d, i); i < 0 {
				return -1
			}
		case 't':
			if i = scanLiteral(d, i, "true"); i < 0 {
				return -1
			}
		case 'f':
			if i = scanLiteral(d, i, "false"); i < 0 {
				return -1
			}
		case 'n':
			if i = scanLiteral(d, i, "null"); i < 0 {
				return -1
			}
		default:
			if c != '-' && !isDigit(c) {
				return -1
			}
			if i = scanNumber(d, i); i < 0 {
				return -1
			}
		}
		// A value just ended: close as many containers as it completes,
		// then either return or move on to the next element.
		for {
			if depth == 0 {
				return i
			}
			i = skipSpace(d, i)
			if i >= n {
				return -1
			}
			obj := stack.isObj(depth - 1)
			c := d[i]
			if c == ',' {
				i++
				if obj {
					if i = scanKey(d, skipSpace(d, i)); i < 0 {
						return -1
					}
				}
				break
			}
			if (obj && c == '}') || (!obj && c == ']') {
				i++
				depth--
				continue
			}
			return -1
		}
	}
}

// objectIter walks the members of a top-level JSON object, validating as it
// goes. Keys are returned raw (without quotes, escapes intact) with a flag
// saying whether they contain escapes; values are returned as exact raw
// slices without surrounding whitespace.
type objectIter struct {
	d       []byte
	i       int
	members int
	bad     bool
	valEsc  bool // the last value returned is a string with escapes
}

// startObject positions the iterator inside the object that starts data.
// It returns false if data (after whitespace) does not start with '{'.
func (it *objectIter) start(data []byte) bool {
	it.d = data
	it.i = skipSpace(data, 0)
	it.members = 0
	it.bad = false
	if it.i >= len(data) || data[it.i] != '{' {
		return false
	}
	it.i++
	return true
}

// next returns the next member. When it returns ok == false the walk is over:
// it.bad tells whether the object was malformed; otherwise it.i is the index
// just past the closing brace.
func (it *objectIter) next() (key []byte, keyEsc bool, val []byte, ok bool) {
	first := it.members == 0
	d := it.d
	i := skipSpace(d, it.i)
	if i >= len(d) {
		it.bad = true
		return nil, false, nil, false
	}
	if d[i] == '}' && first {
		it.i = i + 1
		return nil, false, nil, false
	}
	if !first {
		switch d[i] {
		case '}':
			it.i = i + 1
			return nil, false, nil, false
		case ',':
			i = skipSpace(d, i+1)
		default:
			it.bad = true
			return nil, false, nil, false
		}
	}
	if i >= len(d) || d[i] != '"' {
		it.bad = true
		return nil, false, nil, false
	}
	ke, esc := scanString(d, i)
	if ke < 0 {
		it.bad = true
		return nil, false, nil, false
	}
	key = d[i+1 : ke-1]
	i = skipSpace(d, ke)
	if i >= len(d) || d[i] != ':' {
		it.bad = true
		return nil, false, nil, false
	}
	// Scalars are by far the most common member values; scanning them
	// directly skips skipNested's container machinery.
	vs := skipSpace(d, i+1)
	ve := -1
	it.valEsc = false
	if vs < len(d) {
		switch c := d[vs]; {
		case c == '"':
			ve, it.valEsc = scanString(d, vs)
		case c == '-' || isDigit(c):
			ve = scanNumber(d, vs)
		default:
			ve = skipNested(d, vs, 1)
		}
	}
	if ve < 0 {
		it.bad = true
		return nil, false, nil, false
	}
	it.i = ve
	it.members++
	return key, esc, d[vs:ve], true
}

// keyIs reports whether a raw key equals name once unescaped. The escaped
// case is rare (no encoder escapes plain ASCII) but JSON.parse honours it.
func keyIs(raw []byte, esc bool, name string) bool {
	if !esc {
		return string(raw) == name
	}
	// Each escape is at least two bytes, so a key can only unescape to name
	// if it is at most 6 bytes per character of name.
	if len(raw) > 6*len(name) {
		return false
	}
	var buf [64]byte
	u := appendUnescaped(buf[:0], raw)
	return string(u) == name
}

// appendUnescaped appends the decoded form of a validated JSON string body.
// Unpaired surrogates become U+FFFD, as in encoding/json; other bytes,
// including invalid UTF-8, are copied unchanged.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(s) {
			return dst // unreachable for validated input
		}
		switch e := s[i+1]; e {
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return dst
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok2 = hex4(s, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
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
		i += 2
	}
	return dst
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c-'0' < 10:
			r = r<<4 | rune(c-'0')
		case (c|0x20)-'a' < 6:
			r = r<<4 | rune((c|0x20)-'a'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// parseInt64 accepts exactly the JSON integer grammar (-?(0|[1-9][0-9]*))
// within int64 range. Fractions and exponents are refused even when their
// value is integral: no Mesh client produces them for an id.
func parseInt64(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}
