package jsonpatch

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/meshfast/meshfast/coord"
)

// FuzzDiffApply checks, for two JSON documents, that Apply(old, Diff(old,
// new)) is JSON-equal to new, that Diff is deterministic and never misses
// a change coord.JSONEqual sees, and that neither function panics on any
// input. Seeds: f.Add below and testdata/fuzz/FuzzDiffApply.
func FuzzDiffApply(f *testing.F) {
	for _, s := range [][2]string{
		{`{"count":1}`, `{"count":1,"name":"added"}`},
		{`{"count":1,"name":"added"}`, `{"name":"added"}`},
		{`{"a":{"b":1,"c":[1,2]}}`, `{"a":{"b":2,"c":[1]}}`},
		{`[1,2,3]`, `[0,2]`},
		{`{"b":1,"2":1,"a":1,"1":1}`, `{"1":2,"c":[]}`},
		{`{"a/b":1,"m~n":2}`, `{"a/b":{"~":[null]}}`},
		{`"initial value"`, `"updated value"`},
		{`{"a":1}`, `[1]`},
		{`{"a":"\u0041"}`, `{"a":"A","\ud800":1}`},
		{`{"a":1,"a":2}`, `{"a":1}`},
		{`{"n":1e400}`, `{"n":2e400}`},
		{`null`, `{}`},
		{`{ "a" : [ 1 , { } ] }`, "{\"a\":[1,{\"b\":\t1}]}"},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, old, new []byte) {
		patch, err := Diff(old, new)
		valid := json.Valid(old) && json.Valid(new)
		if err != nil {
			if valid && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("Diff(%q, %q) on valid JSON: %v", old, new, err)
			}
			_, _ = Apply(old, new) // must not panic either
			return
		}
		if !valid {
			t.Fatalf("Diff(%q, %q) accepted invalid JSON", old, new)
		}
		if !json.Valid(patch) {
			t.Fatalf("patch is not JSON: %q", patch)
		}
		again, _ := Diff(old, new)
		if string(again) != string(patch) {
			t.Fatalf("not deterministic: %s vs %s", patch, again)
		}
		got, err := Apply(old, patch)
		if err != nil {
			t.Fatalf("Apply(%q, %s): %v", old, patch, err)
		}
		if eq, err := coord.JSONEqual(got, new); err != nil || !eq {
			t.Fatalf("Apply(%q, %s) = %s, want %q (%v)", old, patch, got, new, err)
		}
		// Diff's equality is JavaScript's and at least as strict as
		// JSONEqual's (which reads lone surrogates and invalid UTF-8 as
		// U+FFFD): it may replace a JSONEqual-equal value, never miss a change.
		if eq, _ := coord.JSONEqual(old, new); !eq && string(patch) == "[]" {
			t.Fatalf("Diff(%q, %q) = [] but the values differ", old, new)
		}
	})
}

// FuzzApply checks that Apply never panics and returns valid JSON.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"foo":["bar","baz"]}`), []byte(`[{"op":"add","path":"/foo/1","value":"qux"}]`))
	f.Add([]byte(`{"a":{"b":1}}`), []byte(`[{"op":"move","from":"/a/b","path":"/c"},{"op":"copy","from":"/c","path":"/a/d"}]`))
	f.Add([]byte(`[1,2]`), []byte(`[{"op":"test","path":"/1","value":2.0},{"op":"remove","path":"/0"}]`))
	f.Add([]byte(`{"~1":1}`), []byte(`[{"op":"replace","path":"/~01","value":{"x":[]}}]`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		got, err := Apply(doc, patch)
		if err == nil && !json.Valid(got) {
			t.Fatalf("Apply(%q, %q) = %q, not JSON", doc, patch, got)
		}
	})
}
