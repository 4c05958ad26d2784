package jsonx

import "strconv"

// Diff returns the RFC 6902 patch, a JSON array of operations, that turns
// old into new, as fast-json-patch's compare(old, new) builds it (see the
// package documentation). Equal values give "[]". It returns ErrInvalidJSON
// or ErrTooDeep if either input is not a valid JSON value.
func Diff(old, new []byte) ([]byte, error) {
	return AppendDiff(make([]byte, 0, 64), old, new)
}

// AppendDiff appends Diff(old, new) to dst. On error dst is returned
// unchanged.
func AppendDiff(dst, old, new []byte) ([]byte, error) {
	a, b := getTree(), getTree()
	defer putTree(a)
	defer putTree(b)
	if err := a.parse(old); err != nil {
		return dst, err
	}
	if err := b.parse(new); err != nil {
		return dst, err
	}
	d := differ{a: a, b: b, out: append(dst, '['), path: a.scratch[:0], first: true}
	defer func() { a.scratch = d.path[:0] }()
	ra, rb := &a.nodes[0], &b.nodes[0]
	switch {
	case ra.kind.container() && ra.kind == rb.kind:
		d.generate(0, 0)
	case ra.kind.container() || rb.kind.container() || !sameScalar(ra, rb):
		d.op(opReplace, rb.raw)
	}
	return append(d.out, ']'), nil
}

type differ struct {
	a, b  *tree
	out   []byte
	path  []byte // the current JSON pointer, unescaped for JSON
	first bool
}

const (
	opAdd     = `{"op":"add","path":`
	opRemove  = `{"op":"remove","path":`
	opReplace = `{"op":"replace","path":`
)

// op appends one operation at the current path; value is nil for remove.
func (d *differ) op(kind string, value []byte) {
	if !d.first {
		d.out = append(d.out, ',')
	}
	d.first = false
	d.out = append(d.out, kind...)
	d.out = appendJSString(d.out, b2s(d.path))
	if value != nil {
		d.out = append(d.out, `,"value":`...)
		d.out = appendCompact(d.out, value)
	}
	d.out = append(d.out, '}')
}

// generate is compare's _generate for two objects or two arrays: old keys
// from last to first (recurse, replace or remove), then new keys in order
// (add) unless nothing was removed and the key counts match.
func (d *differ) generate(oi, ni int32) {
	a, b := d.a, d.b
	oldKids, newKids := a.children(oi), b.children(ni)
	isArray := a.nodes[oi].kind == kindArray
	plen := len(d.path)
	deleted := false
	for t := len(oldKids) - 1; t >= 0; t-- {
		oc := oldKids[t]
		nc := int32(-1)
		if isArray {
			if t < len(newKids) {
				nc = newKids[t]
			}
			d.path = strconv.AppendInt(append(d.path[:plen], '/'), int64(t), 10)
		} else {
			key := a.nodes[oc].key
			nc = b.member(ni, key)
			d.path = appendToken(append(d.path[:plen], '/'), key)
		}
		if nc < 0 {
			d.op(opRemove, nil)
			deleted = true
			continue
		}
		on, nn := &a.nodes[oc], &b.nodes[nc]
		switch {
		case on.kind.container() && on.kind == nn.kind:
			d.generate(oc, nc)
		case on.kind.container() || nn.kind.container() || !sameScalar(on, nn):
			d.op(opReplace, nn.raw)
		}
	}
	if deleted || len(newKids) != len(oldKids) {
		for t, nc := range newKids {
			if isArray {
				if t < len(oldKids) {
					continue
				}
				d.path = strconv.AppendInt(append(d.path[:plen], '/'), int64(t), 10)
			} else {
				key := b.nodes[nc].key
				if a.member(oi, key) >= 0 {
					continue
				}
				d.path = appendToken(append(d.path[:plen], '/'), key)
			}
			d.op(opAdd, b.nodes[nc].raw)
		}
	}
	d.path = d.path[:plen]
}
