package jsonx

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// value is a mutable JSON value for Apply.
type value struct {
	kind kind
	raw  []byte   // scalars: the token's bytes
	esc  bool     // a string with escapes
	keys []string // objects: unescaped names, in order
	kids []*value // object members or array elements
}

// arena hands out the values of one Apply from slabs sized to the parsed
// documents, so that building them costs three allocations, not several per
// value. The slices it hands out have their capacity capped, so that a
// patch growing one reallocates it instead of writing into its neighbour.
type arena struct {
	vals []value
	ptrs []*value
	keys []string
}

// newArena sizes the slabs for the document and the values of the patch's
// operations (the operations' own members are not built).
func newArena(dt, pt *tree) *arena {
	nodes, kids := len(dt.nodes), len(dt.kids)
	for _, oi := range pt.children(0) {
		if pt.nodes[oi].kind != kindObject {
			continue
		}
		if c := pt.member(oi, "value"); c >= 0 {
			n := subtree(pt, c)
			nodes, kids = nodes+n, kids+n-1
		}
	}
	return &arena{vals: make([]value, 0, nodes), ptrs: make([]*value, 0, kids), keys: make([]string, 0, kids)}
}

// subtree counts node idx and its descendants.
func subtree(t *tree, idx int32) int {
	n := 1
	if t.nodes[idx].kind.container() {
		for _, c := range t.children(idx) {
			n += subtree(t, c)
		}
	}
	return n
}

// build returns node idx of t as a mutable value.
func (a *arena) build(t *tree, idx int32) *value {
	n := &t.nodes[idx]
	v := a.value()
	*v = value{kind: n.kind, raw: n.raw, esc: n.esc}
	if !n.kind.container() {
		return v
	}
	kids := t.children(idx)
	v.raw = nil
	v.kids = a.ptrSlice(len(kids))
	if n.kind == kindObject {
		v.keys = a.keySlice(len(kids))
	}
	for i, c := range kids {
		v.kids[i] = a.build(t, c)
		if v.keys != nil {
			v.keys[i] = t.nodes[c].key // aliases the source, which outlives Apply
		}
	}
	return v
}

// value returns a new zero value: from the slab while it lasts (it is
// never grown, so that pointers into it stay valid).
func (a *arena) value() *value {
	if len(a.vals) == cap(a.vals) {
		return new(value)
	}
	a.vals = a.vals[:len(a.vals)+1]
	return &a.vals[len(a.vals)-1]
}

func (a *arena) ptrSlice(n int) []*value {
	if cap(a.ptrs)-len(a.ptrs) < n {
		return make([]*value, n)
	}
	s := a.ptrs[len(a.ptrs) : len(a.ptrs)+n : len(a.ptrs)+n]
	a.ptrs = a.ptrs[:len(a.ptrs)+n]
	return s
}

func (a *arena) keySlice(n int) []string {
	if cap(a.keys)-len(a.keys) < n {
		return make([]string, n)
	}
	s := a.keys[len(a.keys) : len(a.keys)+n : len(a.keys)+n]
	a.keys = a.keys[:len(a.keys)+n]
	return s
}

func (v *value) clone() *value {
	c := *v
	if v.kids != nil {
		c.kids = make([]*value, len(v.kids))
		for i, k := range v.kids {
			c.kids[i] = k.clone()
		}
		c.keys = append([]string(nil), v.keys...)
	}
	return &c
}

func (v *value) find(key string) int {
	for i, k := range v.keys {
		if k == key {
			return i
		}
	}
	return -1
}

func (v *value) appendJSON(dst []byte) []byte {
	switch v.kind {
	case kindObject:
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSString(dst, k)
			dst = append(dst, ':')
			dst = v.kids[i].appendJSON(dst)
		}
		return append(dst, '}')
	case kindArray:
		dst = append(dst, '[')
		for i, k := range v.kids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = k.appendJSON(dst)
		}
		return append(dst, ']')
	}
	return append(dst, v.raw...)
}

// equal is the RFC 6902 "test" equality: objects by their members in any
// order, arrays element by element, numbers by value, strings unescaped.
func equal(x, y *value) bool {
	if x.kind != y.kind {
		return false
	}
	switch x.kind {
	case kindNumber:
		return sameNumber(x.raw, y.raw)
	case kindString:
		return sameString(x.raw, x.esc, y.raw, y.esc)
	case kindArray:
		if len(x.kids) != len(y.kids) {
			return false
		}
		for i := range x.kids {
			if !equal(x.kids[i], y.kids[i]) {
				return false
			}
		}
	case kindObject:
		if len(x.kids) != len(y.kids) {
			return false
		}
		for i, k := range x.keys {
			j := y.find(k)
			if j < 0 || !equal(x.kids[i], y.kids[j]) {
				return false
			}
		}
	}
	return true
}

