package jsonpatch

import "errors"

// Errors returned by Diff and Apply, wrapped with context; test with
// errors.Is.
var (
	// ErrInvalidJSON means an input is not a single valid JSON value.
	ErrInvalidJSON = errors.New("jsonpatch: invalid JSON")

	// ErrTooDeep means an input nests objects and arrays deeper than
	// MaxDepth.
	ErrTooDeep = errors.New("jsonpatch: nesting too deep")

	// ErrInvalidPatch means a patch is not an array of well-formed
	// operations (unknown op, missing path, value or from, bad pointer).
	ErrInvalidPatch = errors.New("jsonpatch: invalid patch")

	// ErrPathNotFound means an operation's path or from does not exist in
	// the document, or an array index is out of range.
	ErrPathNotFound = errors.New("jsonpatch: path not found")

	// ErrTestFailed means a "test" operation found a different value.
	ErrTestFailed = errors.New("jsonpatch: test failed")
)

// MaxDepth is the deepest nesting of objects and arrays Diff and Apply
// accept, as encoding/json's scanner.
const MaxDepth = 10000
