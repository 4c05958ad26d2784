package jsonx

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestMergeObjects(t *testing.T) {
	for _, tc := range []struct {
		cur, partial, want string
	}{
		{`{"topic":"General","owner":"userA"}`, `{"topic":"Updated Topic","settings":{"max":10}}`,
			`{"topic":"Updated Topic","owner":"userA","settings":{"max":10}}`},
		{``, `{"a":1}`, `{"a":1}`},
		{`null`, `{"a":1}`, `{"a":1}`},
		{`[1,2]`, `{"a":1}`, `{"a":1}`},
		{`"str"`, `{"a":1}`, `{"a":1}`},
		{`{broken`, `{"a":1}`, `{"a":1}`},
		{`{"a":1} x`, `{"b":1}`, `{"b":1}`},
		{`{"a":1}`, `{}`, `{"a":1}`},
		{`{}`, `{}`, `{}`},
		{`{"s":{"x":1,"y":2},"k":true}`, `{"s":{"x":3}}`, `{"s":{"x":3},"k":true}`},
		{`{"a":1,"a":2,"b":3}`, `{"c":4,"c":5}`, `{"a":2,"b":3,"c":5}`},
		{`{"\u0061":1}`, `{"a":2}`, `{"a":2}`},
		{`{"a\u2028":1}`, `{"b":2}`, "{\"a\u2028\":1,\"b\":2}"},
		{`{"\ud800":1}`, `{"\ud800":2,"\udc00":3}`, `{"\ud800":2,"\udc00":3}`},
		{`{"<&>":1}`, `{"q\"":[1, 2]}`, `{"<&>":1,"q\"":[1, 2]}`},
		{` { "a" : 1 } `, ` { "b" : null } `, `{"a":1,"b":null}`},
	} {
		got, err := MergeObjects([]byte(tc.cur), []byte(tc.partial))
		if err != nil || string(got) != tc.want {
			t.Errorf("MergeObjects(%s, %s) = %s, %v; want %s", tc.cur, tc.partial, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		partial string
		want    error
	}{
		{`[1]`, ErrNotObject},
		{`"x"`, ErrNotObject},
		{`null`, ErrNotObject},
		{`3`, ErrNotObject},
		{``, ErrInvalidJSON},
		{`{"a":}`, ErrInvalidJSON},
		{`{"a":1} x`, ErrInvalidJSON},
		{`[1,`, ErrInvalidJSON},
	} {
		if _, err := MergeObjects([]byte(`{}`), []byte(tc.partial)); !errors.Is(err, tc.want) {
			t.Errorf("MergeObjects({}, %s) error = %v, want %v", tc.partial, err, tc.want)
		}
	}
}

// TestMergeObjectsLarge goes past smallObject members on both sides, where
// lookups go through an index.
func TestMergeObjectsLarge(t *testing.T) {
	obj := func(from, to int, v string) string {
		var b strings.Builder
		b.WriteByte('{')
		for i := from; i < to; i++ {
			if i > from {
				b.WriteByte(',')
			}
			b.WriteString(`"k` + strconv.Itoa(i) + `":` + v)
		}
		b.WriteByte('}')
		return b.String()
	}
	got, err := MergeObjects([]byte(obj(0, 40, "1")), []byte(obj(20, 60, "2")))
	want := strings.TrimSuffix(obj(0, 20, "1"), "}") + "," + strings.TrimPrefix(obj(20, 60, "2"), "{")
	if err != nil || string(got) != want {
		t.Fatalf("MergeObjects = %s, %v\nwant %s", got, err, want)
	}
}
