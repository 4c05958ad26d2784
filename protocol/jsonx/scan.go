package jsonx

import (
	"encoding/binary"
	"math/bits"
)

// MaxDepth is the deepest nesting of arrays and objects accepted. It equals
// encoding/json's limit so that the two agree on what is valid; V8's
// JSON.parse has no fixed limit, but no Mesh client nests anywhere near
// this deep.
const MaxDepth = 10000

// The scanner below is a single-pass validating skipper for RFC 8259 JSON.
// It exists because sonic.Valid is not a validator in the JSON.parse sense:
// it accepts raw control characters inside strings and unknown escapes such
// as "\x", both of which make a Mesh server drop the frame. Scanning is
// byte-oriented with an 8-byte SWAR fast path for string bodies, which is
// where almost all payload bytes live. It never allocates unless a document
// nests deeper than 64 levels. The tree parser (tree.go) reads strings,
// numbers and literals with the same functions.

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

// Valid reports whether data is exactly one JSON value, by the same rules as
// JSON.parse (and encoding/json.Valid), nested at most MaxDepth deep.
// Invalid UTF-8 inside strings is not checked: a WebSocket text frame has
// already been validated as UTF-8. It does not allocate for documents
// nested up to 64 levels.
func Valid(data []byte) bool {
	end := skipNested(data, 0, 0)
	return end >= 0 && skipSpace(data, end) == len(data)
}

// skipNested validates one JSON value that starts at d[i] (leading
// whitespace allowed), inside outer enclosing containers, which count toward
// MaxDepth. It returns the index just past the value, or -1 if it is
// malformed or nests too deep.
func skipNested(d []byte, i int, outer int) int {
	n := len(d)
	limit := MaxDepth - outer
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

// ObjectIter walks the members of one JSON object, validating as it goes,
// without allocating: keys come back raw (without quotes, escapes intact),
// values as exact raw slices of the input without surrounding whitespace.
// Duplicate keys are all returned, in order (JSON.parse keeps the last).
//
//	var it jsonx.ObjectIter
//	if !it.Start(data) {
//		// not an object (or not JSON)
//	}
//	for it.Next() {
//		key, keyEscaped := it.Key()
//		value, _ := it.Value()
//	}
//	if !it.End() {
//		// malformed, or something other than whitespace follows the object
//	}
//
// An ObjectIter belongs to one goroutine; its zero value is ready for Start.
type ObjectIter struct {
	d       []byte
	i       int
	members int
	bad     bool
	key     []byte
	keyEsc  bool
	val     []byte
	valEsc  bool
}

// Start positions the iterator inside the object that data holds. It
// returns false if data, after whitespace, does not start with '{' (it may
// still be valid JSON of another kind: see Valid).
func (it *ObjectIter) Start(data []byte) bool {
	*it = ObjectIter{d: data, i: skipSpace(data, 0)}
	if it.i >= len(data) || data[it.i] != '{' {
		it.bad = true
		return false
	}
	it.i++
	return true
}

// Next moves to the next member and reports whether there is one. It
// returns false at the closing brace and at the first malformed byte; End
// tells which.
func (it *ObjectIter) Next() bool {
	if it.bad {
		return false
	}
	first := it.members == 0
	d := it.d
	i := skipSpace(d, it.i)
	if i >= len(d) {
		it.bad = true
		return false
	}
	if d[i] == '}' && first {
		it.i = i + 1
		return false
	}
	if !first {
		switch d[i] {
		case '}':
			it.i = i + 1
			return false
		case ',':
			i = skipSpace(d, i+1)
		default:
			it.bad = true
			return false
		}
	}
	if i >= len(d) || d[i] != '"' {
		it.bad = true
		return false
	}
	ke, esc := scanString(d, i)
	if ke < 0 {
		it.bad = true
		return false
	}
	key := d[i+1 : ke-1]
	i = skipSpace(d, ke)
	if i >= len(d) || d[i] != ':' {
		it.bad = true
		return false
	}
	// Scalars are by far the most common member values; scanning them
	// directly skips skipNested's container machinery.
	vs := skipSpace(d, i+1)
	ve := -1
	valEsc := false
	if vs < len(d) {
		switch c := d[vs]; {
		case c == '"':
			ve, valEsc = scanString(d, vs)
		case c == '-' || isDigit(c):
			ve = scanNumber(d, vs)
		default:
			ve = skipNested(d, vs, 1)
		}
	}
	if ve < 0 {
		it.bad = true
		return false
	}
	it.i = ve
	it.members++
	it.key, it.keyEsc, it.val, it.valEsc = key, esc, d[vs:ve], valEsc
	return true
}

// Key returns the current member's name as written (without its quotes)
// and whether it contains escapes (see AppendUnescaped).
func (it *ObjectIter) Key() (raw []byte, escaped bool) { return it.key, it.keyEsc }

// Value returns the current member's value as written, and whether it is a
// string that contains escapes.
func (it *ObjectIter) Value() (raw []byte, escapedString bool) { return it.val, it.valEsc }

// End reports, once Next has returned false, whether the object was well
// formed and only whitespace follows it.
func (it *ObjectIter) End() bool {
	return !it.bad && skipSpace(it.d, it.i) == len(it.d)
}
