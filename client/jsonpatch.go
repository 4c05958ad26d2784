package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// A small RFC 6902 (JSON Patch) applier over documents decoded by
// decodeJSON: map[string]any, []any, string, json.Number, bool and nil.
// Mesh's server emits add, remove and replace; move, copy and test are
// implemented too. Patches are applied in place: on error the document
// may be partly changed, so a caller that fails must discard it (the
// record code resubscribes and replaces its copy).

var errPatch = errors.New("client: invalid JSON patch")

// decodeJSON decodes a JSON value, keeping numbers exact as json.Number.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("client: trailing data after JSON value")
	}
	return v, nil
}

// encodeJSON encodes a decoded document (object keys sorted, no HTML
// escaping, as JSON.stringify would not escape either).
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// patchOp is one operation; Value is nil when the member is absent and
// "null" for JSON null.
type patchOp struct {
	Op    string          `json:"op"`
	Path  *string         `json:"path"`
	From  *string         `json:"from"`
	Value json.RawMessage `json:"value"`
}

// applyPatch applies the JSON array of operations patch to doc and returns
// the new document (the root may be replaced).
func applyPatch(doc any, patch []byte) (any, error) {
	var ops []patchOp
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("%w: %v", errPatch, err)
	}
	for i, op := range ops {
		var err error
		if doc, err = applyOp(doc, op); err != nil {
			return nil, fmt.Errorf("%w: operation %d (%s): %v", errPatch, i, op.Op, err)
		}
	}
	return doc, nil
}

func applyOp(doc any, op patchOp) (any, error) {
	if op.Path == nil {
		return nil, errors.New("missing path")
	}
	path, err := parsePointer(*op.Path)
	if err != nil {
		return nil, err
	}
	switch op.Op {
	case "add", "replace", "test":
		if op.Value == nil {
			return nil, errors.New("missing value")
		}
		v, err := decodeJSON(op.Value)
		if err != nil {
			return nil, err
		}
		switch op.Op {
		case "add":
			return addAt(doc, path, v)
		case "replace":
			if _, err := getAt(doc, path); err != nil {
				return nil, err
			}
			if len(path) == 0 {
				return v, nil
			}
			return modifyParent(doc, path, func(parent any, key string) (any, error) {
				switch p := parent.(type) {
				case map[string]any:
					p[key] = v
					return p, nil
				case []any:
					i, err := arrayIndex(key, len(p), false)
					if err != nil {
						return nil, err
					}
					p[i] = v
					return p, nil
				}
				return nil, errors.New("parent is not a container")
			})
		default: // test
			cur, err := getAt(doc, path)
			if err != nil {
				return nil, err
			}
			if !jsonEqual(cur, v) {
				return nil, errors.New("test failed")
			}
			return doc, nil
		}
	case "remove":
		if _, err := getAt(doc, path); err != nil {
			return nil, err
		}
		return removeAt(doc, path)
	case "move", "copy":
		if op.From == nil {
			return nil, errors.New("missing from")
		}
		from, err := parsePointer(*op.From)
		if err != nil {
			return nil, err
		}
		v, err := getAt(doc, from)
		if err != nil {
			return nil, err
		}
		if op.Op == "copy" {
			return addAt(doc, path, deepCopy(v))
		}
		if isPrefix(from, path) {
			if len(from) == len(path) {
				return doc, nil // moving onto itself
			}
			return nil, errors.New("cannot move a value into itself")
		}
		if doc, err = removeAt(doc, from); err != nil {
			return nil, err
		}
		return addAt(doc, path, v)
	}
	return nil, fmt.Errorf("unknown op %q", op.Op)
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped tokens; ""
// is the whole document.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("pointer %q does not start with /", p)
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		if strings.IndexByte(t, '~') < 0 {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(t); j++ {
			if t[j] != '~' {
				b.WriteByte(t[j])
				continue
			}
			if j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1') {
				return nil, fmt.Errorf("pointer %q: bad escape", p)
			}
			if t[j+1] == '0' {
				b.WriteByte('~')
			} else {
				b.WriteByte('/')
			}
			j++
		}
		tokens[i] = b.String()
	}
	return tokens, nil
}

