package jsonpatch

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"
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
	key  string // unescaped member name when the parent is an object
	off  int32
	n    int32
	kind kind
	esc  bool // a string value contains a backslash escape
}

// tree is a parsed document: a flat node table, built without allocating
// per value once its slices have grown. Node 0 is the root.
type tree struct {
	src   []byte
	pos   int
	depth int
	nodes []node
	kids  []int32
	stack []int32
	index map[int32]map[string]int32 // key → child node, for large objects

	scratch []byte // Diff's path buffer, kept with the pooled tree
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
	clear(t.nodes) // drop references to the source and keys
	t.src, t.nodes, t.kids, t.stack, t.index = nil, t.nodes[:0], t.kids[:0], t.stack[:0], nil
	treePool.Put(t)
}

// parse reads src as one JSON value, as strictly as encoding/json.Valid.
func (t *tree) parse(src []byte) error {
	t.src, t.pos, t.depth = src, 0, 0
	t.nodes, t.kids, t.stack = t.nodes[:0], t.kids[:0], t.stack[:0]
	t.index = nil
	t.skipWS()
	if _, err := t.value(); err != nil {
		return err
	}
	t.skipWS()
	if t.pos != len(src) {
		return t.errorf("trailing data")
	}
	return nil
}

func (t *tree) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrInvalidJSON, t.pos, fmt.Sprintf(format, args...))
}

func (t *tree) skipWS() {
	for t.pos < len(t.src) {
		switch t.src[t.pos] {
		case ' ', '\t', '\n', '\r':
			t.pos++
		default:
			return
		}
	}
}

func (t *tree) value() (int32, error) {
	if t.pos >= len(t.src) {
		return 0, t.errorf("unexpected end")
	}
	idx := int32(len(t.nodes))
	start := t.pos
	switch c := t.src[t.pos]; {
	case c == '{':
		return idx, t.object(idx)
	case c == '[':
		return idx, t.array(idx)
	case c == '"':
		esc, err := t.str()
		if err != nil {
			return 0, err
		}
		t.nodes = append(t.nodes, node{kind: kindString, raw: t.src[start:t.pos], esc: esc})
	case c == 't':
		return idx, t.literal("true", kindTrue)
	case c == 'f':
		return idx, t.literal("false", kindFalse)
	case c == 'n':
		return idx, t.literal("null", kindNull)
	case c == '-' || c >= '0' && c <= '9':
		if err := t.number(); err != nil {
			return 0, err
		}
		t.nodes = append(t.nodes, node{kind: kindNumber, raw: t.src[start:t.pos]})
	default:
		return 0, t.errorf("unexpected %q", c)
	}
	return idx, nil
}

func (t *tree) literal(word string, k kind) error {
	if len(t.src)-t.pos < len(word) || string(t.src[t.pos:t.pos+len(word)]) != word {
		return t.errorf("invalid literal")
	}
	t.nodes = append(t.nodes, node{kind: k, raw: t.src[t.pos : t.pos+len(word)]})
	t.pos += len(word)
	return nil
}

func (t *tree) digits() int {
	n := 0
	for t.pos < len(t.src) && t.src[t.pos] >= '0' && t.src[t.pos] <= '9' {
		t.pos++
		n++
	}
	return n
}

func (t *tree) number() error {
	if t.src[t.pos] == '-' {
		t.pos++
	}
	if t.pos < len(t.src) && t.src[t.pos] == '0' {
		t.pos++
	} else if t.digits() == 0 {
		return t.errorf("invalid number")
	}
	if t.pos < len(t.src) && t.src[t.pos] == '.' {
		t.pos++
		if t.digits() == 0 {
			return t.errorf("invalid number")
		}
	}
	if t.pos < len(t.src) && (t.src[t.pos] == 'e' || t.src[t.pos] == 'E') {
		t.pos++
		if t.pos < len(t.src) && (t.src[t.pos] == '+' || t.src[t.pos] == '-') {
			t.pos++
		}
		if t.digits() == 0 {
			return t.errorf("invalid number")
		}
	}
	return nil
}

