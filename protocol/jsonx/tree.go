package jsonx

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

type kind uint8

const (
	kindNull kind = iota
	kindFalse
	kindTrue
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) container() bool { return k == kindArray || k == kindObject }

// node is one value of a parsed document. Children of a container are the
// node indexes kids[off : off+n] of its tree, objects in Object.keys order.
type node struct {
	raw  []byte // the value's bytes in the source (a string with its quotes)
	key  string // unescaped member name (WTF-8) when the parent is an object
	off  int32
	n    int32
	kind kind
	esc  bool // a string value contains a backslash escape
}

// tree is a parsed document: a flat node table, built without allocating
// per value once its slices have grown (trees are pooled). Node 0 is the
// root. A tree never outlives its source: keys without escapes alias it.
type tree struct {
	src   []byte
	pos   int
	depth int
	nodes []node
	kids  []int32
	stack []int32
	index map[int32]map[string]int32 // key → child node, for large objects

	scratch []byte // Diff's path buffer, kept with the pooled tree
	// keyBuf holds the member names that had escapes, unescaped. It is
	// sized to the source before the first is added, and an unescaped name
	// is never longer than its source, so it never grows while keys point
	// into it.
	keyBuf []byte
}

// smallObject is the member count up to which objects are searched
// linearly instead of through a map.
const smallObject = 16

var treePool = sync.Pool{New: func() any { return new(tree) }}

func getTree() *tree { return treePool.Get().(*tree) }

func putTree(t *tree) {
	if cap(t.nodes) > 1<<16 || cap(t.kids) > 1<<16 {
		return // let a huge document's tables go
	}
	if cap(t.keyBuf) > 1<<16 {
		t.keyBuf = nil
	}
	clear(t.nodes) // drop references to the source and keys
	t.src, t.nodes, t.kids, t.stack, t.index, t.keyBuf = nil, t.nodes[:0], t.kids[:0], t.stack[:0], nil, t.keyBuf[:0]
	treePool.Put(t)
}

// parse reads src as one JSON value, as strictly as Valid. Errors wrap
// ErrInvalidJSON (and ErrTooDeep).
func (t *tree) parse(src []byte) error {
	t.src, t.pos, t.depth = src, 0, 0
	t.nodes, t.kids, t.stack, t.keyBuf = t.nodes[:0], t.kids[:0], t.stack[:0], t.keyBuf[:0]
	t.index = nil
	t.pos = skipSpace(src, 0)
	if _, err := t.value(); err != nil {
		return err
	}
	if t.pos = skipSpace(src, t.pos); t.pos != len(src) {
		return t.errorf("trailing data")
	}
	return nil
}

func (t *tree) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrInvalidJSON, t.pos, fmt.Sprintf(format, args...))
}

func (t *tree) value() (int32, error) {
	if t.pos >= len(t.src) {
		return 0, t.errorf("unexpected end")
	}
	idx := int32(len(t.nodes))
	start := t.pos
	var k kind
	var end int
	esc := false
	switch c := t.src[t.pos]; {
	case c == '{':
		return idx, t.object(idx)
	case c == '[':
		return idx, t.array(idx)
	case c == '"':
		end, esc = scanString(t.src, start)
		k = kindString
	case c == 't':
		end, k = scanLiteral(t.src, start, "true"), kindTrue
	case c == 'f':
		end, k = scanLiteral(t.src, start, "false"), kindFalse
	case c == 'n':
		end, k = scanLiteral(t.src, start, "null"), kindNull
	case c == '-' || isDigit(c):
		end, k = scanNumber(t.src, start), kindNumber
	default:
		return 0, t.errorf("unexpected %q", c)
	}
	if end < 0 {
		return 0, t.errorf("invalid value")
	}
	t.pos = end
	t.nodes = append(t.nodes, node{kind: k, raw: t.src[start:end], esc: esc})
	return idx, nil
}

func (t *tree) enter() error {
	t.depth++
	if t.depth > MaxDepth {
		return fmt.Errorf("%w: %w (more than %d levels)", ErrInvalidJSON, ErrTooDeep, MaxDepth)
	}
	return nil
}

func (t *tree) array(idx int32) error {
	start := t.pos
	t.nodes = append(t.nodes, node{kind: kindArray})
	if err := t.enter(); err != nil {
		return err
	}
	base := len(t.stack)
	if t.pos = skipSpace(t.src, t.pos+1); t.pos < len(t.src) && t.src[t.pos] == ']' {
		t.pos++
	} else {
		for {
			t.pos = skipSpace(t.src, t.pos)
			child, err := t.value()
			if err != nil {
				return err
			}
			t.stack = append(t.stack, child)
			if t.pos = skipSpace(t.src, t.pos); t.pos >= len(t.src) {
				return t.errorf("unexpected end")
			}
			if c := t.src[t.pos]; c == ',' {
				t.pos++
				continue
			} else if c != ']' {
				return t.errorf("expected , or ]")
			}
			t.pos++
			break
		}
	}
	t.depth--
	t.finish(idx, start, base)
	return nil
}

