package zps

import (
	"fmt"
	"unicode/utf8"
)

// Limits of names. The document fixes the scope's (its regular expression
// [A-Za-z0-9][A-Za-z0-9._-]{0,63}); it says only that a resource id may
// hold ':' and not be empty, so the rest is meshfast's, chosen so that a
// name fits a Redis key and a log line: at most MaxResourceID bytes of
// valid UTF-8 without control characters, and no '*' (only scope:* is a
// pattern, and a '*' elsewhere is far more likely a pattern the document
// does not support than a room).
const (
	// MaxScope is the longest scope, in bytes.
	MaxScope = 64
	// MaxResourceID is the longest resource id, in bytes.
	MaxResourceID = 256
	// MaxName is the longest event id, event type or subscriber id.
	MaxName = 256
	// Wildcard is the resource id of a scope pattern (scope:*).
	Wildcard = "*"
)

// Room returns the room scope:id, the document's room(scope, id), or an
// error wrapping ErrInvalidRoom if either part is invalid.
func Room(scope, id string) (string, error) {
	r := scope + ":" + id
	if err := checkScope(r, scope); err != nil {
		return "", err
	}
	if err := checkResource(r, id); err != nil {
		return "", err
	}
	return r, nil
}

// ParseRoom splits a room name at its first ':' and validates both parts:
// the scope matches [A-Za-z0-9][A-Za-z0-9._-]{0,63}, the resource id is
// not empty and may hold further ':'. A pattern (scope:*) is not a room.
// Errors wrap ErrInvalidRoom.
func ParseRoom(room string) (scope, id string, err error) {
	scope, id, ok := cut(room)
	if !ok {
		return "", "", fmt.Errorf("%w %q: want scope:resourceId", ErrInvalidRoom, room)
	}
	if err := checkScope(room, scope); err != nil {
		return "", "", err
	}
	if err := checkResource(room, id); err != nil {
		return "", "", err
	}
	return scope, id, nil
}

// ValidRoom reports whether room is a valid room name (ParseRoom).
func ValidRoom(room string) bool {
	_, _, err := ParseRoom(room)
	return err == nil
}

// ParsePattern reads what a subscription names: a room (wildcard false,
// scope its scope) or the pattern scope:* (wildcard true), every room of
// one scope. The global "*" and any other use of '*' are refused with an
// error wrapping ErrInvalidPattern; an invalid room with ErrInvalidRoom.
func ParsePattern(p string) (scope string, wildcard bool, err error) {
	if p == Wildcard {
		return "", false, fmt.Errorf("%w %q: the global wildcard is not supported, only scope:*", ErrInvalidPattern, p)
	}
	s, id, ok := cut(p)
	if ok && id == Wildcard {
		if err := checkScope(p, s); err != nil {
			return "", false, fmt.Errorf("%w %q: %w", ErrInvalidPattern, p, err)
		}
		return s, true, nil
	}
	scope, _, err = ParseRoom(p)
	return scope, false, err
}

// ScopeOf returns the scope of a valid room or pattern: what precedes the
// first ':'. It does not validate.
func ScopeOf(room string) string {
	s, _, _ := cut(room)
	return s
}

func cut(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func checkScope(room, s string) error {
	if s == "" {
		return fmt.Errorf("%w %q: empty scope", ErrInvalidRoom, room)
	}
	if len(s) > MaxScope {
		return fmt.Errorf("%w %q: scope longer than %d bytes", ErrInvalidRoom, room, MaxScope)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return fmt.Errorf("%w %q: scope must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}", ErrInvalidRoom, room)
		}
	}
	return nil
}

func checkResource(room, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w %q: empty resource id", ErrInvalidRoom, room)
	case len(id) > MaxResourceID:
		return fmt.Errorf("%w %q: resource id longer than %d bytes", ErrInvalidRoom, room, MaxResourceID)
	case !plain(id):
		return fmt.Errorf("%w %q: resource id must be UTF-8 without control characters", ErrInvalidRoom, room)
	}
	for i := 0; i < len(id); i++ {
		if id[i] == '*' {
			return fmt.Errorf("%w %q: '*' is only allowed as the whole resource id of a scope:* subscription", ErrInvalidRoom, room)
		}
	}
	return nil
}

// CheckName validates an event id, event type or subscriber id (what says
// which): not empty, at most MaxName bytes of UTF-8 without control
// characters. Errors wrap ErrInvalidName.
func CheckName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidName, what)
	case len(s) > MaxName:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidName, what, MaxName)
	case !plain(s):
		return fmt.Errorf("%w: %s %q must be UTF-8 without control characters", ErrInvalidName, what, s)
	}
	return nil
}

// plain reports whether s is valid UTF-8 without C0 controls or DEL.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}
