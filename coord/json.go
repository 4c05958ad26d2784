package coord

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// JSON helpers shared by the backends, so that every backend decides "did
// the record change" and "what is the merged metadata" the same way. They are
// not on a per-message path: records and metadata writes only.

var jsonNull = []byte("null")

// JSONEqual reports whether a and b are the same JSON value: objects compare
// by their set of keys (order does not matter; with duplicate keys the last
// wins, as in JSON.parse), arrays element by element, numbers as float64
// (1 == 1.0 == 1e0, as in JavaScript; numbers beyond float64 range compare as
// ±Inf), strings after unescaping. Empty or nil input counts as null. It
// returns ErrInvalidJSON if either input is not a single valid JSON value.
func JSONEqual(a, b []byte) (bool, error) {
	if len(a) == 0 {
		a = jsonNull
	}
	if len(b) == 0 {
		b = jsonNull
	}
	if bytes.Equal(a, b) {
		return true, nil
	}
	va, err := decodeJSON(a)
	if err != nil {
		return false, err
	}
	vb, err := decodeJSON(b)
	if err != nil {
		return false, err
	}
	return equalJSON(va, vb), nil
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrInvalidJSON)
	}
	return v, nil
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		// ParseFloat returns ±Inf (or 0 on underflow) with ErrRange, which
		// is what JavaScript's JSON.parse yields too.
		fx, _ := strconv.ParseFloat(string(x), 64)
		fy, _ := strconv.ParseFloat(string(y), 64)
		return fx == fy
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalJSON(v, w) {
				return false
			}
		}
		return true
	default:
		return false
	}
}

// MergeObjects returns the shallow merge {...current, ...partial} of two JSON
// objects, as Mesh's room updateMetadata does: current's keys keep their
// order and take partial's value where partial has the key, then partial's
// new keys follow in partial's order. Values are copied byte for byte, not
// re-encoded.
//
// partial must be a JSON object: ErrInvalidJSON if it is not valid JSON,
// ErrNotObject if it is another JSON value. A current value that is empty,
// null, not an object or not valid JSON counts as {} and is replaced (Mesh
// would spread a string or array into index keys, or fail to parse).
func MergeObjects(current, partial []byte) ([]byte, error) {
	p, err := parseObject(partial)
	if err != nil {
		return nil, err
	}
	c, err := parseObject(current)
	if err != nil {
		c = nil
	}
	out := make([]byte, 0, len(current)+len(partial)+2)
	out = append(out, '{')
	first := true
	add := func(m member) {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, m.rawKey...)
		out = append(out, ':')
		out = append(out, m.value...)
	}
	used := make(map[string]bool, len(p))
	pi := make(map[string]int, len(p))
	for i, m := range p {
		pi[m.key] = i
	}
	for _, m := range c {
		if i, ok := pi[m.key]; ok {
			used[m.key] = true
			add(member{key: m.key, rawKey: m.rawKey, value: p[i].value})
			continue
		}
		add(m)
	}
	for _, m := range p {
		if !used[m.key] {
			add(m)
		}
	}
	out = append(out, '}')
	return out, nil
}

type member struct {
	key    string // unescaped
	rawKey []byte // JSON-encoded key
	value  json.RawMessage
}

// parseObject splits a JSON object into its members, in order; a duplicate
// key keeps its first position and its last value (JSON.parse semantics).
func parseObject(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if !json.Valid(b) {
			return nil, ErrInvalidJSON
		}
		return nil, ErrNotObject
	}
	var ms []member
	idx := make(map[string]int)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, ErrInvalidJSON
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
		}
		if i, dup := idx[key]; dup {
			ms[i].value = v
			continue
		}
		idx[key] = len(ms)
		ms = append(ms, member{key: key, rawKey: quoteJSON(key), value: v})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrInvalidJSON)
	}
	return ms, nil
}

func quoteJSON(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
