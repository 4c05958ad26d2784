package protocol

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/encoder"
)

// jsonAPI is the one sonic configuration this package uses for typed
// payloads. Every choice is about producing what JSON.stringify would and
// reading what JSON.parse would:
//   - no HTML escaping: JSON.stringify leaves '<', '>' and '&' alone;
//   - NoNullSliceOrMap: Mesh always sends [] for an empty list (present,
//     history) and {} for an empty map (states); a nil Go slice must not
//     become null;
//   - SortMapKeys: deterministic bytes, so frames can be compared and cached;
//   - ValidateString: invalid UTF-8 in Go strings becomes U+FFFD on output
//     (a text frame must be valid UTF-8), raw control characters are refused
//     on input, as JSON.parse refuses them;
//   - CopyString: decoded values never alias the read buffer;
//   - CaseSensitive: JS property lookup is exact, so "RoomName" is not
//     "roomName" (encoding/json would match it).
var jsonAPI = sonic.Config{
	NoNullSliceOrMap: true,
	SortMapKeys:      true,
	ValidateString:   true,
	CopyString:       true,
	CaseSensitive:    true,
}.Froze()

// encOpts mirrors jsonAPI's encoder settings for EncodeInto.
const encOpts = encoder.NoNullSliceOrMap | encoder.SortMapKeys | encoder.ValidateString

// Marshal encodes v as JSON with the package's sonic configuration (see
// AppendJSON). It is meant for application payloads and for the typed
// structs of this package; hot pushes have allocation-free Append functions.
func Marshal(v any) ([]byte, error) {
	return jsonAPI.Marshal(v)
}

// AppendJSON appends the JSON encoding of v to dst. The output is what a JS
// client's JSON.parse expects: no HTML escaping, [] and {} rather than null
// for empty slices and maps, sorted map keys, invalid UTF-8 replaced by
// U+FFFD. On error dst is returned unchanged.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	// Encode into dst's spare capacity through a separate slice header:
	// sonic's UTF-8 correction rewrites the whole buffer it is given, and
	// dst may hold bytes that are not JSON (a frame header, say).
	tmp := dst[len(dst):]
	if err := encoder.EncodeInto(&tmp, v, encOpts); err != nil {
		return dst, err
	}
	if len(tmp) == 0 {
		return dst, nil
	}
	if cap(dst) > len(dst) && unsafe.SliceData(tmp) == unsafe.SliceData(dst[len(dst):]) {
		return dst[:len(dst)+len(tmp)], nil
	}
	return append(dst, tmp...), nil
}

// Unmarshal decodes JSON into v with the package's sonic configuration:
// keys match case-sensitively, raw control characters in strings are
// refused, and nothing in v aliases data afterwards.
func Unmarshal(data []byte, v any) error {
	// Sonic's Unmarshal copies data into a string first; CopyString already
	// guarantees results do not alias data, so the copy is redundant.
	return jsonAPI.UnmarshalFromString(b2s(data), v)
}

// Valid reports whether data is exactly one JSON value, by the same rules as
// JSON.parse (and encoding/json.Valid). Invalid UTF-8 inside strings is not
// checked: a WebSocket text frame has already been validated as UTF-8.
func Valid(data []byte) bool {
	end := skipValue(data, 0)
	return end >= 0 && skipSpace(data, end) == len(data)
}

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

// AppendJSONString appends s as a JSON string literal, escaped exactly as
// JSON.stringify escapes it: '"' and '\\' and the control characters, with
// \b \f \n \r \t where JS has a short form and \u00xx (lowercase) otherwise.
// '/', '<', '>', '&', U+2028 and U+2029 are left alone. Each byte of invalid
// UTF-8 becomes \ufffd, as in encoding/json, so the result is always valid
// UTF-8 and safe to send in a text frame.
func AppendJSONString(dst []byte, s string) []byte {
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
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendBool appends a bare JSON boolean, the reply payload of the
// unsubscribe and presence-state commands.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendRaw appends an already-encoded JSON value, writing null for an
// empty one so that the output stays valid JSON whatever the caller passed.
func appendRaw(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}
