package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDiffApply checks, for two JSON documents, that Apply(old, Diff(old,
// new)) is Equal to new, that Diff is deterministic and empty exactly when
// Equal says the values are equal, and that no function panics on any
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
		eq, eqErr := Equal(old, new)
		valid := json.Valid(old) && json.Valid(new)
		if err != nil {
			if valid && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("Diff(%q, %q) on valid JSON: %v", old, new, err)
			}
			if !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("Diff error %v is not ErrInvalidJSON", err)
			}
			if len(old) > 0 && len(new) > 0 && eqErr == nil {
				t.Fatalf("Equal(%q, %q) accepted what Diff refused (%v)", old, new, err)
			}
			_, _ = Apply(old, new) // must not panic either
			return
		}
		if !valid {
			t.Fatalf("Diff(%q, %q) accepted invalid JSON", old, new)
		}
		if eqErr != nil {
			t.Fatalf("Equal(%q, %q): %v", old, new, eqErr)
		}
		if eq != (string(patch) == "[]") {
			t.Fatalf("Diff(%q, %q) = %s but Equal = %v", old, new, patch, eq)
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
		if eq, err := Equal(got, new); err != nil || !eq {
			t.Fatalf("Apply(%q, %s) = %s, want %q (%v)", old, patch, got, new, err)
		}
	})
}

// FuzzApply checks that Apply never panics, returns valid JSON, and leaves
// a document Equal to itself for an empty patch.
func FuzzApply(f *testing.F) {
	f.Add([]byte(`{"foo":["bar","baz"]}`), []byte(`[{"op":"add","path":"/foo/1","value":"qux"}]`))
	f.Add([]byte(`{"a":{"b":1}}`), []byte(`[{"op":"move","from":"/a/b","path":"/c"},{"op":"copy","from":"/c","path":"/a/d"}]`))
	f.Add([]byte(`[1,2]`), []byte(`[{"op":"test","path":"/1","value":2.0},{"op":"remove","path":"/0"}]`))
	f.Add([]byte(`{"~1":1}`), []byte(`[{"op":"replace","path":"/~01","value":{"x":[]}}]`))
	f.Add([]byte(`[1,2,3]`), []byte(`[{"op":"remove","path":"/-"},{"op":"copy","from":"/0","path":"/0"}]`))
	f.Add([]byte(`null`), []byte(`[{"op":"test","path":"","value":null}]`))
	f.Add([]byte(`{"a":1e999999999}`), []byte(`[{"op":"test","path":"/a","value":1e999999998}]`))
	f.Add([]byte(`{"~":{"/":[]}}`), []byte(`[{"op":"add","path":"/~0/~1/0","value":{}}]`))
	f.Add([]byte(`{"b":1,"2":1}`), []byte(`[{"op":"add","path":"/1","value":0},{"op":"remove","path":""}]`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		got, err := Apply(doc, patch)
		if err == nil && !json.Valid(got) {
			t.Fatalf("Apply(%q, %q) = %q, not JSON", doc, patch, got)
		}
		if json.Valid(doc) {
			same, err := Apply(doc, []byte(`[]`))
			if err != nil && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("Apply(%q, []): %v", doc, err)
			}
			if eq, _ := Equal(same, doc); err == nil && !eq {
				t.Fatalf("Apply(%q, []) = %s", doc, same)
			}
		}
	})
}

