package protocol

import "github.com/meshfast/meshfast/protocol/jsonx"

// Frames are scanned by jsonx (Valid, ObjectIter), which validates as
// JSON.parse does without allocating; what is left here is specific to
// Mesh's frame: member names and ids.

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
	u := jsonx.AppendUnescaped(buf[:0], raw)
	return string(u) == name
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
		if c-'0' >= 10 {
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
