//go:build !race

package jsonx

import "testing"

// The record write path compares and diffs on every write: neither may
// allocate once the pools are warm and the caller's buffer is big enough.
func TestZeroAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	escaped := []byte(`{"k\u0065y":"v\u00e9","n":[1.0,"\ud83d\ude00"]}`)
	escaped2 := []byte(`{"n":[1,"😀"],"key":"vé"}`)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Equal differ", func() { _, _ = Equal(benchOld, benchNew) }},
		{"Equal reordered", func() { _, _ = Equal(benchOld, benchReordered) }},
		{"Equal same bytes", func() { _, _ = Equal(benchOld, benchOld) }},
		{"Equal escaped", func() { _, _ = Equal(escaped, escaped2) }},
		{"AppendDiff", func() { buf, _ = AppendDiff(buf[:0], benchOld, benchNew) }},
		{"Valid", func() { _ = Valid(benchNew) }},
		{"AppendString", func() { buf = AppendString(buf[:0], "line\n\"q\" café") }},
		{"ObjectIter", func() {
			var it ObjectIter
			it.Start(benchOld)
			for it.Next() {
			}
		}},
	} {
		tc.f() // warm the pools
		if n := testing.AllocsPerRun(200, tc.f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", tc.name, n)
		}
	}
}
