package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestValid(t *testing.T) {
	for _, s := range []string{
		`0`, `-0`, `1.5e+10`, `"x"`, `true`, `false`, `null`, `[]`, `{}`, ` [ 1 , { "a" : null } ] `,
		`"\ud83d\ude00"`, `{"a":{"b":{"c":[[],{}]}}}`, `""`, `-1.0E-2`,
	} {
		if !Valid([]byte(s)) || !json.Valid([]byte(s)) {
			t.Errorf("Valid(%q) = false", s)
		}
	}
	for _, s := range []string{
		``, ` `, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nulll`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`,
		`"\x"`, "\"\x1f\"", `"\u00g0"`, `[1 2]`, `{"a":1 "b":2}`, `1 2`, `'x'`, `[`, `]`, `{`, `"`, `Infinity`,
	} {
		if Valid([]byte(s)) || json.Valid([]byte(s)) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}

func TestSonicConfig(t *testing.T) {
	type payload struct {
		Name  string               `json:"roomName"`
		List  []string             `json:"list"`
		Map   map[string]int       `json:"map"`
		Raw   json.RawMessage      `json:"raw"`
		Opt   json.RawMessage      `json:"opt,omitempty"`
		Inner *SubscriptionMessage `json:"inner,omitempty"`
	}
	out, err := Marshal(payload{Name: "<a&b>\xff", Map: map[string]int{"b": 2, "a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	// No HTML escaping, [] and {} for nil, sorted keys, U+FFFD for bad UTF-8.
	checkJSON(t, out, `{"roomName":"<a&b>\ufffd","list":[],"map":{"a":1,"b":2},"raw":null}`)

	// Keys are case-sensitive, as JS property access is.
	var p payload
	if err := Unmarshal([]byte(`{"RoomName":"x","roomName":"y"}`), &p); err != nil || p.Name != "y" {
		t.Fatalf("got %q, %v", p.Name, err)
	}
	p = payload{}
	if err := Unmarshal([]byte(`{"RoomName":"x"}`), &p); err != nil || p.Name != "" {
		t.Fatalf("case-insensitive match: %q, %v", p.Name, err)
	}
	// Raw control characters are refused, as JSON.parse refuses them.
	if err := Unmarshal([]byte("{\"roomName\":\"a\x01\"}"), &p); err == nil {
		t.Fatal("raw control character accepted")
	}
	// Decoded values do not alias the input.
	in := []byte(`{"roomName":"room","raw":{"k":[1]},"list":["a"]}`)
	p = payload{}
	if err := Unmarshal(in, &p); err != nil {
		t.Fatal(err)
	}
	copy(in, bytes.Repeat([]byte("#"), len(in)))
	if p.Name != "room" || string(p.Raw) != `{"k":[1]}` || p.List[0] != "a" {
		t.Fatalf("decoded values alias the input: %+v", p)
	}
	// null and absent stay distinct for raw fields.
	p = payload{}
	if err := Unmarshal([]byte(`{"raw":null}`), &p); err != nil || string(p.Raw) != "null" || p.Opt != nil {
		t.Fatalf("raw null: %q %q %v", p.Raw, p.Opt, err)
	}
}

func TestAppendJSON(t *testing.T) {
	// A prefix that is not UTF-8 (a frame header, say) must survive sonic's
	// UTF-8 repair of the encoded part.
	prefix := []byte{0x81, 0xfe, 0xff}
	for _, capacity := range []int{0, 3, 256} {
		dst := append(make([]byte, 0, capacity), prefix...)
		out, err := AppendJSON(dst, SubscribeChannelRequest{Channel: "a\xffb", HistoryLimit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[:3], prefix) {
			t.Fatalf("cap %d: prefix clobbered: %q", capacity, out)
		}
		checkJSON(t, out[3:], `{"channel":"a\ufffdb","historyLimit":3}`)
	}
	if out, err := AppendJSON([]byte("keep"), func() {}); err == nil || string(out) != "keep" {
		t.Fatalf("unsupported type: %q, %v", out, err)
	}
	// Types with AppendJSON go through their MarshalJSON.
	out, err := AppendJSON(nil, JoinRoomReply{Success: true})
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, out, `{"success":true,"present":[]}`)
}
