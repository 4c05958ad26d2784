package jsonx

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		// C-record-5 and C-record-6
		{"add key", `{"count":1}`, `{"count":1,"name":"added"}`, `[{"op":"add","path":"/name","value":"added"}]`},
		{"remove key", `{"count":1,"name":"added"}`, `{"name":"added"}`, `[{"op":"remove","path":"/count"}]`},
		{"from empty", `{}`, `{"count":1}`, `[{"op":"add","path":"/count","value":1}]`},
		{"replace", `{"value":"a"}`, `{"value":"b"}`, `[{"op":"replace","path":"/value","value":"b"}]`},
		{"equal", `{"a":[1,{"b":null}]}`, `{"a":[1,{"b":null}]}`, `[]`},
		{"array shrinks from the end", `[1,2,3]`, `[1]`, `[{"op":"remove","path":"/2"},{"op":"remove","path":"/1"}]`},
		{"array grows", `[1]`, `[1,2,3]`, `[{"op":"add","path":"/1","value":2},{"op":"add","path":"/2","value":3}]`},
		{"array by index", `[1,2,3]`, `[0,2]`, `[{"op":"remove","path":"/2"},{"op":"replace","path":"/0","value":0}]`},
		{"nested, old keys last to first", `{"a":{"b":1,"c":[1,2]}}`, `{"a":{"b":2,"c":[1]}}`,
			`[{"op":"remove","path":"/a/c/1"},{"op":"replace","path":"/a/b","value":2}]`},
		{"remove then add", `{"a":1,"b":2}`, `{"b":2,"c":3}`, `[{"op":"remove","path":"/a"},{"op":"add","path":"/c","value":3}]`},
		{"same count, different keys", `{"a":1}`, `{"b":1}`, `[{"op":"remove","path":"/a"},{"op":"add","path":"/b","value":1}]`},
		{"integer keys first", `{"b":1,"2":1,"a":1,"1":1}`, `{}`,
			`[{"op":"remove","path":"/a"},{"op":"remove","path":"/b"},{"op":"remove","path":"/2"},{"op":"remove","path":"/1"}]`},
		{"integer-like but not index", `{"01":1,"4294967295":1,"10":1,"9":1}`, `{}`,
			`[{"op":"remove","path":"/4294967295"},{"op":"remove","path":"/01"},{"op":"remove","path":"/10"},{"op":"remove","path":"/9"}]`},
		{"pointer escaping", `{"a/b":1,"m~n":2}`, `{"a/b":2}`,
			`[{"op":"remove","path":"/m~0n"},{"op":"replace","path":"/a~1b","value":2}]`},
		{"key escaping in JSON", `{}`, `{"q\"\\\n\u0001":true}`, `[{"op":"add","path":"/q\"\\\n\u0001","value":true}]`},
		{"lone surrogate key", `{}`, `{"\ud800":1}`, `[{"op":"add","path":"/\ud800","value":1}]`},
		{"array to object", `{"a":[1]}`, `{"a":{"0":1}}`, `[{"op":"replace","path":"/a","value":{"0":1}}]`},
		{"object to scalar", `{"a":{"b":1}}`, `{"a":"x"}`, `[{"op":"replace","path":"/a","value":"x"}]`},
		{"null to object", `{"a":null}`, `{"a":{}}`, `[{"op":"replace","path":"/a","value":{}}]`},
		{"numbers by value", `{"a":1,"b":1e2,"c":-0}`, `{"a":1.0,"b":100,"c":0}`, `[]`},
		{"strings unescaped", `{"a":"\u0041\/"}`, `{"a":"A/"}`, `[]`},
		{"types differ", `{"a":1,"b":true,"c":null}`, `{"a":"1","b":1,"c":false}`,
			`[{"op":"replace","path":"/c","value":false},{"op":"replace","path":"/b","value":1},{"op":"replace","path":"/a","value":"1"}]`},
		{"duplicate keys: first position, last value", `{"a":1,"b":1}`, `{"a":1,"b":1,"a":2}`, `[{"op":"replace","path":"/a","value":2}]`},
		{"whitespace dropped", `{ "a" : [ 1 , 2 ] }`, " {\"a\":[1,2],\"b\":{ \"c\" :\t[ 1, \" x \" ]\n}} ",
			`[{"op":"add","path":"/b","value":{"c":[1," x "]}}]`},
		{"empty key", `{"":1}`, `{"":2}`, `[{"op":"replace","path":"/","value":2}]`},
		// Where compare would be wrong, a replacement of the whole value.
		{"top-level kinds differ", `{"a":1,"b":2}`, `[1]`, `[{"op":"replace","path":"","value":[1]}]`},
		{"top-level strings", `"initial value"`, `"updated value"`, `[{"op":"replace","path":"","value":"updated value"}]`},
		{"top-level numbers", `1`, `2`, `[{"op":"replace","path":"","value":2}]`},
		{"top-level equal", `1`, `1.0`, `[]`},
		{"to null", `{"a":1}`, `null`, `[{"op":"replace","path":"","value":null}]`},
		{"from null", `null`, `{"a":1}`, `[{"op":"replace","path":"","value":{"a":1}}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Diff([]byte(tc.old), []byte(tc.new))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Diff(%s, %s)\n got %s\nwant %s", tc.old, tc.new, got, tc.want)
			}
			checkApply(t, tc.old, tc.new, got)
		})
	}
}

func checkApply(t testing.TB, old, new string, patch []byte) {
	t.Helper()
	if !json.Valid(patch) {
		t.Fatalf("patch is not JSON: %s", patch)
	}
	res, err := Apply([]byte(old), patch)
	if err != nil {
		t.Fatalf("Apply(%s, %s): %v", old, patch, err)
	}
	if eq, err := Equal(res, []byte(new)); err != nil || !eq {
		t.Fatalf("Apply(%s, %s) = %s, want %s (%v)", old, patch, res, new, err)
	}
}

func TestDiffInvalid(t *testing.T) {
	for _, in := range []string{``, ` `, `{`, `{"a"}`, `{"a":}`, `[1,]`, `{"a":1,}`, `01`, `1.`, `-`, `1e`, `.5`,
		`tru`, `nul`, `"abc`, "\"a\x01\"", `"\x"`, `"\u12"`, `{} {}`, `{"a":1}x`, `[1 2]`, `{1:2}`, `'a'`} {
		if _, err := Diff([]byte(in), []byte(`{}`)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("Diff(%q, {}) = %v, want ErrInvalidJSON", in, err)
		}
		if _, err := Diff([]byte(`{}`), []byte(in)); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("Diff({}, %q) = %v, want ErrInvalidJSON", in, err)
		}
		if json.Valid([]byte(in)) {
			t.Errorf("%q is valid for encoding/json", in)
		}
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	if _, err := Diff([]byte(deep), []byte(`[]`)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep: %v", err)
	}
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := Diff([]byte(ok), []byte(ok)); err != nil {
		t.Errorf("MaxDepth levels: %v", err)
	}
}

