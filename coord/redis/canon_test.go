package redis

import (
	"errors"
	"testing"

	"github.com/meshfast/meshfast/coord"
	"github.com/meshfast/meshfast/protocol/jsonx"
)

var canonPairs = [][2]string{
	{`{"a":1,"b":2}`, `{"b":2,"a":1}`},
	{`{"a":1,"a":2}`, `{"a":2}`},
	{`{"a":1}`, `{"a":1,"b":null}`},
	{`1`, `1.0`}, {`1`, `1e0`}, {`-0`, `0`}, {`1e400`, `2e400`}, {`-1e400`, `1e400`}, {`1e-400`, `0`},
	{`5`, `6`}, {`true`, `false`}, {`null`, ``}, {`{}`, `null`}, {`{}`, `[]`}, {`[]`, `[[]]`},
	{`"a"`, `"\u0061"`}, {`"1"`, `1`}, {`"true"`, `true`},
	{`"\ud800"`, `"\ufffd"`}, {`"\ud83d\ude00"`, `"😀"`}, {`"\ud83d"`, `"\ud83d\u0041"`},
	{`"\/"`, `"/"`}, {`"\n"`, `"\u000a"`}, {"\"\xff\"", `"\ufffd"`},
	{`[1,2]`, `[2,1]`}, {`[1,[2,{"x":"y"}]]`, ` [ 1 , [ 2 , { "x" : "y" } ] ] `},
	{`{"a":[1,{"b":true}]}`, `{"a":[1,{"b":false}]}`},
	{`{"ab":"c"}`, `{"a":"bc"}`}, {`["ab","c"]`, `["a","bc"]`}, {`[1,11]`, `[11,1]`},
	{`{"k":{"a":1},"j":2}`, `{"j":2,"k":{"a":1.0}}`},
}

func TestCanonicalHashMatchesEqual(t *testing.T) {
	for _, p := range canonPairs {
		checkCanon(t, []byte(p[0]), []byte(p[1]))
	}
	for _, bad := range []string{`{`, `{} {}`, `nul`, `[1,]`, `"x`, `{"a":}`} {
		if _, err := canonicalHash([]byte(bad)); !errors.Is(err, coord.ErrInvalidJSON) {
			t.Errorf("canonicalHash(%s) error = %v, want ErrInvalidJSON", bad, err)
		}
	}
}

func checkCanon(t *testing.T, a, b []byte) {
	t.Helper()
	eq, err := jsonx.Equal(a, b)
	ha, erra := canonicalHash(a)
	hb, errb := canonicalHash(b)
	if err != nil {
		if erra == nil && errb == nil {
			t.Fatalf("jsonx.Equal(%q, %q) failed (%v) but both hash", a, b, err)
		}
		return
	}
	if erra != nil || errb != nil {
		t.Fatalf("canonicalHash(%q, %q): %v, %v; jsonx accepts both", a, b, erra, errb)
	}
	if (ha == hb) != eq {
		t.Fatalf("%q vs %q: same hash %v, jsonx.Equal %v", a, b, ha == hb, eq)
	}
}

// The record script's "unchanged" must be jsonx.Equal's, for any input.
func FuzzCanonicalHash(f *testing.F) {
	for _, p := range canonPairs {
		f.Add([]byte(p[0]), []byte(p[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		checkCanon(t, a, b)
		checkCanon(t, a, a)
	})
}