func (t *tree) object(idx int32) error {
	start := t.pos
	t.nodes = append(t.nodes, node{kind: kindObject})
	if err := t.enter(); err != nil {
		return err
	}
	base := len(t.stack)
	var keys map[string]int32 // built once the object is past smallObject members
	hasIndex := false
	if t.pos = skipSpace(t.src, t.pos+1); t.pos < len(t.src) && t.src[t.pos] == '}' {
		t.pos++
	} else {
		for {
			if t.pos = skipSpace(t.src, t.pos); t.pos >= len(t.src) || t.src[t.pos] != '"' {
				return t.errorf("expected member name")
			}
			ks := t.pos
			ke, esc := scanString(t.src, ks)
			if ke < 0 {
				return t.errorf("invalid member name")
			}
			key := t.keyString(t.src[ks+1:ke-1], esc)
			if t.pos = skipSpace(t.src, ke); t.pos >= len(t.src) || t.src[t.pos] != ':' {
				return t.errorf("expected :")
			}
			t.pos = skipSpace(t.src, t.pos+1)
			child, err := t.value()
			if err != nil {
				return err
			}
			t.nodes[child].key = key
			hasIndex = hasIndex || isIndexKey(key)
			members := t.stack[base:]
			if prev := t.findMember(members, keys, key); prev >= 0 {
				// JSON.parse: the first position, the last value.
				members[slices.Index(members, prev)] = child
				if keys != nil {
					keys[key] = child
				}
			} else {
				t.stack = append(t.stack, child)
				if keys != nil {
					keys[key] = child
				} else if len(t.stack)-base > smallObject {
					keys = make(map[string]int32, 2*smallObject)
					for _, m := range t.stack[base:] {
						keys[t.nodes[m].key] = m
					}
				}
			}
			if t.pos = skipSpace(t.src, t.pos); t.pos >= len(t.src) {
				return t.errorf("unexpected end")
			}
			if c := t.src[t.pos]; c == ',' {
				t.pos++
				continue
			} else if c != '}' {
				return t.errorf("expected , or }")
			}
			t.pos++
			break
		}
	}
	t.depth--
	if hasIndex {
		// Object.keys order: integer keys ascending, then the rest as written.
		slices.SortStableFunc(t.stack[base:], func(a, b int32) int {
			return cmpKeys(t.nodes[a].key, t.nodes[b].key)
		})
	}
	if keys != nil {
		if t.index == nil {
			t.index = make(map[int32]map[string]int32)
		}
		t.index[idx] = keys
	}
	t.finish(idx, start, base)
	return nil
}

// cmpKeys orders two member names as Object.keys does: array indexes first,
// ascending, then the others, which compare equal (a stable sort keeps them
// as written).
func cmpKeys(ka, kb string) int {
	ia, ib := isIndexKey(ka), isIndexKey(kb)
	switch {
	case ia && ib:
		na, _ := strconv.ParseUint(ka, 10, 32)
		nb, _ := strconv.ParseUint(kb, 10, 32)
		switch {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	case ia:
		return -1
	case ib:
		return 1
	}
	return 0
}

func (t *tree) findMember(members []int32, keys map[string]int32, key string) int32 {
	if keys != nil {
		if m, ok := keys[key]; ok {
			return m
		}
		return -1
	}
	for _, m := range members {
		if t.nodes[m].key == key {
			return m
		}
	}
	return -1
}

// finish records a container's children, popped from the stack.
func (t *tree) finish(idx int32, start, base int) {
	n := &t.nodes[idx]
	n.raw = t.src[start:t.pos]
	n.off = int32(len(t.kids))
	n.n = int32(len(t.stack) - base)
	t.kids = append(t.kids, t.stack[base:]...)
	t.stack = t.stack[:base]
}

func (t *tree) children(idx int32) []int32 {
	n := &t.nodes[idx]
	return t.kids[n.off : n.off+n.n]
}

// member returns the child of object idx named key, or -1.
func (t *tree) member(idx int32, key string) int32 {
	if m, ok := t.index[idx]; ok {
		if c, ok := m[key]; ok {
			return c
		}
		return -1
	}
	for _, c := range t.children(idx) {
		if t.nodes[c].key == key {
			return c
		}
	}
	return -1
}

// keyString returns a member name: the source bytes themselves when there
// is nothing to unescape (the tree never outlives its source), else the
// name unescaped into keyBuf.
func (t *tree) keyString(b []byte, esc bool) string {
	if !esc {
		return b2s(b)
	}
	if len(t.keyBuf) == 0 && cap(t.keyBuf) < len(t.src) {
		t.keyBuf = make([]byte, 0, len(t.src))
	}
	start := len(t.keyBuf)
	t.keyBuf = appendUnescapedJS(t.keyBuf, b)
	return b2s(t.keyBuf[start:])
}

// isIndexKey reports whether an object key is an array index for
// JavaScript's property ordering: a canonical decimal below 2^32-1.
func isIndexKey(k string) bool {
	if k == "" || len(k) > 10 || (k[0] == '0' && len(k) > 1) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isDigit(k[i]) {
			return false
		}
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n < 1<<32-1
}

// sameScalar reports whether two values that are not both containers are
// equal as JavaScript's === compares JSON.parse results. A container is
// never equal here.
func sameScalar(a, b *node) bool {
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

// sameNumber compares two JSON numbers as JavaScript numbers (float64):
// 1 == 1.0 == 1e0, -0 == 0.
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
