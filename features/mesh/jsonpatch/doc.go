// Package jsonpatch computes and applies RFC 6902 JSON patches on raw JSON
// bytes, for record subscriptions in patch mode.
//
// Diff produces the operations that fast-json-patch's compare(old, new)
// produces (the library Mesh uses), in the same order, so a Mesh client sees
// the patches it would get from Mesh:
//
//	patch, err := jsonpatch.Diff([]byte(`{"count":1}`), []byte(`{"count":1,"name":"a"}`))
//	// [{"op":"add","path":"/name","value":"a"}]
//
//	doc, err := jsonpatch.Apply(old, patch) // JSON-equal to new
//
// Diff walks both values the way compare does: for two objects (or two
// arrays) it visits the old keys from last to first, recursing into members
// that are objects (or arrays) on both sides, emitting "replace" for changed
// values and "remove" for dropped keys, then emits "add" for new keys in
// their order. Arrays are compared index by index, like objects whose keys
// are "0", "1", …; removals therefore come from the highest index down. Keys
// are visited in JavaScript's Object.keys order: integer-like keys ("0" to
// "4294967294") first in ascending order, then the others as written. Values
// compare as JavaScript's === compares JSON.parse results: numbers by value
// (1 == 1.0), strings after unescaping. A duplicate key keeps its first
// position and its last value, as in JSON.parse.
//
// Where compare would emit a patch that does not turn old into new (the two
// top-level values are of different kinds, or either is not an object or an
// array), Diff emits one {"op":"replace","path":"","value":new} instead, or
// nothing when the values are equal.
//
// Values in the output are the input's bytes with insignificant whitespace
// removed, not re-serialized: "\u0041" stays "\u0041". Paths are JSON
// pointers starting with "/" with "~" and "/" escaped as "~0" and "~1",
// JSON-encoded as JSON.stringify encodes strings. The output is a function of
// the inputs alone.
//
// Apply implements the six RFC 6902 operations (add, remove, replace, move,
// copy, test) atomically: on error nothing is returned but the error.
//
// # Concurrency
//
// Every function is safe to call from any goroutine. Inputs are only read;
// outputs are newly allocated (or appended to the caller's dst) and do not
// alias the inputs.
package jsonpatch
