package jsonx

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"
)

// Strings. JavaScript strings are UTF-16 and may hold lone surrogates
// ("\ud800"), which UTF-8 cannot. Where JSON values are compared or
// rewritten (Equal, Diff, Apply, MergeObjects) a lone surrogate is kept as
// its WTF-8 bytes (ED A0–BF xx, invalid UTF-8) and written back as the same
// escape, so that two different JavaScript strings never compare equal and
// a key round-trips. Where strings are handed to and from Go
// (AppendString, AppendUnescaped) invalid UTF-8 and lone surrogates become
// U+FFFD, as in encoding/json, so that the results are valid UTF-8.

// b2s views b as a string without copying; b must not change while the
// string is in use.
func b2s(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

const hexDigits = "0123456789abcdef"

// jsonPlain[c] is true for ASCII bytes that JSON.stringify copies verbatim.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as a JSON string literal, escaped exactly as
// JSON.stringify escapes it: '"' and '\\' and the control characters, with
// \b \f \n \r \t where JS has a short form and \u00xx (lowercase) otherwise.
// '/', '<', '>', '&', U+2028 and U+2029 are left alone. Each byte of invalid
// UTF-8 becomes \ufffd, as in encoding/json, so the result is always valid
// UTF-8 and safe to send in a text frame. It allocates only to grow dst.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, false) }

// appendJSString is AppendString for a string read by appendUnescapedJS,
// which it writes back exactly: a lone surrogate in WTF-8 (see above) as
// its \udxxx escape, as JSON.stringify writes one, and any other invalid
// UTF-8 unchanged (JSON text from a WebSocket frame has none).
func appendJSString(dst []byte, s string) []byte { return appendString(dst, s, true) }

func appendString(dst []byte, s string, wtf8 bool) []byte {
	dst = append(dst, '"')
	// Non-ASCII bytes need UTF-8 checking only until the rest of the string
	// is known to be valid: at the first one, check the remainder in one
	// pass and, if it is valid (almost always), treat them as plain.
	valid := false
	var hi uint64 = swarHi
	start := 0
	i := 0
	n := len(s)
	for i < n {
		// Skip plain bytes 8 at a time; the lowest marked byte is exact.
		for i+8 <= n {
			x := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
			if m := x&hi | swarSpecial(x); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= n {
			break
		}
		c := s[i]
		if jsonPlain[c] || (valid && c >= utf8.RuneSelf) {
			i++
			continue
		}
		if c >= utf8.RuneSelf && hi != 0 && utf8.ValidString(s[i:]) {
			valid, hi = true, 0
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
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
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			switch {
			case wtf8 && c == 0xED && i+2 < n && s[i+1]&0xE0 == 0xA0 && s[i+2]&0xC0 == 0x80:
				// U+D800–U+DFFF in WTF-8; ED 80–9F xx is valid UTF-8.
				dst = append(dst, s[start:i]...)
				dst = appendU(dst, rune(c&0x0F)<<12|rune(s[i+1]&0x3F)<<6|rune(s[i+2]&0x3F))
				i += 3
				start = i
			case wtf8:
				i++ // passed through, as read
			default:
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
			}
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}

// AppendUnescaped appends the decoded content of a JSON string body, as
// ObjectIter.Key or a string value without its quotes returns it. The body
// must be valid (scanned); a malformed escape ends the output early. Lone
// surrogates become U+FFFD, as in encoding/json; other bytes, including
// invalid UTF-8, are copied unchanged.
func AppendUnescaped(dst, body []byte) []byte {
	r := strReader{s: body, fffd: true}
	for c := r.next(); len(c) > 0; c = r.next() {
		dst = append(dst, c...)
	}
	return dst
}

// appendUnescapedJS is AppendUnescaped keeping lone surrogates in WTF-8.
func appendUnescapedJS(dst, body []byte) []byte {
	r := strReader{s: body}
	for c := r.next(); len(c) > 0; c = r.next() {
		dst = append(dst, c...)
	}
	return dst
}

// strReader yields the decoded content of a validated JSON string body in
// chunks, without allocating: a run of bytes without escapes (a sub-slice
// of the body) or one decoded escape (in buf). Lone surrogates become
// U+FFFD when fffd is set, their WTF-8 bytes otherwise.
type strReader struct {
	s    []byte
	buf  [4]byte
	fffd bool
}

// next returns the next chunk, or nil at the end (or at a malformed escape,
// which a validated body does not have).
func (r *strReader) next() []byte {
	s := r.s
	if len(s) == 0 {
		return nil
	}
	if s[0] != '\\' {
		j := bytes.IndexByte(s, '\\')
		if j < 0 {
			j = len(s)
		}
		r.s = s[j:]
		return s[:j]
	}
	if len(s) < 2 {
		r.s = nil
		return nil
	}
	var c byte
	switch s[1] {
	case 'u':
		u, ok := hex4(s, 2)
		if !ok {
			r.s = nil
			return nil
		}
		n := 6
		if u >= 0xD800 && u < 0xDC00 && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if lo, ok := hex4(s, 8); ok && lo >= 0xDC00 && lo < 0xE000 {
				r.s = s[12:]
				return utf8.AppendRune(r.buf[:0], 0x10000+(u-0xD800)<<10+(lo-0xDC00))
			}
		}
		r.s = s[n:]
		if u >= 0xD800 && u < 0xE000 {
			if r.fffd {
				return utf8.AppendRune(r.buf[:0], utf8.RuneError)
			}
			return append(r.buf[:0], 0xE0|byte(u>>12), 0x80|byte(u>>6)&0x3F, 0x80|byte(u)&0x3F)
		}
		return utf8.AppendRune(r.buf[:0], u)
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	default: // '"', '\\', '/'
		c = s[1]
	}
	r.s = s[2:]
	r.buf[0] = c
	return r.buf[:1]
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

// sameString reports whether two JSON string tokens (with their quotes)
// hold the same JavaScript string, comparing their decoded contents chunk
// by chunk without allocating.
func sameString(a []byte, aesc bool, b []byte, besc bool) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if !aesc && !besc {
		return false
	}
	ra, rb := strReader{s: a[1 : len(a)-1]}, strReader{s: b[1 : len(b)-1]}
	var ca, cb []byte
	for {
		if len(ca) == 0 {
			ca = ra.next()
		}
		if len(cb) == 0 {
			cb = rb.next()
		}
		if len(ca) == 0 || len(cb) == 0 {
			return len(ca) == len(cb)
		}
		n := min(len(ca), len(cb))
		if !bytes.Equal(ca[:n], cb[:n]) {
			return false
		}
		ca, cb = ca[n:], cb[n:]
	}
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
