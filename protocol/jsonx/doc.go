// Package jsonx is meshfast's one implementation of the JSON that Mesh's
// semantics need beyond encoding and decoding: validation and scanning as
// JSON.parse does it, strings escaped as JSON.stringify escapes them,
// JavaScript equality of two values, RFC 6902 patches as Mesh computes and
// applies them, and the shallow object merge of Mesh's room metadata. It
// works on raw JSON bytes, does no I/O and imports nothing outside the
// standard library; protocol (the wire format), coord (the coordinators),
// features/mesh (the server) and client all use it.
//
//	ok := jsonx.Valid(b)                       // one JSON value, as JSON.parse accepts it
//	same, err := jsonx.Equal(old, new)         // did the record change?
//	patch, err := jsonx.Diff(old, new)         // [{"op":"replace","path":"/n","value":2}]
//	doc, err := jsonx.Apply(old, patch)        // Equal to new
//	merged, err := jsonx.MergeObjects(cur, p)  // {...cur, ...p}
//
// # Semantics
//
// Values compare as JavaScript's === compares JSON.parse results (see
// Equal): numbers by float64 value, strings after unescaping, objects by
// their members in any order, a duplicate key with its last value. Equal,
// Diff and Apply's "test" agree exactly: Diff(a, b) is "[]" if and only if
// Equal(a, b).
//
// Diff produces the operations that fast-json-patch's compare(old, new)
// produces (the library Mesh uses), in the same order, so a Mesh client
// sees the patches it would get from Mesh. It walks both values the way
// compare does: for two objects (or two arrays) it visits the old keys from
// last to first, recursing into members that are objects (or arrays) on
// both sides, emitting "replace" for changed values and "remove" for
// dropped keys, then emits "add" for new keys in their order. Arrays are
// compared index by index, like objects whose keys are "0", "1", …;
// removals therefore come from the highest index down. Keys are visited in
// JavaScript's Object.keys order: integer-like keys ("0" to "4294967294")
// first in ascending order, then the others as written. Where compare would
// emit a patch that does not turn old into new (the two top-level values
// are of different kinds, or either is not an object or an array), Diff
// emits one {"op":"replace","path":"","value":new} instead, or nothing when
// the values are equal. Values in the output are the input's bytes with
// insignificant whitespace removed, not re-serialized: "\u0041" stays
// "\u0041". Paths are JSON pointers with "~" and "/" escaped as "~0" and
// "~1", JSON-encoded as JSON.stringify encodes strings.
//
// Apply implements the six RFC 6902 operations (add, remove, replace, move,
// copy, test) strictly (a missing member or index is an error, where
// fast-json-patch without validation would carry on) and atomically.
//
// Strings: JavaScript strings are UTF-16 and may hold lone surrogates; see
// AppendString and AppendUnescaped for how they cross into Go strings.
//
// Limits: nesting deeper than MaxDepth is refused (ErrTooDeep, which is
// also ErrInvalidJSON), as encoding/json refuses it.
//
// # Allocation
//
// Valid, ObjectIter and AppendString never allocate (AppendString only to
// grow dst). Equal and AppendDiff parse into pooled node tables and
// allocate nothing in the steady state; Apply builds a mutable copy of the
// document, one allocation per value.
//
// # Concurrency
//
// Every function is safe to call from any goroutine; the package's only
// shared state is a sync.Pool of parse tables. Inputs are only read;
// outputs are newly allocated (or appended to the caller's dst) and do not
// alias the inputs, except ObjectIter's keys and values, which are slices
// of its input. An ObjectIter belongs to one goroutine.
package jsonx