// Apply applies an RFC 6902 patch to doc and returns the new document as
// compact JSON, as JSON.stringify(applyPatch(JSON.parse(doc), patch)) would
// write it with fast-json-patch (the library of Mesh's client): members in
// Object.keys order (integer-like keys first, ascending, then the others as
// written, an added one last), a duplicate key once with its last value,
// scalars as written. Removing the whole document ("path":"") leaves null.
// The patch is applied atomically: on error nothing is returned but the
// error, which wraps ErrInvalidJSON (doc), ErrInvalidPatch, ErrPathNotFound
// or ErrTestFailed.
func Apply(doc, patch []byte) ([]byte, error) {
	dt, pt := getTree(), getTree()
	defer putTree(dt)
	defer putTree(pt)
	if err := dt.parse(doc); err != nil {
		return nil, err
	}
	if err := pt.parse(patch); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPatch, err)
	}
	if pt.nodes[0].kind != kindArray {
		return nil, fmt.Errorf("%w: not an array", ErrInvalidPatch)
	}
	a := newArena(dt, pt)
	root := a.build(dt, 0)
	for i, oi := range pt.children(0) {
		var err error
		if root, err = applyOp(a, root, pt, oi); err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return root.appendJSON(make([]byte, 0, len(doc)+len(patch))), nil
}

func applyOp(a *arena, root *value, pt *tree, oi int32) (*value, error) {
	if pt.nodes[oi].kind != kindObject {
		return nil, fmt.Errorf("%w: not an object", ErrInvalidPatch)
	}
	field := func(name string) (int32, bool) {
		c := pt.member(oi, name)
		return c, c >= 0
	}
	text := func(name string) (string, bool, error) {
		c, ok := field(name)
		if !ok {
			return "", false, nil
		}
		n := &pt.nodes[c]
		if n.kind != kindString {
			return "", false, fmt.Errorf("%w: %q is not a string", ErrInvalidPatch, name)
		}
		if !n.esc {
			return b2s(n.raw[1 : len(n.raw)-1]), true, nil // pt outlives the op
		}
		return string(appendUnescapedJS(nil, n.raw[1:len(n.raw)-1])), true, nil
	}
	op, ok, err := text("op")
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: missing op", ErrInvalidPatch)
	}
	p, ok, err := text("path")
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: missing path", ErrInvalidPatch)
	}
	path, err := parsePointer(p)
	if err != nil {
		return nil, err
	}
	var val *value
	switch op {
	case "add", "replace", "test":
		c, ok := field("value")
		if !ok {
			return nil, fmt.Errorf("%w: %s without value", ErrInvalidPatch, op)
		}
		val = a.build(pt, c)
	}
	var from []string
	switch op {
	case "move", "copy":
		f, ok, err := text("from")
		if err != nil || !ok {
			return nil, fmt.Errorf("%w: %s without from", ErrInvalidPatch, op)
		}
		if from, err = parsePointer(f); err != nil {
			return nil, err
		}
	}
	switch op {
	case "add":
		return add(root, path, val)
	case "remove":
		if len(path) == 0 {
			return &value{kind: kindNull, raw: null}, nil
		}
		_, root, err := remove(root, path)
		return root, err
	case "replace":
		return replace(root, path, val)
	case "move":
		if len(from) < len(path) && isPrefix(from, path) {
			return nil, fmt.Errorf("%w: move into its own child", ErrInvalidPatch)
		}
		if len(from) == len(path) && isPrefix(from, path) {
			_, err := get(root, from)
			return root, err
		}
		v, root, err := remove(root, from)
		if err != nil {
			return nil, err
		}
		return add(root, path, v)
	case "copy":
		v, err := get(root, from)
		if err != nil {
			return nil, err
		}
		return add(root, path, v.clone())
	case "test":
		v, err := get(root, path)
		if err != nil {
			return nil, err
		}
		if !equal(v, val) {
			return nil, ErrTestFailed
		}
		return root, nil
	}
	return nil, fmt.Errorf("%w: unknown op %q", ErrInvalidPatch, op)
}

