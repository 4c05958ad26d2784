package coord

import "context"

// Records stores versioned JSON records (Redis: the value in
// mesh:record:<id> and the version, a decimal, in mesh:record-version:<id>).
//
// Version 0 means "no record"; the first change gives version 1 and every
// later change adds exactly 1. A write that does not change the value (see
// SetRecord) neither stores nor bumps.
type Records interface {
	// Record returns id's value and version; a missing record is
	// Record{Value: nil, Version: 0}. The two are read together, never a
	// value with another value's version (one script or MGET over both
	// keys, which a Redis Cluster needs on one slot: hash-tagged names).
	Record(ctx context.Context, id string) (Record, error)

	// SetRecord stores value as id's new value if it differs from the
	// current one, and returns the outcome, including the previous value so
	// that the caller can compute a patch.
	//
	// "Differs" is JavaScript inequality (jsonx.Equal): object key order and
	// number spelling (1 vs 1.0) do not matter; numbers compare as float64,
	// as in JavaScript. A missing record counts as JSON null, so writing
	// null to a missing record is not a change. (Mesh compares with
	// fast-json-patch compare(old ?? {}, new ?? {}), which also misses
	// changes of top-level numbers and booleans and of [] vs {}; meshfast
	// does not copy that.) value must be valid JSON (ErrInvalidJSON).
	//
	// Atomic per record: when several nodes write one record concurrently,
	// every changing write gets its own version and its Old is the value of
	// the version before it (Mesh's read-modify-write could lose or
	// duplicate versions). The comparison must be jsonx.Equal, which Lua
	// cannot run, so a backend reads value and version, compares, and stores
	// value and version+1 only if the version is still the one it read (a
	// compare-and-set script over both keys, on one slot of a Redis
	// Cluster), retrying otherwise, or
	// returning ErrConflict past its retry bound: two round trips per
	// attempt, one for an unchanged value.
	SetRecord(ctx context.Context, id string, value []byte) (RecordUpdate, error)
}

// Record is a record's value and version. Value is nil and Version 0 when the
// record does not exist.
type Record struct {
	Value   []byte
	Version int64
}

// RecordUpdate is the outcome of SetRecord.
type RecordUpdate struct {
	// Changed reports whether the value was stored and the version bumped.
	Changed bool
	// Version is the new version when Changed, else the current one.
	Version int64
	// Old is the value before the write (nil if there was no record). When
	// Changed is false it is the current, kept value.
	Old []byte
}
