package coord_test

import (
	"errors"
	"testing"

	"github.com/meshfast/meshfast/coord"
)

func TestJSONEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{``, ``, true},
		{``, `null`, true},
		{` null `, ``, true},
		{`{}`, `null`, false},
		{`{}`, `[]`, false},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, true},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
		{`{"a":1,"a":2}`, `{"a":2}`, true}, // last duplicate wins
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`-0`, `0`, true},
		{`1e400`, `2e400`, true}, // both +Inf, as in JavaScript
		{`5`, `6`, false},
		{`true`, `false`, false},
		{`"a"`, `"\u0061"`, true},
		{`"1"`, `1`, false},
		{`[1,2]`, `[2,1]`, false},
		{`[1,[2,{"x":"y"}]]`, ` [ 1 , [ 2 , { "x" : "y" } ] ] `, true},
		{`{"n":{"a":[1,{"b":true}]}}`, `{"n":{"a":[1,{"b":false}]}}`, false},
	} {
		got, err := coord.JSONEqual([]byte(tc.a), []byte(tc.b))
		if err != nil || got != tc.want {
			t.Errorf("JSONEqual(%s, %s) = %v, %v; want %v", tc.a, tc.b, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{`, `{} {}`, `nul`, `[1,]`, `"x`} {
		if _, err := coord.JSONEqual([]byte(`{}`), []byte(bad)); !errors.Is(err, coord.ErrInvalidJSON) {
			t.Errorf("JSONEqual({}, %s) error = %v", bad, err)
		}
	}
}

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
		{`{"a":1}`, `{}`, `{"a":1}`},
		{`{}`, `{}`, `{}`},
		{`{"s":{"x":1,"y":2},"k":true}`, `{"s":{"x":3}}`, `{"s":{"x":3},"k":true}`},
		{`{"a":1,"a":2,"b":3}`, `{"c":4,"c":5}`, `{"a":2,"b":3,"c":5}`},
		{`{"\u0061":1}`, `{"a":2}`, `{"a":2}`},
		{`{"<&>":1}`, `{"q\"":[1, 2]}`, `{"<&>":1,"q\"":[1, 2]}`},
		{` { "a" : 1 } `, ` { "b" : null } `, `{"a":1,"b":null}`},
	} {
		got, err := coord.MergeObjects([]byte(tc.cur), []byte(tc.partial))
		if err != nil || string(got) != tc.want {
			t.Errorf("MergeObjects(%s, %s) = %s, %v; want %s", tc.cur, tc.partial, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		partial string
		want    error
	}{
		{`[1]`, coord.ErrNotObject},
		{`"x"`, coord.ErrNotObject},
		{`null`, coord.ErrNotObject},
		{`3`, coord.ErrNotObject},
		{``, coord.ErrInvalidJSON},
		{`{"a":}`, coord.ErrInvalidJSON},
		{`{"a":1} x`, coord.ErrInvalidJSON},
		{`[1,`, coord.ErrInvalidJSON},
	} {
		if _, err := coord.MergeObjects([]byte(`{}`), []byte(tc.partial)); !errors.Is(err, tc.want) {
			t.Errorf("MergeObjects({}, %s) error = %v, want %v", tc.partial, err, tc.want)
		}
	}
}

func TestTopics(t *testing.T) {
	if got := coord.NodeTopic("n1"); got != "mesh:pubsub:n1" {
		t.Errorf("NodeTopic = %q", got)
	}
	if got := coord.PresenceTopic("lobby"); got != "mesh:presence:updates:lobby" {
		t.Errorf("PresenceTopic = %q", got)
	}
	if coord.ExpiredPresence.String() != "presence" || coord.ExpiredState.String() != "state" {
		t.Errorf("ExpiryKind strings")
	}
}