func isPrefix(p, q []string) bool {
	for i := range p {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// parsePointer splits an RFC 6901 pointer into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%w: pointer %q does not start with /", ErrInvalidPatch, p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		if !strings.Contains(t, "~") {
			continue
		}
		var b bytes.Buffer
		for j := 0; j < len(t); j++ {
			if t[j] != '~' {
				b.WriteByte(t[j])
				continue
			}
			if j+1 >= len(t) || (t[j+1] != '0' && t[j+1] != '1') {
				return nil, fmt.Errorf("%w: bad escape in pointer %q", ErrInvalidPatch, p)
			}
			if t[j+1] == '0' {
				b.WriteByte('~')
			} else {
				b.WriteByte('/')
			}
			j++
		}
		toks[i] = b.String()
	}
	return toks, nil
}

// index parses an array index token; end allows len (and "-") for insertion.
func index(tok string, n int, end bool) (int, error) {
	if end && tok == "-" {
		return n, nil
	}
	if tok == "" || len(tok) > 1 && tok[0] == '0' || strings.TrimLeft(tok, "0123456789") != "" {
		return 0, fmt.Errorf("%w: bad array index %q", ErrPathNotFound, tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i > n || i == n && !end {
		return 0, fmt.Errorf("%w: array index %s out of range", ErrPathNotFound, tok)
	}
	return i, nil
}

func get(root *value, path []string) (*value, error) {
	v := root
	for _, tok := range path {
		switch v.kind {
		case kindObject:
			i := v.find(tok)
			if i < 0 {
				return nil, fmt.Errorf("%w: no member %q", ErrPathNotFound, tok)
			}
			v = v.kids[i]
		case kindArray:
			i, err := index(tok, len(v.kids), false)
			if err != nil {
				return nil, err
			}
			v = v.kids[i]
		default:
			return nil, fmt.Errorf("%w: %q in a scalar", ErrPathNotFound, tok)
		}
	}
	return v, nil
}

// replace puts v in place of the existing value at path.
func replace(root *value, path []string, v *value) (*value, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	tok := path[len(path)-1]
	switch parent.kind {
	case kindObject:
		i := parent.find(tok)
		if i < 0 {
			return nil, fmt.Errorf("%w: no member %q", ErrPathNotFound, tok)
		}
		parent.kids[i] = v
	case kindArray:
		i, err := index(tok, len(parent.kids), false)
		if err != nil {
			return nil, err
		}
		parent.kids[i] = v
	default:
		return nil, fmt.Errorf("%w: %q in a scalar", ErrPathNotFound, tok)
	}
	return root, nil
}

// add puts v at path: a new or existing object member, or an array element
// inserted before the index ("-" appends).
func add(root *value, path []string, v *value) (*value, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	tok := path[len(path)-1]
	switch parent.kind {
	case kindObject:
		if i := parent.find(tok); i >= 0 {
			parent.kids[i] = v // an existing member keeps its position
			return root, nil
		}
		// A new member goes last, unless it is an array index, which
		// JavaScript lists with the others, in ascending order.
		i := len(parent.keys)
		if isIndexKey(tok) {
			for i > 0 && cmpKeys(parent.keys[i-1], tok) > 0 {
				i--
			}
		}
		parent.keys = slices.Insert(parent.keys, i, tok)
		parent.kids = slices.Insert(parent.kids, i, v)
	case kindArray:
		i, err := index(tok, len(parent.kids), true)
		if err != nil {
			return nil, err
		}
		parent.kids = append(parent.kids, nil)
		copy(parent.kids[i+1:], parent.kids[i:])
		parent.kids[i] = v
	default:
		return nil, fmt.Errorf("%w: %q in a scalar", ErrPathNotFound, tok)
	}
	return root, nil
}

// remove takes the value at path (not the root) out of the document.
func remove(root *value, path []string) (*value, *value, error) {
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, nil, err
	}
	tok := path[len(path)-1]
	switch parent.kind {
	case kindObject:
		i := parent.find(tok)
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: no member %q", ErrPathNotFound, tok)
		}
		v := parent.kids[i]
		parent.keys = append(parent.keys[:i], parent.keys[i+1:]...)
		parent.kids = append(parent.kids[:i], parent.kids[i+1:]...)
		return v, root, nil
	case kindArray:
		i, err := index(tok, len(parent.kids), false)
		if err != nil {
			return nil, nil, err
		}
		v := parent.kids[i]
		parent.kids = append(parent.kids[:i], parent.kids[i+1:]...)
		return v, root, nil
	}
	return nil, nil, fmt.Errorf("%w: %q in a scalar", ErrPathNotFound, tok)
}
