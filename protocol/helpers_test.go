package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

// refDecode is an independent reference for Decode built on encoding/json,
// whose validity rules (RFC 8259, depth 10000, UTF-8 not checked) are the
// ones Decode promises. Commands are compared after mapping invalid UTF-8 to
// U+FFFD, since encoding/json replaces it while Decode passes it through.
func refDecode(data []byte) (Message, error) {
	if !json.Valid(data) {
		return Message{}, ErrInvalidJSON
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Message{}, ErrNotObject
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return Message{}, err
	}
	var m Message
	var cmd string
	raw := obj["command"]
	if len(raw) == 0 || raw[0] != '"' {
		return Message{}, ErrNoCommand
	}
	if err := json.Unmarshal(raw, &cmd); err != nil {
		return Message{}, err
	}
	m.Command = []byte(cmd)
	if p, ok := obj["payload"]; ok {
		m.Payload = []byte(p)
	}
	if raw, ok := obj["id"]; ok && !bytes.ContainsAny(raw, ".eE") {
		if v, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			m.ID, m.HasID = v, true
		}
	}
	return m, nil
}

// validUTF8 maps each invalid byte to U+FFFD, as encoding/json and
// AppendJSONString do.
func validUTF8(b []byte) string {
	return string([]rune(string(b)))
}

// sameMessage compares two decoded messages, commands up to UTF-8 repair.
func sameMessage(a, b Message) bool {
	return a.HasID == b.HasID && (!a.HasID || a.ID == b.ID) &&
		validUTF8(a.Command) == validUTF8(b.Command) &&
		(a.Payload == nil) == (b.Payload == nil) && bytes.Equal(a.Payload, b.Payload)
}

func mustDecode(t testing.TB, frame string) Message {
	t.Helper()
	var m Message
	if err := Decode([]byte(frame), &m); err != nil {
		t.Fatalf("Decode(%q): %v", frame, err)
	}
	return m
}

// short abbreviates data for failure messages.
func short(data []byte) string {
	if len(data) > 200 {
		return strconv.Quote(string(data[:100])) + "..." + strconv.Quote(string(data[len(data)-100:]))
	}
	return strconv.Quote(string(data))
}

// checkDecode runs Decode and the reference on data and fails on any
// disagreement; it is shared by the table tests and the fuzz target.
func checkDecode(t testing.TB, data []byte) (Message, error) {
	t.Helper()
	var m Message
	err := Decode(data, &m)
	want, wantErr := refDecode(data)
	if !errors.Is(err, wantErr) && !(err == nil && wantErr == nil) {
		t.Fatalf("Decode(%s) err = %v, reference %v", short(data), err, wantErr)
	}
	if err == nil && !sameMessage(m, want) {
		t.Fatalf("Decode(%s) = %+v, reference %+v", short(data), m, want)
	}
	if err != nil && (m.Command != nil || m.Payload != nil || m.HasID) {
		t.Fatalf("Decode(%s) failed but left %+v", short(data), m)
	}
	return m, err
}

// checkJSON fails unless got is valid JSON equal in value to want.
func checkJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("output is not valid JSON: %s", got)
	}
}

func ptr[T any](v T) *T { return &v }
