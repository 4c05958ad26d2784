package client

import (
	"testing"
)

// Cases from RFC 6902 appendix A, plus the forms Mesh's server emits.
func TestApplyPatch(t *testing.T) {
	cases := []struct {
		name, doc, patch, want string // want "" means an error
	}{
		{"A.1 add member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`},
		{"A.2 add array element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`},
		{"A.3 remove member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`},
		{"A.4 remove element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`},
		{"A.5 replace", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`},
		{"A.6 move member", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`, `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`},
		{"A.7 move element", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`},
		{"A.8 test ok", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`},
		{"A.9 test fails", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, ``},
		{"A.10 add nested", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"child":{"grandchild":{}},"foo":"bar"}`},
		{"A.11 unknown member ignored", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`, `{"baz":"qux","foo":"bar"}`},
		{"A.12 add to nonexistent target", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, ``},
		{"A.14 escapes", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`, `{"/":9,"~1":10}`},
		{"A.15 string is not number", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":"10"}]`, ``},
		{"A.16 add array value", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`},
		{"copy is deep", `{"a":{"b":1}}`, `[{"op":"copy","from":"/a","path":"/c"},{"op":"replace","path":"/c/b","value":2}]`, `{"a":{"b":1},"c":{"b":2}}`},
		{"replace root", `{"a":1}`, `[{"op":"replace","path":"","value":[1]}]`, `[1]`},
		{"add root", `null`, `[{"op":"add","path":"","value":"s"}]`, `"s"`},
		{"remove root", `{"a":1}`, `[{"op":"remove","path":""}]`, `null`},
		{"null value", `{"a":1}`, `[{"op":"replace","path":"/a","value":null}]`, `{"a":null}`},
		{"missing value", `{"a":1}`, `[{"op":"replace","path":"/a"}]`, ``},
		{"replace missing", `{"a":1}`, `[{"op":"replace","path":"/b","value":1}]`, ``},
		{"remove missing", `{"a":1}`, `[{"op":"remove","path":"/b"}]`, ``},
		{"index out of range", `[1,2]`, `[{"op":"add","path":"/3","value":0}]`, ``},
		{"append at len", `[1,2]`, `[{"op":"add","path":"/2","value":0}]`, `[1,2,0]`},
		{"leading zero index", `[1,2]`, `[{"op":"remove","path":"/01"}]`, ``},
		{"dash only for add", `[1,2]`, `[{"op":"remove","path":"/-"}]`, ``},
		{"move into child", `{"a":{"b":{}}}`, `[{"op":"move","from":"/a","path":"/a/b/c"}]`, ``},
		{"move onto itself", `{"a":1}`, `[{"op":"move","from":"/a","path":"/a"}]`, `{"a":1}`},
		{"bad pointer", `{"a":1}`, `[{"op":"remove","path":"a"}]`, ``},
		{"bad escape", `{"a":1}`, `[{"op":"remove","path":"/~2"}]`, ``},
		{"unknown op", `{"a":1}`, `[{"op":"frob","path":"/a"}]`, ``},
		{"not an array", `{"a":1}`, `{"op":"remove","path":"/a"}`, ``},
		{"descend scalar", `{"a":1}`, `[{"op":"add","path":"/a/b","value":1}]`, ``},
		{"numbers by value", `{"a":1.0}`, `[{"op":"test","path":"/a","value":1}]`, `{"a":1.0}`},
		{"big numbers kept", `{"a":12345678901234567890123}`, `[{"op":"add","path":"/b","value":1e400}]`, `{"a":12345678901234567890123,"b":1e400}`},
		{"html not escaped", `{}`, `[{"op":"add","path":"/h","value":"<&>"}]`, `{"h":"<&>"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := decodeJSON([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			out, err := applyPatch(doc, []byte(tc.patch))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("applied, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			got, err := encodeJSON(out)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// FuzzApplyPatch: the applier never panics, and what it produces encodes.
func FuzzApplyPatch(f *testing.F) {
	f.Add(`{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`)
	f.Add(`{"foo":{"bar":"baz","waldo":"fred"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux"}]`)
	f.Add(`[1,2,3]`, `[{"op":"remove","path":"/-"},{"op":"copy","from":"/0","path":"/0"}]`)
	f.Add(`null`, `[{"op":"test","path":"","value":null}]`)
	f.Add(`{"a":1e999999999}`, `[{"op":"test","path":"/a","value":1e999999998}]`)
	f.Add(`{"~":{"/":[]}}`, `[{"op":"add","path":"/~0/~1/0","value":{}}]`)
	f.Fuzz(func(t *testing.T, doc, patch string) {
		d, err := decodeJSON([]byte(doc))
		if err != nil {
			return
		}
		out, err := applyPatch(d, []byte(patch))
		if err != nil {
			return
		}
		if _, err := encodeJSON(out); err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
	})
}