// arrayIndex parses an array index token for an array of length n; with
// forAdd, n itself and "-" (append) are allowed.
func arrayIndex(tok string, n int, forAdd bool) (int, error) {
	if forAdd && tok == "-" {
		return n, nil
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, fmt.Errorf("bad array index %q", tok)
		}
	}
	i, err := strconv.Atoi(tok)
	if err != nil {
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	if i > n || (i == n && !forAdd) {
		return 0, fmt.Errorf("array index %d out of range", i)
	}
	return i, nil
}

// getAt returns the value at path.
func getAt(doc any, path []string) (any, error) {
	cur := doc
	for _, tok := range path {
		switch n := cur.(type) {
		case map[string]any:
			v, ok := n[tok]
			if !ok {
				return nil, fmt.Errorf("no member %q", tok)
			}
			cur = v
		case []any:
			i, err := arrayIndex(tok, len(n), false)
			if err != nil {
				return nil, err
			}
			cur = n[i]
		default:
			return nil, fmt.Errorf("cannot descend into a scalar at %q", tok)
		}
	}
	return cur, nil
}

// modifyParent walks to the parent of path's last token (path non-empty)
// and stores f's result there, so that arrays can grow and shrink.
func modifyParent(node any, path []string, f func(parent any, key string) (any, error)) (any, error) {
	if len(path) == 1 {
		return f(node, path[0])
	}
	switch n := node.(type) {
	case map[string]any:
		child, ok := n[path[0]]
		if !ok {
			return nil, fmt.Errorf("no member %q", path[0])
		}
		nc, err := modifyParent(child, path[1:], f)
		if err != nil {
			return nil, err
		}
		n[path[0]] = nc
		return n, nil
	case []any:
		i, err := arrayIndex(path[0], len(n), false)
		if err != nil {
			return nil, err
		}
		nc, err := modifyParent(n[i], path[1:], f)
		if err != nil {
			return nil, err
		}
		n[i] = nc
		return n, nil
	}
	return nil, fmt.Errorf("cannot descend into a scalar at %q", path[0])
}

func addAt(doc any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	return modifyParent(doc, path, func(parent any, key string) (any, error) {
		switch p := parent.(type) {
		case map[string]any:
			p[key] = v
			return p, nil
		case []any:
			i, err := arrayIndex(key, len(p), true)
			if err != nil {
				return nil, err
			}
			p = append(p, nil)
			copy(p[i+1:], p[i:])
			p[i] = v
			return p, nil
		}
		return nil, errors.New("parent is not a container")
	})
}

func removeAt(doc any, path []string) (any, error) {
	if len(path) == 0 {
		return nil, nil // fast-json-patch: removing the root leaves null
	}
	return modifyParent(doc, path, func(parent any, key string) (any, error) {
		switch p := parent.(type) {
		case map[string]any:
			if _, ok := p[key]; !ok {
				return nil, fmt.Errorf("no member %q", key)
			}
			delete(p, key)
			return p, nil
		case []any:
			i, err := arrayIndex(key, len(p), false)
			if err != nil {
				return nil, err
			}
			return append(p[:i:i], p[i+1:]...), nil
		}
		return nil, errors.New("parent is not a container")
	})
}

// isPrefix reports whether a is a prefix of (or equal to) b.
func isPrefix(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func deepCopy(v any) any {
	switch n := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(n))
		for k, e := range n {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(n))
		for i, e := range n {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// jsonEqual compares two decoded values as JSON values: numbers by value.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		return numberEqual(x, y)
	default:
		return a == b // string, bool, nil
	}
}

// numberEqual compares two JSON numbers by value: exactly, unless an
// exponent is so large that exact arithmetic would be costly.
func numberEqual(x, y json.Number) bool {
	if x == y {
		return true
	}
	if hugeExponent(string(x)) || hugeExponent(string(y)) {
		fx, errx := strconv.ParseFloat(string(x), 64)
		fy, erry := strconv.ParseFloat(string(y), 64)
		return errx == nil && erry == nil && fx == fy
	}
	rx, okx := new(big.Rat).SetString(string(x))
	ry, oky := new(big.Rat).SetString(string(y))
	return okx && oky && rx.Cmp(ry) == 0
}

func hugeExponent(n string) bool {
	i := strings.IndexAny(n, "eE")
	if i < 0 {
		return false
	}
	e, err := strconv.Atoi(strings.TrimPrefix(n[i+1:], "+"))
	return err != nil || e > 400 || e < -400
}
