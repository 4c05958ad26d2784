package protocol

import (
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/encoder"

	"github.com/meshfast/meshfast/protocol/jsonx"
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
// JSON.parse (and encoding/json.Valid); see jsonx.Valid.
func Valid(data []byte) bool { return jsonx.Valid(data) }

// b2s views b as a string without copying; b must not change while the
// string is in use.
func b2s(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// AppendJSONString appends s as a JSON string literal, escaped exactly as
// JSON.stringify escapes it, invalid UTF-8 as \ufffd; see jsonx.AppendString.
func AppendJSONString(dst []byte, s string) []byte { return jsonx.AppendString(dst, s) }

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
