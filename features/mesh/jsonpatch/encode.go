package jsonpatch

import (
	"bytes"
	"strconv"
)

// sameScalar reports whether two non-container values are equal as
// JavaScript's === compares JSON.parse results. Containers are never equal
// here (compare recurses into them instead).
func sameScalar(a *node, b *node) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kindNull, kindTrue, kindFalse:
		return true
	case kindNumber:
		return sameNumber(a.raw, b.raw)
	case kindString:
		return sameString(a.raw, a.esc, b.raw, b.esc)
	}
	return false
}

func sameNumber(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	// Out-of-range numbers parse as ±Inf (or 0), which is what JSON.parse
	// makes of them too.
	fa, _ := strconv.ParseFloat(b2s(a), 64)
	fb, _ := strconv.ParseFloat(b2s(b), 64)
	return fa == fb
}

// sameString compares two JSON string tokens (with quotes).
func sameString(a []byte, aesc bool, b []byte, besc bool) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if !aesc && !besc {
		return false
	}
	var ba, bb [64]byte
	return bytes.Equal(unescape(ba[:0], a[1:len(a)-1]), unescape(bb[:0], b[1:len(b)-1]))
}

// appendCompact appends a validated JSON value without insignificant
// whitespace.
func appendCompact(dst, raw []byte) []byte {
	start := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '"':
			for i++; raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case ' ', '\t', '\n', '\r':
			dst = append(dst, raw[start:i]...)
			start = i + 1
		}
	}
	return append(dst, raw[start:]...)
}

// appendString appends s as a JSON string, escaped as JSON.stringify
// escapes: quote, backslash and control characters, and lone surrogates
// (held in WTF-8 by unescape) as \udxxx. Other bytes are copied.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0xED {
			i++
			continue
		}
		if c == 0xED {
			// U+D800–U+DFFF in WTF-8 is ED A0–BF xx; ED 80–9F xx is a
			// normal character.
			if i+2 < len(s) && s[i+1] >= 0xA0 && s[i+1] <= 0xBF {
				r := rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
				dst = append(dst, s[start:i]...)
				dst = appendU(dst, r)
				i += 3
				start = i
				continue
			}
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = appendU(dst, rune(c))
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', hex[r>>12&0xF], hex[r>>8&0xF], hex[r>>4&0xF], hex[r&0xF])
}

// appendToken appends a reference token of a JSON pointer: "~" as "~0" and
// "/" as "~1".
func appendToken(dst []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '~':
			dst = append(dst, '~', '0')
		case '/':
			dst = append(dst, '~', '1')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
