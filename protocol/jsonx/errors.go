package jsonx

import "errors"

// Errors returned by this package, wrapped with context; test with
// errors.Is.
var (
	// ErrInvalidJSON means an input is not a single valid JSON value.
	ErrInvalidJSON = errors.New("jsonx: invalid JSON")

	// ErrTooDeep means an input nests arrays and objects deeper than
	// MaxDepth. An error that is ErrTooDeep is also ErrInvalidJSON: such a
	// value is refused as Valid refuses it.
	ErrTooDeep = errors.New("jsonx: nesting too deep")

	// ErrNotObject means a value that must be a JSON object (the partial
	// value of MergeObjects) is valid JSON of another kind.
	ErrNotObject = errors.New("jsonx: not a JSON object")

	// ErrInvalidPatch means a patch is not an array of well-formed
	// operations (unknown op, missing path, value or from, bad pointer).
	ErrInvalidPatch = errors.New("jsonx: invalid patch")

	// ErrPathNotFound means an operation's path or from does not exist in
	// the document, or an array index is out of range.
	ErrPathNotFound = errors.New("jsonx: path not found")

	// ErrTestFailed means a "test" operation found a different value.
	ErrTestFailed = errors.New("jsonx: test failed")
)