// FuzzEqual checks Equal against a reference built on encoding/json (where
// the two agree: strings without lone surrogates or invalid UTF-8, which
// encoding/json replaces by U+FFFD) and for the properties of an equality:
// reflexive, symmetric, and unchanged by compacting whitespace.
func FuzzEqual(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`1`, `1.0`}, {`-0`, `0`}, {`1e400`, `2e400`}, {`"1"`, `1`}, {`true`, `"true"`},
		{`"a"`, `"\u0061"`}, {`"\ud800"`, `"\ufffd"`}, {`{}`, `[]`}, {`null`, ``},
		{`[1,[2,{"x":"y"}]]`, ` [ 1 , [ 2 , { "x" : "y" } ] ] `},
		{`{"id":1}`, `{"id":"1"}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		eq, err := Equal(a, b)
		rev, rerr := Equal(b, a)
		if (err == nil) != (rerr == nil) || eq != rev {
			t.Fatalf("Equal(%q, %q) = %v, %v but reversed %v, %v", a, b, eq, err, rev, rerr)
		}
		va, vb := len(a) == 0 || json.Valid(a), len(b) == 0 || json.Valid(b)
		if (err == nil) != (va && vb) && !errors.Is(err, ErrTooDeep) {
			t.Fatalf("Equal(%q, %q) error %v, encoding/json validity %v %v", a, b, err, va, vb)
		}
		if err != nil {
			return
		}
		if self, err := Equal(a, bytes.Clone(a)); err != nil || !self {
			t.Fatalf("Equal(%q, itself) = %v, %v", a, self, err)
		}
		if len(a) > 0 {
			var c bytes.Buffer
			if json.Compact(&c, a) == nil {
				if same, err := Equal(c.Bytes(), b); err != nil || same != eq {
					t.Fatalf("Equal(compact(%q), %q) = %v, %v; want %v", a, b, same, err, eq)
				}
			}
		}
		if comparable(a) && comparable(b) {
			if want := refEqual(t, a, b); eq != want {
				t.Fatalf("Equal(%q, %q) = %v, encoding/json reference %v", a, b, eq, want)
			}
		}
	})
}

// comparable reports whether encoding/json reads the strings of b as
// JavaScript does: valid UTF-8 and no surrogate escapes.
func comparable(b []byte) bool {
	return utf8.Valid(b) && !strings.Contains(strings.ToLower(string(b)), `\ud`)
}

// refEqual is the old decode-both comparison (encoding/json, numbers as
// float64), the reference Equal replaced.
func refEqual(t *testing.T, a, b []byte) bool {
	dec := func(x []byte) any {
		if len(x) == 0 {
			return nil
		}
		d := json.NewDecoder(bytes.NewReader(x))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("reference decode %q: %v", x, err)
		}
		return v
	}
	return refSame(dec(a), dec(b))
}

func refSame(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !refSame(v, w) {
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
			if !refSame(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		return ok && sameNumber([]byte(x), []byte(y))
	default: // nil, bool, string
		return a == b
	}
}

// FuzzMergeObjects checks MergeObjects against a reference merge built on
// encoding/json: the result is valid JSON whose members are current's
// (kept where partial lacks them) and partial's.
func FuzzMergeObjects(f *testing.F) {
	f.Add([]byte(`{"topic":"General","owner":"userA"}`), []byte(`{"topic":"Updated Topic","settings":{"max":10}}`))
	f.Add([]byte(`{"a":1,"a":2,"b":3}`), []byte(`{"c":4,"c":5}`))
	f.Add([]byte(`{"\u0061":1}`), []byte(`{"a":2}`))
	f.Add([]byte(`[1]`), []byte(`{"x":null}`))
	f.Add([]byte(``), []byte(`{}`))
	f.Fuzz(func(t *testing.T, current, partial []byte) {
		got, err := MergeObjects(current, partial)
		var p map[string]json.RawMessage
		pOK := comparable(partial) && json.Unmarshal(partial, &p) == nil && p != nil &&
			bytes.HasPrefix(bytes.TrimLeft(partial, " \t\r\n"), []byte("{"))
		if err != nil {
			if pOK {
				t.Fatalf("MergeObjects(%q, %q): %v", current, partial, err)
			}
			return
		}
		if !json.Valid(got) {
			t.Fatalf("MergeObjects(%q, %q) = %q, not JSON", current, partial, got)
		}
		if !pOK || !comparable(current) {
			return
		}
		var c map[string]json.RawMessage
		if !bytes.HasPrefix(bytes.TrimLeft(current, " \t\r\n"), []byte("{")) || json.Unmarshal(current, &c) != nil {
			c = nil
		}
		want := map[string]json.RawMessage{}
		for k, v := range c {
			want[k] = v
		}
		for k, v := range p {
			want[k] = v
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(got, &m); err != nil || len(m) != len(want) {
			t.Fatalf("MergeObjects(%q, %q) = %s, want the members %v", current, partial, got, want)
		}
		for k, v := range want {
			if eq, err := Equal(m[k], v); err != nil || !eq || len(m[k]) == 0 {
				t.Fatalf("MergeObjects(%q, %q) = %s: member %q is %s, want %s", current, partial, got, k, m[k], v)
			}
		}
	})
}

// FuzzValid checks Valid and ObjectIter against encoding/json.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `{"a":1,}`, `[1 2]`, "\"a\x01\"", `"\x"`, `01`, `-`, `{"\u0069d":1}`, ` { } `, `{} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Valid(data) != json.Valid(data) {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, Valid(data), json.Valid(data))
		}
		var it ObjectIter
		if !it.Start(data) {
			return
		}
		n := 0
		for it.Next() {
			k, _ := it.Key()
			v, _ := it.Value()
			if !json.Valid(v) || !json.Valid(append(append([]byte{'"'}, k...), '"')) {
				t.Fatalf("ObjectIter(%q): member %q: %q", data, k, v)
			}
			n++
		}
		if it.End() != json.Valid(data) {
			t.Fatalf("ObjectIter(%q).End() = %v, encoding/json says %v", data, it.End(), json.Valid(data))
		}
	})
}

// FuzzAppendString checks string escaping against encoding/json.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/\b\f\n\r\t\x00\x1f\x7f", "café\xff\xe2\x82", "\u2028<>&", "12345678\"abcdefgh", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkStringEncoding(t, s, AppendString(nil, s))
		// The JavaScript form differs only for invalid UTF-8, and reads
		// back as the same bytes.
		js := appendJSString(nil, s)
		if !json.Valid(js) || utf8.ValidString(s) && !utf8.Valid(js) {
			t.Fatalf("appendJSString(%q) = %s", s, js)
		}
		if back := appendUnescapedJS(nil, js[1:len(js)-1]); string(back) != s {
			t.Fatalf("appendJSString(%q) = %s reads back as %q", s, js, back)
		}
	})
}
