package jsonx

import "fmt"

// MergeObjects returns the shallow merge {...current, ...partial} of two JSON
// objects, as Mesh's room updateMetadata does: current's members keep their
// order and take partial's value where partial has the key, then partial's
// new members follow in partial's order. Keys compare unescaped; a
// duplicate key keeps its first position and its last value (JSON.parse).
// Values are copied byte for byte, not re-encoded; so are keys, except
// those written with escapes, which are written as JSON.stringify would.
//
// partial must be a JSON object: the error wraps ErrInvalidJSON if it is
// not valid JSON, ErrNotObject if it is another JSON value. A current value
// that is empty, null, not an object or not valid JSON counts as {} and is
// replaced (Mesh would spread a string or array into index keys, or fail to
// parse).
func MergeObjects(current, partial []byte) ([]byte, error) {
	p, pidx, err := objectMembers(partial)
	if err != nil {
		return nil, err
	}
	c, _, err := objectMembers(current)
	if err != nil {
		c = nil
	}
	out := make([]byte, 0, len(current)+len(partial)+2)
	out = append(out, '{')
	first := true
	add := func(key member, value []byte) {
		if !first {
			out = append(out, ',')
		}
		first = false
		if key.esc {
			out = appendJSString(out, key.key)
		} else {
			out = append(out, '"')
			out = append(out, key.raw...)
			out = append(out, '"')
		}
		out = append(out, ':')
		out = append(out, value...)
	}
	used := make([]bool, len(p))
	for _, m := range c {
		if i := find(p, pidx, m.key); i >= 0 {
			used[i] = true
			add(m, p[i].value)
			continue
		}
		add(m, m.value)
	}
	for i, m := range p {
		if !used[i] {
			add(m, m.value)
		}
	}
	return append(out, '}'), nil
}

type member struct {
	key   string // unescaped (WTF-8)
	raw   []byte // as written, without quotes
	esc   bool   // raw has escapes
	value []byte
}

// find returns the index of key in ms, through idx when there is one.
func find(ms []member, idx map[string]int, key string) int {
	if idx != nil {
		if i, ok := idx[key]; ok {
			return i
		}
		return -1
	}
	for i := range ms {
		if ms[i].key == key {
			return i
		}
	}
	return -1
}

// objectMembers splits a JSON object into its members, in order; a
// duplicate key keeps its first position and its last value. Past
// smallObject members it also returns an index of them by key.
func objectMembers(b []byte) ([]member, map[string]int, error) {
	var it ObjectIter
	if !it.Start(b) {
		if Valid(b) {
			return nil, nil, ErrNotObject
		}
		return nil, nil, fmt.Errorf("%w: not an object", ErrInvalidJSON)
	}
	var ms []member
	var idx map[string]int // once the object is past smallObject members
	for it.Next() {
		raw, esc := it.Key()
		key := b2s(raw)
		if esc {
			key = string(appendUnescapedJS(nil, raw))
		}
		v, _ := it.Value()
		if i := find(ms, idx, key); i >= 0 {
			ms[i].value = v
			continue
		}
		ms = append(ms, member{key: key, raw: raw, esc: esc, value: v})
		if idx != nil {
			idx[key] = len(ms) - 1
		} else if len(ms) > smallObject {
			idx = make(map[string]int, 2*len(ms))
			for j, m := range ms {
				idx[m.key] = j
			}
		}
	}
	if !it.End() {
		return nil, nil, fmt.Errorf("%w: malformed object", ErrInvalidJSON)
	}
	return ms, idx, nil
}
