package jsonx

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestEqual pins JavaScript equality of JSON values: what coord's old
// decode-both comparison called equal stays equal (numbers by value, key
// order ignored, the last duplicate wins), and types are never mixed.
func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{``, ``, true},
		{``, `null`, true},
		{` null `, ``, true},
		{`{}`, `null`, false},
		{`{}`, `[]`, false},
		{`[]`, `[ ]`, true},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, true},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`{"a":1,"b":null}`, `{"a":1,"c":null}`, false},
		{`{"a":1,"a":2}`, `{"a":2}`, true}, // last duplicate wins
		{`{"a":1,"a":2}`, `{"a":1}`, false},
		{`{"a":{"x":1},"a":{"x":2}}`, `{"a":{"x":2}}`, true},
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`100`, `1E2`, true},
		{`-0`, `0`, true},
		{`0.1`, `0.10000000000000001`, true}, // one float64
		{`9007199254740993`, `9007199254740992`, true},
		{`1e400`, `2e400`, true}, // both +Inf, as in JavaScript
		{`1e400`, `-1e400`, false},
		{`1e-400`, `0`, true},
		{`5`, `6`, false},
		{`true`, `false`, false},
		{`true`, `true`, true},
		{`"a"`, `"\u0061"`, true},
		{`"\u00e9"`, `"é"`, true},
		{`"\ud800"`, `"\ufffd"`, false}, // JavaScript strings are UTF-16
		{`"1"`, `1`, false},
		{`{"id":1}`, `{"id":"1"}`, false},
		{`true`, `"true"`, false},
		{`null`, `"null"`, false},
		{`null`, `false`, false},
		{`0`, `false`, false},
		{`""`, `null`, false},
		{`[1,2]`, `[2,1]`, false},
		{`[1,2]`, `[1,2,3]`, false},
		{`[1,[2,{"x":"y"}]]`, ` [ 1 , [ 2 , { "x" : "y" } ] ] `, true},
		{`{"n":{"a":[1,{"b":true}]}}`, `{"n":{"a":[1,{"b":false}]}}`, false},
		{`{"a":[1]}`, `{"a":{"0":1}}`, false},
		{`{"1":1,"a":2}`, `{"a":2,"1":1}`, true},
		{`{"\u0061":1}`, `{"a":1}`, true},
		{`{"k\u0065y":"v\u00e9","n":[1.0,"\ud83d\ude00"]}`, `{"n":[1,"😀"],"key":"vé"}`, true},
		{`{"k\u0065y":"v\u00e9"}`, `{"key":"ve"}`, false},
	} {
		got, err := Equal([]byte(tc.a), []byte(tc.b))
		if err != nil || got != tc.want {
			t.Errorf("Equal(%s, %s) = %v, %v; want %v", tc.a, tc.b, got, err, tc.want)
		}
		if rev, err := Equal([]byte(tc.b), []byte(tc.a)); err != nil || rev != tc.want {
			t.Errorf("Equal(%s, %s) = %v, %v; want %v", tc.b, tc.a, rev, err, tc.want)
		}
	}
	// Large objects (looked up through an index) in another order.
	var a, b strings.Builder
	a.WriteString("{")
	b.WriteString("{")
	for i := range 40 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		a.WriteString(`"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i%10))
		b.WriteString(`"k` + strconv.Itoa(39-i) + `":` + strconv.Itoa((39-i)%10))
	}
	a.WriteString("}")
	b.WriteString("}")
	if eq, err := Equal([]byte(a.String()), []byte(b.String())); err != nil || !eq {
		t.Errorf("large reordered objects: %v, %v", eq, err)
	}
	if eq, err := Equal([]byte(a.String()), []byte(strings.Replace(b.String(), `"k0":0`, `"k0":1`, 1))); err != nil || eq {
		t.Errorf("large objects differing in one member: %v, %v", eq, err)
	}
}

func TestEqualInvalid(t *testing.T) {
	for _, bad := range []string{`{`, `{} {}`, `nul`, `[1,]`, `"x`, `01`, `{"a"}`, "\"\x01\""} {
		for _, pair := range [][2]string{{`{}`, bad}, {bad, `{}`}, {bad, bad}} {
			if _, err := Equal([]byte(pair[0]), []byte(pair[1])); !errors.Is(err, ErrInvalidJSON) {
				t.Errorf("Equal(%s, %s) error = %v", pair[0], pair[1], err)
			}
		}
	}
	deep := []byte(strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1))
	if _, err := Equal(deep, deep); !errors.Is(err, ErrTooDeep) || !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("too deep: %v", err)
	}
}
