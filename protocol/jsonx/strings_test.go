package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	tests := []struct {
		in, want, js string // js: appendJSString's output when it differs
	}{
		{"", `""`, ""},
		{"mesh/join-room", `"mesh/join-room"`, ""},
		{"exactly8", `"exactly8"`, ""},
		{`"quoted"`, `"\"quoted\""`, ""},
		{`back\slash`, `"back\\slash"`, ""},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`, ""},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`, ""},
		{"</script>&", `"</script>&"`, ""},
		{"\u2028\u2029", "\"\u2028\u2029\"", ""},
		{"café ☕ 😀", `"café ☕ 😀"`, ""},
		{"bad\xffutf8", `"bad\ufffdutf8"`, "\"bad\xffutf8\""},
		{"\xe2\x82", `"\ufffd\ufffd"`, "\"\xe2\x82\""},
		// Invalid UTF-8 is passed through in the form for JavaScript
		// values, except a surrogate in WTF-8, a lone surrogate there.
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`, `"\ud800"`},
		{"a\xed\xbf\xbfb", `"a\ufffd\ufffd\ufffdb"`, `"a\udfffb"`},
		{"\xed\x9f\xbf", "\"\xed\x9f\xbf\"", ""}, // U+D7FF is not a surrogate
		{"\xed\xa0", `"\ufffd\ufffd"`, "\"\xed\xa0\""},
		{"12345678\"12345678", `"12345678\"12345678"`, ""},
		{"1234567\xc3\xa9", `"1234567é"`, ""},
	}
	for _, tt := range tests {
		got := AppendString([]byte("x"), tt.in)
		if string(got) != "x"+tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got[1:], tt.want)
		}
		checkStringEncoding(t, tt.in, got[1:])
		js := tt.js
		if js == "" {
			js = tt.want
		}
		if got := appendJSString(nil, tt.in); string(got) != js {
			t.Errorf("appendJSString(%q) = %s, want %s", tt.in, got, js)
		}
	}
}

// checkStringEncoding checks AppendString's output for s against
// encoding/json: same bytes once encoding/json's unconditional U+2028/U+2029
// escapes are undone, valid UTF-8, and decoding back to s (UTF-8 repaired).
func checkStringEncoding(t testing.TB, s string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(buf.String(), "\n")
	want = strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(want)
	if string(got) != want {
		t.Fatalf("AppendString(%q) = %s, encoding/json says %s", s, got, want)
	}
	if !utf8.Valid(got) {
		t.Fatalf("AppendString(%q) is not valid UTF-8", s)
	}
	var back string
	if err := json.Unmarshal(got, &back); err != nil || back != strings.ToValidUTF8(s, "\ufffd") && back != string([]rune(s)) {
		t.Fatalf("AppendString(%q) decodes to %q, %v", s, back, err)
	}
}

func TestAppendUnescaped(t *testing.T) {
	for _, tt := range []struct{ in, go_, js string }{
		{``, ``, ``},
		{`plain`, `plain`, `plain`},
		{`\"\\\/\b\f\n\r\t`, "\"\\/\b\f\n\r\t", "\"\\/\b\f\n\r\t"},
		{`\u0041\u00e9\u20ac`, "Aé€", "Aé€"},
		{`\ud83d\ude00`, "😀", "😀"},
		{`\uD83D\uDE00x`, "😀x", "😀x"},
		{`a\ud800b`, "a\ufffdb", "a\xed\xa0\x80b"},
		{`\udc00`, "\ufffd", "\xed\xb0\x80"},
		{`\ud800\u0041`, "\ufffdA", "\xed\xa0\x80A"},
		{`\ud800\ud800`, "\ufffd\ufffd", "\xed\xa0\x80\xed\xa0\x80"},
		{"raw\xffbytes", "raw\xffbytes", "raw\xffbytes"},
	} {
		if got := AppendUnescaped([]byte("x"), []byte(tt.in)); string(got) != "x"+tt.go_ {
			t.Errorf("AppendUnescaped(%s) = %q, want %q", tt.in, got[1:], tt.go_)
		}
		if got := appendUnescapedJS(nil, []byte(tt.in)); string(got) != tt.js {
			t.Errorf("appendUnescapedJS(%s) = %q, want %q", tt.in, got, tt.js)
		}
		if !utf8.ValidString(tt.in) {
			continue
		}
		// encoding/json agrees with the Go form.
		var ref string
		if err := json.Unmarshal([]byte(`"`+tt.in+`"`), &ref); err != nil || ref != tt.go_ {
			t.Errorf("encoding/json reads %s as %q (%v), want %q", tt.in, ref, err, tt.go_)
		}
	}
}

func TestSameString(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{`"a"`, `"a"`, true},
		{`"a"`, `"\u0061"`, true},
		{`"\u0061bc"`, `"a\u0062c"`, true},
		{`"\/"`, `"/"`, true},
		{`"😀"`, `"\ud83d\ude00"`, true},
		{`"ab"`, `"a"`, false},
		{`"a"`, `"\u0061b"`, false},
		{`"\u0061"`, `"\u0062"`, false},
		{`"\ud800"`, `"\ufffd"`, false},
		{`"\ud800"`, `"\udc00"`, false},
		{`"\ud800"`, `"\uD800"`, true},
		{`""`, `"\u0000"`, false},
		{`"` + strings.Repeat("x", 100) + `\n"`, `"` + strings.Repeat("x", 100) + `\u000a"`, true},
	} {
		a, b := []byte(tt.a), []byte(tt.b)
		aesc, besc := bytes.IndexByte(a, '\\') >= 0, bytes.IndexByte(b, '\\') >= 0
		if got := sameString(a, aesc, b, besc); got != tt.want {
			t.Errorf("sameString(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := sameString(b, besc, a, aesc); got != tt.want {
			t.Errorf("sameString(%s, %s) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestObjectIter(t *testing.T) {
	type m struct{ key, value string }
	for _, tt := range []struct {
		in      string
		start   bool
		members []m
		end     bool
	}{
		{` { } `, true, nil, true},
		{`{"a":1,"b":"x\n","a":[1, {"c":2}]}`, true, []m{{"a", "1"}, {"b", `"x\n"`}, {"a", `[1, {"c":2}]`}}, true},
		{`{"\u0069d" : true }`, true, []m{{`\u0069d`, "true"}}, true},
		{`{"a":1} x`, true, []m{{"a", "1"}}, false},
		{`{"a":1,}`, true, []m{{"a", "1"}}, false},
		{`{"a" 1}`, true, nil, false},
		{`{`, true, nil, false},
		{`[1]`, false, nil, false},
		{``, false, nil, false},
	} {
		var it ObjectIter
		if it.Start([]byte(tt.in)) != tt.start {
			t.Errorf("Start(%q) = %v", tt.in, !tt.start)
			continue
		}
		var got []m
		for it.Next() {
			k, kesc := it.Key()
			v, vesc := it.Value()
			if kesc != bytes.Contains(k, []byte(`\`)) || vesc != (v[0] == '"' && bytes.Contains(v, []byte(`\`))) {
				t.Errorf("%q: escape flags of %s:%s", tt.in, k, v)
			}
			got = append(got, m{string(k), string(v)})
		}
		if len(got) != len(tt.members) {
			t.Errorf("%q: members %q, want %q", tt.in, got, tt.members)
			continue
		}
		for i := range got {
			if got[i] != tt.members[i] {
				t.Errorf("%q: members %q, want %q", tt.in, got, tt.members)
			}
		}
		if it.End() != tt.end {
			t.Errorf("%q: End() = %v, want %v", tt.in, it.End(), tt.end)
		}
	}
}