// TestApplyRFC6902 runs the examples of RFC 6902 appendix A.
func TestApplyRFC6902(t *testing.T) {
	for _, tc := range []struct{ name, doc, patch, want, err string }{
		{"A.1 add member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"foo":"bar","baz":"qux"}`, ""},
		{"A.2 add element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`, ""},
		{"A.3 remove member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`, ""},
		{"A.4 remove element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`, ""},
		{"A.5 replace", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`, ""},
		{"A.6 move member", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`,
			`[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`,
			`{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`, ""},
		{"A.7 move element", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`,
			`{"foo":["all","cows","eat","grass"]}`, ""},
		{"A.8 test ok", `{"baz":"qux","foo":["a",2,"c"]}`,
			`[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`, ""},
		{"A.9 test fails", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, "", "test failed"},
		{"A.10 add nested", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`,
			`{"foo":"bar","child":{"grandchild":{}}}`, ""},
		{"A.11 extra members ignored", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`,
			`{"foo":"bar","baz":"qux"}`, ""},
		{"A.12 add to missing parent", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, "", "path not found"},
		{"A.14 escapes", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`, `{"/":9,"~1":10}`, ""},
		{"A.15 test string vs number", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":"10"}]`, "", "test failed"},
		{"A.16 add array value", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`,
			`{"foo":["bar",["abc","def"]]}`, ""},
		{"copy", `{"a":{"b":[1]}}`, `[{"op":"copy","from":"/a","path":"/c"},{"op":"add","path":"/c/b/-","value":2}]`,
			`{"a":{"b":[1]},"c":{"b":[1,2]}}`, ""},
		{"replace root", `{"a":1}`, `[{"op":"replace","path":"","value":[true]}]`, `[true]`, ""},
		{"test objects unordered", `{"a":{"x":1,"y":[1.0]}}`, `[{"op":"test","path":"/a","value":{"y":[1],"x":1}}]`, `{"a":{"x":1,"y":[1.0]}}`, ""},
		{"move into child", `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":"/a/c"}]`, "", "own child"},
		{"remove missing", `{"a":1}`, `[{"op":"remove","path":"/b"}]`, "", "path not found"},
		{"index leading zero", `[1,2]`, `[{"op":"remove","path":"/01"}]`, "", "bad array index"},
		{"index out of range", `[1,2]`, `[{"op":"add","path":"/3","value":0}]`, "", "out of range"},
		{"missing value", `{}`, `[{"op":"add","path":"/a"}]`, "", "without value"},
		{"null value is a value", `{}`, `[{"op":"add","path":"/a","value":null}]`, `{"a":null}`, ""},
		{"unknown op", `{}`, `[{"op":"merge","path":"/a","value":1}]`, "", "unknown op"},
		{"bad pointer", `{}`, `[{"op":"add","path":"a","value":1}]`, "", "does not start with /"},
		{"bad escape", `{}`, `[{"op":"add","path":"/~2","value":1}]`, "", "bad escape"},
		{"not an array", `{}`, `{"op":"add"}`, "", "not an array"},
		// Forms Mesh's client meets (fast-json-patch semantics).
		{"add root", `null`, `[{"op":"add","path":"","value":"s"}]`, `"s"`, ""},
		{"remove root leaves null", `{"a":1}`, `[{"op":"remove","path":""}]`, `null`, ""},
		{"test root", `{"a":[1]}`, `[{"op":"test","path":"","value":{"a":[1.0]}}]`, `{"a":[1]}`, ""},
		{"copy is deep", `{"a":{"b":1}}`, `[{"op":"copy","from":"/a","path":"/c"},{"op":"replace","path":"/c/b","value":2}]`,
			`{"a":{"b":1},"c":{"b":2}}`, ""},
		{"move onto itself", `{"a":1}`, `[{"op":"move","from":"/a","path":"/a"}]`, `{"a":1}`, ""},
		{"move to root", `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":""}]`, `{"b":1}`, ""},
		{"append at len", `[1,2]`, `[{"op":"add","path":"/2","value":0}]`, `[1,2,0]`, ""},
		{"dash only for add", `[1,2]`, `[{"op":"remove","path":"/-"}]`, "", "bad array index"},
		{"replace missing", `{"a":1}`, `[{"op":"replace","path":"/b","value":1}]`, "", "path not found"},
		{"descend into a scalar", `{"a":1}`, `[{"op":"add","path":"/a/b","value":1}]`, "", "in a scalar"},
		{"numbers by value", `{"a":1.0}`, `[{"op":"test","path":"/a","value":1}]`, `{"a":1.0}`, ""},
		{"test is type-strict", `{"a":1}`, `[{"op":"test","path":"/a","value":"1"}]`, "", "test failed"},
		{"test true is not \"true\"", `{"a":true}`, `[{"op":"test","path":"/a","value":"true"}]`, "", "test failed"},
		{"big numbers kept", `{"a":12345678901234567890123}`, `[{"op":"add","path":"/b","value":1e400}]`,
			`{"a":12345678901234567890123,"b":1e400}`, ""},
		{"html not escaped", `{}`, `[{"op":"add","path":"/h","value":"<&>"}]`, `{"h":"<&>"}`, ""},
		{"strings kept as written", `{}`, `[{"op":"add","path":"/s","value":"\u0041\/"}]`, `{"s":"\u0041\/"}`, ""},
		{"keys escaped as JSON.stringify does", `{"\u0061\n":1}`, `[{"op":"add","path":"/\u2028","value":2}]`,
			"{\"a\\n\":1,\"\u2028\":2}", ""},
		{"lone surrogate key kept", `{"\ud800":1}`, `[{"op":"replace","path":"/\ud800","value":2}]`, `{"\ud800":2}`, ""},
		{"integer keys first, ascending", `{"b":1,"10":1,"a":1,"2":1}`, `[{"op":"add","path":"/1","value":0},{"op":"add","path":"/c","value":0}]`,
			`{"1":0,"2":1,"10":1,"b":1,"a":1,"c":0}`, ""},
		{"duplicate keys: first position, last value", `{"a":1,"b":2,"a":3}`, `[{"op":"add","path":"/c","value":4}]`,
			`{"a":3,"b":2,"c":4}`, ""},
		{"whitespace dropped", " { \"a\" : [ 1 , { } ] } ", `[]`, `{"a":[1,{}]}`, ""},
		{"growing a value leaves its neighbours", `{"a":[1],"b":[2],"c":{"x":1},"d":{"y":2}}`,
			`[{"op":"add","path":"/a/-","value":3},{"op":"add","path":"/c/z","value":4},{"op":"add","path":"/a/0","value":0}]`,
			`{"a":[0,1,3],"b":[2],"c":{"x":1,"z":4},"d":{"y":2}}`, ""},
		{"invalid document", `{"a":}`, `[]`, "", "invalid JSON"},
		{"patch not JSON", `{}`, `[{"op":"add"`, "", "invalid patch"},
		{"op not an object", `{}`, `[1]`, "", "not an object"},
		{"op not a string", `{}`, `[{"op":1,"path":"/a"}]`, "", "missing op"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply([]byte(tc.doc), []byte(tc.patch))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %s, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// TestDiffMatchesFastJSONPatch replays cases whose expected patches were
// computed by fast-json-patch 3.1.1's compare (testdata/compare.json; see
// testdata/compare.js to regenerate).
func TestDiffMatchesFastJSONPatch(t *testing.T) {
	b, err := os.ReadFile("testdata/compare.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Old, New, Patch json.RawMessage
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 406 { // 400 random pairs and compare.js's 6
		t.Fatalf("%d cases, want 406", len(cases))
	}
	for i, tc := range cases {
		got, err := Diff(tc.Old, tc.New)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !samePatch(got, tc.Patch) {
			t.Fatalf("case %d: Diff(%s, %s)\n got %s\nwant %s", i, tc.Old, tc.New, got, tc.Patch)
		}
	}
}

// samePatch compares two patches operation by operation: op and path
// exactly, values as JSON values (fast-json-patch re-serializes them, with
// integer keys first; Diff copies them).
func samePatch(a, b []byte) bool {
	var x, y []map[string]json.RawMessage
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil || len(x) != len(y) {
		return false
	}
	for i := range x {
		if len(x[i]) != len(y[i]) || string(x[i]["op"]) != string(y[i]["op"]) || string(x[i]["path"]) != string(y[i]["path"]) {
			return false
		}
		if v, ok := x[i]["value"]; ok {
			if eq, err := Equal(v, y[i]["value"]); err != nil || !eq {
				return false
			}
		}
	}
	return true
}

// TestWriteCompareCases writes random pairs for testdata/compare.js when
// JSONPATCH_WRITE_PAIRS names a file.
func TestWriteCompareCases(t *testing.T) {
	out := os.Getenv("JSONPATCH_WRITE_PAIRS")
	if out == "" {
		t.Skip("set JSONPATCH_WRITE_PAIRS=file to write pairs for testdata/compare.js")
	}
	r := rand.New(rand.NewPCG(7, 11))
	var pairs []map[string]json.RawMessage
	for range 400 {
		old := randomContainer(r, 4)
		pairs = append(pairs, map[string]json.RawMessage{"old": old, "new": mutate(r, old, 4)})
	}
	b, _ := json.Marshal(pairs)
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiffApplyRandom checks Apply(old, Diff(old, new)) == new on random
// pairs of related and unrelated values.
func TestDiffApplyRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		old := randomJSON(r, 4)
		var new []byte
		if i%3 == 0 {
			new = randomJSON(r, 4)
		} else {
			new = mutate(r, old, 4)
		}
		patch, err := Diff(old, new)
		if err != nil {
			t.Fatalf("Diff(%s, %s): %v", old, new, err)
		}
		checkApply(t, string(old), string(new), patch)
		again, _ := Diff(old, new)
		if string(again) != string(patch) {
			t.Fatalf("Diff is not deterministic: %s vs %s", patch, again)
		}
		if eq, err := Equal(old, new); err != nil || eq != (string(patch) == "[]") {
			t.Fatalf("Diff(%s, %s) = %s, Equal = %v, %v", old, new, patch, eq, err)
		}
	}
}

// Random JSON: canonical (as JSON.stringify writes it) so that the pairs
// also serve testdata/compare.js. Keys include pointer escapes and
// integer-like names.
var keys = []string{"a", "b", "c", "name", "count", "0", "1", "10", "2", "~", "/", "a/b", "m~n", "", "é", "01"}

func randomJSON(r *rand.Rand, depth int) []byte {
	switch r.IntN(8) {
	case 0:
		return []byte("null")
	case 1:
		return []byte(strconv.FormatBool(r.IntN(2) == 0))
	case 2:
		return []byte(strconv.Itoa(r.IntN(5)))
	case 3:
		return []byte(strconv.FormatFloat(float64(r.IntN(1000))/8, 'f', -1, 64))
	case 4:
		b, _ := json.Marshal([]string{"x", "y", "hello", "", "é\n\"", "\u2028"}[r.IntN(6)])
		return b
	}
	if depth == 0 {
		return []byte(`"leaf"`)
	}
	return randomContainer(r, depth)
}

func randomContainer(r *rand.Rand, depth int) []byte {
	n := r.IntN(5)
	var b strings.Builder
	if r.IntN(3) == 0 {
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(randomJSON(r, depth-1))
		}
		b.WriteByte(']')
		return []byte(b.String())
	}
	b.WriteByte('{')
	seen := map[string]bool{}
	first := true
	for range n {
		k := keys[r.IntN(len(keys))]
		if seen[k] {
			continue
		}
		seen[k] = true
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(randomJSON(r, depth-1))
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// mutate returns a value derived from v: members and elements changed,
// dropped or added, recursively, so that diffs are small and nested.
func mutate(r *rand.Rand, v []byte, depth int) []byte {
	var x any
	d := json.NewDecoder(strings.NewReader(string(v)))
	d.UseNumber()
	if d.Decode(&x) != nil {
		panic(fmt.Sprintf("bad generated JSON %s", v))
	}
	switch y := x.(type) {
	case []any:
		var out []json.RawMessage
		for _, e := range y {
			eb, _ := json.Marshal(e)
			switch r.IntN(6) {
			case 0: // drop
			case 1:
				out = append(out, randomJSON(r, depth-1))
			case 2:
				out = append(out, mutate(r, eb, depth-1))
			default:
				out = append(out, eb)
			}
		}
		if r.IntN(3) == 0 {
			out = append(out, randomJSON(r, depth-1))
		}
		return marshalArray(out)
	case map[string]any:
		members := orderedMembers(v)
		var b strings.Builder
		b.WriteByte('{')
		first := true
		write := func(k string, val []byte) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			b.Write(val)
		}
		seen := map[string]bool{}
		for _, m := range members {
			seen[m.k] = true
			switch r.IntN(6) {
			case 0:
			case 1:
				write(m.k, randomJSON(r, depth-1))
			case 2:
				write(m.k, mutate(r, m.v, depth-1))
			default:
				write(m.k, m.v)
			}
		}
		if r.IntN(2) == 0 {
			if k := keys[r.IntN(len(keys))]; !seen[k] {
				write(k, randomJSON(r, depth-1))
			}
		}
		b.WriteByte('}')
		return []byte(b.String())
	}
	if r.IntN(2) == 0 {
		return v
	}
	return randomJSON(r, depth)
}

func marshalArray(els []json.RawMessage) []byte {
	if els == nil {
		return []byte("[]")
	}
	b, _ := json.Marshal(els)
	return b
}

type kv struct {
	k string
	v []byte
}

func orderedMembers(obj []byte) []kv {
	t := getTree()
	defer putTree(t)
	if err := t.parse(obj); err != nil || t.nodes[0].kind != kindObject {
		panic("not an object")
	}
	// Object.keys order, which is how JSON.parse would see them anyway.
	var out []kv
	for _, c := range t.children(0) {
		out = append(out, kv{strings.Clone(t.nodes[c].key), append([]byte(nil), t.nodes[c].raw...)})
	}
	return out
}