// str validates a string starting at the opening quote and moves past the
// closing one; it reports whether the string has escapes.
func (t *tree) str() (esc bool, err error) {
	t.pos++
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		switch {
		case c == '"':
			t.pos++
			return esc, nil
		case c < 0x20:
			return false, t.errorf("control character in string")
		case c == '\\':
			esc = true
			if t.pos+1 >= len(t.src) {
				return false, t.errorf("unexpected end")
			}
			switch t.src[t.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				t.pos += 2
			case 'u':
				if len(t.src)-t.pos < 6 {
					return false, t.errorf("invalid escape")
				}
				for _, h := range t.src[t.pos+2 : t.pos+6] {
					if unhex(h) < 0 {
						return false, t.errorf("invalid escape")
					}
				}
				t.pos += 6
			default:
				return false, t.errorf("invalid escape")
			}
		default:
			t.pos++
		}
	}
	return false, t.errorf("unterminated string")
}

func (t *tree) enter() error {
	t.depth++
	if t.depth > MaxDepth {
		return fmt.Errorf("%w (more than %d levels)", ErrTooDeep, MaxDepth)
	}
	return nil
}

func (t *tree) array(idx int32) error {
	start := t.pos
	t.nodes = append(t.nodes, node{kind: kindArray})
	if err := t.enter(); err != nil {
		return err
	}
	t.pos++
	base := len(t.stack)
	t.skipWS()
	if t.pos < len(t.src) && t.src[t.pos] == ']' {
		t.pos++
	} else {
		for {
			t.skipWS()
			child, err := t.value()
			if err != nil {
				return err
			}
			t.stack = append(t.stack, child)
			t.skipWS()
			if t.pos >= len(t.src) {
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
	t.pos++
	base := len(t.stack)
	var keys map[string]int32 // built once the object is past smallObject members
	hasIndex := false
	t.skipWS()
	if t.pos < len(t.src) && t.src[t.pos] == '}' {
		t.pos++
	} else {
		for {
			t.skipWS()
			if t.pos >= len(t.src) || t.src[t.pos] != '"' {
				return t.errorf("expected member name")
			}
			ks := t.pos
			esc, err := t.str()
			if err != nil {
				return err
			}
			key := t.keyString(t.src[ks+1:t.pos-1], esc)
			t.skipWS()
			if t.pos >= len(t.src) || t.src[t.pos] != ':' {
				return t.errorf("expected :")
			}
			t.pos++
			t.skipWS()
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
			t.skipWS()
			if t.pos >= len(t.src) {
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
			ka, kb := t.nodes[a].key, t.nodes[b].key
			ia, ib := isIndexKey(ka), isIndexKey(kb)
			switch {
			case ia && ib:
				na, _ := strconv.ParseUint(ka, 10, 32)
				nb, _ := strconv.ParseUint(kb, 10, 32)
				return cmpUint(na, nb)
			case ia:
				return -1
			case ib:
				return 1
			}
			return 0
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

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
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
// is nothing to unescape (the tree never outlives its source).
func (t *tree) keyString(b []byte, esc bool) string {
	if !esc {
		return b2s(b)
	}
	return string(unescape(nil, b))
}

// isIndexKey reports whether an object key is an array index for
// JavaScript's property ordering: a canonical decimal below 2^32-1.
func isIndexKey(k string) bool {
	if k == "" || len(k) > 10 || (k[0] == '0' && len(k) > 1) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(k, 10, 64)
	return err == nil && n < 1<<32-1
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescape appends the unescaped content of a validated JSON string body
// (without quotes). A \u escape of a lone surrogate becomes that code unit
// in WTF-8, so that two different JavaScript strings never unescape to the
// same bytes.
func unescape(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch b[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(b[i+2:])
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
				if lo := hex4(b[i+2:]); lo >= 0xDC00 && lo < 0xE000 {
					dst = utf8.AppendRune(dst, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
					i += 6
					continue
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				dst = append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
			} else {
				dst = utf8.AppendRune(dst, r)
			}
			continue
		default: // " \ /
			dst = append(dst, b[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	return rune(unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3]))
}

func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
