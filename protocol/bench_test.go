package protocol

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/bytedance/sonic"
)

var (
	benchJoin   = []byte(`{"id":12,"command":"mesh/join-room","payload":{"roomName":"lobby"}}`)
	benchRecord = []byte(`{"command":"mesh/record-update","payload":{"recordId":"user:1","patch":[{"op":"replace","path":"/name","value":"b"}],"version":5}}`)
	// The large payload of tests.md C-client-4: 1000 strings plus a nested object.
	benchLarge = func() []byte {
		items := make([]string, 1000)
		for i := range items {
			items[i] = `"item-` + strconv.Itoa(i) + `"`
		}
		return []byte(`{"id":1,"command":"echo","payload":{"array":[` + strings.Join(items, ",") +
			`],"nested":{"deep":{"object":{"with":"lots of data"}}}}}`)
	}()
	benchChat = []byte(`{"id":4,"command":"chat","payload":{"room":"lobby","text":"` + strings.Repeat("hello, world! ", 18) + `"}}`)
)

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name  string
		frame []byte
	}{
		{"frame=join-room", benchJoin},
		{"frame=record-update", benchRecord},
		{"frame=chat-256B", benchChat},
		{"frame=large-12KB", benchLarge},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			var m Message
			for b.Loop() {
				if err := Decode(bc.frame, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Baselines for the choice of decoder (see the package report): sonic's
// own paths and encoding/json on the same frames.
func BenchmarkDecodeBaseline(b *testing.B) {
	type envelope struct {
		ID      *int64                 `json:"id"`
		Command *string                `json:"command"`
		Payload sonic.NoCopyRawMessage `json:"payload"`
	}
	for _, bc := range []struct {
		name  string
		frame []byte
	}{
		{"frame=join-room", benchJoin},
		{"frame=chat-256B", benchChat},
		{"frame=large-12KB", benchLarge},
	} {
		b.Run("impl=sonic-struct/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			s := b2s(bc.frame)
			for b.Loop() {
				var e envelope
				if err := sonic.UnmarshalString(s, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("impl=sonic-valid-only/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			for b.Loop() {
				if !sonic.Valid(bc.frame) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run("impl=sonic-ast-get/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			s := b2s(bc.frame)
			for b.Loop() {
				n, err := sonic.GetFromString(s, "payload")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = n.Raw()
			}
		})
		b.Run("impl=encoding-json/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			for b.Loop() {
				var e struct {
					ID      *int64          `json:"id"`
					Command *string         `json:"command"`
					Payload json.RawMessage `json:"payload"`
				}
				if err := json.Unmarshal(bc.frame, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendMessage(b *testing.B) {
	payload := []byte(`{"success":true,"present":["conn-m3x0mp6o00000000a3f10"]}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], 12, true, CmdJoinRoom, payload)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendSubscriptionMessage(b *testing.B) {
	for _, size := range []int{16, 256, 4096} {
		msg := strings.Repeat("m", size)
		b.Run("msg="+strconv.Itoa(size)+"B", func(b *testing.B) {
			buf := make([]byte, 0, size+128)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendSubscriptionMessage(buf[:0], "chat:lobby", msg)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkAppendRecordUpdatePatch(b *testing.B) {
	patch := []byte(`[{"op":"replace","path":"/name","value":"b"}]`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecordUpdatePatch(buf[:0], "user:1", patch, 5)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendPresenceUpdate(b *testing.B) {
	state := []byte(`{"status":"typing"}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPresenceUpdate(buf[:0], PresenceState, "conn-m3x0mp6o00000000a3f10", "lobby", 1732538400000, state)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAppendJSONString(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"ascii-256B", strings.Repeat("hello, world! ", 18)},
		{"escapes-256B", strings.Repeat("line\n\"q\" ", 28)},
		{"utf8-256B", strings.Repeat("café ☕ ", 28)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = AppendJSONString(buf[:0], bc.s)
			}
		})
	}
}

func BenchmarkReply(b *testing.B) {
	b.Run("impl=AppendJSON", func(b *testing.B) {
		reply := JoinRoomReply{Success: true, Present: []string{"conn-a", "conn-b"}}
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			buf = reply.AppendJSON(buf[:0])
		}
	})
	b.Run("impl=sonic-Marshal", func(b *testing.B) {
		reply := JoinRoomReply{Success: true, Present: []string{"conn-a", "conn-b"}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Marshal(reply); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnmarshalRequest(b *testing.B) {
	var m Message
	if err := Decode(benchJoin, &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var req JoinRoomRequest
		if err := Unmarshal(m.Payload, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseErrorPayload(b *testing.B) {
	b.Run("not-error", func(b *testing.B) {
		p := []byte(`{"success":true,"present":["conn-a","conn-b"]}`)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := ParseErrorPayload(p); ok {
				b.Fatal("error?")
			}
		}
	})
	b.Run("error", func(b *testing.B) {
		p := []byte(`{"error":"Command \"nope\" not found","code":"ENOTFOUND","name":"CommandError"}`)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := ParseErrorPayload(p); !ok {
				b.Fatal("not error?")
			}
		}
	})
}
