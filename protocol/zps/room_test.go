package zps

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRoom(t *testing.T) {
	for _, tc := range []struct {
		room      string
		scope, id string
		ok        bool
	}{
		{"chat:123", "chat", "123", true},
		{"order:order_123", "order", "order_123", true},
		{"a:b:c:d", "a", "b:c:d", true},
		{"Z9._-x:1", "Z9._-x", "1", true},
		{strings.Repeat("s", 64) + ":1", strings.Repeat("s", 64), "1", true},
		{"chat:" + strings.Repeat("r", 256), "chat", strings.Repeat("r", 256), true},
		{"chat:ünï code", "chat", "ünï code", true},
		{strings.Repeat("s", 65) + ":1", "", "", false},
		{"chat:" + strings.Repeat("r", 257), "", "", false},
		{"chat", "", "", false},
		{"chat:", "", "", false},
		{":1", "", "", false},
		{"_chat:1", "", "", false},
		{".chat:1", "", "", false},
		{"ch at:1", "", "", false},
		{"chat:*", "", "", false},
		{"chat:a*", "", "", false},
		{"*", "", "", false},
		{"chat:a\nb", "", "", false},
		{"chat:a\x7f", "", "", false},
		{"chat:\xff", "", "", false},
	} {
		scope, id, err := ParseRoom(tc.room)
		if tc.ok {
			if err != nil || scope != tc.scope || id != tc.id {
				t.Errorf("ParseRoom(%q) = %q, %q, %v; want %q, %q", tc.room, scope, id, err, tc.scope, tc.id)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRoom) {
			t.Errorf("ParseRoom(%q) err = %v, want ErrInvalidRoom", tc.room, err)
		}
	}
}

func TestRoom(t *testing.T) {
	if r, err := Room("chat", "123"); err != nil || r != "chat:123" {
		t.Fatalf("Room = %q, %v", r, err)
	}
	if r, err := Room("payment", "a:b"); err != nil || r != "payment:a:b" {
		t.Fatalf("Room = %q, %v", r, err)
	}
	for _, p := range [][2]string{{"", "1"}, {"chat", ""}, {"ch:at", "1"}, {"chat", "*"}} {
		if _, err := Room(p[0], p[1]); !errors.Is(err, ErrInvalidRoom) {
			t.Errorf("Room(%q, %q) err = %v", p[0], p[1], err)
		}
	}
}

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct {
		p        string
		scope    string
		wildcard bool
		err      error
	}{
		{"chat:*", "chat", true, nil},
		{"chat:1", "chat", false, nil},
		{"chat:1:*x", "", false, ErrInvalidRoom},
		{"*", "", false, ErrInvalidPattern},
		{"*:*", "", false, ErrInvalidPattern},
		{":*", "", false, ErrInvalidPattern},
		{"chat:**", "", false, ErrInvalidRoom},
		{"chat", "", false, ErrInvalidRoom},
	} {
		scope, wc, err := ParsePattern(tc.p)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ParsePattern(%q) err = %v, want %v", tc.p, err, tc.err)
			}
			continue
		}
		if err != nil || scope != tc.scope || wc != tc.wildcard {
			t.Errorf("ParsePattern(%q) = %q, %v, %v", tc.p, scope, wc, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	if err := CheckName("event id", "txn_9843A9XK21:created"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", strings.Repeat("x", MaxName+1), "a\tb", "\xfe"} {
		if err := CheckName("event id", s); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CheckName(%q) = %v", s, err)
		}
	}
}
