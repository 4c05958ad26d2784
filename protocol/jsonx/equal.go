package jsonx

import "bytes"

var null = []byte("null")

// Equal reports whether a and b hold the same value as JavaScript sees two
// JSON.parse results (the "did the record change" question):
//
//   - objects by their set of members, in any order; a duplicate key counts
//     once, with its last value, as in JSON.parse;
//   - arrays element by element;
//   - numbers by value as float64: 1 == 1.0 == 1e0, -0 == 0, and numbers
//     beyond float64's range are ±Inf, so 1e400 == 2e400;
//   - strings after unescaping: "\u0061" == "a", but a lone surrogate
//     "\ud800" is not "\ufffd" (JavaScript strings are UTF-16);
//   - otherwise by type and value: 1 != "1", true != "true", null != {},
//     {} != [].
//
// Empty or nil input counts as null (a missing value). It returns an error
// wrapping ErrInvalidJSON if either input is not a single valid JSON value,
// even when a and b are the same bytes.
//
// It compares the two values' structure in place, parsing each once into a
// pooled node table, and allocates nothing in the steady state.
func Equal(a, b []byte) (bool, error) {
	if len(a) == 0 {
		a = null
	}
	if len(b) == 0 {
		b = null
	}
	if bytes.Equal(a, b) {
		if Valid(a) {
			return true, nil
		}
		t := getTree()
		defer putTree(t)
		return false, t.parse(a) // Valid and parse agree: this is the error
	}
	ta, tb := getTree(), getTree()
	defer putTree(ta)
	defer putTree(tb)
	if err := ta.parse(a); err != nil {
		return false, err
	}
	if err := tb.parse(b); err != nil {
		return false, err
	}
	return equalNodes(ta, 0, tb, 0), nil
}

// equalNodes compares node ai of a with node bi of b. Both trees have
// resolved duplicate keys, so two objects are equal when they have as many
// members and each of a's is in b with an equal value.
func equalNodes(a *tree, ai int32, b *tree, bi int32) bool {
	na, nb := &a.nodes[ai], &b.nodes[bi]
	if !na.kind.container() {
		return sameScalar(na, nb)
	}
	if na.kind != nb.kind || na.n != nb.n {
		return false
	}
	ka, kb := a.children(ai), b.children(bi)
	if na.kind == kindArray {
		for i := range ka {
			if !equalNodes(a, ka[i], b, kb[i]) {
				return false
			}
		}
		return true
	}
	for i, c := range ka {
		// Members are usually in the same order on both sides.
		key := a.nodes[c].key
		j := kb[i]
		if b.nodes[j].key != key {
			if j = b.member(bi, key); j < 0 {
				return false
			}
		}
		if !equalNodes(a, c, b, j) {
			return false
		}
	}
	return true
}
